package main

// Mixed mode (-mode mixed): N commands of several kinds over HTTP, spread round-robin over one or
// more base URLs, each with an X-Request-Id of its own and a journal line (issue 13, "Faults").
// It is what scripts/chaos.sh runs while it kills the server; the journal is what the checks
// afterwards compare the event store with.
//
// Kinds, drawn at random by each client (weights in mixWeights):
//
//	create        POST /domains/{d}/accounts
//	modify        PATCH /accounts/{a} (a new display name each time, so every PATCH appends)
//	alias         POST /accounts/{a}/aliases
//	list_members  POST /lists/{l}/members (two new external members)
//	usage         POST /usage with the mailstore service token: an account is reported first at
//	              50% of its quota, then at 90% (over the domain's warn_percent of 80): one crossing,
//	              so one warning mail, per account reported twice
//	remove_domain DELETE /domains/{removal domain}, once, when half of the commands are sent
//
// Setup (the domains, the lists, the service token, the removal domain's accounts) is journalled
// too, with kind "setup_…".
//
// A request that gets no answer (the connection refused, reset or timed out: the server was
// killed) is journalled "no answer" and sent again with a NEW request id, until -retry-for has
// passed. Idempotency-Key is deliberately not used: a replayed answer carries the first
// request's events under the first request id, and the checks want each request id's fate on
// its own. A retried create or alias whose first attempt had been applied answers 409; the
// driver then takes the object as existing. 503 (not ready, read model behind) and 429 are
// retried the same way; other errors are journalled and not retried.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The quota the mixed mode gives its domain's accounts, and the two usage levels reported.
const (
	mixedQuota    = 1_000_000
	mixedWarnPct  = 80
	mixedUsageLow = 500_000
	mixedUsageHi  = 900_000
	mixedLists    = 8
	removalAccts  = 20
)

type mixKind struct {
	name   string
	weight int
}

var mixWeights = []mixKind{{"create", 35}, {"modify", 20}, {"alias", 15}, {"list_members", 15}, {"usage", 15}}

// journal writes one line per request, tab-separated: request id, kind, status (or "no
// answer"), target, base URL, and the command it is an attempt of (the request id of its first
// attempt: a retry is the same command under a new request id).
type journal struct {
	mu sync.Mutex
	w  *bufio.Writer
	f  *os.File
	n  atomic.Int64
}

func openJournal(path string) (*journal, error) {
	if path == "" {
		return &journal{}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	return &journal{f: f, w: bufio.NewWriter(f)}, nil
}

func (j *journal) write(id, cmd, kind string, status int, err error, target, base string) {
	j.n.Add(1)
	if j.w == nil {
		return
	}
	st := strconv.Itoa(status)
	if err != nil {
		st = "no answer"
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	fmt.Fprintf(j.w, "%s\t%s\t%s\t%s\t%s\t%s\n", id, kind, st, target, base, cmd)
	// Flushed at once: the runner follows the count to time its kills, and a driver killed
	// itself must leave every line it wrote.
	_ = j.w.Flush()
}

func (j *journal) close() error {
	if j.f == nil {
		return nil
	}
	_ = j.w.Flush()
	return j.f.Close()
}

// mixed is the state of one mixed run.
type mixed struct {
	o       options
	clients []*client // one per URL, same token
	usageC  []*client // the same URLs, the mailstore token
	j       *journal
	seq     atomic.Int64
	rr      atomic.Int64
	domain  string
	removal string
	lists   []string
	weights []mixKind // nil: mixWeights

	mu       sync.Mutex
	accounts []string       // created (2xx, or 409 after an attempt without answer)
	usage    map[string]int // account -> reports stored so far (0, 1, 2)
	status   map[string]int // kind:status -> count, for the summary
	lat      map[string][]time.Duration
	sent     atomic.Int64
	noAnswer atomic.Int64
	// firstStatus is the status of the first attempt of the last command setup sent (setup is
	// sequential).
	firstStatus int
}

// send sends one request (and its retries) and journals every attempt. It returns the final
// status and body, and whether an earlier attempt may have been applied (it got no answer, or
// 503/429); status 0 with err when no attempt got an answer within retry-for.
func (m *mixed) send(ctx context.Context, usage bool, kind, target, method, path string, body any) (int, []byte, bool, error) {
	deadline := time.Now().Add(m.o.retryFor)
	unanswered := false
	first := ""
	for attempt := 0; ; attempt++ {
		pool := m.clients
		if usage {
			pool = m.usageC
		}
		c := pool[int(m.rr.Add(1)-1)%len(pool)]
		id := fmt.Sprintf("%s%d", m.o.prefix, m.seq.Add(1))
		if first == "" {
			first = id
		}
		t0 := time.Now()
		status, rb, err := c.doID(ctx, id, method, path, body)
		d := time.Since(t0)
		if ctx.Err() != nil {
			return 0, nil, unanswered, ctx.Err()
		}
		m.j.write(id, first, kind, status, err, target, c.base)
		m.mu.Lock()
		key := kind + ":" + statusKey(status, err)
		m.status[key]++
		if err == nil {
			m.lat[kind] = append(m.lat[kind], d)
		}
		m.mu.Unlock()
		retry := err != nil || status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests
		if err != nil {
			m.noAnswer.Add(1)
		}
		if attempt == 0 {
			m.firstStatus = status
		}
		if !retry || time.Now().After(deadline) {
			return status, rb, unanswered, err
		}
		// The attempt may have been applied: a 503 can come after the command committed (its
		// answer waited for the read models in vain).
		unanswered = true
		// The server is being restarted: a short pause, not a hammering loop.
		select {
		case <-ctx.Done():
			return 0, nil, unanswered, ctx.Err()
		case <-time.After(time.Duration(50+rand.IntN(200)) * time.Millisecond):
		}
	}
}

func ok2xx(s int) bool { return s >= 200 && s < 300 }

func runMixed(ctx context.Context, o options, out io.Writer, urls []string, token string) error {
	j, err := openJournal(o.journal)
	if err != nil {
		return err
	}
	defer j.close()
	m := &mixed{o: o, j: j, domain: o.domain, removal: "rm-" + strings.TrimSuffix(o.prefix, "-") + "." + o.domain,
		usage: map[string]int{}, status: map[string]int{}, lat: map[string][]time.Duration{}}
	for _, u := range urls {
		m.clients = append(m.clients, &client{base: u, http: newHTTPClient(o), token: token})
	}
	if err := m.setup(ctx, out); err != nil {
		return err
	}

	fmt.Fprintf(out, "mixed: %d commands in %s over %s, %d clients, journal %s\n", o.n, o.domain, strings.Join(urls, " "), o.c, o.journal)
	var next atomic.Int64
	half := int64(o.n / 2)
	var removalJob atomic.Value
	var wg sync.WaitGroup
	var fatal atomic.Value
	start := time.Now()
	for w := 0; w < o.c; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(w)))
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= int64(o.n) {
					return
				}
				if o.rate > 0 { // command i is due at i/rate seconds after the start
					select {
					case <-ctx.Done():
						return
					case <-time.After(time.Until(start.Add(time.Duration(float64(i) / o.rate * float64(time.Second))))):
					}
				}
				if i == half {
					job, err := m.removeDomain(ctx)
					if err != nil {
						fatal.Store(err)
					}
					removalJob.Store(job)
					continue
				}
				m.one(ctx, rnd, int(i))
			}
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(start)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	job, _ := removalJob.Load().(string)
	m.print(out, elapsed, job)
	if err, _ := fatal.Load().(error); err != nil {
		return err
	}
	return nil
}

func newHTTPClient(o options) *http.Client {
	return &http.Client{Timeout: o.timeout, Transport: &http.Transport{
		Proxy:               nil,
		MaxIdleConns:        2 * o.c,
		MaxIdleConnsPerHost: 2 * o.c,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}}
}

func (m *mixed) setup(ctx context.Context, out io.Writer) error {
	must := func(kind, target, method, path string, body any, want ...int) ([]byte, error) {
		status, b, unanswered, err := m.send(ctx, false, kind, target, method, path, body)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", kind, target, err)
		}
		if ok2xx(status) || (unanswered && status == http.StatusConflict) {
			return b, nil
		}
		for _, w := range want {
			if status == w {
				return b, nil
			}
		}
		return nil, fmt.Errorf("%s %s: HTTP %d: %s", kind, target, status, sample(nil, b))
	}
	limits := map[string]any{"account_quota_bytes": mixedQuota, "warn_percent": mixedWarnPct}
	for _, d := range []string{m.domain, m.removal} {
		if _, err := must("setup_domain", d, http.MethodPost, "/api/v1/domains", map[string]any{"name": d, "limits": limits}, http.StatusConflict); err != nil {
			return err
		}
		// It may have existed (the admin's own domain): the limits the usage reports cross.
		if m.firstStatus != http.StatusConflict {
			continue
		}
		if _, err := must("setup_domain_limits", d, http.MethodPatch, "/api/v1/domains/"+url.PathEscape(d), map[string]any{"limits": limits}); err != nil {
			return err
		}
	}
	for i := 0; i < mixedLists; i++ {
		l := fmt.Sprintf("%slist%d@%s", m.o.prefix, i, m.domain)
		if _, err := must("setup_list", l, http.MethodPost, "/api/v1/domains/"+url.PathEscape(m.domain)+"/lists",
			map[string]any{"address": l, "display_name": "Load list " + strconv.Itoa(i)}); err != nil {
			return err
		}
		m.lists = append(m.lists, l)
	}
	for i := 0; i < removalAccts; i++ {
		local := fmt.Sprintf("%sr%d", m.o.prefix, i)
		if _, err := must("setup_removal_account", local+"@"+m.removal, http.MethodPost, "/api/v1/domains/"+url.PathEscape(m.removal)+"/accounts",
			map[string]any{"local_part": local, "display_name": "Removed " + strconv.Itoa(i)}); err != nil {
			return err
		}
	}
	b, err := must("setup_service_token", "mailstore", http.MethodPost, "/api/v1/service-tokens",
		map[string]any{"name": m.o.prefix + "mailstore", "role": "mailstore"})
	if err != nil {
		return err
	}
	var st struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(b, &st); err != nil || st.Token == "" {
		return fmt.Errorf("service token: no token in %s", sample(nil, b))
	}
	for _, c := range m.clients {
		m.usageC = append(m.usageC, &client{base: c.base, http: c.http, token: st.Token})
	}
	fmt.Fprintf(out, "mixed: set up %s (quota %d, warn at %d%%), %d lists, %s with %d accounts to remove, a mailstore token\n",
		m.domain, mixedQuota, mixedWarnPct, len(m.lists), m.removal, removalAccts)
	return nil
}

func (m *mixed) pick(rnd *rand.Rand) string {
	weights := m.weights
	if weights == nil {
		weights = mixWeights
	}
	total := 0
	for _, k := range weights {
		total += k.weight
	}
	x := rnd.IntN(total)
	for _, k := range weights {
		if x < k.weight {
			return k.name
		}
		x -= k.weight
	}
	return "create"
}

func (m *mixed) randomAccount(rnd *rand.Rand) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.accounts) == 0 {
		return "", false
	}
	return m.accounts[rnd.IntN(len(m.accounts))], true
}

// one sends command i and returns its kind.
func (m *mixed) one(ctx context.Context, rnd *rand.Rand, i int) string {
	kind := m.pick(rnd)
	acct, have := m.randomAccount(rnd)
	if !have {
		kind = "create"
	}
	m.sent.Add(1)
	switch kind {
	case "create":
		local := m.o.prefix + strconv.Itoa(i)
		addr := local + "@" + m.domain
		status, _, unanswered, err := m.send(ctx, false, kind, addr, http.MethodPost, "/api/v1/domains/"+url.PathEscape(m.domain)+"/accounts",
			map[string]any{"local_part": local, "display_name": "Load User " + strconv.Itoa(i)})
		if err == nil && (ok2xx(status) || (unanswered && status == http.StatusConflict)) {
			m.mu.Lock()
			m.accounts = append(m.accounts, addr)
			m.mu.Unlock()
		}
	case "modify":
		_, _, _, _ = m.send(ctx, false, kind, acct, http.MethodPatch, "/api/v1/accounts/"+url.PathEscape(acct),
			map[string]any{"display_name": fmt.Sprintf("Load User %d (changed by command %d)", i, i)})
	case "alias":
		local, _, _ := strings.Cut(acct, "@")
		alias := fmt.Sprintf("%s-a%d@%s", local, i, m.domain)
		_, _, _, _ = m.send(ctx, false, kind, alias, http.MethodPost, "/api/v1/accounts/"+url.PathEscape(acct)+"/aliases", map[string]any{"alias": alias})
	case "list_members":
		l := m.lists[rnd.IntN(len(m.lists))]
		members := []string{fmt.Sprintf("m%d-1@members.example", i), fmt.Sprintf("m%d-2@members.example", i)}
		_, _, _, _ = m.send(ctx, false, kind, l, http.MethodPost, "/api/v1/lists/"+url.PathEscape(l)+"/members", map[string]any{"members": members})
	case "usage":
		// A batch of up to 5 accounts, each at its next level (50%, then 90%); an account is
		// in one batch at a time, so its reports arrive in order.
		var batch []string
		var levels []int
		m.mu.Lock()
		for k := 0; k < 10 && len(batch) < 5; k++ {
			a := m.accounts[rnd.IntN(len(m.accounts))]
			if n := m.usage[a]; n < 2 && !contains(batch, a) {
				batch = append(batch, a)
				levels = append(levels, n)
				m.usage[a] = n + 10 // in flight
			}
		}
		m.mu.Unlock()
		if len(batch) == 0 {
			m.sent.Add(-1)
			return m.one(ctx, rnd, i)
		}
		reports := make([]map[string]any, len(batch))
		for k, a := range batch {
			used := mixedUsageLow
			if levels[k] == 1 {
				used = mixedUsageHi
			}
			reports[k] = map[string]any{"address": a, "used_bytes": used}
		}
		status, _, _, err := m.send(ctx, true, kind, strings.Join(batch, ","), http.MethodPost, "/api/v1/usage", map[string]any{"reports": reports})
		m.mu.Lock()
		for k, a := range batch {
			if err == nil && ok2xx(status) {
				m.usage[a] = levels[k] + 1
			} else {
				m.usage[a] = levels[k]
			}
		}
		m.mu.Unlock()
	case "read":
		_, _, _, _ = m.send(ctx, false, kind, acct, http.MethodGet, "/api/v1/accounts/"+url.PathEscape(acct), nil)
	case "gal":
		// What a user types: the first letters of a display name's number ("Load User 12…").
		q := "user " + strconv.Itoa(rnd.IntN(1000))
		_, _, _, _ = m.send(ctx, false, kind, q, http.MethodGet,
			"/api/v1/domains/"+url.PathEscape(m.domain)+"/gal/search?q="+url.QueryEscape(q)+"&limit=10", nil)
	}
	return kind
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// removeDomain asks for the removal domain's removal and returns the job's id.
func (m *mixed) removeDomain(ctx context.Context) (string, error) {
	m.sent.Add(1)
	status, b, unanswered, err := m.send(ctx, false, "remove_domain", m.removal, http.MethodDelete, "/api/v1/domains/"+url.PathEscape(m.removal), nil)
	if err != nil {
		return "", fmt.Errorf("remove %s: %w", m.removal, err)
	}
	if !ok2xx(status) {
		if unanswered {
			// An earlier attempt may have started it; the checks look for its job.
			return "", nil
		}
		return "", fmt.Errorf("remove %s: HTTP %d: %s", m.removal, status, sample(nil, b))
	}
	var r struct {
		Job struct {
			ID json.Number `json:"id"`
		} `json:"job"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return "", fmt.Errorf("remove %s: %w in %s", m.removal, err, sample(nil, b))
	}
	return r.Job.ID.String(), nil
}

func (m *mixed) print(out io.Writer, elapsed time.Duration, job string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ok, errs := 0, 0
	for k, v := range m.status {
		_, st, _ := strings.Cut(k, ":")
		if strings.HasPrefix(k, "setup_") {
			continue
		}
		if n, _ := strconv.Atoi(st); ok2xx(n) {
			ok += v
		} else {
			errs += v
		}
	}
	var all []time.Duration
	for _, ds := range m.lat {
		all = append(all, ds...)
	}
	q, _ := quantiles(all, 0.5, 0.9, 0.99, 1)
	rate := float64(m.sent.Load()) / elapsed.Seconds()
	fmt.Fprintf(out, "\n%d commands in %s: %.1f commands/s; %d answered 2xx, %d other answers or no answer (%d without answer)\n",
		m.sent.Load(), elapsed.Round(time.Millisecond), rate, ok, errs, m.noAnswer.Load())
	fmt.Fprintf(out, "latency of answered requests  p50 %s ms  p90 %s ms  p99 %s ms  max %s ms\n", ms(q[0]), ms(q[1]), ms(q[2]), ms(q[3]))
	fmt.Fprintf(out, "status by kind  %s\n", joinCounts(m.status))
	warned := 0
	for _, n := range m.usage {
		if n == 2 {
			warned++
		}
	}
	fmt.Fprintf(out, "accounts %d, reported over the warning line %d, removal job %s\n", len(m.accounts), warned, job)
	fields := []string{
		"mode=mixed", "n=" + strconv.Itoa(m.o.n), "c=" + strconv.Itoa(m.o.c), "ok=" + strconv.Itoa(ok),
		"errors=" + strconv.Itoa(errs), "elapsed_s=" + strconv.FormatFloat(elapsed.Seconds(), 'f', 3, 64),
		"rate=" + strconv.FormatFloat(rate, 'f', 1, 64),
		"p50_ms=" + ms(q[0]), "p90_ms=" + ms(q[1]), "p99_ms=" + ms(q[2]), "max_ms=" + ms(q[3]),
		"status=" + joinCounts(m.status),
		"no_answer=" + strconv.FormatInt(m.noAnswer.Load(), 10), "accounts=" + strconv.Itoa(len(m.accounts)),
		"warned=" + strconv.Itoa(warned), "removal_job=" + job, "removal_domain=" + m.removal,
	}
	fmt.Fprintf(out, "RESULT %s\n", strings.Join(fields, " "))
}

// doID is do with the given X-Request-Id.
func (c *client) doID(ctx context.Context, id, method, path string, body any) (int, []byte, error) {
	return c.doHeaders(ctx, map[string]string{"X-Request-Id": id}, method, path, body)
}
