// Command loaddriver creates accounts over mailplane's HTTP API as fast as a fixed number of
// clients can, and reports the rate, the latency distribution and the errors (docs/benchmarks.md).
//
//	loaddriver -url http://127.0.0.1:8080 -email admin@x.test -password P \
//	    -domain load.test -n 20000 -c 16 -mode hash -ryw
//
// Modes: "hash" sends a password_hash (one argon2id PHC hash computed once before the run, so the
// server does no hashing), "none" sends no password, "password" sends a clear password that the
// server hashes with argon2id. With -ryw every create is followed at once by a GET of the
// account (read-your-writes), timed separately; a GET that does not find it is a miss.
//
// With -aliases N each account then gets N aliases (POST .../aliases), timed apart. With
// -ldap-url and -ldap-base the driver follows the directory the LDAP projection writes (a
// syncrepl search) and times each account from its 201 until its entry is there.
//
// With -mode mixed it sends N commands of several kinds instead (mixed.go), journalling every
// request, for scripts/chaos.sh.
//
// The last line is machine-readable: "RESULT key=value ..." (scripts/bench.sh reads it).
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/argon2"
)

// The server's argon2id parameters (commands.DefaultArgon2): a hash sent in -mode hash is one the
// server would have made, so a later login does not rehash it.
const (
	argonMemoryKiB = 19 * 1024
	argonTime      = 2
	argonThreads   = 1
)

type options struct {
	url      string
	token    string
	email    string
	password string
	domain   string
	n        int
	c        int
	mode     string
	ryw      bool
	prefix   string
	watchPID int
	timeout  time.Duration
	progress bool
	aliases  int

	journal  string
	retryFor time.Duration

	ldapURL, ldapBase, ldapBindDN, ldapPassword string
	ldapWait                                    time.Duration

	// rate paces -mode mixed (at most) and -mode sustained (exactly); the rest is -mode
	// sustained's (sustained.go); metricsURL and watchPIDs also sample the create modes.
	rate       float64
	duration   time.Duration
	sample     time.Duration
	metricsURL string
	watchPIDs  string
}

func main() {
	var o options
	flag.StringVar(&o.url, "url", "http://127.0.0.1:8080", "base URL of the API (without /api/v1); -mode mixed takes several, comma-separated, and spreads the requests round-robin")
	flag.StringVar(&o.token, "token", "", "bearer token of an admin (or use -email and -password)")
	flag.StringVar(&o.email, "email", "", "log in as this admin")
	flag.StringVar(&o.password, "password", "", "the admin's password")
	flag.StringVar(&o.domain, "domain", "load.test", "domain to create the accounts in (created if missing, without max_accounts)")
	flag.IntVar(&o.n, "n", 1000, "accounts to create")
	flag.IntVar(&o.c, "c", 16, "concurrent clients")
	flag.StringVar(&o.mode, "mode", "hash", "hash (precomputed password_hash) | none (no password) | password (server hashes) | mixed (N mixed commands: mixed.go)")
	flag.StringVar(&o.journal, "journal", "", "-mode mixed: write a line per request here (request id, kind, status or \"no answer\", target, URL)")
	flag.DurationVar(&o.retryFor, "retry-for", 2*time.Minute, "-mode mixed: how long to keep resending a command that gets no answer (or 503/429), each time with a new request id")
	flag.Float64Var(&o.rate, "rate", 0, "-mode mixed: send at most this many commands per second (0: as fast as the clients go; a paced load lasts about -n / -rate, long enough for the outages of the chaos runner's outage mode); -mode sustained: requests per second, spread over the kinds")
	flag.BoolVar(&o.ryw, "ryw", false, "after each create, GET the account at once and time that read separately")
	flag.StringVar(&o.prefix, "prefix", "", "local-part prefix (default: random, so that runs never collide)")
	flag.IntVar(&o.watchPID, "watch-pid", 0, "sample this process's VmRSS every 100ms and report min/max")
	flag.DurationVar(&o.timeout, "timeout", 60*time.Second, "timeout of one request")
	flag.BoolVar(&o.progress, "progress", false, "print the creations of every second (does the rate hold as tables grow?)")
	flag.IntVar(&o.aliases, "aliases", 0, "aliases to add to each account after its creation (timed apart)")
	flag.StringVar(&o.ldapURL, "ldap-url", "", "follow the directory the LDAP projection writes and time each account until its entry is there")
	flag.StringVar(&o.ldapBase, "ldap-base", "", "the projection's base DN (with -ldap-url)")
	flag.StringVar(&o.ldapBindDN, "ldap-bind-dn", "", "bind as this DN to follow the directory (the rootdn, or cn=replicator)")
	flag.StringVar(&o.ldapPassword, "ldap-password", "", "its password")
	flag.DurationVar(&o.ldapWait, "ldap-wait", 60*time.Second, "after the last create, how long to wait for the directory to have every account")
	flag.DurationVar(&o.duration, "duration", 0, "-mode sustained: how long to send")
	flag.DurationVar(&o.sample, "sample", 5*time.Second, "with -metrics-url or -mode sustained: how often to read the projections' lag and the -watch-pids' RSS")
	flag.StringVar(&o.metricsURL, "metrics-url", "", "read mailplane_projection_lag_* from this /metrics every -sample (-mode sustained: the first -url's by default)")
	flag.StringVar(&o.watchPIDs, "watch-pids", "", "comma-separated PIDs whose VmRSS every -sample records")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "loaddriver:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options, out io.Writer) error {
	switch {
	case o.n <= 0 || o.c <= 0:
		return errors.New("-n and -c must be positive")
	case o.mode != "hash" && o.mode != "none" && o.mode != "password" && o.mode != "mixed" && o.mode != "sustained":
		return fmt.Errorf("-mode must be hash, none, password, mixed or sustained, not %q", o.mode)
	case o.token == "" && (o.email == "" || o.password == ""):
		return errors.New("give -token, or -email and -password")
	case o.ldapURL != "" && o.ldapBase == "":
		return errors.New("-ldap-url needs -ldap-base")
	}
	var urls []string
	for _, u := range strings.Split(o.url, ",") {
		if u = strings.TrimRight(strings.TrimSpace(u), "/"); u != "" {
			urls = append(urls, u)
		}
	}
	if len(urls) == 0 {
		return errors.New("-url is empty")
	}
	if len(urls) > 1 && o.mode != "mixed" && o.mode != "sustained" {
		return errors.New("several -url only with -mode mixed or sustained")
	}
	o.url = urls[0]
	if o.prefix == "" {
		o.prefix = "u" + randomHex(4) + "-"
	}
	c := &client{
		base: o.url,
		http: &http.Client{Timeout: o.timeout, Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        2 * o.c,
			MaxIdleConnsPerHost: 2 * o.c,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		}},
		token: o.token,
	}
	if c.token == "" {
		if err := c.login(ctx, o.email, o.password); err != nil {
			return err
		}
	}
	if o.mode == "mixed" {
		return runMixed(ctx, o, out, urls, c.token)
	}
	if o.mode == "sustained" {
		return runSustained(ctx, o, out, urls, c.token)
	}
	if err := c.ensureDomain(ctx, o.domain); err != nil {
		return err
	}

	var secret map[string]any
	switch o.mode {
	case "hash":
		t0 := time.Now()
		phc := argon2PHC("load-password-0001")
		fmt.Fprintf(out, "precomputed one argon2id hash (m=%d,t=%d,p=%d) in %s; every account reuses it\n",
			argonMemoryKiB, argonTime, argonThreads, time.Since(t0).Round(time.Millisecond))
		secret = map[string]any{"password_hash": phc}
	case "password":
		secret = map[string]any{"password": "load-password-0001"}
	}

	var rss *rssWatch
	if o.watchPID > 0 {
		rss = watchRSS(o.watchPID, 100*time.Millisecond)
	}

	var mw *metricsWatch
	if o.metricsURL != "" {
		mw = watchMetrics(o.metricsURL, parsePIDs(o.watchPIDs), o.sample, out)
	}

	var watch *ldapWatch
	if o.ldapURL != "" {
		w, err := watchLDAP(ctx, o.ldapURL, o.ldapBase, o.ldapBindDN, o.ldapPassword, o.prefix)
		if err != nil {
			return err
		}
		defer w.stop()
		watch = w
		fmt.Fprintf(out, "following %s below %s (syncrepl) for %s*\n", o.ldapURL, o.ldapBase, o.prefix)
	}

	res := newResults(o.n)
	var next atomic.Int64
	var wg sync.WaitGroup
	fmt.Fprintf(out, "creating %d accounts in %s, %d clients, mode %s, read-your-writes %v\n", o.n, o.domain, o.c, o.mode, o.ryw)
	start := time.Now()
	stopProgress := make(chan struct{})
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		if !o.progress && watch == nil {
			return
		}
		t := time.NewTicker(time.Second)
		defer t.Stop()
		last := int64(0)
		for sec := 1; ; sec++ {
			select {
			case <-stopProgress:
				return
			case <-t.C:
				n := res.created.Load()
				backlog := ""
				if watch != nil {
					backlog = fmt.Sprintf(" ldap_backlog=%d", watch.tick())
				}
				if o.progress {
					fmt.Fprintf(out, "progress t=%ds created=%d last_second=%d%s\n", sec, n, n-last, backlog)
				}
				last = n
			}
		}
	}()
	for w := 0; w < o.c; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= o.n {
					return
				}
				local := o.prefix + strconv.Itoa(i)
				body := map[string]any{"local_part": local, "display_name": "Load User " + strconv.Itoa(i)}
				for k, v := range secret {
					body[k] = v
				}
				t0 := time.Now()
				status, rbody, err := c.do(ctx, http.MethodPost, "/api/v1/domains/"+url.PathEscape(o.domain)+"/accounts", body)
				res.create[i] = time.Since(t0)
				res.record(status, err, rbody)
				addr := local + "@" + o.domain
				if status == http.StatusCreated && watch != nil {
					watch.create(strings.ToLower(addr), time.Now())
				}
				for j := 0; status == http.StatusCreated && j < o.aliases; j++ {
					alias := local + "-a" + strconv.Itoa(j) + "@" + o.domain
					t2 := time.Now()
					astatus, abody, aerr := c.do(ctx, http.MethodPost, "/api/v1/accounts/"+url.PathEscape(addr)+"/aliases", map[string]any{"alias": alias})
					res.recordAlias(time.Since(t2), astatus, aerr, abody)
				}
				if status != http.StatusCreated || !o.ryw {
					continue
				}
				t1 := time.Now()
				gstatus, gbody, gerr := c.do(ctx, http.MethodGet, "/api/v1/accounts/"+url.PathEscape(addr), nil)
				res.read[i] = time.Since(t1)
				res.recordRead(gstatus, gerr, gbody, addr)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(stopProgress)
	<-progressDone
	var rssStats rssStats
	if rss != nil {
		rssStats = rss.stop()
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var ls *ldapStats
	if watch != nil {
		st := watch.stats(start.Add(elapsed), o.ldapWait)
		ls = &st
	}
	var extra []string
	if mw != nil {
		extra = mw.stop().fields(out)
	}
	res.print(out, o, elapsed, rss != nil, rssStats, ls, extra...)
	return nil
}

// client speaks to the API.
type client struct {
	base  string
	http  *http.Client
	token string
}

func (c *client) do(ctx context.Context, method, path string, body any) (int, []byte, error) {
	return c.doHeaders(ctx, nil, method, path, body)
}

func (c *client) doHeaders(ctx context.Context, headers map[string]string, method, path string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func (c *client) login(ctx context.Context, email, password string) error {
	var status int
	var body []byte
	var err error
	// A server just started (or loaded) answers 503 until its read models have caught up.
	for deadline := time.Now().Add(3 * time.Minute); ; {
		status, body, err = c.do(ctx, http.MethodPost, "/api/v1/auth/login", map[string]string{"email": email, "password": password})
		if (err == nil && status != http.StatusServiceUnavailable) || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("login: %w", err)
	}
	if status != http.StatusOK {
		return fmt.Errorf("login as %s: HTTP %d: %s", email, status, bytes.TrimSpace(body))
	}
	var r struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(body, &r); err != nil || r.Token == "" {
		return fmt.Errorf("login: no token in %s", body)
	}
	c.token = r.Token
	return nil
}

func (c *client) ensureDomain(ctx context.Context, name string) error {
	status, body, err := c.do(ctx, http.MethodGet, "/api/v1/domains/"+url.PathEscape(name), nil)
	if err != nil {
		return fmt.Errorf("domain %s: %w", name, err)
	}
	switch status {
	case http.StatusOK:
		return nil
	case http.StatusNotFound:
	default:
		return fmt.Errorf("domain %s: HTTP %d: %s", name, status, bytes.TrimSpace(body))
	}
	status, body, err = c.do(ctx, http.MethodPost, "/api/v1/domains", map[string]any{"name": name})
	if err != nil {
		return fmt.Errorf("create domain %s: %w", name, err)
	}
	if status != http.StatusCreated && status != http.StatusConflict {
		return fmt.Errorf("create domain %s: HTTP %d: %s", name, status, bytes.TrimSpace(body))
	}
	return nil
}

// argon2PHC hashes password the way the server does, in PHC form.
func argon2PHC(password string) string {
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemoryKiB, argonThreads, 32)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemoryKiB, argonTime, argonThreads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// results collects what the clients saw. Latencies are kept per request (index i), so no lock.
type results struct {
	create  []time.Duration
	read    []time.Duration
	created atomic.Int64

	mu          sync.Mutex
	status      map[string]int
	readStatus  map[string]int
	samples     []string
	readMissed  int
	readSamples []string
	aliasLat    []time.Duration
	aliasStatus map[string]int
}

func newResults(n int) *results {
	return &results{create: make([]time.Duration, n), read: make([]time.Duration, n),
		status: map[string]int{}, readStatus: map[string]int{}, aliasStatus: map[string]int{}}
}

func statusKey(status int, err error) string {
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return "timeout"
		}
		return "transport-error"
	}
	return strconv.Itoa(status)
}

func (r *results) record(status int, err error, body []byte) {
	k := statusKey(status, err)
	if k == "201" {
		r.created.Add(1)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status[k]++
	if k != "201" && len(r.samples) < 5 {
		r.samples = append(r.samples, fmt.Sprintf("%s: %s", k, sample(err, body)))
	}
}

func (r *results) recordAlias(d time.Duration, status int, err error, body []byte) {
	k := statusKey(status, err)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.aliasLat = append(r.aliasLat, d)
	r.aliasStatus[k]++
	if k != "201" && len(r.samples) < 5 {
		r.samples = append(r.samples, fmt.Sprintf("alias %s: %s", k, sample(err, body)))
	}
}

func (r *results) recordRead(status int, err error, body []byte, addr string) {
	k := statusKey(status, err)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.readStatus[k]++
	if k != "200" {
		r.readMissed++
		if len(r.readSamples) < 5 {
			r.readSamples = append(r.readSamples, fmt.Sprintf("%s %s: %s", addr, k, sample(err, body)))
		}
	}
}

func sample(err error, body []byte) string {
	if err != nil {
		return err.Error()
	}
	s := string(bytes.TrimSpace(body))
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// quantiles returns the given quantiles (0..1) of the non-zero durations, and their count.
func quantiles(ds []time.Duration, qs ...float64) ([]time.Duration, int) {
	var v []time.Duration
	for _, d := range ds {
		if d > 0 {
			v = append(v, d)
		}
	}
	out := make([]time.Duration, len(qs))
	if len(v) == 0 {
		return out, 0
	}
	slices.Sort(v)
	for i, q := range qs {
		// Nearest rank.
		k := int(q*float64(len(v))+0.999999) - 1
		out[i] = v[max(0, min(k, len(v)-1))]
	}
	return out, len(v)
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64)
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func joinCounts(m map[string]int) string {
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s:%d", k, m[k]))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ",")
}

func (r *results) print(out io.Writer, o options, elapsed time.Duration, rss bool, st rssStats, ls *ldapStats, extra ...string) {
	ok := r.status["201"]
	errs := 0
	for k, v := range r.status {
		if k != "201" {
			errs += v
		}
	}
	rate := float64(ok) / elapsed.Seconds()
	q, _ := quantiles(r.create, 0.5, 0.9, 0.99, 1)
	fmt.Fprintf(out, "\n%d accounts created in %s: %.1f accounts/s (%d errors)\n", ok, elapsed.Round(time.Millisecond), rate, errs)
	fmt.Fprintf(out, "create latency  p50 %s ms  p90 %s ms  p99 %s ms  max %s ms\n", ms(q[0]), ms(q[1]), ms(q[2]), ms(q[3]))
	fmt.Fprintf(out, "create status   %s\n", joinCounts(r.status))
	for _, s := range r.samples {
		fmt.Fprintf(out, "  e.g. %s\n", s)
	}
	fields := []string{
		"mode=" + o.mode, "n=" + strconv.Itoa(o.n), "c=" + strconv.Itoa(o.c), "ok=" + strconv.Itoa(ok),
		"errors=" + strconv.Itoa(errs), "elapsed_s=" + strconv.FormatFloat(elapsed.Seconds(), 'f', 3, 64),
		"rate=" + strconv.FormatFloat(rate, 'f', 1, 64),
		"p50_ms=" + ms(q[0]), "p90_ms=" + ms(q[1]), "p99_ms=" + ms(q[2]), "max_ms=" + ms(q[3]),
		"status=" + joinCounts(r.status),
	}
	if o.ryw {
		rq, n := quantiles(r.read, 0.5, 0.99, 1)
		fmt.Fprintf(out, "read-your-writes GET after each create: %d reads, p50 %s ms  p99 %s ms  max %s ms, missed %d (%s)\n",
			n, ms(rq[0]), ms(rq[1]), ms(rq[2]), r.readMissed, joinCounts(r.readStatus))
		for _, s := range r.readSamples {
			fmt.Fprintf(out, "  e.g. %s\n", s)
		}
		fields = append(fields, "ryw_reads="+strconv.Itoa(n), "ryw_p50_ms="+ms(rq[0]), "ryw_p99_ms="+ms(rq[1]),
			"ryw_max_ms="+ms(rq[2]), "ryw_missed="+strconv.Itoa(r.readMissed))
	}
	if o.aliases > 0 {
		aq, n := quantiles(r.aliasLat, 0.5, 0.99)
		aliasErrs := n - r.aliasStatus["201"]
		fmt.Fprintf(out, "aliases: %d added, p50 %s ms  p99 %s ms, %d errors (%s)\n", r.aliasStatus["201"], ms(aq[0]), ms(aq[1]), aliasErrs, joinCounts(r.aliasStatus))
		fields = append(fields, "aliases="+strconv.Itoa(r.aliasStatus["201"]), "alias_errors="+strconv.Itoa(aliasErrs),
			"alias_p50_ms="+ms(aq[0]), "alias_p99_ms="+ms(aq[1]))
	}
	if ls != nil {
		lq, n := quantiles(ls.lags, 0.5, 0.9, 0.99, 1)
		fmt.Fprintf(out, "directory lag from the 201 until the entry is in LDAP: %d entries, p50 %s ms  p90 %s ms  p99 %s ms  max %s ms, missing %d, last one %s after the last create\n",
			n, ms(lq[0]), ms(lq[1]), ms(lq[2]), ms(lq[3]), ls.missing, ls.drain.Round(time.Millisecond))
		curve := make([]string, len(ls.pending))
		for i, p := range ls.pending {
			curve[i] = strconv.Itoa(p)
		}
		fmt.Fprintf(out, "directory backlog each second (created, not yet in LDAP): %s\n", strings.Join(curve, " "))
		fmt.Fprintf(out, "directory backlog: max %d, mean over the first third %.1f, over the last third %.1f\n", ls.pendingMax, ls.pendingFirst, ls.pendLst)
		if ls.err != nil {
			fmt.Fprintf(out, "directory watch failed: %v\n", ls.err)
		}
		fields = append(fields, "ldap_seen="+strconv.Itoa(n), "ldap_p50_ms="+ms(lq[0]), "ldap_p90_ms="+ms(lq[1]), "ldap_p99_ms="+ms(lq[2]),
			"ldap_max_ms="+ms(lq[3]), "ldap_missing="+strconv.Itoa(ls.missing), "ldap_drain_ms="+ms(ls.drain),
			"ldap_backlog_max="+strconv.Itoa(ls.pendingMax), "ldap_backlog_first="+strconv.FormatFloat(ls.pendingFirst, 'f', 1, 64),
			"ldap_backlog_last="+strconv.FormatFloat(ls.pendLst, 'f', 1, 64))
	}
	if rss {
		mib := func(kb int64) string { return strconv.FormatFloat(float64(kb)/1024, 'f', 1, 64) }
		fmt.Fprintf(out, "server RSS (pid %d, %d samples every 100ms): at start %s MiB, min %s MiB, max %s MiB, at the end %s MiB\n",
			o.watchPID, st.samples, mib(st.first), mib(st.min), mib(st.max), mib(st.last))
		var curve []string
		for _, kb := range st.perSecond {
			curve = append(curve, mib(kb))
		}
		fmt.Fprintf(out, "server RSS each second (MiB): %s\n", strings.Join(curve, " "))
		fields = append(fields, "rss_start_mib="+mib(st.first), "rss_min_mib="+mib(st.min), "rss_max_mib="+mib(st.max),
			"rss_end_mib="+mib(st.last), "rss_samples="+strconv.Itoa(st.samples))
	}
	fields = append(fields, extra...)
	fmt.Fprintf(out, "RESULT %s\n", strings.Join(fields, " "))
}

// rssStats summarises the samples, in KiB.
type rssStats struct {
	first, min, max, last int64
	samples               int
	// perSecond is every tenth sample: the curve over the run.
	perSecond []int64
}

// rssWatch samples a process's resident set size.
type rssWatch struct {
	sampler *sampler
	st      rssStats
}

func watchRSS(pid int, every time.Duration) *rssWatch {
	w := &rssWatch{}
	sampleOnce := func() {
		kb, err := vmRSS(pid)
		if err != nil {
			return
		}
		if w.st.samples == 0 {
			w.st.first, w.st.min, w.st.max = kb, kb, kb
		}
		w.st.min, w.st.max, w.st.last = min(w.st.min, kb), max(w.st.max, kb), kb
		if w.st.samples%10 == 0 {
			w.st.perSecond = append(w.st.perSecond, kb)
		}
		w.st.samples++
	}
	sampleOnce()
	w.sampler = startSampler(every, sampleOnce)
	return w
}

// stop ends sampling and returns what it saw.
func (w *rssWatch) stop() rssStats {
	w.sampler.stop()
	return w.st
}

// vmRSS reads VmRSS (KiB) from /proc/<pid>/status.
func vmRSS(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				break
			}
			return strconv.ParseInt(f[0], 10, 64)
		}
	}
	return 0, errors.New("no VmRSS")
}
