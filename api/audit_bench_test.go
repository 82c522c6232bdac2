package api_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"mailplane/api"
	"mailplane/api/apitest"
	"mailplane/domain"
	"mailplane/eventstore"
)

// BenchmarkAccountAsOf is issue 10's as_of benchmark: GET /api/v1/accounts/{address}?as_of= of
// an account with BENCH_ASOF_EVENTS events (1,000), as of the moment of its last one (so every
// event is folded), against the plain current read of the same account (read model) in the same
// run. Each iteration sends one of each, interleaved so that both see the same load; p50 and p99
// of each are reported, and the ratio of the p99s. Issue 10's target: as_of p99 ≤ 20 ms.
//
//	go test ./api -run '^$' -bench AccountAsOf -benchtime 500x
func BenchmarkAccountAsOf(b *testing.B) {
	events := envInt("BENCH_ASOF_EVENTS", 1000)
	e, bare := benchEnv(b)
	ctx := context.Background()
	dom := e.CreateDomain(b, nil)
	acc := e.CreateAccount(b, dom, map[string]any{"display_name": "v0"})
	addr := mustAddressB(b, acc)
	stream := eventstore.Stream{ID: domain.AccountStreamID(addr), Type: domain.StreamTypeAccount, Domain: dom}
	// Display-name changes, as a long-lived account collects them, in batches of 100.
	for v := 1; v < events; {
		var evs []eventstore.Event
		for ; v < events && len(evs) < 100; v++ {
			name := "v" + strconv.Itoa(v)
			evs = append(evs, domain.AccountUpdated{Address: addr, DisplayName: &name})
		}
		_, err := e.Store.Append(ctx, stream, eventstore.Exact(v-len(evs)), eventstore.Metadata{Actor: "bench"}, evs...)
		require.NoError(b, err)
	}
	var last time.Time
	require.NoError(b, e.Pool.QueryRow(ctx, `SELECT max(recorded_at) FROM events WHERE stream_id = $1`, stream.ID).Scan(&last))
	path := "/api/v1/accounts/" + acc
	asOf := path + "?as_of=" + url.QueryEscape(last.Format(time.RFC3339Nano))
	want := "v" + strconv.Itoa(events-1)
	// Both answer the last state (the current read once the read model has caught up).
	require.Eventually(b, func() bool {
		r := e.Do(b, http.MethodGet, path, e.AdminToken, nil)
		return r.Status == http.StatusOK && r.JSON(b)["display_name"] == want
	}, time.Minute, 50*time.Millisecond)
	// The GAL projection too: catching up with 1,000 events of one account, it would share the
	// CPUs with the requests measured (it did, and made a third of the first runs' profile).
	e.WaitCaughtUp(b)
	r := e.Do(b, http.MethodGet, asOf, e.AdminToken, nil)
	require.Equal(b, http.StatusOK, r.Status, "%s", r.Body)
	require.Equal(b, want, r.JSON(b)["display_name"])
	require.Equal(b, `"`+strconv.Itoa(events)+`"`, r.Header.Get("ETag"))

	get := func(p string) time.Duration {
		req, _ := http.NewRequest(http.MethodGet, bare+p, nil)
		req.Header.Set("Authorization", "Bearer "+e.AdminToken)
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		d := time.Since(start)
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("GET %s: %d", p, resp.StatusCode)
		}
		return d
	}
	for range 20 { // warm the connection, the plan cache and the page cache
		get(path)
		get(asOf)
	}
	var cur, past []time.Duration
	for b.Loop() {
		cur = append(cur, get(path))
		past = append(past, get(asOf))
	}
	pc, pp := quantile(cur, 0.99), quantile(past, 0.99)
	b.ReportMetric(ms(quantile(cur, 0.5)), "current-p50-ms")
	b.ReportMetric(ms(pc), "current-p99-ms")
	b.ReportMetric(ms(quantile(past, 0.5)), "asof-p50-ms")
	b.ReportMetric(ms(pp), "asof-p99-ms")
	b.ReportMetric(float64(pp)/float64(pc), "asof/current-p99")
	b.ReportMetric(float64(events), "events")
}

// benchEnv is an Env whose reads wait long for the read model: the machine is shared, and a
// 503 in the set-up would end the run before it measures anything. bare serves the same server
// without the Env's contract check (which validates every response against the OpenAPI
// document, test-only work that would be measured with the server's).
func benchEnv(b *testing.B) (e *apitest.Env, bare string) {
	e = apitest.NewWith(b, apitest.Options{Config: api.Config{ReadYourWritesTimeout: 2 * time.Minute}})
	hs := httptest.NewServer(e.Server.Handler())
	b.Cleanup(hs.Close)
	return e, hs.URL
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// quantile is the q-quantile of ds (nearest rank).
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.5) - 1
	return s[max(0, min(i, len(s)-1))]
}

func mustAddressB(b *testing.B, s string) domain.Address {
	b.Helper()
	a, err := domain.ParseAddress(s)
	require.NoError(b, err)
	return a
}

// BenchmarkHistoryExportHTTP is issue 10's export benchmark: GET
// /api/v1/domains/{domain}/history/export of domains of BENCH_EXPORT_SIZES events (100,000 and
// 1,000,000), read to the end by the client, against a raw COPY (SELECT … FROM events WHERE
// domain = $1 ORDER BY transaction_id, position) TO STDOUT of the same events in the same run.
// Reported per size: events/s of each and their ratio, and what must stay flat as the domain
// grows tenfold: the peak heap growth (sampled every 10 ms) and the process's peak RSS during the
// export (VmHWM, reset through /proc/self/clear_refs before each pass; server and client are
// this process). The events are seeded through the store's batch appends (real chains), 100 a
// stream, with the projections stopped so that they do not compete.
//
//	go test ./api -run '^$' -bench HistoryExportHTTP -benchtime 1x -timeout 60m
func BenchmarkHistoryExportHTTP(b *testing.B) {
	var sizes []int
	for _, s := range strings.Split(envString("BENCH_EXPORT_SIZES", "100000,1000000"), ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		require.NoError(b, err)
		sizes = append(sizes, n)
	}
	e, bare := benchEnv(b)
	ctx := context.Background()
	doms := make([]string, len(sizes))
	for i := range sizes {
		doms[i] = e.CreateDomain(b, nil)
	}
	e.StopProjections()
	for i, n := range sizes {
		start := time.Now()
		seedDomainEvents(b, e, doms[i], n)
		fmt.Fprintf(os.Stderr, "seeded %d events in %s in %s\n", n, doms[i], time.Since(start).Round(time.Millisecond))
	}
	_, err := e.Pool.Exec(ctx, `VACUUM ANALYZE events`)
	require.NoError(b, err)

	for i, n := range sizes {
		dom := doms[i]
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			var exportTime, copyTime time.Duration
			var exported, copied, lines int
			var peakHeap, peakRSS uint64
			for b.Loop() {
				// The baseline: the same rows straight out of Postgres.
				conn, err := e.Pool.Acquire(ctx)
				require.NoError(b, err)
				cw := &lineCounter{}
				start := time.Now()
				_, err = conn.Conn().PgConn().CopyTo(ctx, cw, `COPY (SELECT position, transaction_id, stream_id, stream_type,
					stream_version, event_type, schema_version, data, metadata, recorded_at, prev_hash, hash FROM events
					WHERE domain = '`+dom+`' ORDER BY transaction_id, position) TO STDOUT`)
				copyTime += time.Since(start)
				conn.Release()
				require.NoError(b, err)
				copied += cw.lines

				heap, rss, stop := sampleMemory(b)
				req, _ := http.NewRequest(http.MethodGet, bare+"/api/v1/domains/"+dom+"/history/export", nil)
				req.Header.Set("Authorization", "Bearer "+e.AdminToken)
				start = time.Now()
				resp, err := http.DefaultClient.Do(req)
				require.NoError(b, err)
				lc := &lineCounter{}
				_, err = io.Copy(lc, bufio.NewReaderSize(resp.Body, 1<<16))
				resp.Body.Close()
				exportTime += time.Since(start)
				stop()
				require.NoError(b, err)
				require.Equal(b, http.StatusOK, resp.StatusCode)
				exported += n
				lines = lc.lines
				peakHeap, peakRSS = max(peakHeap, heap()), max(peakRSS, rss())
			}
			require.GreaterOrEqual(b, lines, n, "every event is in the export")
			rate, copyRate := float64(exported)/exportTime.Seconds(), float64(copied)/copyTime.Seconds()
			b.ReportMetric(rate, "events/s")
			b.ReportMetric(copyRate, "copy-events/s")
			b.ReportMetric(rate/copyRate, "export/copy")
			b.ReportMetric(float64(peakHeap)/(1<<20), "peak-heap-growth-MiB")
			b.ReportMetric(float64(peakRSS)/(1<<20), "peak-rss-MiB")
		})
	}
}

func envString(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// lineCounter counts the lines written to it and throws them away.
type lineCounter struct{ lines int }

func (c *lineCounter) Write(p []byte) (int, error) {
	c.lines += bytes.Count(p, []byte{'\n'})
	return len(p), nil
}

// seedDomainEvents appends n events to dom through the store: accounts of 100 events each (one
// AccountCreated, then display-name changes), appended a stream a call by two writers.
func seedDomainEvents(b *testing.B, e *apitest.Env, dom string, n int) {
	b.Helper()
	ctx := context.Background()
	const perStream = 100
	streams := (n + perStream - 1) / perStream
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= streams {
					return
				}
				addr := domain.Address{Local: "u" + strconv.Itoa(i), Domain: dom}
				count := min(perStream, n-i*perStream)
				evs := make([]eventstore.Event, 0, count)
				evs = append(evs, domain.AccountCreated{Address: addr, DisplayName: "User " + strconv.Itoa(i),
					Status: domain.StatusActive, Attributes: map[string]string{"dept": "sales"}, CreatedAt: time.Now().UTC()})
				for v := 1; v < count; v++ {
					name := "User " + strconv.Itoa(i) + " v" + strconv.Itoa(v)
					evs = append(evs, domain.AccountUpdated{Address: addr, DisplayName: &name})
				}
				_, err := e.Store.Append(ctx, eventstore.Stream{ID: domain.AccountStreamID(addr), Type: domain.StreamTypeAccount, Domain: dom},
					eventstore.NoStream, eventstore.Metadata{Actor: "bench", SourceIP: "192.0.2.1"}, evs...)
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(b, err)
	}
}

// sampleMemory samples the heap in use every 10 ms from now on, and resets the process's peak
// RSS. heap answers the peak growth over the heap at the start; rss the peak RSS since the reset
// (0 where /proc is not Linux's); stop ends the sampling.
func sampleMemory(b *testing.B) (heap, rss func() uint64, stop func()) {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	base := m.HeapInuse
	var peak atomic.Uint64
	// "5" resets VmHWM to the current RSS (Linux ≥ 4.0).
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapInuse > base && m.HeapInuse-base > peak.Load() {
				peak.Store(m.HeapInuse - base)
			}
			select {
			case <-done:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { close(done); <-finished }) }
	heap = func() uint64 { return peak.Load() }
	rss = func() uint64 {
		status, err := os.ReadFile("/proc/self/status")
		if err != nil {
			return 0
		}
		for _, l := range strings.Split(string(status), "\n") {
			if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
				kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
				return kb << 10
			}
		}
		return 0
	}
	return heap, rss, stop
}
