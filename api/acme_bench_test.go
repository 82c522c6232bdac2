package api_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/go-acme/lego/v4/certcrypto"
	"github.com/go-acme/lego/v4/certificate"
	"github.com/go-acme/lego/v4/lego"
	"github.com/go-acme/lego/v4/registration"
	"github.com/stretchr/testify/require"

	"mailplane/api/apitest"
	"mailplane/workers"
)

type benchUser struct {
	key crypto.PrivateKey
	reg *registration.Resource
}

func (u *benchUser) GetEmail() string                        { return "bench@mailplane.test" }
func (u *benchUser) GetRegistration() *registration.Resource { return u.reg }
func (u *benchUser) GetPrivateKey() crypto.PrivateKey        { return u.key }

// BenchmarkACMEIssuance measures a certificate issued end to end through mailplane against the
// dev stack's Pebble (PEBBLE_VA_NOSLEEP=1: it validates at once) — POST .../certificate/acme,
// the River job picked up, lego's order with real HTTP-01 validation against mailplane's
// listener, the certificate verified, its key sealed, the outcome recorded, the job seen
// succeeded through GET /api/v1/jobs/{id} — against lego's bare Obtain on one client
// registered once, with the same challenge provider (the acme_challenges table behind the
// shared listener), in the same run. Each twice: with the Retry-After: 1 the tests add to
// Pebble's answers, and as Pebble answers (no Retry-After: lego polls 5 s ± 50 % apart, as it
// would against Let's Encrypt, which sends none either).
//
//	go tool task bench -- certs    or    go test ./api -run '^$' -bench ACMEIssuance -benchtime 10x
func BenchmarkACMEIssuance(b *testing.B) {
	for _, variant := range []struct {
		name       string
		retryAfter bool
	}{{"retry-after=1", true}, {"pebble-as-is", false}} {
		b.Run(variant.name, func(b *testing.B) {
			e := apitest.NewWith(b, apitest.Options{Workers: &apitest.Workers{ACME: func(c *workers.ACMEConfig) {
				if !variant.retryAfter {
					c.Transport = apitest.PebbleTransport(b)
				}
			}}})
			dom := e.CreateDomain(b, nil)
			_, admin := e.User(b, dom, apitest.DomainAdmin)

			b.Run("mailplane", func(b *testing.B) {
				i := 0
				for b.Loop() {
					b.StopTimer()
					i++
					host := fmt.Sprintf("m%d-%s.%s", i, apitest.Unique(""), dom)
					r := e.Do(b, http.MethodPost, vhostsPath(dom), admin, map[string]any{"host": host})
					require.Equal(b, http.StatusCreated, r.Status, "%s", r.Body)
					b.StartTimer()
					r = e.Do(b, http.MethodPost, certPath(dom, host)+"/acme", admin, map[string]any{"chain": "long"})
					require.Equal(b, http.StatusAccepted, r.Status, "%s", r.Body)
					path := fmt.Sprintf("/api/v1/jobs/%v", r.JSON(b)["job"].(map[string]any)["id"])
					for {
						job := e.Do(b, http.MethodGet, path, admin, nil).JSON(b)
						if job["state"] == "succeeded" {
							break
						}
						require.Contains(b, []any{"queued", "running"}, job["state"], "%v", job)
						time.Sleep(5 * time.Millisecond)
					}
				}
				b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/issuance")
				// Where it went: from the request to the job's start (River's pick-up), and the
				// job itself (lego's order, verification, sealing, the outcome's transaction).
				var pickup, work float64
				require.NoError(b, e.Pool.QueryRow(b.Context(), `SELECT
					avg(extract(epoch FROM attempted_at - created_at)), avg(extract(epoch FROM finalized_at - attempted_at))
					FROM river_job WHERE kind = 'issue_certificate' AND state = 'completed'`).Scan(&pickup, &work))
				b.ReportMetric(pickup, "s/pickup")
				b.ReportMetric(work, "s/job")
			})

			b.Run("lego", func(b *testing.B) {
				cfg := apitest.ACMEConfig(b)
				if !variant.retryAfter {
					cfg.Transport = apitest.PebbleTransport(b)
				}
				key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
				require.NoError(b, err)
				user := &benchUser{key: key}
				lc := lego.NewConfig(user)
				lc.CADirURL = cfg.DirectoryURL
				lc.HTTPClient = &http.Client{Transport: cfg.Transport}
				lc.Certificate.KeyType = certcrypto.EC256
				lc.Certificate.Timeout = cfg.OrderTimeout
				client, err := lego.NewClient(lc)
				require.NoError(b, err)
				require.NoError(b, client.Challenge.SetHTTP01Provider(&workers.HTTPChallenges{DB: e.Pool}))
				user.reg, err = client.Registration.Register(registration.RegisterOptions{TermsOfServiceAgreed: true})
				require.NoError(b, err)
				i := 0
				for b.Loop() {
					i++
					_, err := client.Certificate.Obtain(certificate.ObtainRequest{
						Domains: []string{fmt.Sprintf("l%d-%s.%s", i, apitest.Unique(""), dom)}, Bundle: true})
					require.NoError(b, err)
				}
				b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/issuance")
			})
		})
	}
}
