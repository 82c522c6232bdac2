package eventstore_test

// Benchmarks of the event store against PostgreSQL (docs/benchmarks.md). Each reports events/s;
// scripts/bench.sh runs them with fixed -benchtime values and divides by raw baselines (pgbench,
// psql \copy) measured in the same run.
//
//	BenchmarkAppendSingle                 (b) one event per Append, a new stream each, 8 goroutines
//	BenchmarkAppendSingleOwnStream        (b') one event per Append, Exact(v) on the goroutine's own stream
//	BenchmarkAppendSingleAutocommit       what-if: AppendTx on the pool, no BEGIN/COMMIT (see the doc)
//	BenchmarkAppendBatch100               (c) 100 events per Append, 8 goroutines; b.N counts events
//	BenchmarkReadAll/page=N               (d) ReadAll from position 0 in pages; b.N counts full passes
//	BenchmarkProjectionDelivery/batch=N   the projection runner with a no-op projection
//
// Environment:
//
//	MAILPLANE_BENCH_READ_URL     database for ReadAll and ProjectionDelivery (migrated; seeded up
//	                             to MAILPLANE_BENCH_READ_EVENTS if it has fewer). Without it a fresh
//	                             test database is used. bench.sh sets it so that psql's \copy reads
//	                             the very same rows.
//	MAILPLANE_BENCH_READ_EVENTS  events to read (default 500000)
//	MAILPLANE_BENCH_DELIVERY_EVENTS  events a projection run must handle (default 100000)
//	MAILPLANE_BENCH_WRITERS      concurrent writers (default 8, like pgbench -c 8)

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"mailplane/eventstore"
	"mailplane/migrations/testdb"
	"mailplane/projections"
)

// benchAccountCreated carries the same payload as the pgbench baseline's row.
type benchAccountCreated struct {
	Address     string `json:"address"`
	DisplayName string `json:"display_name"`
	Quota       int64  `json:"quota"`
}

func (benchAccountCreated) EventType() string { return "BenchAccountCreated" }

var benchEvent = benchAccountCreated{Address: "user@example.test", DisplayName: "A User", Quota: 1 << 30}

// benchMeta is the baseline row's metadata.
var benchMeta = eventstore.Metadata{Actor: "admin@example.test", RequestID: "r1", SourceIP: "127.0.0.1"}

func benchRegistry(b *testing.B) *eventstore.Registry {
	b.Helper()
	r, err := eventstore.NewRegistry([]eventstore.Event{benchAccountCreated{}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	return r
}

func envInt(b *testing.B, name string, def int) int {
	b.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: a positive integer is required", name, v)
	}
	return n
}

func writers(b *testing.B) int { return envInt(b, "MAILPLANE_BENCH_WRITERS", 8) }

// benchPool opens a pool on url sized for the writers: pgxpool's default (4 connections on
// this machine) would cap 8 goroutines at 4 concurrent transactions.
func benchPool(b *testing.B, url string) *pgxpool.Pool {
	b.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		b.Fatal(err)
	}
	cfg.MaxConns = int32(writers(b) + 4)
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	return pool
}

// freshStore returns a store over a new migrated test database.
func freshStore(b *testing.B) (*eventstore.Postgres, *pgxpool.Pool) {
	b.Helper()
	pool := benchPool(b, testdb.NewURL(b))
	return eventstore.NewPostgres(pool, benchRegistry(b)), pool
}

func runID() string {
	p := make([]byte, 4)
	_, _ = rand.Read(p)
	return hex.EncodeToString(p)
}

// fanOut runs n items on w goroutines, handing out indexes 0..n-1, and stops at the first error.
func fanOut(n, w int, fn func(worker, i int) error) error {
	var next atomic.Int64
	var first error
	var once sync.Once
	var failed atomic.Bool
	var wg sync.WaitGroup
	for g := 0; g < w; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !failed.Load() {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(g, i); err != nil {
					once.Do(func() { first = err; failed.Store(true) })
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}

func reportRate(b *testing.B, events int) {
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}

func accountStream(run string, i int) eventstore.Stream {
	return eventstore.Stream{ID: "account-" + run + "-" + strconv.Itoa(i), Type: "account", Domain: "example.test"}
}

// BenchmarkAppendSingle is figure (b): one event per Append (one transaction, like pgbench's
// single-row INSERT), each to a new stream with NoStream, from 8 goroutines.
func BenchmarkAppendSingle(b *testing.B) {
	s, _ := freshStore(b)
	ctx := context.Background()
	run := runID()
	b.ResetTimer()
	err := fanOut(b.N, writers(b), func(_, i int) error {
		_, err := s.Append(ctx, accountStream(run, i), eventstore.NoStream, benchMeta, benchEvent)
		return err
	})
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	reportRate(b, b.N)
}

// BenchmarkAppendSingleOwnStream is (b) with an expected version: each goroutine appends to its
// own stream with Exact(v), so every append also reads the stream's head.
func BenchmarkAppendSingleOwnStream(b *testing.B) {
	s, _ := freshStore(b)
	ctx := context.Background()
	run := runID()
	w := writers(b)
	versions := make([]int, w)
	b.ResetTimer()
	err := fanOut(b.N, w, func(g, _ int) error {
		_, err := s.Append(ctx, accountStream(run, g), eventstore.Exact(versions[g]), benchMeta, benchEvent)
		versions[g]++
		return err
	})
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	reportRate(b, b.N)
}

// BenchmarkAppendSingleAutocommit measures what (b) would be if Append sent its single INSERT
// without BEGIN/COMMIT (AppendTx on the pool: one round trip instead of three). A single
// statement is atomic on its own, so with NoStream and no idempotency key this is the same write.
func BenchmarkAppendSingleAutocommit(b *testing.B) {
	s, pool := freshStore(b)
	ctx := context.Background()
	run := runID()
	b.ResetTimer()
	err := fanOut(b.N, writers(b), func(_, i int) error {
		_, err := s.AppendTx(ctx, pool, accountStream(run, i), eventstore.NoStream, benchMeta, benchEvent)
		return err
	})
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	reportRate(b, b.N)
}

const batchSize = 100

func batch(n int) []eventstore.Event {
	evs := make([]eventstore.Event, n)
	for i := range evs {
		evs[i] = benchEvent
	}
	return evs
}

// BenchmarkAppendBatch100 is figure (c): one Append of 100 events (a new stream each) per call,
// from 8 goroutines. b.N counts events, so -benchtime=400000x appends 400,000 events.
func BenchmarkAppendBatch100(b *testing.B) {
	s, _ := freshStore(b)
	ctx := context.Background()
	run := runID()
	evs := batch(batchSize)
	calls := (b.N + batchSize - 1) / batchSize
	b.ResetTimer()
	err := fanOut(calls, writers(b), func(_, i int) error {
		n := min(batchSize, b.N-i*batchSize)
		_, err := s.Append(ctx, accountStream(run, i), eventstore.NoStream, benchMeta, evs[:n]...)
		return err
	})
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	reportRate(b, b.N)
}

// readDB returns the store the read benchmarks use, holding at least want events.
func readDB(b *testing.B) (*eventstore.Postgres, *pgxpool.Pool, int) {
	b.Helper()
	url := os.Getenv("MAILPLANE_BENCH_READ_URL")
	if url == "" {
		url = testdb.NewURL(b)
	}
	pool := benchPool(b, url)
	s := eventstore.NewPostgres(pool, benchRegistry(b))
	want := envInt(b, "MAILPLANE_BENCH_READ_EVENTS", 500_000)
	n, err := seed(context.Background(), s, pool, want, writers(b))
	if err != nil {
		b.Fatal(err)
	}
	return s, pool, n
}

// seed appends 100-event batches until the store holds at least want events and returns how
// many it holds.
func seed(ctx context.Context, s *eventstore.Postgres, pool *pgxpool.Pool, want, w int) (int, error) {
	var have int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&have); err != nil {
		return 0, err
	}
	if have < want {
		run := runID()
		evs := batch(batchSize)
		start := time.Now()
		calls := (want - have + batchSize - 1) / batchSize
		if err := fanOut(calls, w, func(_, i int) error {
			_, err := s.Append(ctx, accountStream("seed-"+run, i), eventstore.NoStream, benchMeta, evs...)
			return err
		}); err != nil {
			return 0, err
		}
		fmt.Fprintf(os.Stderr, "seeded %d events in %s\n", calls*batchSize, time.Since(start).Round(time.Millisecond))
		have += calls * batchSize
		// Fresh statistics and a vacuumed visibility map, as a live table would have.
		if _, err := pool.Exec(ctx, `VACUUM ANALYZE events`); err != nil {
			return 0, err
		}
	}
	return have, nil
}

// readAll reads every event from position 0 in pages and returns how many it read.
func readAll(ctx context.Context, s *eventstore.Postgres, page int) (int, error) {
	var after eventstore.Position
	n := 0
	for {
		evs, err := s.ReadAll(ctx, after, page)
		if err != nil {
			return n, err
		}
		n += len(evs)
		if len(evs) < page {
			return n, nil
		}
		after = evs[len(evs)-1].GlobalPosition()
	}
}

// BenchmarkReadAll is figure (d): every event from position 0 through ReadAll in pages. b.N
// counts full passes over the table; bench.sh compares with psql \copy of the same rows.
func BenchmarkReadAll(b *testing.B) {
	s, _, total := readDB(b)
	ctx := context.Background()
	// One untimed pass first, as psql \copy gets one in bench.sh: both then read a warm cache.
	if _, err := readAll(ctx, s, 5000); err != nil {
		b.Fatal(err)
	}
	for _, page := range []int{1000, 5000} {
		b.Run("page="+strconv.Itoa(page), func(b *testing.B) {
			read := 0
			for b.Loop() {
				n, err := readAll(ctx, s, page)
				if err != nil {
					b.Fatal(err)
				}
				if n < total {
					b.Fatalf("read %d events, the table holds %d", n, total)
				}
				read += n
			}
			reportRate(b, read)
			b.ReportMetric(float64(total), "events/pass")
		})
	}
}

// noop counts the events it is handed and says when it has seen enough.
type noop struct {
	name   string
	target int64
	seen   atomic.Int64
	done   chan struct{}
}

func (p *noop) Name() string { return p.name }

func (p *noop) StreamTypes() []string { return nil }

func (p *noop) Handle(context.Context, pgx.Tx, eventstore.RecordedEvent) error {
	if p.seen.Add(1) == p.target {
		close(p.done)
	}
	return nil
}

// BenchmarkProjectionDelivery is the gap-safe delivery rate: a projection runner with a no-op
// projection reads the events table from position 0 until it has handled
// MAILPLANE_BENCH_DELIVERY_EVENTS events (a new projection name per pass, so each starts at 0).
func BenchmarkProjectionDelivery(b *testing.B) {
	_, pool, total := readDB(b)
	target := min(envInt(b, "MAILPLANE_BENCH_DELIVERY_EVENTS", 100_000), total)
	reg := benchRegistry(b)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, size := range []int{100, 1000} {
		b.Run("batch="+strconv.Itoa(size), func(b *testing.B) {
			handled := 0
			for b.Loop() {
				p := &noop{name: "bench-noop-" + runID(), target: int64(target), done: make(chan struct{})}
				runner, err := projections.NewRunner(pool, reg, logger, projections.Config{BatchSize: size}, p)
				if err != nil {
					b.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				stopped := make(chan error, 1)
				go func() { stopped <- runner.Run(ctx) }()
				select {
				case <-p.done:
				case <-time.After(10 * time.Minute):
					b.Error("the projection did not finish in 10 minutes")
				}
				b.StopTimer()
				cancel()
				if err := <-stopped; err != nil && !errors.Is(err, context.Canceled) {
					b.Fatal(err)
				}
				for _, st := range runner.Status() {
					if st.LastError != "" {
						b.Fatalf("projection %s: %s", st.Name, st.LastError)
					}
				}
				handled += target
				b.StartTimer()
			}
			reportRate(b, handled)
		})
	}
}

// countingWriter counts what an export writes and throws it away.
type countingWriter struct{ n int64 }

func (c *countingWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// BenchmarkExportDomain is the history export (ExportDomain) of the seeded domain, which holds
// every seeded event: events/s, and the peak heap sampled during the pass, which must stay flat
// (pages of 1,000 events) however many events the domain holds. b.N counts full exports.
func BenchmarkExportDomain(b *testing.B) {
	s, _, total := readDB(b)
	ctx := context.Background()
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	peak.Store(before.HeapInuse)
	exported := 0
	var bytes int64
	for b.Loop() {
		w := &countingWriter{}
		if err := s.ExportDomain(ctx, w, eventstore.ExportOptions{Domain: "example.test", ExportedAt: time.Now()}); err != nil {
			b.Fatal(err)
		}
		exported += total
		bytes = w.n
	}
	close(stop)
	<-sampled
	reportRate(b, exported)
	b.ReportMetric(float64(total), "events/pass")
	b.ReportMetric(float64(bytes)/float64(total), "bytes/event")
	b.ReportMetric(float64(peak.Load()-min(peak.Load(), before.HeapInuse))/(1<<20), "peak-heap-growth-MiB")
}
