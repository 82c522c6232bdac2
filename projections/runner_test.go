package projections_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"mailplane/eventstore"
	"mailplane/eventstore/eventstoretest"
	"mailplane/migrations/testdb"
	"mailplane/projections"
)

type bundle struct {
	pool  *pgxpool.Pool
	store *eventstore.Postgres
	reg   *eventstore.Registry
}

func setup(t *testing.T) bundle {
	t.Parallel()
	return bundleAt(t, testdb.NewURL(t))
}

// bundleAt connects to a test database made by testdb.NewURL (whose URL a child process can be
// given) and creates the counting projections' table.
func bundleAt(t *testing.T, url string) bundle {
	pool, err := pgxpool.New(context.Background(), url)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	reg := eventstoretest.Registry(t)
	_, err = pool.Exec(context.Background(), `CREATE TABLE counts (stream_id text PRIMARY KEY, n int NOT NULL, version int NOT NULL)`)
	require.NoError(t, err)
	return bundle{pool: pool, store: eventstore.NewPostgres(pool, reg), reg: reg}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func thing(id string) eventstore.Stream { return eventstore.Stream{ID: id, Type: "thing"} }

// counter counts events per stream. It is idempotent by version: seeing an event again changes
// nothing, which is what the projection contract asks.
type counter struct {
	name string
	// hook and hookTx run after the write, before the checkpoint can commit.
	hook   func(e eventstore.RecordedEvent)
	hookTx func(ctx context.Context, tx pgx.Tx)
}

func (c *counter) Name() string { return c.name }

func (c *counter) StreamTypes() []string { return []string{"thing"} }

func (c *counter) Handle(ctx context.Context, tx pgx.Tx, e eventstore.RecordedEvent) error {
	_, err := tx.Exec(ctx, `INSERT INTO counts (stream_id, n, version) VALUES ($1, 1, $2)
		ON CONFLICT (stream_id) DO UPDATE SET n = counts.n + 1, version = excluded.version
		WHERE counts.version < excluded.version`, e.StreamID, e.Version)
	if err == nil && c.hook != nil {
		c.hook(e)
	}
	if err == nil && c.hookTx != nil {
		c.hookTx(ctx, tx)
	}
	return err
}

// recorder remembers the order in which events arrive.
type recorder struct {
	mu   sync.Mutex
	seen []eventstore.RecordedEvent
}

func (r *recorder) Name() string { return "recorder" }

func (r *recorder) StreamTypes() []string { return nil } // every stream

func (r *recorder) Handle(_ context.Context, _ pgx.Tx, e eventstore.RecordedEvent) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = append(r.seen, e)
	return nil
}

func (r *recorder) events() []eventstore.RecordedEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]eventstore.RecordedEvent(nil), r.seen...)
}

func run(t *testing.T, b bundle, cfg projections.Config, ps ...projections.Projection) (*projections.Runner, context.CancelFunc, <-chan struct{}) {
	t.Helper()
	r, err := projections.NewRunner(b.pool, b.reg, quiet(), cfg, ps...)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = r.Run(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
	return r, cancel, done
}

// rawCounts counts events per stream straight from the events table: the independent truth.
func rawCounts(t *testing.T, b bundle) map[string]int {
	rows, err := b.pool.Query(context.Background(), `SELECT stream_id, count(*) FROM events GROUP BY stream_id`)
	require.NoError(t, err)
	out := map[string]int{}
	for rows.Next() {
		var s string
		var n int
		require.NoError(t, rows.Scan(&s, &n))
		out[s] = n
	}
	require.NoError(t, rows.Err())
	return out
}

func modelCounts(t *testing.T, b bundle) map[string]int {
	rows, err := b.pool.Query(context.Background(), `SELECT stream_id, n FROM counts`)
	require.NoError(t, err)
	out := map[string]int{}
	for rows.Next() {
		var s string
		var n int
		require.NoError(t, rows.Scan(&s, &n))
		out[s] = n
	}
	require.NoError(t, rows.Err())
	return out
}

func appendMany(t *testing.T, b bundle, streams, per int) {
	ctx := context.Background()
	for v := 0; v < per; v++ {
		for s := 0; s < streams; s++ {
			_, err := b.store.Append(ctx, thing(fmt.Sprintf("s-%d", s)), eventstore.Exact(v), eventstore.Metadata{},
				eventstoretest.ThingRenamed{Name: fmt.Sprint(v)})
			require.NoError(t, err)
		}
	}
}

func TestSubscriberNeverPassesAnOpenTransaction(t *testing.T) {
	b := setup(t)
	ctx := context.Background()

	held, err := b.pool.Begin(ctx)
	require.NoError(t, err)
	defer held.Rollback(ctx)
	heldRes, err := b.store.AppendTx(ctx, held, thing("held"), eventstore.NoStream, eventstore.Metadata{},
		eventstoretest.ThingCreated{Name: "held"})
	require.NoError(t, err)

	// 1,000 later appends commit while the first transaction stays open.
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 125; i++ {
				_, err := b.store.Append(ctx, thing(fmt.Sprintf("later-%d", w)), eventstore.Exact(i), eventstore.Metadata{},
					eventstoretest.ThingRenamed{Name: fmt.Sprint(i)})
				require.NoError(t, err)
			}
		}(w)
	}
	wg.Wait()

	rec := &recorder{}
	run(t, b, projections.Config{PollInterval: 10 * time.Millisecond}, rec)
	time.Sleep(time.Second)
	require.Empty(t, rec.events(), "nothing may be delivered past the open transaction")

	require.NoError(t, held.Commit(ctx))
	require.Eventually(t, func() bool { return len(rec.events()) >= 1001 }, 30*time.Second, 10*time.Millisecond)
	time.Sleep(200 * time.Millisecond)
	got := rec.events()
	require.Len(t, got, 1001, "every event exactly once")
	require.Equal(t, heldRes.LastPosition, got[0].Position, "the held event comes first")
	seen := map[int64]bool{}
	last := map[string]int{}
	for _, e := range got {
		require.False(t, seen[e.Position])
		seen[e.Position] = true
		require.Equal(t, last[e.StreamID]+1, e.Version, "in order per stream")
		last[e.StreamID] = e.Version
	}
}

func TestProjectionEffectIsExactlyOnceUnderDuplicates(t *testing.T) {
	b := setup(t)
	appendMany(t, b, 20, 15)
	r, _, _ := run(t, b, projections.Config{BatchSize: 7, Middlewares: []message.HandlerMiddleware{middleware.Duplicator}},
		&counter{name: "counter"})
	waitCaughtUp(t, b, "counter")
	require.Equal(t, rawCounts(t, b), modelCounts(t, b))
	require.Equal(t, int64(0), r.Status()[0].Parked)
}

func TestProjectionEffectIsExactlyOnceAcrossCrashes(t *testing.T) {
	b := setup(t)
	appendMany(t, b, 10, 30)

	// Every 37th event, the consumer's database session is killed right after the read-model
	// write, before the batch (and its checkpoint) can commit.
	var handled, kills atomic.Int64
	c := &counter{name: "counter"}
	c.hookTx = func(ctx context.Context, tx pgx.Tx) {
		if handled.Add(1)%37 != 0 {
			return
		}
		var pid int
		if err := tx.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err == nil {
			if _, err := b.pool.Exec(context.Background(), `SELECT pg_terminate_backend($1)`, pid); err == nil {
				kills.Add(1)
			}
		}
	}
	run(t, b, projections.Config{BatchSize: 25, RestartDelay: 10 * time.Millisecond}, c)
	waitCaughtUp(t, b, "counter")
	require.Equal(t, rawCounts(t, b), modelCounts(t, b))
	require.GreaterOrEqual(t, kills.Load(), int64(5), "the consumer really was killed mid-batch")
}

func TestStoppingMidBatchLosesNothing(t *testing.T) {
	b := setup(t)
	appendMany(t, b, 10, 30)
	// Stop the runner (a process shutting down) in the middle of batches, again and again.
	var handled atomic.Int64
	for round := 0; round < 3; round++ {
		ctx, cancel := context.WithCancel(context.Background())
		limit := handled.Load() + 41
		c := &counter{name: "counter", hook: func(eventstore.RecordedEvent) {
			if handled.Add(1) == limit {
				cancel()
			}
		}}
		r, err := projections.NewRunner(b.pool, b.reg, quiet(), projections.Config{BatchSize: 25}, c)
		require.NoError(t, err)
		require.NoError(t, r.Run(ctx))
	}
	run(t, b, projections.Config{BatchSize: 25}, &counter{name: "counter"})
	waitCaughtUp(t, b, "counter")
	require.Equal(t, rawCounts(t, b), modelCounts(t, b))
}

func TestFailingEventIsParkedNotRetriedForever(t *testing.T) {
	requireFailingEventParked(t, func(context.Context, pgx.Tx) error { return errors.New("cannot handle this one") })
}

// requireFailingEventParked runs a counter whose handler, at the third event of stream s-1, also
// calls fail, and requires that event parked after its three attempts and every other event
// counted once.
func requireFailingEventParked(t *testing.T, fail func(ctx context.Context, tx pgx.Tx) error) {
	t.Helper()
	b := setup(t)
	appendMany(t, b, 3, 4)
	evs, err := b.store.Load(context.Background(), "s-1", eventstore.LoadOptions{})
	require.NoError(t, err)
	poison := evs[2].Position
	c := &failing{counter: counter{name: "counter"}, failAt: poison, fail: fail}
	r, _, _ := run(t, b, projections.Config{MaxAttempts: 3, RetryInterval: 10 * time.Millisecond}, c)
	waitCaughtUp(t, b, "counter")

	var n, attempts int
	require.NoError(t, b.pool.QueryRow(context.Background(),
		`SELECT count(*), max(attempts) FROM projection_dead_letters WHERE projection = 'counter' AND position = $1`, poison).Scan(&n, &attempts))
	require.Equal(t, 1, n)
	require.Equal(t, 3, attempts)
	require.Equal(t, int64(1), r.Status()[0].Parked)
	// Its failed attempts left nothing behind; every other event counted once.
	want := rawCounts(t, b)
	want["s-1"]--
	require.Equal(t, want, modelCounts(t, b))
}

// failing counts like counter, and at the event at failAt returns what fail returns.
type failing struct {
	counter
	failAt int64
	fail   func(ctx context.Context, tx pgx.Tx) error
}

func (f *failing) Handle(ctx context.Context, tx pgx.Tx, e eventstore.RecordedEvent) error {
	if err := f.counter.Handle(ctx, tx, e); err != nil {
		return err
	}
	if e.Position == f.failAt {
		return f.fail(ctx, tx)
	}
	return nil
}

func TestAnotherProcessTakesOverWhenTheHolderDies(t *testing.T) {
	b := setup(t)
	appendMany(t, b, 5, 5)
	cfg := projections.Config{LockRetry: 50 * time.Millisecond}
	first, stopFirst, firstDone := run(t, b, cfg, &counter{name: "counter"})
	require.Eventually(t, func() bool { return first.Status()[0].Active }, time.Minute, 10*time.Millisecond)
	second, _, _ := run(t, b, cfg, &counter{name: "counter"})
	waitCaughtUp(t, b, "counter")
	require.False(t, second.Status()[0].Active, "one process at a time")

	stopFirst()
	<-firstDone
	require.Eventually(t, func() bool { return second.Status()[0].Active }, time.Minute, 10*time.Millisecond)
	appendMany2(t, b)
	waitCaughtUp(t, b, "counter")
	require.Equal(t, rawCounts(t, b), modelCounts(t, b))
}

func appendMany2(t *testing.T, b bundle) {
	for s := 0; s < 5; s++ {
		_, err := b.store.Append(context.Background(), thing(fmt.Sprintf("s-%d", s)), eventstore.Any, eventstore.Metadata{},
			eventstoretest.ThingRenamed{Name: "more"})
		require.NoError(t, err)
	}
}

// waitCaughtUp waits until the projection's checkpoint reaches the last event.
func waitCaughtUp(t *testing.T, b bundle, name string) {
	t.Helper()
	var txid, pos int64
	require.NoError(t, b.pool.QueryRow(context.Background(),
		`SELECT transaction_id::text::bigint, position FROM events ORDER BY transaction_id DESC, position DESC LIMIT 1`).Scan(&txid, &pos))
	w := projections.NewWaiter(b.pool, 5*time.Millisecond, name)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	require.NoError(t, w.Wait(ctx, eventstore.Position{TransactionID: uint64(txid), Position: pos}))
}

// A batch that has run for MaxBatchTime commits what it has handled and leaves the rest to the
// next: a slow handler must not hold one transaction id (and so the cluster-wide horizon every
// projection and read waits below) for the whole batch.
func TestSlowBatchIsCutByTime(t *testing.T) {
	b := setup(t)
	appendMany(t, b, 1, 12)
	var mu sync.Mutex
	perXact := map[string]int{}
	c := &counter{name: "counter", hookTx: func(ctx context.Context, tx pgx.Tx) {
		var xid string
		if err := tx.QueryRow(ctx, `SELECT pg_current_xact_id()::text`).Scan(&xid); err == nil {
			mu.Lock()
			perXact[xid]++
			mu.Unlock()
		}
		time.Sleep(60 * time.Millisecond)
	}}
	run(t, b, projections.Config{BatchSize: 100, MaxBatchTime: 200 * time.Millisecond}, c)
	waitCaughtUp(t, b, "counter")
	require.Equal(t, rawCounts(t, b), modelCounts(t, b), "every event exactly once")
	mu.Lock()
	defer mu.Unlock()
	total, most := 0, 0
	for _, n := range perXact {
		total += n
		most = max(most, n)
	}
	require.Equal(t, 12, total, "each event handled once: %v", perXact)
	// 200 ms at 60 ms an event: the batch is cut once the fourth event finds it over time.
	require.LessOrEqual(t, most, 4, "events per batch transaction: %v", perXact)
	require.GreaterOrEqual(t, len(perXact), 3, "batch transactions: %v", perXact)
}
