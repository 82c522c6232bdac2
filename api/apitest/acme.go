package apitest

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3filter"

	"mailplane/workers"
)

func init() {
	// The certificate download's media type; kin-openapi knows no decoder for it.
	openapi3filter.RegisterBodyDecoder("application/x-pem-file", openapi3filter.FileBodyDecoder)
}

// envOf returns a dev-stack variable, failing the test without it.
func envOf(t testing.TB, k string) string {
	t.Helper()
	v := os.Getenv(k)
	if v == "" {
		t.Fatalf("%s is not set: run the tests with `go tool task test`, which starts Pebble", k)
	}
	return v
}

// pebbleClient trusts the CA that signs Pebble's HTTPS certificate (its directory and its
// management API). Without keep-alives, so that tests leave no connections behind.
func pebbleClient(t testing.TB) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	b, err := os.ReadFile(envOf(t, "MAILPLANE_ACME_CA_FILE"))
	if err != nil || !pool.AppendCertsFromPEM(b) {
		t.Fatalf("apitest: Pebble's CA file: %v", err)
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool},
		DisableKeepAlives: true}}
}

// PebbleTransport reaches Pebble as it answers (see ACMEConfig for the Retry-After the tests add).
func PebbleTransport(t testing.TB) http.RoundTripper { return pebbleClient(t).Transport }

// PebbleRoot returns the root Pebble issues under: n = 0 for its default chain, 1 for the
// alternate one (the stack starts it with PEBBLE_ALTERNATE_ROOTS=1). Pebble makes new roots at
// every start.
func PebbleRoot(t testing.TB, n int) *x509.Certificate {
	t.Helper()
	resp, err := pebbleClient(t).Get(fmt.Sprintf("%s/roots/%d", envOf(t, "MAILPLANE_PEBBLE_MANAGEMENT_URL"), n))
	if err != nil {
		t.Fatalf("apitest: Pebble's root %d: %v", n, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("apitest: Pebble's root %d: %s %s", n, resp.Status, b)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("apitest: Pebble's root %d is not PEM", n)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatalf("apitest: Pebble's root %d: %v", n, err)
	}
	return c
}

// challtestsrv posts to pebble-challtestsrv's management API.
func challtestsrv(t testing.TB, path string, body any) {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := (&http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}).Post(
		envOf(t, "MAILPLANE_CHALLTESTSRV_URL")+path, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatalf("apitest: challtestsrv %s: %v", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(resp.Body)
		t.Fatalf("apitest: challtestsrv %s: %s %s", path, resp.Status, msg)
	}
}

// SetA makes host resolve to ip for Pebble (pebble-challtestsrv answers its DNS queries; every
// other name resolves to 127.0.0.1, where mailplane answers HTTP-01). The record is cleared
// when the test ends.
func SetA(t testing.TB, host, ip string) {
	t.Helper()
	challtestsrv(t, "/clear-a", map[string]any{"host": host})
	challtestsrv(t, "/add-a", map[string]any{"host": host, "addresses": []string{ip}})
	t.Cleanup(func() { challtestsrv(t, "/clear-a", map[string]any{"host": host}) })
}

// retryAfter adds Retry-After: 1 to the CA's answers that have none. Pebble sends none (nor
// does Let's Encrypt), and lego then polls an authorization 5 s ± 50 % apart; RFC 8555 lets a CA
// ask for less, and this one does, so that issuance in tests takes about a second.
type retryAfter struct{ next http.RoundTripper }

func (r retryAfter) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.next.RoundTrip(req)
	if err == nil && resp.Header.Get("Retry-After") == "" {
		resp.Header.Set("Retry-After", "1")
	}
	return resp, err
}

var shortChainRoot = struct {
	once sync.Once
	cn   string
}{}

// ACMEConfig is the dev stack's Pebble as the issuance job's CA: trusted through the stack's CA
// file, its alternate chain (root 1) as the "short" one, 90-day certificates (Pebble's
// certificateValidityPeriod in the stack). HTTP01 is left to the caller.
func ACMEConfig(t testing.TB) workers.ACMEConfig {
	t.Helper()
	shortChainRoot.once.Do(func() { shortChainRoot.cn = PebbleRoot(t, 1).Subject.CommonName })
	return workers.ACMEConfig{
		DirectoryURL:   envOf(t, "MAILPLANE_ACME_DIRECTORY"),
		Email:          envOf(t, "MAILPLANE_ACME_EMAIL"),
		Transport:      retryAfter{next: pebbleClient(t).Transport},
		ShortChainRoot: shortChainRoot.cn,
		OrderTimeout:   30 * time.Second,
	}
}

// The HTTP-01 listener: Pebble dials one fixed port (MAILPLANE_ACME_HTTP_PORT), so every test of
// a process shares one listener, which looks each token up in the challenge tables of every
// test Env that runs workers. It runs while some Env uses it (goleak wants it gone after).
var challengeListener struct {
	mu      sync.Mutex
	sources map[*workers.HTTPChallenges]bool
	srv     *http.Server
	ip      string
	done    chan struct{}
}

type challengeSources struct{}

func (challengeSources) KeyAuth(ctx context.Context, host, token string) (string, bool, error) {
	challengeListener.mu.Lock()
	var srcs []*workers.HTTPChallenges
	for s := range challengeListener.sources {
		srcs = append(srcs, s)
	}
	challengeListener.mu.Unlock()
	for _, s := range srcs {
		ka, ok, err := s.KeyAuth(ctx, host, token)
		if err != nil || ok {
			return ka, ok, err
		}
	}
	return "", false, nil
}

// serveChallenges makes the shared listener answer from c until the test ends.
func serveChallenges(t testing.TB, c *workers.HTTPChallenges, ip string, logger *slog.Logger) {
	t.Helper()
	if ip == "" {
		ip = "127.0.0.1"
	}
	l := &challengeListener
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.srv != nil && l.ip != ip {
		t.Fatalf("apitest: the HTTP-01 listener of this process binds %s, not %s", l.ip, ip)
	}
	if l.srv == nil {
		ln, err := net.Listen("tcp", net.JoinHostPort(ip, envOf(t, "MAILPLANE_ACME_HTTP_PORT")))
		if err != nil {
			t.Fatalf("apitest: the HTTP-01 port: %v (does a mailplane serve of the dev stack listen there?)", err)
		}
		l.sources = map[*workers.HTTPChallenges]bool{}
		l.ip = ip
		l.srv = &http.Server{Handler: workers.ChallengeHandler(challengeSources{}, logger), ReadHeaderTimeout: 5 * time.Second}
		l.done = make(chan struct{})
		go func(srv *http.Server, done chan struct{}) { defer close(done); _ = srv.Serve(ln) }(l.srv, l.done)
	}
	l.sources[c] = true
	t.Cleanup(func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		delete(l.sources, c)
		if len(l.sources) == 0 && l.srv != nil {
			_ = l.srv.Close()
			<-l.done
			l.srv = nil
		}
	})
}
