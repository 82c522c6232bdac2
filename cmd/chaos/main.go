// Command chaos runs issue 13's faults against real `mailplane serve` processes on a database
// and a directory base of its own, and fails loudly, naming what is wrong:
//
//   - crash: the load driver's mixed mode (cmd/loaddriver -mode mixed) against one serve, killed
//     with SIGKILL at random moments (-kills times) and restarted each time;
//   - failover: two serve processes on one database behind the same load (the driver spreads its
//     requests round-robin); SIGKILL of the one holding the projections and the River leader, and
//     the time until the other holds them all (at most -failover-bound);
//   - outage: one serve under a paced load while PostgreSQL (a private cluster) is restarted,
//     slapd and the SMTP sink are stopped and Pebble is cut off during an issuance, one after
//     another, each measured (outage.go).
//
// After each run: every request answered 2xx is in the event store (its request id in
// events.metadata) — or, for usage reports, which append no events, in mailbox_usage; no
// request answered with an error appended anything, and none without an answer is half
// applied (a request id's events are one append: one transaction, and the same event types as
// the 2xx requests of its kind); every warning line crossed has its QuotaWarningSent event and
// exactly one mail (one Message-ID) in the SMTP sink; the domain removal's job completed and
// the domain is gone; the read models' versions equal the events' count per stream; `mailplane
// verify` passes (with --read-models when this build has it); `mailplane rebuild ldap` finds
// nothing to change.
//
// It is run by scripts/chaos.sh (go tool task chaos), which builds the binaries and loads the
// dev stack's environment. Loopback only; bounded by -n, -kills and the timeouts below.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

type options struct {
	bin           string
	n, c, kills   int
	mode          string
	work          string
	keep          bool
	failoverBound time.Duration
	settle        time.Duration
	allowResent   bool
	// The outage run's.
	stack                                   string
	rate                                    float64
	outages                                 string
	pgDown, slapdDown, smtpDown, pebbleDown time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.bin, "bin", "bin", "directory holding the mailplane and loaddriver binaries")
	flag.IntVar(&o.n, "n", 20000, "mixed commands the load driver sends (per run)")
	flag.IntVar(&o.c, "c", 8, "the driver's concurrent clients")
	flag.IntVar(&o.kills, "kills", 5, "crash run: SIGKILLs of the server (at random points of the load)")
	flag.StringVar(&o.mode, "mode", "crash,failover", "runs: crash, failover, or both (comma-separated)")
	flag.StringVar(&o.work, "work", "", "directory for logs and journals (default: a new one under /tmp)")
	flag.BoolVar(&o.keep, "keep", false, "keep the database and the directory base afterwards (to look at them)")
	flag.DurationVar(&o.failoverBound, "failover-bound", 10*time.Second, "failover run: the longest acceptable time from the kill until the other process holds every projection and the River leader")
	flag.DurationVar(&o.settle, "settle", 5*time.Minute, "after the load: how long to wait for the projections and the jobs to finish")
	flag.BoolVar(&o.allowResent, "allow-resent-mail", false, "accept a warning mail that reached the sink twice under one Message-ID (sent, then killed before it was recorded): at-least-once instead of exactly once")
	flag.StringVar(&o.stack, "stack", "scripts/stack.sh", "outage run: the dev stack's script (stop and start slapd)")
	flag.Float64Var(&o.rate, "rate", 12, "outage run: the load's pace in commands/s (the crash and failover runs go as fast as they can)")
	flag.StringVar(&o.outages, "outages", "postgres,slapd,smtp,pebble", "outage run: the outages, in this order")
	flag.DurationVar(&o.pgDown, "pg-down", 15*time.Second, "outage run: how long PostgreSQL stays stopped")
	flag.DurationVar(&o.slapdDown, "slapd-down", 60*time.Second, "outage run: how long slapd stays stopped")
	flag.DurationVar(&o.smtpDown, "smtp-down", 60*time.Second, "outage run: how long the SMTP sink stays stopped")
	flag.DurationVar(&o.pebbleDown, "pebble-down", 30*time.Second, "outage run: how long Pebble stays unreachable during the issuance")
	flag.Parse()
	nSet := false
	flag.Visit(func(f *flag.Flag) { nSet = nSet || f.Name == "n" })
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	failed := false
	for _, m := range strings.Split(o.mode, ",") {
		om := o
		if strings.TrimSpace(m) == "outage" && !nSet {
			om.n = 6000 // about 8 minutes at -rate 12: the four outages and their convergence fit
		}
		if err := runOne(ctx, om, strings.TrimSpace(m)); err != nil {
			fmt.Fprintf(os.Stderr, "chaos %s: FAILED: %v\n", m, err)
			failed = true
		}
	}
	if failed {
		os.Exit(1)
	}
}

// run is one chaos run's world: its database, directory base, processes and findings.
type run struct {
	o        options
	mode     string
	dir      string
	dbURL    string
	dbName   string
	base     string
	env      []string
	admin    string
	password string
	domain   string
	prefix   string
	pool     *pgxpool.Pool
	servers  []*server
	driver   *exec.Cmd
	smtpAPI  string       // the SMTP sink's API (its messages)
	extraEnv []string     // the outage run's changes to serve's environment
	out      *outageWorld // the outage run's services; nil in the others
	problems []string
	figures  []string
}

func (r *run) problem(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.problems = append(r.problems, msg)
	fmt.Printf("chaos %s: PROBLEM: %s\n", r.mode, msg)
}

func (r *run) figure(k string, v any) {
	r.figures = append(r.figures, fmt.Sprintf("%s=%v", k, v))
}

func (r *run) logf(format string, args ...any) {
	fmt.Printf("chaos %s: %s %s\n", r.mode, time.Now().UTC().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

func runOne(ctx context.Context, o options, mode string) error {
	if mode != "crash" && mode != "failover" && mode != "outage" {
		return fmt.Errorf("unknown mode %q (crash, failover, outage)", mode)
	}
	id := randomHex(4)
	r := &run{o: o, mode: mode, prefix: "c" + id + "-", domain: "chaos-" + id + ".test", admin: "admin@chaos-" + id + ".test", password: randomHex(12)}
	r.dir = o.work
	if r.dir == "" {
		r.dir = filepath.Join(os.TempDir(), "mailplane-chaos-"+id)
	}
	r.dir = filepath.Join(r.dir, mode)
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		return err
	}
	cleanup, err := r.prepare(ctx, id)
	if err != nil {
		return err
	}
	defer func() {
		if r.driver != nil && r.driver.ProcessState == nil {
			_ = r.driver.Process.Kill()
		}
		for _, s := range r.servers {
			s.kill()
		}
		if !o.keep {
			cleanup()
		}
	}()
	r.logf("database %s, directory base %s, logs in %s", r.dbName, r.base, r.dir)
	switch mode {
	case "crash":
		err = r.crash(ctx)
	case "failover":
		err = r.failover(ctx)
	case "outage":
		err = r.outage(ctx)
	}
	if err != nil {
		return err
	}
	fmt.Printf("CHAOS mode=%s %s\n", mode, strings.Join(r.figures, " "))
	if len(r.problems) > 0 {
		return fmt.Errorf("%d problem(s):\n  %s", len(r.problems), strings.Join(r.problems, "\n  "))
	}
	fmt.Printf("chaos %s: every check passed\n", mode)
	return nil
}

// prepare makes the run's database and directory base, migrates and bootstraps the admin.
func (r *run) prepare(ctx context.Context, id string) (func(), error) {
	base := os.Getenv("DATABASE_URL")
	ldapURL, suffix := os.Getenv("MAILPLANE_LDAP_URL"), os.Getenv("MAILPLANE_LDAP_BASE_DN")
	if base == "" || ldapURL == "" || suffix == "" || os.Getenv("MAILPLANE_SMTP_API") == "" {
		return nil, errors.New("DATABASE_URL, MAILPLANE_LDAP_URL, MAILPLANE_LDAP_BASE_DN and MAILPLANE_SMTP_API must be set: run through scripts/chaos.sh, which loads the dev stack's environment")
	}
	r.smtpAPI = os.Getenv("MAILPLANE_SMTP_API")
	var cleanups []func()
	cleanup := func() {
		for _, f := range slices.Backward(cleanups) {
			f()
		}
	}
	if r.mode == "outage" {
		// The database on a cluster of the run's own, which it restarts; its own SMTP sink,
		// which it stops; a proxy in front of Pebble, which it cuts.
		var err error
		if base, err = r.prepareOutage(&cleanups); err != nil {
			cleanup()
			return nil, err
		}
	}
	u, err := url.Parse(base)
	if err != nil {
		cleanup()
		return nil, err
	}
	r.dbName = "mailplane_chaos_" + id + "_" + r.mode
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		cleanup()
		return nil, err
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+r.dbName); err != nil {
		cleanup()
		return nil, err
	}
	u.Path = "/" + r.dbName
	r.dbURL = u.String()
	cleanups = append(cleanups, func() {
		c, err := pgx.Connect(context.Background(), base)
		if err == nil {
			_, _ = c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+r.dbName+" WITH (FORCE)")
			c.Close(context.Background())
		}
	})

	conn, err := r.ldapAdmin()
	if err != nil {
		cleanup()
		return nil, err
	}
	defer conn.Close()
	ou := "chaos-" + id + "-" + r.mode
	r.base = "ou=" + ou + "," + suffix
	add := func(dn, name string) error {
		req := ldap.NewAddRequest(dn, nil)
		req.Attribute("objectClass", []string{"organizationalUnit"})
		req.Attribute("ou", []string{name})
		return conn.Add(req)
	}
	if err := add(r.base, ou); err != nil {
		cleanup()
		return nil, fmt.Errorf("ldap: add %s: %w", r.base, err)
	}
	cleanups = append(cleanups, func() { r.deleteBase() })
	for _, c := range []string{"domains", "accounts", "lists", "resources", "projections"} {
		if err := add("ou="+c+","+r.base, c); err != nil {
			cleanup()
			return nil, fmt.Errorf("ldap: add ou=%s: %w", c, err)
		}
	}

	r.env = append(os.Environ(), "DATABASE_URL="+r.dbURL, "MAILPLANE_LDAP_BASE_DN="+r.base, "MAILPLANE_POLICY_ADDR=off",
		"MAILPLANE_ACME_HTTP_ADDR=", "MAILPLANE_LOG_FORMAT=text",
		// A job whose process was killed while it ran is handed on after this, not after 5 min.
		"MAILPLANE_RESCUE_STUCK_JOBS_AFTER=20s")
	r.env = append(r.env, r.extraEnv...)
	if out, err := r.mailplane(ctx, "migrate"); err != nil {
		cleanup()
		return nil, fmt.Errorf("migrate: %w\n%s", err, out)
	}
	if out, err := r.mailplane(ctx, "admin", "bootstrap", "--email", r.admin, "--password", r.password); err != nil {
		cleanup()
		return nil, fmt.Errorf("admin bootstrap: %w\n%s", err, out)
	}
	if r.pool, err = pgxpool.New(ctx, r.dbURL); err != nil {
		cleanup()
		return nil, err
	}
	cleanups = append(cleanups, r.pool.Close)
	return cleanup, nil
}

func (r *run) ldapAdmin() (*ldap.Conn, error) {
	conn, err := ldap.DialURL(os.Getenv("MAILPLANE_LDAP_URL"))
	if err != nil {
		return nil, err
	}
	if err := conn.Bind(os.Getenv("MAILPLANE_LDAP_BIND_DN"), os.Getenv("MAILPLANE_LDAP_PASSWORD")); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

// deleteBase removes the run's directory base, deepest entries first.
func (r *run) deleteBase() {
	conn, err := r.ldapAdmin()
	if err != nil {
		return
	}
	defer conn.Close()
	res, err := conn.SearchWithPaging(ldap.NewSearchRequest(r.base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"1.1"}, nil), 1000)
	if err != nil {
		return
	}
	dns := make([]string, 0, len(res.Entries))
	for _, e := range res.Entries {
		dns = append(dns, e.DN)
	}
	sort.Slice(dns, func(i, j int) bool { return strings.Count(dns[i], ",") > strings.Count(dns[j], ",") })
	for _, dn := range dns {
		_ = conn.Del(ldap.NewDelRequest(dn, nil))
	}
}

func (r *run) mailplane(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(r.o.bin, "mailplane"), args...)
	cmd.Env = r.env
	return cmd.CombinedOutput()
}

// server is one `mailplane serve` process (restarted in place by start).
type server struct {
	r    *run
	name string
	addr string
	cmd  *exec.Cmd
	done chan struct{}
	logf *os.File
	runs int
}

func (r *run) newServer(name string) (*server, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	f, err := os.Create(filepath.Join(r.dir, "serve-"+name+".log"))
	if err != nil {
		return nil, err
	}
	s := &server{r: r, name: name, addr: addr, logf: f}
	r.servers = append(r.servers, s)
	return s, nil
}

func (s *server) url() string { return "http://" + s.addr }

func (s *server) start() error {
	s.runs++
	fmt.Fprintf(s.logf, "\n=== chaos: start %d at %s\n", s.runs, time.Now().UTC().Format(time.RFC3339Nano))
	cmd := exec.Command(filepath.Join(s.r.o.bin, "mailplane"), "serve", "--addr", s.addr)
	cmd.Env = s.r.env
	cmd.Stdout, cmd.Stderr = s.logf, s.logf
	if err := cmd.Start(); err != nil {
		return err
	}
	s.cmd = cmd
	done := make(chan struct{})
	s.done = done
	go func() { _ = cmd.Wait(); close(done) }()
	return nil
}

// kill sends SIGKILL and waits for the process to be gone.
func (s *server) kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
	s.cmd = nil
}

// stop ends the process as an operator would (SIGTERM), SIGKILL after 30 s.
func (s *server) stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Signal(syscall.SIGKILL)
		<-s.done
	}
	s.cmd = nil
}

var httpc = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil}}

func get(u string) (int, []byte, error) {
	resp, err := httpc.Get(u)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// startAndWait starts the server and waits, a minute at most, until path answers 200: how every
// scenario (re)starts one.
func (s *server) startAndWait(ctx context.Context, path string) error {
	if err := s.start(); err != nil {
		return err
	}
	return s.waitHealthy(ctx, 60*time.Second, path)
}

// waitHealthy waits until the process answers /healthz (and /readyz with ready, when ready).
func (s *server) waitHealthy(ctx context.Context, timeout time.Duration, path string) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		select {
		case <-s.done:
			return fmt.Errorf("serve %s exited while starting (see %s)", s.name, s.logf.Name())
		default:
		}
		if code, _, err := get(s.url() + path); err == nil && code == http.StatusOK {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("serve %s: %s not 200 after %s", s.name, path, timeout)
}

// active returns the projections this process runs now (mailplane_projection_active 1).
func (s *server) active() (map[string]bool, error) {
	code, b, err := get(s.url() + "/metrics")
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("/metrics: HTTP %d", code)
	}
	out := map[string]bool{}
	for line := range strings.Lines(string(b)) {
		rest, ok := strings.CutPrefix(line, `mailplane_projection_active{projection="`)
		if !ok {
			continue
		}
		name, val, _ := strings.Cut(rest, `"} `)
		out[name] = strings.TrimSpace(val) == "1"
	}
	return out, nil
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// driver is the load driver's process.
type driver struct {
	cmd     *exec.Cmd
	done    chan error
	journal string
	out     *bytes.Buffer
}

func (r *run) startDriver(urls []string) (*driver, error) {
	journal := filepath.Join(r.dir, "journal.tsv")
	out := &bytes.Buffer{}
	logf, err := os.Create(filepath.Join(r.dir, "loaddriver.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(filepath.Join(r.o.bin, "loaddriver"), "-mode", "mixed", "-url", strings.Join(urls, ","),
		"-email", r.admin, "-password", r.password, "-domain", r.domain, "-prefix", r.prefix,
		"-n", strconv.Itoa(r.o.n), "-c", strconv.Itoa(r.o.c), "-journal", journal, "-timeout", "30s", "-retry-for", "3m")
	if r.mode == "outage" {
		cmd.Args = append(cmd.Args, "-rate", strconv.FormatFloat(r.o.rate, 'f', -1, 64))
	}
	cmd.Stdout = io.MultiWriter(out, logf, prefixWriter("  driver: "))
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	d := &driver{cmd: cmd, done: make(chan error, 1), journal: journal, out: out}
	r.driver = cmd
	go func() { d.done <- cmd.Wait(); logf.Close() }()
	return d, nil
}

type prefixWriter string

func (p prefixWriter) Write(b []byte) (int, error) {
	for line := range strings.Lines(string(b)) {
		fmt.Print(string(p) + line)
	}
	return len(b), nil
}

// lines counts the journal's lines so far.
func lines(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	return bytes.Count(b, []byte{'\n'})
}

// result reads the driver's RESULT line into a map.
func result(out string) map[string]string {
	m := map[string]string{}
	for line := range strings.Lines(out) {
		if rest, ok := strings.CutPrefix(line, "RESULT "); ok {
			for _, f := range strings.Fields(rest) {
				k, v, _ := strings.Cut(f, "=")
				m[k] = v
			}
		}
	}
	return m
}

// crash: one server, killed -kills times at random points of the load, restarted each time.
func (r *run) crash(ctx context.Context) error {
	s, err := r.newServer("a")
	if err != nil {
		return err
	}
	if err := s.startAndWait(ctx, "/readyz"); err != nil {
		return err
	}
	d, err := r.startDriver([]string{s.url()})
	if err != nil {
		return err
	}
	// Kill points: journal line counts spread at random over 5%..90% of the commands, at
	// least 3% apart, so that each restart has load to come back to.
	points := killPoints(r.o.kills, r.o.n)
	r.logf("kill points (journal lines): %v", points)
	var recoveries []time.Duration
	var driverErr error
	driverDone := false
	t0 := time.Now()
	for _, p := range points {
		for !driverDone && lines(d.journal) < p {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case driverErr = <-d.done:
				driverDone = true
			case <-time.After(20 * time.Millisecond):
			}
		}
		if driverDone {
			r.problem("the driver ended before kill point %d (journal %d lines)", p, lines(d.journal))
			break
		}
		// A random extra delay of up to 300 ms: the kill lands anywhere in a request's life.
		time.Sleep(time.Duration(mrand.IntN(300)) * time.Millisecond)
		killedAt := time.Now()
		s.kill()
		if err := s.startAndWait(ctx, "/healthz"); err != nil {
			return err
		}
		rec := time.Since(killedAt)
		recoveries = append(recoveries, rec)
		r.logf("killed serve at journal line %d; answering again after %s", lines(d.journal), rec.Round(time.Millisecond))
	}
	if !driverDone {
		driverErr = <-d.done
	}
	loadTime := time.Since(t0)
	if driverErr != nil {
		return fmt.Errorf("load driver: %v", driverErr)
	}
	res := result(d.out.String())
	r.figure("commands", r.o.n)
	r.figure("rate", res["rate"])
	r.figure("load_s", fmt.Sprintf("%.1f", loadTime.Seconds()))
	r.figure("kills", len(recoveries))
	r.figure("no_answer", res["no_answer"])
	var recs []string
	for _, d := range recoveries {
		recs = append(recs, fmt.Sprintf("%.2f", d.Seconds()))
	}
	r.figure("recovery_s", strings.Join(recs, ","))
	if len(recoveries) < r.o.kills {
		r.problem("%d kills, %d wanted", len(recoveries), r.o.kills)
	}
	return r.checkAll(ctx, res, s)
}

func killPoints(k, n int) []int {
	lo, hi := n/20, n*9/10
	gap := max(1, n*3/100)
	for tries := 0; ; tries++ {
		var ps []int
		for i := 0; i < k; i++ {
			ps = append(ps, lo+mrand.IntN(max(1, hi-lo)))
		}
		slices.Sort(ps)
		ok := true
		for i := 1; i < len(ps); i++ {
			if ps[i]-ps[i-1] < gap {
				ok = false
			}
		}
		if ok || tries > 1000 {
			return ps
		}
	}
}

// failover: two servers; the one holding the projections and the River leader is killed.
func (r *run) failover(ctx context.Context) error {
	a, err := r.newServer("a")
	if err != nil {
		return err
	}
	b, err := r.newServer("b")
	if err != nil {
		return err
	}
	// a first, alone, until it holds every projection and River's leadership: then the kill
	// of a moves them all.
	if err := a.startAndWait(ctx, "/readyz"); err != nil {
		return err
	}
	var names []string
	if err := waitFor(ctx, 30*time.Second, func() bool {
		act, err := a.active()
		if err != nil || len(act) == 0 {
			return false
		}
		names = names[:0]
		for n, v := range act {
			if !v {
				return false
			}
			names = append(names, n)
		}
		leader, _ := r.riverLeader(ctx)
		return leader != ""
	}); err != nil {
		return fmt.Errorf("serve a never held every projection and the River leadership: %w", err)
	}
	sort.Strings(names)
	leaderBefore, _ := r.riverLeader(ctx)
	r.logf("serve a holds %v and River leadership (%s)", names, leaderBefore)
	if err := b.startAndWait(ctx, "/readyz"); err != nil {
		return err
	}
	d, err := r.startDriver([]string{a.url(), b.url()})
	if err != nil {
		return err
	}
	// Exactly one holder per projection while both run, checked a few times under load.
	for lines(d.journal) < r.o.n/3 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-d.done:
			return fmt.Errorf("the driver ended early: %v", err)
		case <-time.After(500 * time.Millisecond):
		}
		r.checkOneHolder(names, a, b)
	}
	killedAt := time.Now()
	a.kill()
	var projAt, leaderAt time.Duration
	leaderAfter := ""
	deadline := killedAt.Add(60 * time.Second)
	for (projAt == 0 || leaderAt == 0) && time.Now().Before(deadline) {
		if projAt == 0 {
			if act, err := b.active(); err == nil && allTrue(act, names) {
				projAt = time.Since(killedAt)
			}
		}
		if leaderAt == 0 {
			if l, err := r.riverLeader(ctx); err == nil && l != "" && l != leaderBefore {
				leaderAt, leaderAfter = time.Since(killedAt), l
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.logf("after the kill of a: b holds every projection after %s, River leader %s after %s", projAt, leaderAfter, leaderAt)
	failover := max(projAt, leaderAt)
	r.figure("commands", r.o.n)
	r.figure("projections_moved_s", fmt.Sprintf("%.2f", projAt.Seconds()))
	r.figure("river_leader_moved_s", fmt.Sprintf("%.2f", leaderAt.Seconds()))
	r.figure("failover_s", fmt.Sprintf("%.2f", failover.Seconds()))
	switch {
	case projAt == 0:
		r.problem("b did not take every projection (%v) within 60 s of the kill of a", names)
	case leaderAt == 0:
		r.problem("the River leader did not move from %s within 60 s of the kill of a", leaderBefore)
	case failover > r.o.failoverBound:
		r.problem("failover took %s (projections %s, River leader %s): more than %s", failover.Round(time.Millisecond),
			projAt.Round(time.Millisecond), leaderAt.Round(time.Millisecond), r.o.failoverBound)
	}
	// a comes back (as a standby now) and the load goes on over both.
	if err := a.startAndWait(ctx, "/healthz"); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-d.done:
			if err != nil {
				return fmt.Errorf("load driver: %v", err)
			}
			res := result(d.out.String())
			r.figure("rate", res["rate"])
			r.figure("no_answer", res["no_answer"])
			r.checkOneHolder(names, a, b)
			r.checkBothServed(d.journal, a, b)
			return r.checkAll(ctx, res, b)
		case <-time.After(time.Second):
			r.checkOneHolder(names, a, b)
		}
	}
}

func allTrue(act map[string]bool, names []string) bool {
	for _, n := range names {
		if !act[n] {
			return false
		}
	}
	return true
}

// checkOneHolder: while both run, each projection is active on exactly one of them (a
// hand-over in flight may show none for a moment: only two holders is a problem).
func (r *run) checkOneHolder(names []string, ss ...*server) {
	count := map[string]int{}
	for _, s := range ss {
		act, err := s.active()
		if err != nil {
			continue
		}
		for _, n := range names {
			if act[n] {
				count[n]++
			}
		}
	}
	for _, n := range names {
		if count[n] > 1 {
			r.problem("projection %s is active on %d processes at once", n, count[n])
		}
	}
}

// checkBothServed: commands succeeded on both URLs.
func (r *run) checkBothServed(journal string, ss ...*server) {
	ok := map[string]int{}
	for _, e := range readJournal(journal) {
		if ok2xx(e.status) {
			ok[e.base]++
		}
	}
	for _, s := range ss {
		r.figure("ok_on_"+s.name, ok[s.url()])
		if ok[s.url()] == 0 {
			r.problem("no command succeeded on serve %s (%s)", s.name, s.url())
		}
	}
}

func (r *run) riverLeader(ctx context.Context) (string, error) {
	var id string
	err := r.pool.QueryRow(ctx, `SELECT leader_id FROM river_leader WHERE expires_at > now()`).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	return id, err
}

func waitFor(ctx context.Context, timeout time.Duration, f func() bool) error {
	deadline := time.Now().Add(timeout)
	for !f() {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %s", timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func ok2xx(s int) bool { return s >= 200 && s < 300 }

// entry is one journal line.
type entry struct {
	id, kind string
	status   int // 0: no answer
	target   string
	base     string
	cmd      string // the request id of the command's first attempt
	line     int
}

func readJournal(path string) []entry {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []entry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 0; sc.Scan(); n++ {
		f := strings.Split(sc.Text(), "\t")
		if len(f) < 6 {
			continue
		}
		st, _ := strconv.Atoi(f[2]) // "no answer" -> 0
		out = append(out, entry{id: f[0], kind: f[1], status: st, target: f[3], base: f[4], cmd: f[5], line: n})
	}
	return out
}
