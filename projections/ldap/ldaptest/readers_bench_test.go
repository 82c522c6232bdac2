package ldaptest_test

import (
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"mailplane/projections/ldap/ldaptest"
)

// BenchmarkReaders is figure (d) of docs/benchmarks.md: what Postfix and Dovecot wait for on a
// full directory. It picks MAILPLANE_BENCH_READER_KEYS (1,000) random accounts that may log in
// and whose address ends with MAILPLANE_BENCH_READER_SUFFIX (".load.test": the load driver's),
// then times `postmap -q ADDRESS ldap:virtual_mailbox_maps.cf` (a process per lookup, as the
// docs/postfix table is used) and `doveadm auth test ADDRESS PASSWORD` (docs/dovecot: a search
// and a bind as the account, which verifies its {ARGON2} hash) for each, and reports p50 and p99
// of each. The directory is MAILPLANE_BENCH_LDAP_URL below MAILPLANE_BENCH_LDAP_BASE, read as
// MAILPLANE_BENCH_POSTFIX_DN and MAILPLANE_BENCH_DOVECOT_DN (with _PASSWORD), the accounts
// picked as MAILPLANE_BENCH_LDAP_BIND_DN; the accounts' password is
// MAILPLANE_BENCH_READER_PASSWORD (the load driver's, "load-password-0001").
func BenchmarkReaders(b *testing.B) {
	url := os.Getenv("MAILPLANE_BENCH_LDAP_URL")
	if url == "" {
		b.Skip("MAILPLANE_BENCH_LDAP_URL is not set (scripts/bench.sh ldap sets it)")
	}
	base := os.Getenv("MAILPLANE_BENCH_LDAP_BASE")
	n := 1000
	if v, err := strconv.Atoi(os.Getenv("MAILPLANE_BENCH_READER_KEYS")); err == nil && v > 0 {
		n = v
	}
	suffix := envDefault("MAILPLANE_BENCH_READER_SUFFIX", ".load.test")
	password := envDefault("MAILPLANE_BENCH_READER_PASSWORD", "load-password-0001")
	postfix := ldaptest.Credentials{DN: os.Getenv("MAILPLANE_BENCH_POSTFIX_DN"), Password: os.Getenv("MAILPLANE_BENCH_POSTFIX_PASSWORD")}
	dovecot := ldaptest.Credentials{DN: os.Getenv("MAILPLANE_BENCH_DOVECOT_DN"), Password: os.Getenv("MAILPLANE_BENCH_DOVECOT_PASSWORD")}
	admin := ldaptest.Credentials{DN: os.Getenv("MAILPLANE_BENCH_LDAP_BIND_DN"), Password: os.Getenv("MAILPLANE_BENCH_LDAP_PASSWORD")}

	conn, err := ldaptest.Dial(url, admin)
	if err != nil {
		b.Fatal(err)
	}
	res, err := conn.SearchWithPaging(ldap.NewSearchRequest("ou=accounts,"+base, ldap.ScopeSingleLevel, ldap.NeverDerefAliases,
		0, 0, false, "(&(objectClass=mailplaneAccount)(mailplaneLogin=TRUE))", []string{"mail"}, nil), 1000)
	conn.Close()
	if err != nil {
		b.Fatal(err)
	}
	var all []string
	for _, e := range res.Entries {
		if m := e.GetAttributeValue("mail"); strings.HasSuffix(m, suffix) {
			all = append(all, m)
		}
	}
	if len(all) < n {
		b.Fatalf("%d accounts ending with %s may log in; want %d", len(all), suffix, n)
	}
	rand.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	keys := all[:n]
	b.Logf("%d accounts in the directory may log in; %d picked", len(all), n)

	pm := ldaptest.NewPostmap(b, "virtual_mailbox_maps", url, base, postfix)
	dv := ldaptest.StartDovecot(b, url, base, dovecot)
	var lookups, auths []time.Duration
	notFound, refused := 0, 0
	for i := 0; i < b.N; i++ {
		for _, k := range keys {
			t0 := time.Now()
			_, found, err := pm.Query(k)
			lookups = append(lookups, time.Since(t0))
			if err != nil {
				b.Fatal(err)
			}
			if !found {
				notFound++
			}
		}
		for _, k := range keys {
			t0 := time.Now()
			ok, err := dv.AuthTest(k, password)
			auths = append(auths, time.Since(t0))
			if err != nil {
				b.Fatal(err)
			}
			if !ok {
				refused++
			}
		}
	}
	q := func(ds []time.Duration, p float64) float64 {
		s := slices.Clone(ds)
		slices.Sort(s)
		return float64(s[min(len(s)-1, int(p*float64(len(s))))]) / float64(time.Millisecond)
	}
	b.ReportMetric(q(lookups, 0.5), "postmap-p50-ms")
	b.ReportMetric(q(lookups, 0.99), "postmap-p99-ms")
	b.ReportMetric(q(auths, 0.5), "auth-p50-ms")
	b.ReportMetric(q(auths, 0.99), "auth-p99-ms")
	b.ReportMetric(float64(len(all)), "accounts")
	b.ReportMetric(float64(notFound), "not-found")
	b.ReportMetric(float64(refused), "refused")
}

func envDefault(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
