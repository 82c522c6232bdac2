package api_test

import (
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"mailplane/api/apitest"
	"mailplane/commands"
	"mailplane/domain"
	"mailplane/eventstore"
	"mailplane/workers"
	"mailplane/workers/mailtest"
)

// waitJob polls the jobs API until the job reaches one of the final states and returns it.
func waitJob(t *testing.T, e *apitest.Env, token string, id any) map[string]any {
	t.Helper()
	path := fmt.Sprintf("/api/v1/jobs/%v", id)
	deadline := time.Now().Add(90 * time.Second)
	for {
		r := e.Do(t, http.MethodGet, path, token, nil)
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		job := r.JSON(t)
		switch job["state"] {
		case "succeeded", "failed", "cancelled":
			return job
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %v still %v after 90 s: %v", id, job["state"], job)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// requestACME asks for a certificate and returns the job's id from the 202.
func requestACME(t *testing.T, e *apitest.Env, token, dom, host, chain string) float64 {
	t.Helper()
	r := e.Do(t, http.MethodPost, certPath(dom, host)+"/acme", token, map[string]any{"chain": chain})
	require.Equal(t, http.StatusAccepted, r.Status, "%s", r.Body)
	job := r.JSON(t)["job"].(map[string]any)
	require.Equal(t, "issue_certificate", job["kind"])
	require.Equal(t, fmt.Sprintf("/api/v1/jobs/%v", job["id"]), r.Header.Get("Location"))
	return job["id"].(float64)
}

func status(t *testing.T, e *apitest.Env, token, dom, host string) map[string]any {
	t.Helper()
	r := e.Do(t, http.MethodGet, certPath(dom, host), token, nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	return r.JSON(t)
}

func parseTime(t *testing.T, v any) time.Time {
	t.Helper()
	ts, err := time.Parse(time.RFC3339Nano, v.(string))
	require.NoError(t, err)
	return ts
}

// A certificate issued end to end against Pebble with real HTTP-01 validation (Pebble fetches
// the challenge from mailplane's listener), for the long and the short chain: installed, its
// status and renewal due date shown, served over TLS and verified against Pebble's root for the
// host's name, and the success e-mail sent with its expiry and what to do next.
func TestACMEIssuesAndServes(t *testing.T) {
	t.Parallel()
	e := apitest.NewWith(t, apitest.Options{Workers: &apitest.Workers{}})
	dom := e.CreateDomain(t, nil)
	adminAddr, admin := e.User(t, dom, apitest.DomainAdmin)
	for _, tc := range []struct {
		host, chain string
		root        int
	}{{"mail." + dom, "long", 0}, {"webmail." + dom, "short", 1}} {
		t.Run(tc.chain, func(t *testing.T) {
			addHost(t, e, admin, dom, tc.host)
			key := apitest.Unique("acme-")
			first := e.Do(t, http.MethodPost, certPath(dom, tc.host)+"/acme", admin, map[string]any{"chain": tc.chain}, "Idempotency-Key", key)
			require.Equal(t, http.StatusAccepted, first.Status, "%s", first.Body)
			id := first.JSON(t)["job"].(map[string]any)["id"]
			if tc.chain == "long" {
				// A repeat is the first answer; another request waits for the first (which
				// takes Pebble half a second at least).
				again := e.Do(t, http.MethodPost, certPath(dom, tc.host)+"/acme", admin, map[string]any{"chain": tc.chain}, "Idempotency-Key", key)
				require.Equal(t, http.StatusAccepted, again.Status, "%s", again.Body)
				require.Equal(t, "true", again.Header.Get("Idempotent-Replayed"))
				require.Equal(t, id, again.JSON(t)["job"].(map[string]any)["id"])
				p := e.Do(t, http.MethodPost, certPath(dom, tc.host)+"/acme", admin, map[string]any{"chain": "long"}).Problem(t, http.StatusConflict)
				require.Contains(t, p["detail"], "being issued")
				// Pending, unless the job has already ended by now (the suite on 2 CPUs can
				// take longer over the three requests above than Pebble takes to issue).
				if iss, ok := status(t, e, admin, dom, tc.host)["issuance"].(map[string]any); ok {
					require.Equal(t, "pending", iss["state"])
				} else {
					require.Equal(t, "valid", status(t, e, admin, dom, tc.host)["status"], "no issuance shown: the job has ended")
				}
				require.Equal(t, []string{"chain"}, e.Do(t, http.MethodPost, certPath(dom, tc.host)+"/acme", admin,
					map[string]any{"chain": "medium"}).FieldErrors(t))
			}
			job := waitJob(t, e, admin, id)
			require.Equal(t, "succeeded", job["state"], "%v", job)

			c := status(t, e, admin, dom, tc.host)
			require.Equal(t, "acme", c["source"])
			require.Equal(t, "valid", c["status"])
			require.Nil(t, c["issuance"])
			require.True(t, strings.HasPrefix(c["issuer"].(string), "CN=Pebble Intermediate CA"), c["issuer"])
			require.Equal(t, float64(1), c["chain_length"])
			root := apitest.PebbleRoot(t, tc.root)
			require.Equal(t, root.Subject.String(), c["chain_root"], "chain %s ends at Pebble's root %d", tc.chain, tc.root)
			notAfter := parseTime(t, c["not_after"])
			require.WithinDuration(t, time.Now().Add(90*24*time.Hour), notAfter, time.Hour, "the stack's Pebble issues for 90 days")
			require.Equal(t, notAfter.Add(-30*24*time.Hour), parseTime(t, c["renewal_due_at"]))

			leaf := serveTLS(t, e, tc.host, root)
			require.Equal(t, []string{tc.host}, leaf.DNSNames)
			other := apitest.PebbleRoot(t, 1-tc.root)
			_, err := leaf.Verify(x509.VerifyOptions{Roots: pool(other), Intermediates: intermediates(t, e, tc.host), DNSName: tc.host})
			require.Error(t, err, "the %s chain does not lead to the other root", tc.chain)

			msgs := mailtest.WaitFor(t, adminAddr, map[string]int{"long": 1, "short": 2}[tc.chain], 30*time.Second)
			m := lastWithSubject(t, msgs, tc.host)
			require.Equal(t, fmt.Sprintf("Certificate for %s issued, expires %s", tc.host, notAfter.UTC().Format("2006-01-02")), m.Subject)
			require.Contains(t, m.Body, "Expires:    "+notAfter.UTC().Format("2006-01-02 15:04"))
			require.Contains(t, m.Body, "What to do next")
			require.Contains(t, m.Body, "/certificate/download")
			for _, h := range []string{"From", "To", "Subject", "Date", "Message-Id"} {
				require.NotEmpty(t, m.Headers[h], "header %s", h)
			}
			require.Equal(t, adminAddr, m.Headers["To"], "to whoever asked (the contact only gets renewals)")
		})
	}
	// The outcome is an event; its key is sealed. So is the mail job's: MailSent on the same stream.
	var n int
	require.NoError(t, e.Pool.QueryRow(t.Context(), `SELECT count(*) FROM events WHERE domain = $1 AND event_type = 'CertificateIssued'
		AND data->>'private_key_secret' LIKE 'mpenc:v1:%'`, dom).Scan(&n))
	require.Equal(t, 2, n)
	require.Equal(t, 2, mailsRecorded(t, e, dom))
}

// mailsRecorded counts the MailSent events of a domain, once the send_email jobs are done.
func mailsRecorded(t *testing.T, e *apitest.Env, dom string) int {
	t.Helper()
	var n int
	require.Eventually(t, func() bool {
		var open int
		require.NoError(t, e.Pool.QueryRow(t.Context(), `SELECT count(*) FROM river_job WHERE kind = 'send_email' AND finalized_at IS NULL`).Scan(&open))
		require.NoError(t, e.Pool.QueryRow(t.Context(), `SELECT count(*) FROM events WHERE domain = $1 AND event_type = 'MailSent'`, dom).Scan(&n))
		return open == 0
	}, 30*time.Second, 20*time.Millisecond)
	return n
}

func pool(certs ...*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}

// intermediates returns the CA certificates installed for host.
func intermediates(t *testing.T, e *apitest.Env, host string) *x509.CertPool {
	c, err := e.Commands.TLSCertificate(t.Context(), host)
	require.NoError(t, err)
	p := x509.NewCertPool()
	for _, der := range c.Certificate[1:] {
		ic, err := x509.ParseCertificate(der)
		require.NoError(t, err)
		p.AddCert(ic)
	}
	return p
}

func lastWithSubject(t *testing.T, msgs []mailtest.Message, substr string) mailtest.Message {
	t.Helper()
	for i := len(msgs) - 1; i >= 0; i-- {
		if strings.Contains(msgs[i].Subject, substr) {
			return msgs[i]
		}
	}
	t.Fatalf("no message about %s among %d", substr, len(msgs))
	return mailtest.Message{}
}

// A validation that fails (the host's A record points where nothing answers) records the
// failure, fails the job without retrying it, and mails each error with what to fix. After
// three failures within the hour the next request is refused with 429 and retry_after, from
// the recorded events (a fresh command service refuses it too).
func TestACMEFailureMailAndRateLimit(t *testing.T) {
	t.Parallel()
	e := apitest.NewWith(t, apitest.Options{Workers: &apitest.Workers{}})
	dom := e.CreateDomain(t, nil)
	adminAddr, admin := e.User(t, dom, apitest.DomainAdmin)
	host := "mail." + dom
	addHost(t, e, admin, dom, host)
	apitest.SetA(t, host, "127.0.0.2") // mailplane listens on 127.0.0.1 only

	for i := 1; i <= domain.MaxIssuanceFailures; i++ {
		job := waitJob(t, e, admin, requestACME(t, e, admin, dom, host, "long"))
		require.Equal(t, "failed", job["state"], "%v", job)
		errs := job["errors"].([]any)
		require.Len(t, errs, 1, "a refused validation is not retried")
		require.Contains(t, errs[0], "connection refused")
		require.NotContains(t, errs[0], "JobCancelError")

		msgs := mailtest.WaitFor(t, adminAddr, i, 30*time.Second)
		m := msgs[len(msgs)-1]
		require.Equal(t, "Certificate for "+host+" could not be issued", m.Subject)
		require.Contains(t, m.Body, "The CA could not connect to "+host)
		require.Contains(t, m.Body, "Fix: make sure "+host+" has an A record")
		require.Contains(t, m.Body, "dial tcp 127.0.0.2:", "the CA's own words")
		require.Contains(t, m.Body, "After 3 failures")
	}
	c := status(t, e, admin, dom, host)
	require.Equal(t, "none", c["status"])
	require.Equal(t, float64(3), c["failures_last_hour"])
	require.Greater(t, c["retry_after"], float64(3500))
	require.Contains(t, c["last_failure"].(map[string]any)["errors"].([]any)[0], "urn:ietf:params:acme:error:connection")

	r := e.Do(t, http.MethodPost, certPath(dom, host)+"/acme", admin, map[string]any{"chain": "long"})
	p := r.Problem(t, http.StatusTooManyRequests)
	require.Equal(t, "/problems/rate-limited", p["type"])
	wait := p["retry_after"].(float64)
	require.InDelta(t, 3600, wait, 120)
	require.Equal(t, fmt.Sprint(int(wait)), r.Header.Get("Retry-After"))

	// Counted from the stream, not from memory: a service started afresh refuses too.
	fresh, err := commands.New(commands.Deps{Pool: e.Pool, Store: e.Store, Keyring: e.Keyring,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Hasher: commands.NewHasher(apitest.TestArgon2, 0),
		Jobs: workers.Queue{Inserter: e.Jobs}})
	require.NoError(t, err)
	_, err = fresh.RequestCertificate(t.Context(), commands.Request{Meta: eventstore.Metadata{Actor: adminAddr}}, dom, host, "long")
	var later *domain.RetryLaterError
	require.ErrorAs(t, err, &later)

	// An hour later (by the clock the decision is given), it is accepted again.
	later2, err := commands.New(commands.Deps{Pool: e.Pool, Store: e.Store, Keyring: e.Keyring,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Hasher: commands.NewHasher(apitest.TestArgon2, 0),
		Jobs: workers.Queue{Inserter: e.Jobs}, Now: func() time.Time { return time.Now().Add(time.Hour) }})
	require.NoError(t, err)
	out, err := later2.RequestCertificate(t.Context(), commands.Request{Meta: eventstore.Metadata{Actor: adminAddr}}, dom, host, "long")
	require.NoError(t, err)
	require.NotZero(t, out.JobID)
}

// clock is a settable clock for the commands, the API and the renewal job.
type clock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

// Set moves the clock to t (it goes on ticking from there).
func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset = time.Until(t)
}

// runRenewal runs the renewal job once and waits for it.
func runRenewal(t *testing.T, e *apitest.Env) {
	t.Helper()
	ctx := t.Context()
	res, err := e.Jobs.Insert(ctx, workers.RenewCertificatesArgs{}, nil)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		var state string
		require.NoError(t, e.Pool.QueryRow(ctx, `SELECT state FROM river_job WHERE id = $1`, res.Job.ID).Scan(&state))
		return state == "completed"
	}, 30*time.Second, 20*time.Millisecond)
}

// issuanceJobs counts the issue_certificate jobs of a host and waits until none is unfinished.
func issuanceJobs(t *testing.T, e *apitest.Env, host string) int {
	t.Helper()
	var n int
	require.Eventually(t, func() bool {
		var open int
		require.NoError(t, e.Pool.QueryRow(t.Context(), `SELECT count(*), count(*) FILTER (WHERE finalized_at IS NULL)
			FROM river_job WHERE kind = 'issue_certificate' AND args->>'host' = $1`, host).Scan(&n, &open))
		return open == 0
	}, 60*time.Second, 20*time.Millisecond)
	return n
}

// Renewal with an injected clock: nothing before the due date; on it the renewal job renews the
// ACME certificate through Pebble and mails the outcome; a failing renewal is mailed, backs off
// (nothing an hour later, a new attempt after), warns again only as expiry nears (a week left),
// and a later success starts over.
func TestACMERenewal(t *testing.T) {
	t.Parallel()
	clk := &clock{}
	// Orders ask Pebble for 90 days from the injected clock (it honours notAfter; Let's
	// Encrypt would refuse it), so that a renewed certificate is due 60 days after the clock,
	// not after the wall clock.
	e := apitest.NewWith(t, apitest.Options{Now: clk.Now, Workers: &apitest.Workers{
		ACME: func(c *workers.ACMEConfig) { c.Lifetime = 90 * 24 * time.Hour }}})
	startupRunDone(t, e, "renew_certificates")
	dom := e.CreateDomain(t, nil)
	adminAddr, admin := e.User(t, dom, apitest.DomainAdmin)
	host := "mail." + dom
	addHost(t, e, admin, dom, host)
	require.Equal(t, "succeeded", waitJob(t, e, admin, requestACME(t, e, admin, dom, host, "short"))["state"])
	first := status(t, e, admin, dom, host)
	due := parseTime(t, first["renewal_due_at"])
	mailtest.WaitFor(t, adminAddr, 1, 30*time.Second)

	login := func() string { return e.Login(t, adminAddr, "user-password-1") } // sessions expire as the clock moves

	clk.Set(due.Add(-time.Hour))
	runRenewal(t, e)
	require.Equal(t, 1, issuanceJobs(t, e, host), "not due yet")

	clk.Set(due.Add(time.Minute))
	admin = login()
	require.Equal(t, "renewal_due", status(t, e, admin, dom, host)["status"])
	runRenewal(t, e)
	require.Equal(t, 2, issuanceJobs(t, e, host))
	renewed := status(t, e, admin, dom, host)
	require.Equal(t, "valid", renewed["status"])
	require.NotEqual(t, first["serial"], renewed["serial"])
	require.Equal(t, apitest.PebbleRoot(t, 1).Subject.String(), renewed["chain_root"], "a renewal keeps the chain asked for")
	msgs := mailtest.WaitFor(t, adminAddr, 2, 30*time.Second)
	require.True(t, strings.HasPrefix(msgs[1].Subject, "Certificate for "+host+" renewed, expires "), msgs[1].Subject)
	require.Contains(t, msgs[1].Headers["To"], apitest.CertificateContact, "the operator gets renewals too")
	runRenewal(t, e)
	require.Equal(t, 2, issuanceJobs(t, e, host), "the new certificate is not due")

	// Now renewals fail: the host's A record points where nothing answers. The CA must validate
	// again, so the account that holds a valid authorization of the host goes: Pebble reuses one
	// for a new order 1 time in 100 even with PEBBLE_AUTHZREUSE=0 (its test is
	// rand.Intn(100) > percent), which let the renewal below succeed once in CI. The next
	// issuance registers a new account.
	_, err := e.Pool.Exec(t.Context(), `DELETE FROM acme_accounts`)
	require.NoError(t, err)
	apitest.SetA(t, host, "127.0.0.2")
	due2 := parseTime(t, renewed["renewal_due_at"])
	expiry2 := parseTime(t, renewed["not_after"])
	clk.Set(due2)
	admin = login()
	runRenewal(t, e)
	require.Equal(t, 3, issuanceJobs(t, e, host))
	c := status(t, e, admin, dom, host)
	require.Equal(t, float64(1), c["renewal_failures"])
	next := parseTime(t, c["next_renewal_attempt_at"])
	require.WithinDuration(t, due2.Add(time.Hour), next, time.Minute)
	require.Equal(t, renewed["serial"], c["serial"], "the current certificate keeps serving")
	msgs = mailtest.WaitFor(t, adminAddr, 3, 30*time.Second)
	require.Equal(t, fmt.Sprintf("Certificate of %s could not be renewed (expires in 29 days)", host), msgs[2].Subject)
	require.Contains(t, msgs[2].Body, "keeps serving until it expires")
	require.Contains(t, msgs[2].Body, "tries again at")

	clk.Set(due2.Add(30 * time.Minute))
	runRenewal(t, e)
	require.Equal(t, 3, issuanceJobs(t, e, host), "backing off")
	clk.Set(due2.Add(61 * time.Minute))
	runRenewal(t, e)
	require.Equal(t, 4, issuanceJobs(t, e, host), "tried again after the backoff")
	admin = login()
	require.Equal(t, float64(2), status(t, e, admin, dom, host)["renewal_failures"])

	clk.Set(expiry2.Add(-6 * 24 * time.Hour))
	runRenewal(t, e)
	require.Equal(t, 5, issuanceJobs(t, e, host))
	msgs = mailtest.WaitFor(t, adminAddr, 4, 30*time.Second)
	require.Len(t, msgs, 4, "the second failure, at 29 days left, warned no one")
	require.Equal(t, fmt.Sprintf("URGENT: the certificate of %s expires in 5 days and could not be renewed", host), msgs[3].Subject)

	// Fixed: the next attempt renews and starts over.
	challtestClear(t, host)
	clk.Set(expiry2.Add(-5 * 24 * time.Hour))
	runRenewal(t, e)
	require.Equal(t, 6, issuanceJobs(t, e, host))
	admin = login()
	c = status(t, e, admin, dom, host)
	require.Equal(t, float64(0), c["renewal_failures"])
	require.Nil(t, c["last_failure"])
	require.NotEqual(t, renewed["serial"], c["serial"])
	msgs = mailtest.WaitFor(t, adminAddr, 5, 30*time.Second)
	require.Contains(t, msgs[4].Subject, "renewed")
}

// challtestClear removes host's A record (SetA's cleanup does so too; clearing twice is fine).
func challtestClear(t *testing.T, host string) {
	apitest.SetA(t, host, "127.0.0.1")
}

// A certificate e-mail whose SMTP relay is down is retried with backoff and, once the relay is
// back, arrives exactly once.
func TestCertificateMailSurvivesSMTPOutage(t *testing.T) {
	t.Parallel()
	// A port with nothing behind it, which later forwards to the sink.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	relay := ln.Addr().String()
	require.NoError(t, ln.Close())

	e := apitest.NewWith(t, apitest.Options{Workers: &apitest.Workers{SMTPAddr: relay}})
	dom := e.CreateDomain(t, nil)
	adminAddr, admin := e.User(t, dom, apitest.DomainAdmin)
	host := "mail." + dom
	addHost(t, e, admin, dom, host)
	apitest.SetA(t, host, "127.0.0.2")
	require.Equal(t, "failed", waitJob(t, e, admin, requestACME(t, e, admin, dom, host, "long"))["state"])

	var mailJob int64
	require.Eventually(t, func() bool {
		var errs int
		err := e.Pool.QueryRow(t.Context(), `SELECT id, coalesce(array_length(errors, 1), 0) FROM river_job WHERE kind = 'send_email'`).Scan(&mailJob, &errs)
		return err == nil && errs >= 1
	}, 30*time.Second, 20*time.Millisecond, "the first attempt fails: nothing listens")
	job := e.Do(t, http.MethodGet, fmt.Sprintf("/api/v1/jobs/%d", mailJob), admin, nil).JSON(t)
	require.Equal(t, "retrying", job["state"])
	require.Contains(t, job["errors"].([]any)[0], "connection refused")
	require.Empty(t, mailtest.To(t, adminAddr))

	// The relay comes back.
	forward(t, relay, mailtest.SMTPAddr(t))
	msgs := mailtest.WaitFor(t, adminAddr, 1, 60*time.Second)
	require.Equal(t, "Certificate for "+host+" could not be issued", msgs[0].Subject)
	require.Equal(t, "succeeded", waitJob(t, e, admin, mailJob)["state"])
	time.Sleep(2 * time.Second)
	require.Len(t, mailtest.To(t, adminAddr), 1, "exactly once")
	require.Equal(t, 1, mailsRecorded(t, e, dom), "and recorded once")
	job = e.Do(t, http.MethodGet, fmt.Sprintf("/api/v1/jobs/%d", mailJob), admin, nil).JSON(t)
	require.Len(t, job["errors"], 1, "one failed attempt, then the one that went through")
}

// forward accepts on addr and pipes each connection to target, until the test ends.
func forward(t *testing.T, addr, target string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				u, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer u.Close()
				done := make(chan struct{}, 2)
				go func() { _, _ = io.Copy(u, c); done <- struct{}{} }()
				go func() { _, _ = io.Copy(c, u); done <- struct{}{} }()
				<-done
			}()
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
}
