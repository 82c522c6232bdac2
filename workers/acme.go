package workers

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-acme/lego/v4/acme"
	"github.com/go-acme/lego/v4/certcrypto"
	"github.com/go-acme/lego/v4/certificate"
	"github.com/go-acme/lego/v4/challenge"
	"github.com/go-acme/lego/v4/lego"
	legolog "github.com/go-acme/lego/v4/log"
	"github.com/go-acme/lego/v4/registration"
	"github.com/jackc/pgx/v5"

	"mailplane/commands"
	"mailplane/domain"
	"mailplane/eventstore"
	"mailplane/eventstore/keyring"
)

// ACMEConfig says which ACME CA issues certificates and how.
type ACMEConfig struct {
	// DirectoryURL is the CA's directory (Let's Encrypt: https://acme-v02.api.letsencrypt.org/directory).
	DirectoryURL string
	// Email is the account's contact, where the CA sends its own notices.
	Email string
	// RootCAs verify the CA's HTTPS certificate; nil: the system's roots.
	RootCAs *x509.CertPool
	// Transport, when set, carries the requests to the CA (RootCAs is then its business).
	Transport http.RoundTripper
	// HTTP01 answers the CA's HTTP-01 challenges (an *HTTPChallenges served by ChallengeHandler).
	HTTP01 challenge.Provider
	// ShortChainRoot is the common name of the root that ends the alternate chain "short" asks
	// for (lego's PreferredChain). When the CA offers no chain to it, the default one is kept.
	// Default "ISRG Root X1".
	ShortChainRoot string
	// KeyType of the certificates' keys; default certcrypto.EC256.
	KeyType certcrypto.KeyType
	// Lifetime, when set, asks for certificates valid that long (the order's notAfter). Let's
	// Encrypt refuses such orders; Pebble honours them. Zero: the CA decides.
	Lifetime time.Duration
	// OrderTimeout bounds the wait for the CA to issue once validated (default 1 minute).
	OrderTimeout time.Duration
	// Now is the clock for Lifetime (default time.Now).
	Now func() time.Time
}

// ACME obtains certificates from an ACME CA through lego, with mailplane's one account per
// directory (its key sealed in acme_accounts).
type ACME struct {
	cfg    ACMEConfig
	db     eventstore.DBTX
	keys   *keyring.Keyring
	logger *slog.Logger
}

// acmeKeyScope is the keyring scope of ACME account keys: no domain name can be it (they
// have a dot), so it is shredded with no domain.
const acmeKeyScope = "acme"

var legoLogOnce sync.Once

// NewACME checks the configuration. lego logs through a package-level logger; it is pointed at
// logger (debug level) once per process.
func NewACME(cfg ACMEConfig, db eventstore.DBTX, keys *keyring.Keyring, logger *slog.Logger) (*ACME, error) {
	var errs []error
	if !strings.HasPrefix(cfg.DirectoryURL, "https://") {
		errs = append(errs, fmt.Errorf("acme: directory URL %q is not https", cfg.DirectoryURL))
	}
	if cfg.HTTP01 == nil {
		errs = append(errs, errors.New("acme: an HTTP-01 challenge provider is required"))
	}
	if db == nil || keys == nil || logger == nil {
		errs = append(errs, errors.New("acme: database, keyring and logger are required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.ShortChainRoot == "" {
		cfg.ShortChainRoot = "ISRG Root X1"
	}
	if cfg.KeyType == "" {
		cfg.KeyType = certcrypto.EC256
	}
	if cfg.OrderTimeout <= 0 {
		cfg.OrderTimeout = time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	legoLogOnce.Do(func() { legolog.Logger = slog.NewLogLogger(logger.Handler(), slog.LevelDebug) })
	return &ACME{cfg: cfg, db: db, keys: keys, logger: logger}, nil
}

type acmeUser struct {
	email string
	key   crypto.PrivateKey
	reg   *registration.Resource
}

func (u *acmeUser) GetEmail() string                        { return u.email }
func (u *acmeUser) GetRegistration() *registration.Resource { return u.reg }
func (u *acmeUser) GetPrivateKey() crypto.PrivateKey        { return u.key }

// acmeRequestTimeout bounds one request to the CA.
const acmeRequestTimeout = 30 * time.Second

// ctxTransport ties every request to the job's context, lego's Obtain taking none: this is how
// a job's timeout or a shutdown stops it. Each request also gets acmeRequestTimeout, through
// its context rather than http.Client.Timeout, whose timer goroutine outlives any response
// body that is not closed.
type ctxTransport struct {
	ctx  context.Context
	next http.RoundTripper
}

func (t ctxTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(t.ctx, acmeRequestTimeout)
	resp, err := t.next.RoundTrip(r.WithContext(ctx))
	if err != nil {
		cancel()
		return nil, err
	}
	resp.Body = cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

// Obtain orders a certificate for host: the account is registered (or found again: the CA
// answers a known key with its account), the HTTP-01 challenge answered, and the bundle
// (server certificate and the chain asked for) returned with its new key.
func (a *ACME) Obtain(ctx context.Context, host, chain string) (commands.IssuedCertificate, error) {
	key, err := a.accountKey(ctx)
	if err != nil {
		return commands.IssuedCertificate{}, err
	}
	transport := a.cfg.Transport
	if transport == nil {
		transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: a.cfg.RootCAs}, Proxy: http.ProxyFromEnvironment}
	}
	user := &acmeUser{email: a.cfg.Email, key: key}
	cfg := lego.NewConfig(user)
	cfg.CADirURL = a.cfg.DirectoryURL
	cfg.UserAgent = "mailplane"
	cfg.HTTPClient = &http.Client{Transport: ctxTransport{ctx: ctx, next: transport}}
	cfg.Certificate.KeyType = a.cfg.KeyType
	cfg.Certificate.Timeout = a.cfg.OrderTimeout
	client, err := lego.NewClient(cfg)
	if err != nil {
		return commands.IssuedCertificate{}, fmt.Errorf("acme: directory %s: %w", a.cfg.DirectoryURL, err)
	}
	if err := client.Challenge.SetHTTP01Provider(a.cfg.HTTP01); err != nil {
		return commands.IssuedCertificate{}, err
	}
	if user.reg, err = client.Registration.Register(registration.RegisterOptions{TermsOfServiceAgreed: true}); err != nil {
		return commands.IssuedCertificate{}, fmt.Errorf("acme: account: %w", err)
	}
	req := certificate.ObtainRequest{Domains: []string{host}, Bundle: true}
	if chain == domain.ChainShort {
		req.PreferredChain = a.cfg.ShortChainRoot
	}
	if a.cfg.Lifetime > 0 {
		req.NotAfter = a.cfg.Now().Add(a.cfg.Lifetime)
	}
	res, err := client.Certificate.Obtain(req)
	if err != nil {
		return commands.IssuedCertificate{}, err
	}
	return commands.IssuedCertificate{Bundle: string(res.Certificate), PrivateKey: string(res.PrivateKey)}, nil
}

// accountKey returns the account key for the directory, made and stored (sealed) on first use.
// Two processes making one at once both store theirs with ON CONFLICT DO NOTHING and use
// whichever was stored first.
func (a *ACME) accountKey(ctx context.Context) (crypto.PrivateKey, error) {
	for attempt := 0; attempt < 2; attempt++ {
		var sealed string
		err := a.db.QueryRow(ctx, `SELECT key_secret FROM acme_accounts WHERE directory = $1`, a.cfg.DirectoryURL).Scan(&sealed)
		if err == nil {
			plain, err := a.keys.Open(ctx, sealed)
			if err != nil {
				return nil, fmt.Errorf("acme: account key: %w", err)
			}
			b, _ := pem.Decode(plain)
			if b == nil {
				return nil, errors.New("acme: account key: not PEM")
			}
			return x509.ParsePKCS8PrivateKey(b.Bytes)
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return nil, fmt.Errorf("acme: account key: %w", err)
		}
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			return nil, err
		}
		sealed, err = a.keys.Seal(ctx, acmeKeyScope, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
		if err != nil {
			return nil, fmt.Errorf("acme: account key: %w", err)
		}
		if _, err := a.db.Exec(ctx, `INSERT INTO acme_accounts (directory, email, key_secret) VALUES ($1, $2, $3)
			ON CONFLICT (directory) DO NOTHING`, a.cfg.DirectoryURL, a.cfg.Email, sealed); err != nil {
			return nil, fmt.Errorf("acme: account key: %w", err)
		}
	}
	return nil, errors.New("acme: account key: not stored")
}

var acmeStatusRE = regexp.MustCompile(`acme: error: (\d{3})`)

// refused reports whether an Obtain error is the CA's verdict on the request (a failed
// validation, a refused name, a rate limit: any ACME problem with a 4xx status), which asking
// again at once would not change, rather than a failure to reach it or a server error.
func refused(err error) bool {
	var pd *acme.ProblemDetails
	if errors.As(err, &pd) {
		return pd.HTTPStatus >= 400 && pd.HTTPStatus < 500 && pd.Type != acme.BadNonceErr
	}
	// Challenge failures come as lego's per-domain error map, which wraps nothing: read the
	// status from its text ("[host] invalid authorization: acme: error: 403 :: urn:...").
	for _, m := range acmeStatusRE.FindAllStringSubmatch(err.Error(), -1) {
		if n, _ := strconv.Atoi(m[1]); n >= 400 && n < 500 {
			return true
		}
	}
	return false
}

// acmeErrors splits an Obtain error into one message per problem (lego joins the domains'
// errors under a heading).
func acmeErrors(err error) []string {
	var out []string
	for _, line := range strings.Split(err.Error(), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line == "error: one or more domains had a problem:" {
			continue
		}
		out = append(out, line)
	}
	if len(out) == 0 {
		out = []string{err.Error()}
	}
	return out
}
