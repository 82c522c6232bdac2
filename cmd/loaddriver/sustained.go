package main

// Sustained mode (-mode sustained): mixed commands and reads at a fixed rate for -duration
// (issue 13, "Sustained load"; scripts/load.sh). Open loop: a dispatcher hands out one request
// every 1/-rate seconds to -c workers, and each request's latency is counted from the moment
// it was due, so a server that falls behind shows in the latencies (and in "missed": requests
// that were due while every worker was busy and the queue full) rather than in a rate that
// quietly drops. Every -sample the driver reads the projections' lag from the server's
// /metrics and the resident set of each -watch-pids process.
//
// Kinds (sustainedWeights): the mixed mode's commands (create, modify, alias, list_members,
// usage) and two reads: read (GET /accounts/{a}) and gal (GET /domains/{d}/gal/search).
// Requests are not retried: a 503 is an error of the run.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

var sustainedWeights = []mixKind{
	{"create", 20}, {"modify", 15}, {"alias", 10}, {"list_members", 5}, {"usage", 10}, {"read", 30}, {"gal", 10},
}

func runSustained(ctx context.Context, o options, out io.Writer, urls []string, token string) error {
	if o.rate <= 0 || o.duration <= 0 {
		return fmt.Errorf("-mode sustained needs -rate and -duration")
	}
	j, _ := openJournal("")
	m := &mixed{o: o, j: j, domain: o.domain, removal: "rm-" + strings.TrimSuffix(o.prefix, "-") + "." + o.domain,
		usage: map[string]int{}, status: map[string]int{}, lat: map[string][]time.Duration{}, weights: sustainedWeights}
	for _, u := range urls {
		m.clients = append(m.clients, &client{base: u, http: newHTTPClient(o), token: token})
	}
	if err := m.setup(ctx, out); err != nil {
		return err
	}
	// A few accounts first, so that every kind has targets from the start.
	rnd0 := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 50; i++ {
		saved := m.weights
		m.weights = []mixKind{{"create", 1}}
		m.one(ctx, rnd0, -1-i)
		m.weights = saved
	}
	m.status = map[string]int{}
	// Setup is retried (a 503 while the read models catch up); the measured requests are not.
	m.o.retryFor = 0

	metricsURL := o.metricsURL
	if metricsURL == "" {
		metricsURL = urls[0] + "/metrics"
	}
	mw := watchMetrics(metricsURL, parsePIDs(o.watchPIDs), o.sample, out)

	type job struct {
		i   int
		due time.Time
	}
	jobs := make(chan job, o.c)
	var lmu sync.Mutex
	lat := map[string][]time.Duration{}
	var missed, done atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < o.c; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(w)))
			for jb := range jobs {
				kind := m.one(ctx, rnd, jb.i)
				d := time.Since(jb.due)
				done.Add(1)
				lmu.Lock()
				lat[kind] = append(lat[kind], d)
				lmu.Unlock()
			}
		}(w)
	}
	fmt.Fprintf(out, "sustained: %.0f requests/s for %s over %s, %d workers, sampling every %s\n",
		o.rate, o.duration, strings.Join(urls, " "), o.c, o.sample)
	start := time.Now()
	end := start.Add(o.duration)
	interval := time.Duration(float64(time.Second) / o.rate)
	tick := time.NewTicker(2 * time.Millisecond)
	next := 0
dispatch:
	for {
		select {
		case <-ctx.Done():
			break dispatch
		case now := <-tick.C:
			for {
				due := start.Add(time.Duration(next) * interval)
				if due.After(now) {
					break
				}
				if !due.Before(end) {
					break dispatch
				}
				select {
				case jobs <- job{i: next, due: due}:
				default:
					missed.Add(1)
				}
				next++
			}
		}
	}
	tick.Stop()
	close(jobs)
	wg.Wait()
	elapsed := time.Since(start)
	samples := mw.stop()
	if ctx.Err() != nil {
		return ctx.Err()
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	ok, errs := 0, 0
	for k, v := range m.status {
		_, st, _ := strings.Cut(k, ":")
		if n, _ := strconv.Atoi(st); ok2xx(n) {
			ok += v
		} else {
			errs += v
		}
	}
	var all []time.Duration
	fields := []string{"mode=sustained", "target_rate=" + strconv.FormatFloat(o.rate, 'f', 0, 64),
		"duration_s=" + strconv.FormatFloat(elapsed.Seconds(), 'f', 1, 64), "c=" + strconv.Itoa(o.c), "urls=" + strconv.Itoa(len(urls))}
	fmt.Fprintf(out, "\n%-13s %8s %9s %9s %9s\n", "kind", "count", "p50 ms", "p99 ms", "max ms")
	kinds := make([]string, 0, len(lat))
	for k := range lat {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		all = append(all, lat[k]...)
		q, _ := quantiles(lat[k], 0.5, 0.99, 1)
		fmt.Fprintf(out, "%-13s %8d %9s %9s %9s\n", k, len(lat[k]), ms(q[0]), ms(q[1]), ms(q[2]))
		fields = append(fields, "n_"+k+"="+strconv.Itoa(len(lat[k])), "p50_ms_"+k+"="+ms(q[0]), "p99_ms_"+k+"="+ms(q[1]))
	}
	q, _ := quantiles(all, 0.5, 0.99, 1)
	rate := float64(done.Load()) / elapsed.Seconds()
	fmt.Fprintf(out, "%-13s %8d %9s %9s %9s\n", "all", len(all), ms(q[0]), ms(q[1]), ms(q[2]))
	fmt.Fprintf(out, "%d requests in %s: %.1f/s (target %.0f/s); %d answered 2xx, %d other answers or no answer; %d missed (due while every worker was busy)\n",
		done.Load(), elapsed.Round(time.Millisecond), rate, o.rate, ok, errs, missed.Load())
	fmt.Fprintf(out, "status by kind  %s\n", joinCounts(m.status))
	fields = append(fields, "rate="+strconv.FormatFloat(rate, 'f', 1, 64), "ok="+strconv.Itoa(ok), "errors="+strconv.Itoa(errs),
		"missed="+strconv.FormatInt(missed.Load(), 10), "p50_ms="+ms(q[0]), "p99_ms="+ms(q[1]), "max_ms="+ms(q[2]),
		"accounts="+strconv.Itoa(len(m.accounts)))
	fields = append(fields, samples.fields(out)...)
	fmt.Fprintf(out, "RESULT %s\n", strings.Join(fields, " "))
	return nil
}

func parsePIDs(s string) []int {
	var pids []int
	for _, f := range strings.Split(s, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && n > 0 {
			pids = append(pids, n)
		}
	}
	return pids
}

// metricsWatch samples the projections' lag (from /metrics) and processes' RSS.
type metricsWatch struct {
	sampler *sampler
	s       samples
}

// samples holds one series per projection and per process, a value per sample.
type samples struct {
	at         []time.Duration
	lagEvents  map[string][]float64
	lagSeconds map[string][]float64
	rssKiB     map[int][]int64
	pids       []int
	failures   int
}

func watchMetrics(metricsURL string, pids []int, every time.Duration, out io.Writer) *metricsWatch {
	w := &metricsWatch{s: samples{lagEvents: map[string][]float64{}, lagSeconds: map[string][]float64{}, rssKiB: map[int][]int64{}, pids: pids}}
	hc := &http.Client{Timeout: 5 * time.Second}
	start := time.Now()
	sampleOnce := func() {
		t := time.Since(start)
		ev, secs, err := scrapeLag(hc, metricsURL)
		if err != nil {
			w.s.failures++
			fmt.Fprintf(out, "sample t=%.0fs metrics: %v\n", t.Seconds(), err)
			return
		}
		w.s.at = append(w.s.at, t)
		line := fmt.Sprintf("sample t=%.0fs", t.Seconds())
		for _, name := range sortedNames(ev) {
			w.s.lagEvents[name] = append(w.s.lagEvents[name], ev[name])
			w.s.lagSeconds[name] = append(w.s.lagSeconds[name], secs[name])
			line += fmt.Sprintf(" %s=%.0fev/%.2fs", name, ev[name], secs[name])
		}
		for _, pid := range pids {
			kb, _ := vmRSS(pid)
			w.s.rssKiB[pid] = append(w.s.rssKiB[pid], kb)
			line += fmt.Sprintf(" rss[%d]=%.1fMiB", pid, float64(kb)/1024)
		}
		fmt.Fprintln(out, line)
	}
	w.sampler = startSampler(every, sampleOnce)
	return w
}

func (w *metricsWatch) stop() samples {
	w.sampler.stop()
	return w.s
}

func sortedNames[V any](m map[string]V) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// scrapeLag reads mailplane_projection_lag_events and _lag_seconds per projection.
func scrapeLag(hc *http.Client, u string) (map[string]float64, map[string]float64, error) {
	resp, err := hc.Get(u)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	ev, secs := map[string]float64{}, map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		var into map[string]float64
		switch {
		case strings.HasPrefix(line, "mailplane_projection_lag_events{"):
			into = ev
		case strings.HasPrefix(line, "mailplane_projection_lag_seconds{"):
			into = secs
		default:
			continue
		}
		_, rest, _ := strings.Cut(line, `projection="`)
		name, rest, _ := strings.Cut(rest, `"`)
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			into[name] = v
		}
	}
	if len(ev) == 0 {
		return nil, nil, fmt.Errorf("no mailplane_projection_lag_events in %s", u)
	}
	return ev, secs, sc.Err()
}

// fields prints the samples' summary and returns it as RESULT fields: per projection the p99
// and max of the lag in events and seconds and the mean backlog of the first and last third
// (flat: the last is not above the first); per process the RSS at the start, the end and its
// maximum (flat: no growth over the run).
func (s samples) fields(out io.Writer) []string {
	var f []string
	for _, name := range sortedNames(s.lagEvents) {
		ev, secs := s.lagEvents[name], s.lagSeconds[name]
		key := strings.ReplaceAll(name, ".", "_")
		first, last := thirds(ev)
		fmt.Fprintf(out, "projection %-15s lag events p50 %.0f p99 %.0f max %.0f; seconds p99 %.2f max %.2f; backlog mean first/last third %.0f / %.0f\n",
			name, pct(ev, 0.5), pct(ev, 0.99), pct(ev, 1), pct(secs, 0.99), pct(secs, 1), first, last)
		f = append(f, fmt.Sprintf("lag_ev_p99_%s=%.0f", key, pct(ev, 0.99)), fmt.Sprintf("lag_ev_max_%s=%.0f", key, pct(ev, 1)),
			fmt.Sprintf("lag_s_p99_%s=%.3f", key, pct(secs, 0.99)), fmt.Sprintf("lag_s_max_%s=%.3f", key, pct(secs, 1)),
			fmt.Sprintf("backlog_first_%s=%.0f", key, first), fmt.Sprintf("backlog_last_%s=%.0f", key, last),
			fmt.Sprintf("backlog_end_%s=%.0f", key, lastOf(ev)))
	}
	var rf, rl, rm []string
	for _, pid := range s.pids {
		r := s.rssKiB[pid]
		if len(r) == 0 {
			continue
		}
		series := make([]string, 0, len(r))
		for _, kb := range r {
			series = append(series, strconv.FormatInt(kb/1024, 10))
		}
		fmt.Fprintf(out, "rss pid %d MiB every sample: %s\n", pid, strings.Join(series, " "))
		rf = append(rf, fmt.Sprintf("%.1f", float64(r[0])/1024))
		rl = append(rl, fmt.Sprintf("%.1f", float64(r[len(r)-1])/1024))
		rm = append(rm, fmt.Sprintf("%.1f", float64(slices.Max(r))/1024))
	}
	if len(rf) > 0 {
		f = append(f, "rss_first_mib="+strings.Join(rf, ","), "rss_last_mib="+strings.Join(rl, ","), "rss_max_mib="+strings.Join(rm, ","))
	}
	f = append(f, "samples="+strconv.Itoa(len(s.at)), "sample_failures="+strconv.Itoa(s.failures))
	return f
}

func thirds(xs []float64) (float64, float64) {
	n := len(xs) / 3
	if n == 0 {
		return mean(xs), mean(xs)
	}
	return mean(xs[:n]), mean(xs[len(xs)-n:])
}

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	t := 0.0
	for _, x := range xs {
		t += x
	}
	return t / float64(len(xs))
}

func lastOf(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	return xs[len(xs)-1]
}

// pct is the q-quantile of xs (nearest rank).
func pct(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}
