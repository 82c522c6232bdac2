package main

// The outage run (-mode outage): one serve process under a paced mixed load while, one after
// another, PostgreSQL is restarted (a private cluster of the run's own: the machine's shared
// server is never touched), slapd is stopped (the dev stack's own, scripts/stack.sh stop/start),
// the SMTP sink is stopped (one the runner starts itself) and Pebble is cut off during an
// issuance (the runner's TCP proxy in front of the stack's Pebble stops accepting and drops
// its connections). Each outage is measured: requests refused while it lasted, and the time
// from the service's return until everything converged (every projection past the event
// store's head of that moment, every job of the load created before it finished). The same
// process serves throughout: it is never restarted. The checks after the load are the crash
// and failover runs' (checkAll).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/mail"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"mailplane/migrations/pgcluster"
)

// outageWorld is what the outage run owns besides the database and the directory base.
type outageWorld struct {
	cluster  *pgcluster.Cluster
	sink     *exec.Cmd
	sinkArgs []string
	mailDir  string
	proxy    *tcpProxy
	token    string
	names    []string // the projections (postgres.admin, postgres.gal, ldap)
}

// loadJobs are the kinds of job the load causes: a converged system has none of them left
// unfinished from before the service came back.
var loadJobs = []string{"send_email", "quota_warning", "remove_domain", "issue_certificate"}

// prepareOutage starts the private cluster (returns its admin URL), the SMTP sink and the
// Pebble proxy, and points the serve environment at them.
func (r *run) prepareOutage(cleanups *[]func()) (string, error) {
	w := &outageWorld{}
	r.out = w
	c, err := pgcluster.New(filepath.Join(r.dir, "pg"))
	if err != nil {
		return "", err
	}
	*cleanups = append(*cleanups, func() {
		if r.o.keep {
			_ = c.Stop()
			fmt.Printf("chaos outage: kept the stopped cluster in %s (port %d)\n", c.Dir, c.Port)
			return
		}
		c.Remove()
	})
	if err := c.Start(); err != nil {
		return "", err
	}
	w.cluster = c

	smtp, err := freeAddr()
	if err != nil {
		return "", err
	}
	api, err := freeAddr()
	if err != nil {
		return "", err
	}
	w.mailDir = filepath.Join(r.dir, "mail")
	w.sinkArgs = []string{"-smtp", smtp, "-http", api, "-dir", w.mailDir}
	if err := r.startSink(); err != nil {
		return "", err
	}
	*cleanups = append(*cleanups, r.stopSink)
	r.smtpAPI = "http://" + api

	dir, err := url.Parse(os.Getenv("MAILPLANE_ACME_DIRECTORY"))
	if err != nil || dir.Host == "" || os.Getenv("MAILPLANE_ACME_HTTP_PORT") == "" {
		return "", fmt.Errorf("MAILPLANE_ACME_DIRECTORY (%q) and MAILPLANE_ACME_HTTP_PORT must be set (the dev stack's Pebble)", os.Getenv("MAILPLANE_ACME_DIRECTORY"))
	}
	if w.proxy, err = newProxy(dir.Host); err != nil {
		return "", err
	}
	*cleanups = append(*cleanups, w.proxy.close)
	// Pebble builds its URLs from the Host header: through the proxy, every later request of
	// the issuance goes through it too.
	dir.Host = w.proxy.addr
	r.extraEnv = []string{"MAILPLANE_SMTP_ADDR=" + smtp, "MAILPLANE_ACME_DIRECTORY=" + dir.String(),
		"MAILPLANE_ACME_HTTP_ADDR=127.0.0.1:" + os.Getenv("MAILPLANE_ACME_HTTP_PORT")}
	return c.URL("postgres"), nil
}

func (r *run) startSink() error {
	cmd := exec.Command(filepath.Join(r.o.bin, "smtpsink"), r.out.sinkArgs...)
	f, err := os.OpenFile(filepath.Join(r.dir, "smtpsink.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return err
	}
	go func() { _ = cmd.Wait(); f.Close() }()
	r.out.sink = cmd
	return waitFor(context.Background(), 20*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", r.out.sinkArgs[1], 200*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

func (r *run) stopSink() {
	if r.out.sink == nil {
		return
	}
	_ = r.out.sink.Process.Signal(syscall.SIGTERM)
	deadline := time.Now().Add(10 * time.Second)
	for r.out.sink.ProcessState == nil && time.Now().Before(deadline) {
		if r.out.sink.Process.Signal(syscall.Signal(0)) != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = r.out.sink.Process.Kill()
	r.out.sink = nil
}

// outage runs the load and the outages of -outages one after another.
func (r *run) outage(ctx context.Context) error {
	s, err := r.newServer("a")
	if err != nil {
		return err
	}
	if err := s.startAndWait(ctx, "/readyz"); err != nil {
		return err
	}
	if r.out.token, err = r.login(s); err != nil {
		return err
	}
	if err := waitFor(ctx, 30*time.Second, func() bool {
		act, err := s.active()
		r.out.names = r.out.names[:0]
		for n, v := range act {
			if v {
				r.out.names = append(r.out.names, n)
			}
		}
		return err == nil && len(act) > 0 && len(r.out.names) == len(act)
	}); err != nil {
		return fmt.Errorf("serve a never ran every projection: %w", err)
	}
	sort.Strings(r.out.names)
	d, err := r.startDriver([]string{s.url()})
	if err != nil {
		return err
	}
	var driverErr error
	driverDone := false
	pause := func(dur time.Duration) {
		if driverDone {
			return
		}
		select {
		case driverErr = <-d.done:
			driverDone = true
		case <-time.After(dur):
		case <-ctx.Done():
		}
	}
	// Warm up: the domain, lists and accounts the load works on exist.
	for !driverDone && lines(d.journal) < 300 && ctx.Err() == nil {
		pause(200 * time.Millisecond)
	}
	for _, name := range strings.Split(r.o.outages, ",") {
		name = strings.TrimSpace(name)
		if driverDone {
			r.problem("the load ended before the %s outage (raise -n or lower -rate)", name)
		}
		var err error
		switch name {
		case "postgres":
			err = r.postgresOutage(ctx, s, d)
		case "slapd":
			err = r.slapdOutage(ctx, s, d)
		case "smtp":
			err = r.smtpOutage(ctx, s, d)
		case "pebble":
			err = r.pebbleOutage(ctx, s, d)
		default:
			err = fmt.Errorf("unknown outage %q (postgres, slapd, smtp, pebble)", name)
		}
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		pause(5 * time.Second)
	}
	if driverDone {
		r.problem("the load ended during the outages (raise -n or lower -rate): the last one ran without load")
	} else {
		driverErr = <-d.done
	}
	if driverErr != nil {
		return fmt.Errorf("load driver: %v", driverErr)
	}
	if s.runs != 1 || s.cmd == nil {
		r.problem("serve was started %d times: it should have served through every outage without a restart", s.runs)
	}
	select {
	case <-s.done:
		r.problem("serve exited during the outages (see %s)", s.logf.Name())
	default:
	}
	res := result(d.out.String())
	r.figure("commands", r.o.n)
	r.figure("rate", res["rate"])
	r.figure("no_answer", res["no_answer"])
	r.figure("p99_ms", res["p99_ms"])
	return r.checkAll(ctx, res, s)
}

// window sums up the journal's lines [from, to): answers by status, refusals (anything not
// 2xx), and the 2xx writes.
type window struct {
	byStatus map[string]int
	refused  int
	okWrites int
}

func journalWindow(path string, from, to int) window {
	w := window{byStatus: map[string]int{}}
	for _, e := range readJournal(path) {
		if e.line < from || e.line >= to {
			continue
		}
		w.byStatus[statusText(e.status)]++
		switch {
		case !ok2xx(e.status):
			w.refused++
		case e.kind != "usage":
			w.okWrites++
		}
	}
	return w
}

func (w window) String() string {
	var ks []string
	for k, v := range w.byStatus {
		ks = append(ks, fmt.Sprintf("%s:%d", strings.ReplaceAll(k, " ", "_"), v))
	}
	sort.Strings(ks)
	return strings.Join(ks, ",")
}

// head is the event store's last (transaction id, position).
func (r *run) head(ctx context.Context) (string, int64, error) {
	var tx string
	var pos int64
	err := r.pool.QueryRow(ctx, `SELECT transaction_id::text, position FROM events ORDER BY transaction_id DESC, position DESC LIMIT 1`).Scan(&tx, &pos)
	return tx, pos, err
}

// converged reports whether every projection named is past (tx, pos) and no job of kinds
// created before since is left unfinished; what is not, in the string.
func (r *run) converged(ctx context.Context, names []string, tx string, pos int64, kinds []string, since time.Time) (bool, string) {
	var behind []string
	rows, err := r.pool.Query(ctx, `SELECT name FROM projection_checkpoints WHERE name = ANY($1) AND (transaction_id, position) < ($2::xid8, $3)`, names, tx, pos)
	if err != nil {
		return false, err.Error()
	}
	for rows.Next() {
		var n string
		_ = rows.Scan(&n)
		behind = append(behind, n)
	}
	rows.Close()
	if len(behind) > 0 {
		return false, "behind: " + strings.Join(behind, ",")
	}
	var left int
	var what string
	if err := r.pool.QueryRow(ctx, `SELECT count(*), coalesce(string_agg(DISTINCT kind || ':' || state, ','), '') FROM river_job
		WHERE kind = ANY($1) AND created_at <= $2 AND state NOT IN ('completed', 'cancelled', 'discarded')`, kinds, since).Scan(&left, &what); err != nil {
		return false, err.Error()
	}
	if left > 0 {
		return false, fmt.Sprintf("%d jobs left (%s)", left, what)
	}
	return true, ""
}

// awaitConvergence waits (at most -settle) until converged and returns the time from up.
func (r *run) awaitConvergence(ctx context.Context, label string, names []string, up time.Time, extra func() (bool, string)) time.Duration {
	var tx string
	var pos int64
	if err := waitFor(ctx, r.o.settle, func() bool {
		var err error
		tx, pos, err = r.head(ctx)
		return err == nil
	}); err != nil {
		r.problem("%s: the event store did not answer after the outage: %v", label, err)
		return 0
	}
	var last string
	err := waitFor(ctx, r.o.settle, func() bool {
		ok, why := r.converged(ctx, names, tx, pos, loadJobs, up)
		if ok && extra != nil {
			ok, why = extra()
		}
		last = why
		return ok
	})
	took := time.Since(up)
	if err != nil {
		r.problem("%s: not converged %s after the service came back: %s", label, r.o.settle, last)
		return 0
	}
	r.logf("%s: converged %.2f s after the service came back", label, took.Seconds())
	return took
}

// apiRequest is a request to s with the run's token, a request id of its own (prefix-…) and
// body, when there is one, as JSON.
func (r *run) apiRequest(s *server, method, path, prefix string, body any) *http.Request {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, s.url()+path, rd)
	req.Header.Set("Authorization", "Bearer "+r.out.token)
	req.Header.Set("X-Request-Id", prefix+"-"+randomHex(6))
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req
}

// probe sends one request and checks a refusal is quick, 503, problem+json, with Retry-After.
func (r *run) probe(s *server, method, path string, body any) (int, string) {
	req := r.apiRequest(s, method, path, "probe", body)
	t0 := time.Now()
	resp, err := httpc.Do(req)
	took := time.Since(t0)
	if err != nil {
		return 0, fmt.Sprintf("%s %s: no answer after %s: %v", method, path, took.Round(time.Millisecond), err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var why []string
	if resp.StatusCode == http.StatusServiceUnavailable {
		if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
			why = append(why, "Content-Type "+ct)
		}
		if n, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || n <= 0 {
			why = append(why, fmt.Sprintf("Retry-After %q", resp.Header.Get("Retry-After")))
		}
	}
	if took > 5*time.Second {
		why = append(why, "answered after "+took.Round(time.Millisecond).String())
	}
	if len(why) > 0 {
		return resp.StatusCode, fmt.Sprintf("%s %s: %d %s: %.200s", method, path, resp.StatusCode, strings.Join(why, ", "), b)
	}
	return resp.StatusCode, ""
}

// postgresOutage: the private cluster stopped (fast shutdown, as a restart does), held down
// for -pg-down, started again. While away: /readyz and the probes answer 503 problem+json
// with Retry-After, quickly; no journalled request is answered 500 or left without an answer.
func (r *run) postgresOutage(ctx context.Context, s *server, d *driver) error {
	l0 := lines(d.journal)
	r.logf("postgres: stopping the private cluster (journal line %d)", l0)
	if err := r.out.cluster.Stop(); err != nil {
		return err
	}
	down := time.Now()
	var readyz503, probes503, bad int
	for n := 0; time.Since(down) < r.o.pgDown && ctx.Err() == nil; n++ {
		if code, _, err := get(s.url() + "/readyz"); err == nil && code == http.StatusServiceUnavailable {
			readyz503++
		} else {
			bad++
			r.problem("postgres away: /readyz answered %d (%v), want 503", code, err)
		}
		for _, p := range []struct {
			method, path string
			body         any
		}{
			{http.MethodGet, "/api/v1/domains/" + url.PathEscape(r.domain), nil},
			{http.MethodPost, "/api/v1/domains/" + url.PathEscape(r.domain) + "/accounts", map[string]any{"local_part": fmt.Sprintf("probe-%s-%d", randomHex(3), n)}},
		} {
			code, why := r.probe(s, p.method, p.path, p.body)
			if code == http.StatusServiceUnavailable && why == "" {
				probes503++
			} else {
				bad++
				r.problem("postgres away: %s", why+fmt.Sprintf(" (status %d, want a quick 503 problem+json with Retry-After)", code))
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	l1 := lines(d.journal)
	if err := r.out.cluster.Start(); err != nil {
		return err
	}
	up := time.Now()
	r.logf("postgres: started again after %.1f s away (journal line %d)", up.Sub(down).Seconds(), l1)
	conv := r.awaitConvergence(ctx, "postgres", r.out.names, up, func() (bool, string) {
		if code, _, err := get(s.url() + "/readyz"); err != nil || code != http.StatusOK {
			return false, fmt.Sprintf("/readyz %d %v", code, err)
		}
		// River runs again: a leader holds an unexpired term (it inserts the periodic jobs).
		if l, err := r.riverLeader(ctx); err != nil || l == "" {
			return false, fmt.Sprintf("no River leader (%v)", err)
		}
		return true, ""
	})
	w := journalWindow(d.journal, l0, lines(d.journal))
	for st, n := range w.byStatus {
		if st == "500" || st == "no answer" || st == "502" || st == "504" {
			r.problem("postgres outage: %d journalled requests answered %s (want 503 and a retry)", n, st)
		}
	}
	r.figure("pg_down_s", fmt.Sprintf("%.1f", up.Sub(down).Seconds()))
	r.figure("pg_readyz_503", readyz503)
	r.figure("pg_probes_503", probes503)
	r.figure("pg_probes_bad", bad)
	r.figure("pg_refused", w.refused)
	r.figure("pg_answers", w.String())
	r.figure("pg_converge_s", fmt.Sprintf("%.2f", conv.Seconds()))
	return nil
}

// slapdOutage: the stack's slapd stopped for -slapd-down. The API keeps taking writes; the
// LDAP projection retries and catches up once it is back (the final rebuild check compares).
func (r *run) slapdOutage(ctx context.Context, s *server, d *driver) error {
	l0 := lines(d.journal)
	r.logf("slapd: stopping the stack's slapd (journal line %d)", l0)
	if out, err := exec.CommandContext(ctx, r.o.stack, "stop", "slapd").CombinedOutput(); err != nil {
		return fmt.Errorf("stack.sh stop slapd: %w\n%s", err, out)
	}
	down := time.Now()
	var maxLag int64
	for end := down.Add(r.o.slapdDown); time.Now().Before(end) && ctx.Err() == nil; {
		if lag, err := r.lag(ctx, "ldap"); err == nil && lag > maxLag {
			maxLag = lag
		}
		time.Sleep(min(time.Second, time.Until(end)))
	}
	l1 := lines(d.journal)
	// The service is back when slapd accepts connections, which is before the start script
	// ends (it goes on to check the suffix's entries, seconds on a loaded machine): that
	// moment, not the script's end, is what the convergence is timed from, and the script
	// finishes meanwhile.
	answering := make(chan time.Time, 1)
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go func() {
		addr := ldapHostPort()
		for watchCtx.Err() == nil {
			if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
				c.Close()
				answering <- time.Now()
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	type result struct {
		out []byte
		err error
	}
	started := make(chan result, 1)
	go func() {
		out, err := exec.CommandContext(ctx, r.o.stack, "start", "slapd").CombinedOutput()
		started <- result{out, err}
	}()
	var up time.Time
	var script *result
	select {
	case up = <-answering:
	case res := <-started:
		script = &res
		if res.err != nil {
			return fmt.Errorf("stack.sh start slapd: %w\n%s", res.err, res.out)
		}
		select {
		case up = <-answering:
		case <-time.After(5 * time.Second):
			return errors.New("stack.sh start slapd ended, but slapd accepts no connection")
		}
	}
	r.logf("slapd: answering again after %.1f s away (journal line %d), the ldap projection %d events behind at most", up.Sub(down).Seconds(), l1, maxLag)
	conv := r.awaitConvergence(ctx, "slapd", []string{"ldap"}, up, nil)
	if script == nil {
		res := <-started
		if res.err != nil {
			return fmt.Errorf("stack.sh start slapd: %w\n%s", res.err, res.out)
		}
	}
	during := journalWindow(d.journal, l0, l1)
	if during.okWrites == 0 {
		r.problem("slapd away: no write was answered 2xx (the API should keep taking writes)")
	}
	if maxLag == 0 {
		r.problem("slapd away: the ldap projection never fell behind: the outage did not reach it")
	}
	r.figure("slapd_down_s", fmt.Sprintf("%.1f", up.Sub(down).Seconds()))
	r.figure("slapd_writes_ok_during", during.okWrites)
	r.figure("slapd_refused", during.refused)
	r.figure("slapd_answers", during.String())
	r.figure("slapd_ldap_lag_max", maxLag)
	r.figure("slapd_converge_s", fmt.Sprintf("%.2f", conv.Seconds()))
	return nil
}

// ldapHostPort is the host:port of MAILPLANE_LDAP_URL.
func ldapHostPort() string {
	u, err := url.Parse(os.Getenv("MAILPLANE_LDAP_URL"))
	if err != nil {
		return ""
	}
	return u.Host
}

func (r *run) lag(ctx context.Context, name string) (int64, error) {
	var n int64
	err := r.pool.QueryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM events e
		WHERE (e.transaction_id, e.position) > (SELECT transaction_id, position FROM projection_checkpoints WHERE name = $1) LIMIT 1000000) l`, name).Scan(&n)
	return n, err
}

// smtpOutage: the run's SMTP sink stopped for -smtp-down. Mail jobs fail and retry; once it
// is back every warning arrives exactly once (checkUsageAndMail, over the sink's files).
func (r *run) smtpOutage(ctx context.Context, s *server, d *driver) error {
	l0 := lines(d.journal)
	r.logf("smtp: stopping the sink (journal line %d)", l0)
	r.stopSink()
	down := time.Now()
	pauseCtx(ctx, r.o.smtpDown)
	var failed int
	if err := r.pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE kind = 'send_email' AND cardinality(errors) > 0 AND attempted_at >= $1`, down).Scan(&failed); err != nil {
		r.problem("smtp: river_job: %v", err)
	}
	l1 := lines(d.journal)
	if err := r.startSink(); err != nil {
		return err
	}
	up := time.Now()
	r.logf("smtp: sink started again after %.1f s away (journal line %d); %d mail jobs failed meanwhile", up.Sub(down).Seconds(), l1, failed)
	conv := r.awaitConvergence(ctx, "smtp", r.out.names, up, nil)
	if failed == 0 {
		r.problem("smtp away: no mail job failed: the outage did not reach a mail (no warning was due?)")
	}
	during := journalWindow(d.journal, l0, l1)
	r.figure("smtp_down_s", fmt.Sprintf("%.1f", up.Sub(down).Seconds()))
	r.figure("smtp_mail_jobs_failed", failed)
	r.figure("smtp_refused", during.refused)
	r.figure("smtp_converge_s", fmt.Sprintf("%.2f", conv.Seconds()))
	return nil
}

func pauseCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// pebbleOutage: a certificate requested for a virtual host of the load's domain; as soon as
// its job talks to Pebble the proxy cuts it off for -pebble-down. The job fails its attempts
// (recorded on the job), the certificate is not shown valid meanwhile, and once Pebble is
// reachable again a retry (or, if the job gave up with the failure recorded, a new request)
// issues it: valid, one CertificateIssued.
func (r *run) pebbleOutage(ctx context.Context, s *server, d *driver) error {
	host := "mail." + r.domain
	base := "/api/v1/domains/" + url.PathEscape(r.domain) + "/virtual-hosts"
	if code, b, err := r.apiDo(s, http.MethodPost, base, map[string]any{"host": host}); err != nil || code != http.StatusCreated {
		return fmt.Errorf("pebble: add virtual host %s: HTTP %d %v %.300s", host, code, err, b)
	}
	cert := base + "/" + url.PathEscape(host) + "/certificate"
	l0 := lines(d.journal)
	before := r.out.proxy.accepted.Load()
	job, err := r.requestACME(s, cert)
	if err != nil {
		return err
	}
	t0 := time.Now()
	if err := waitFor(ctx, 60*time.Second, func() bool { return r.out.proxy.accepted.Load() > before }); err != nil {
		return fmt.Errorf("pebble: the issuance job %s never reached Pebble: %w", job, err)
	}
	r.out.proxy.down()
	down := time.Now()
	r.logf("pebble: cut off %d ms after the job's first connection (job %s)", down.Sub(t0).Milliseconds(), job)
	var shownValid int
	for end := down.Add(r.o.pebbleDown); time.Now().Before(end) && ctx.Err() == nil; {
		if code, b, err := r.apiDo(s, http.MethodGet, cert, nil); err == nil && code == http.StatusOK {
			var c struct {
				Status string `json:"status"`
			}
			_ = json.Unmarshal(b, &c)
			if c.Status == "valid" {
				shownValid++
			}
		}
		time.Sleep(min(time.Second, time.Until(end)))
	}
	st, errs, _ := r.jobState(s, job)
	l1 := lines(d.journal)
	if err := r.out.proxy.up(); err != nil {
		return err
	}
	up := time.Now()
	r.logf("pebble: reachable again after %.1f s; job %s %s with %d recorded failure(s)", up.Sub(down).Seconds(), job, st, len(errs))
	if len(errs) == 0 {
		r.problem("pebble away: job %s (%s) recorded no failed attempt: the cut missed the issuance", job, st)
	}
	if shownValid > 0 {
		r.problem("pebble away: the certificate of %s was shown valid while its issuance could not finish", host)
	}
	rerequested := 0
	conv := r.awaitConvergence(ctx, "pebble", r.out.names, up, func() (bool, string) {
		st, _, err := r.jobState(s, job)
		if err != nil {
			return false, err.Error()
		}
		switch st {
		case "succeeded":
		case "failed", "cancelled":
			// It gave up with the failure recorded: a new request must succeed.
			if rerequested > 0 {
				return false, "the new request's job " + job + " " + st
			}
			rerequested++
			r.logf("pebble: job %s %s; requesting again", job, st)
			if j, err := r.requestACME(s, cert); err == nil {
				job = j
			}
			return false, "requested again"
		default:
			return false, "issuance job " + st
		}
		code, b, err := r.apiDo(s, http.MethodGet, cert, nil)
		var c struct {
			Status, Source string
		}
		_ = json.Unmarshal(b, &c)
		if err != nil || code != http.StatusOK || c.Status != "valid" || c.Source != "acme" {
			return false, fmt.Sprintf("certificate HTTP %d %s/%s", code, c.Source, c.Status)
		}
		return true, ""
	})
	var issued, failedEv int
	_ = r.pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE event_type = 'CertificateIssued'), count(*) FILTER (WHERE event_type = 'CertificateIssuanceFailed')
		FROM events WHERE domain = $1 AND data->>'host' = $2`, r.domain, host).Scan(&issued, &failedEv)
	if issued != 1 {
		r.problem("pebble: %d CertificateIssued events for %s, want 1", issued, host)
	}
	if failedEv != rerequested {
		r.problem("pebble: %d CertificateIssuanceFailed events for %s, but %d new requests", failedEv, host, rerequested)
	}
	_, errs, _ = r.jobState(s, job)
	during := journalWindow(d.journal, l0, l1)
	r.figure("pebble_down_s", fmt.Sprintf("%.1f", up.Sub(down).Seconds()))
	r.figure("pebble_cut_after_ms", down.Sub(t0).Milliseconds())
	r.figure("pebble_job_failures_recorded", len(errs))
	r.figure("pebble_rerequested", rerequested)
	r.figure("pebble_refused", during.refused)
	r.figure("pebble_converge_s", fmt.Sprintf("%.2f", conv.Seconds()))
	return nil
}

func (r *run) apiDo(s *server, method, path string, body any) (int, []byte, error) {
	req := r.apiRequest(s, method, path, "chaos", body)
	resp, err := httpc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func (r *run) requestACME(s *server, cert string) (string, error) {
	var code int
	var b []byte
	var err error
	for deadline := time.Now().Add(time.Minute); ; {
		code, b, err = r.apiDo(s, http.MethodPost, cert+"/acme", map[string]any{"chain": "long"})
		if (err == nil && code != http.StatusServiceUnavailable) || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if err != nil || code != http.StatusAccepted {
		return "", fmt.Errorf("pebble: request a certificate: HTTP %d %v %.300s", code, err, b)
	}
	var out struct {
		Job struct {
			ID json.Number `json:"id"`
		} `json:"job"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return "", fmt.Errorf("pebble: %w in %.300s", err, b)
	}
	return out.Job.ID.String(), nil
}

func (r *run) jobState(s *server, id string) (string, []string, error) {
	code, b, err := r.apiDo(s, http.MethodGet, "/api/v1/jobs/"+id, nil)
	if err != nil || code != http.StatusOK {
		return "", nil, fmt.Errorf("job %s: HTTP %d %v", id, code, err)
	}
	var j struct {
		State  string   `json:"state"`
		Errors []string `json:"errors"`
	}
	err = json.Unmarshal(b, &j)
	return j.State, j.Errors, err
}

// tcpProxy forwards loopback connections to target until down, which refuses new ones (the
// port closed) and cuts those open; up listens again on the same port.
type tcpProxy struct {
	target, addr string
	accepted     atomic.Int64
	mu           sync.Mutex
	ln           net.Listener
	conns        map[net.Conn]bool
}

func newProxy(target string) (*tcpProxy, error) {
	p := &tcpProxy{target: target, conns: map[net.Conn]bool{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	return p, nil
}

func (p *tcpProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.accepted.Add(1)
			go p.pipe(c)
		}
	}()
}

func (p *tcpProxy) pipe(c net.Conn) {
	t, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.ln == nil { // cut off meanwhile
		p.mu.Unlock()
		c.Close()
		t.Close()
		return
	}
	p.conns[c], p.conns[t] = true, true
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(t, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, t); done <- struct{}{} }()
	<-done
	c.Close()
	t.Close()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, t)
	p.mu.Unlock()
}

func (p *tcpProxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
}

func (p *tcpProxy) up() error {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		return err
	}
	p.serve(ln)
	return nil
}

func (p *tcpProxy) close() { p.down() }

// sinkMessages reads the warning mails the sink received: over its API, or, for the outage
// run's sink (restarted, so its memory starts empty), from the .eml files it wrote.
type sinkMessage struct {
	To      []string          `json:"to"`
	Subject string            `json:"subject"`
	Headers map[string]string `json:"headers"`
}

func (r *run) sinkMessages() ([]sinkMessage, error) {
	if r.out == nil {
		resp, err := httpc.Get(r.smtpAPI + "/messages")
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		var msgs []sinkMessage
		err = json.NewDecoder(resp.Body).Decode(&msgs)
		return msgs, err
	}
	files, err := filepath.Glob(filepath.Join(r.out.mailDir, "*.eml"))
	if err != nil {
		return nil, err
	}
	var msgs []sinkMessage
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		m, err := mail.ReadMessage(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		var to []string
		if list, err := m.Header.AddressList("To"); err == nil {
			for _, a := range list {
				to = append(to, a.Address)
			}
		}
		dec := new(mime.WordDecoder)
		subject, err := dec.DecodeHeader(m.Header.Get("Subject"))
		if err != nil {
			subject = m.Header.Get("Subject")
		}
		msgs = append(msgs, sinkMessage{To: to, Subject: subject, Headers: map[string]string{"Message-Id": m.Header.Get("Message-Id")}})
	}
	return msgs, nil
}
