package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"mailplane/api"
	"mailplane/eventstore"
)

// config is everything mailplane reads from its environment (DESIGN.md §7). It is read here,
// in main, and handed to the packages through their constructors.
type config struct {
	DatabaseURL string
	HTTPAddr    string
	// PolicyAddr is where Postfix's check_policy_service reaches mailplane ("" or "off": not served).
	PolicyAddr    string
	LDAPURL       string
	LDAPBindDN    string
	LDAPPassword  string
	LDAPBaseDN    string
	SMTPAddr      string
	MailFrom      string
	ACMEDirectory string
	ACMEEmail     string
	ACMECAFile    string
	// ACMEHTTPAddr is where serve answers the CA's HTTP-01 challenges (port 80 behind the
	// public address, or what a proxy forwards /.well-known/acme-challenge/ to); empty: not served.
	ACMEHTTPAddr string
	// ACMEShortChain is the root common name chain "short" asks for.
	ACMEShortChain string
	MasterKeyFile  string
	// AnchorFile receives a copy of every signed anchor (JSON lines); empty: the log only.
	AnchorFile     string
	IdempotencyTTL time.Duration
	// RescueStuckJobsAfter is how long a job's attempt may run before River deems its process
	// dead and hands the job on (0: workers.DefaultRescueStuckJobsAfter).
	RescueStuckJobsAfter time.Duration
	// ReadYourWrites bounds how long an answer after a write waits for the read models before
	// it is 503 read-model-behind; RequestTimeout bounds every request.
	ReadYourWrites time.Duration
	RequestTimeout time.Duration
	LogFormat      string
	APIURL         string
	ClientTokenDir string
}

func configFromEnv() (config, error) {
	get := func(k, def string) string {
		if v, ok := os.LookupEnv(k); ok && v != "" {
			return v
		}
		return def
	}
	home, _ := os.UserConfigDir()
	// duration reads a positive duration; unset or empty gives def.
	var bad error
	duration := func(k string, def time.Duration, example string) time.Duration {
		v := get(k, "")
		if v == "" {
			return def
		}
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			if bad == nil {
				bad = fmt.Errorf("%s must be a positive duration like %s, not %q", k, example, v)
			}
			return def
		}
		return d
	}
	ttl := duration("MAILPLANE_IDEMPOTENCY_TTL", eventstore.DefaultIdempotencyTTL, "24h")
	rescue := duration("MAILPLANE_RESCUE_STUCK_JOBS_AFTER", 0, "5m")
	ryw := duration("MAILPLANE_READ_YOUR_WRITES_TIMEOUT", api.DefaultReadYourWritesTimeout, "5s")
	request := duration("MAILPLANE_REQUEST_TIMEOUT", api.DefaultRequestTimeout, "30s")
	if bad != nil {
		return config{}, bad
	}
	if ryw >= request {
		return config{}, fmt.Errorf("MAILPLANE_READ_YOUR_WRITES_TIMEOUT (%s) must be shorter than MAILPLANE_REQUEST_TIMEOUT (%s): the wait is part of the request", ryw, request)
	}
	return config{
		RescueStuckJobsAfter: rescue,
		ReadYourWrites:       ryw,
		RequestTimeout:       request,
		DatabaseURL:          get("DATABASE_URL", "postgres://localhost:5432/mailplane"),
		HTTPAddr:             get("MAILPLANE_HTTP_ADDR", "127.0.0.1:8080"),
		PolicyAddr:           get("MAILPLANE_POLICY_ADDR", "127.0.0.1:10040"),
		LDAPURL:              get("MAILPLANE_LDAP_URL", ""),
		LDAPBindDN:           get("MAILPLANE_LDAP_BIND_DN", ""),
		LDAPPassword:         get("MAILPLANE_LDAP_PASSWORD", ""),
		LDAPBaseDN:           get("MAILPLANE_LDAP_BASE_DN", "dc=mailplane,dc=test"),
		SMTPAddr:             get("MAILPLANE_SMTP_ADDR", "127.0.0.1:2525"),
		MailFrom:             get("MAILPLANE_MAIL_FROM", "mailplane@mailplane.test"),
		ACMEDirectory:        get("MAILPLANE_ACME_DIRECTORY", ""),
		ACMEEmail:            get("MAILPLANE_ACME_EMAIL", ""),
		ACMECAFile:           get("MAILPLANE_ACME_CA_FILE", ""),
		ACMEHTTPAddr:         get("MAILPLANE_ACME_HTTP_ADDR", ""),
		ACMEShortChain:       get("MAILPLANE_ACME_SHORT_CHAIN", "ISRG Root X1"),
		MasterKeyFile:        get("MAILPLANE_MASTER_KEY_FILE", ".dev/master.key"),
		AnchorFile:           get("MAILPLANE_ANCHOR_FILE", ""),
		IdempotencyTTL:       ttl,
		LogFormat:            get("MAILPLANE_LOG_FORMAT", "text"),
		APIURL:               get("MAILPLANE_API_URL", ""),
		ClientTokenDir:       get("MAILPLANE_CONFIG_DIR", home+"/mailplane"),
	}, nil
}

func newLogger(format string, w io.Writer) (*slog.Logger, error) {
	switch format {
	case "text", "":
		return slog.New(slog.NewTextHandler(w, nil)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, nil)), nil
	default:
		return nil, fmt.Errorf("MAILPLANE_LOG_FORMAT must be text or json, not %q", format)
	}
}
