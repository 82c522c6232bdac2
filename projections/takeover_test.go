package projections_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"mailplane/eventstore"
	"mailplane/eventstore/eventstoretest"
	"mailplane/migrations/testdb"
	"mailplane/projections"
)

// keepAppending appends to a few streams until the returned stop is called.
func keepAppending(t *testing.T, b bundle) (stop func()) {
	// Stopped between appends, never during one: an append abandoned by a cancelled context
	// may still commit on the server after the test has read the head it waits for.
	var stopped atomic.Bool
	var wg sync.WaitGroup
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for v := 0; !stopped.Load(); v++ {
				_, err := b.store.Append(context.Background(), thing(fmt.Sprintf("w-%d", w)), eventstore.Exact(v), eventstore.Metadata{},
					eventstoretest.ThingRenamed{Name: fmt.Sprint(v)})
				if err != nil {
					t.Errorf("append: %v", err)
					return
				}
				time.Sleep(time.Millisecond)
			}
		}()
	}
	return func() { stopped.Store(true); wg.Wait() }
}

// batchStarts records, per runner, when each batch transaction it handled an event in began.
type batchStarts struct {
	mu     sync.Mutex
	starts map[string][]time.Time
}

// before returns a hook that records the batch's start for runner name, before the handler
// writes anything.
func (s *batchStarts) before(name string) func(ctx context.Context, tx pgx.Tx) error {
	return func(ctx context.Context, tx pgx.Tx) error {
		var at time.Time
		if err := tx.QueryRow(ctx, `SELECT now()`).Scan(&at); err != nil {
			return err
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		s.starts[name] = append(s.starts[name], at)
		return nil
	}
}

func (s *batchStarts) after(name string, t time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, at := range s.starts[name] {
		if at.After(t) {
			n++
		}
	}
	return n
}

// The lock holder's lock connection is terminated while two runners run: the other takes over,
// nothing is skipped or applied twice, and the old holder, which learns of its loss only later,
// handles nothing in a batch begun after the takeover.
// (The projection locks are the exclusive advisory locks: each batch also holds its projection's
// swap lock, shared — projections.SwapLockKey.)
func TestTakeoverWhenTheLockConnectionIsTerminated(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	appendMany(t, b, 10, 5)
	starts := &batchStarts{starts: map[string][]time.Time{}}
	cfg := projections.Config{BatchSize: 10, LockRetry: 20 * time.Millisecond, RestartDelay: 20 * time.Millisecond}
	a, _, _ := run(t, b, cfg, &tally{name: "tally", before: starts.before("a"), hook: func(context.Context, pgx.Tx, eventstore.RecordedEvent) error {
		time.Sleep(2 * time.Millisecond) // a batch takes a while: the old holder is often inside one
		return nil
	}})
	require.Eventually(t, func() bool { return a.Status()[0].Active }, time.Minute, time.Millisecond)
	second, _, _ := run(t, b, cfg, &tally{name: "tally", before: starts.before("b")})
	stopAppending := keepAppending(t, b)
	time.Sleep(300 * time.Millisecond)

	var killed atomic.Bool
	require.Eventually(t, func() bool {
		var n int
		err := b.pool.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_locks
			WHERE locktype = 'advisory' AND mode = 'ExclusiveLock' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&n)
		killed.Store(err == nil && n == 1)
		return killed.Load()
	}, time.Minute, 10*time.Millisecond)
	require.Eventually(t, func() bool { return second.Status()[0].Active }, time.Minute, time.Millisecond)
	tookOver := time.Now()
	time.Sleep(1500 * time.Millisecond)
	stopAppending()
	waitCaughtUp(t, b, "tally")

	require.Equal(t, rawCounts(t, b), modelCounts(t, b), "nothing skipped, nothing applied twice")
	require.False(t, a.Status()[0].Active)
	require.Zero(t, starts.after("a", tookOver), "the old holder began no batch after the takeover")
	require.NotZero(t, starts.after("b", tookOver))
}

// The holding process is killed (SIGKILL): the other takes over, nothing is skipped or applied
// twice.
func TestTakeoverWhenTheHolderIsKilled(t *testing.T) {
	t.Parallel()
	url := testdb.NewURL(t)
	b := bundleAt(t, url)
	appendMany(t, b, 10, 5)
	holder := startChild(t, "hold", url, 0)
	holder.waitFor(t, "active")
	stopAppending := keepAppending(t, b)
	other, _, _ := run(t, b, projections.Config{BatchSize: 10, LockRetry: 20 * time.Millisecond}, &tally{name: "tally"})
	time.Sleep(300 * time.Millisecond)
	require.False(t, other.Status()[0].Active, "one holder at a time")
	require.NoError(t, holder.cmd.Process.Kill())
	holder.requireKilled(t)
	require.Eventually(t, func() bool { return other.Status()[0].Active }, time.Minute, time.Millisecond)
	time.Sleep(500 * time.Millisecond)
	stopAppending()
	waitCaughtUp(t, b, "tally")
	require.Equal(t, rawCounts(t, b), modelCounts(t, b), "nothing skipped, nothing applied twice")
}

// A batch the old holder began before the takeover must not commit after it, even when the new
// holder has not committed anything yet (here it waits on the old batch's row lock): the new
// lease touches the checkpoint row, and the old batch's checkpoint update then fails under
// repeatable read. Without the lease the old batch commits, and the new holder's work is what
// rolls back; no event counts twice either way, but two holders would overlap in effect.
func TestStaleBatchCannotCommitAfterTakeover(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	appendMany(t, b, 1, 30) // one stream: every batch writes the same counts row
	// Each row names the batch (its transaction) that handled it: the batches need not start at
	// multiples of the batch size (a transaction open elsewhere in the cluster holds the xmin,
	// and so the first batch, short), so the blocked batch is known by its transaction only.
	_, err := b.pool.Exec(ctx, `CREATE TABLE handled_by (position bigint NOT NULL, runner text NOT NULL,
		batch xid8 NOT NULL DEFAULT pg_current_xact_id())`)
	require.NoError(t, err)
	evs, err := b.store.Load(ctx, "s-0", eventstore.LoadOptions{})
	require.NoError(t, err)
	blockAt := evs[14].Position
	var blockedBatch string

	record := func(runner string, block func(eventstore.RecordedEvent)) func(context.Context, pgx.Tx, eventstore.RecordedEvent) error {
		return func(ctx context.Context, tx pgx.Tx, e eventstore.RecordedEvent) error {
			if _, err := tx.Exec(ctx, `INSERT INTO handled_by VALUES ($1, $2)`, e.Position, runner); err != nil {
				return err
			}
			if block != nil {
				block(e)
			}
			return nil
		}
	}
	blocked, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	cfg := projections.Config{BatchSize: 10, LockRetry: 20 * time.Millisecond, RestartDelay: 20 * time.Millisecond}
	a, _, _ := run(t, b, cfg, &tally{name: "tally", hook: func(ctx context.Context, tx pgx.Tx, e eventstore.RecordedEvent) error {
		return record("a", func(e eventstore.RecordedEvent) {
			if e.Position == blockAt {
				once.Do(func() {
					require.NoError(t, tx.QueryRow(ctx, `SELECT pg_current_xact_id()::text`).Scan(&blockedBatch))
					close(blocked)
					<-release
				})
			}
		})(ctx, tx, e)
	}})
	<-blocked
	reached := make(chan struct{})
	var reachedOnce sync.Once
	second, _, _ := run(t, b, cfg, &tally{name: "tally", hook: record("b", nil), before: func(context.Context, pgx.Tx) error {
		reachedOnce.Do(func() { close(reached) })
		return nil
	}})
	var n int
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_locks
		WHERE locktype = 'advisory' AND mode = 'ExclusiveLock' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&n))
	require.Equal(t, 1, n)
	<-reached // the new holder has begun its batch and waits on the old batch's row lock
	require.True(t, second.Status()[0].Active)
	close(release)

	waitCaughtUp(t, b, "tally")
	require.Equal(t, rawCounts(t, b), modelCounts(t, b))
	require.Eventually(t, func() bool { return !a.Status()[0].Active }, time.Minute, 5*time.Millisecond)
	var late int
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM handled_by WHERE runner = 'a' AND batch = $1::text::xid8`, blockedBatch).Scan(&late))
	require.Zero(t, late, "the old holder's batch in flight committed after the takeover")
	var handled, distinct int
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*), count(DISTINCT position) FROM handled_by`).Scan(&handled, &distinct))
	require.Equal(t, len(evs), handled, "each event handled once, in effect")
	require.Equal(t, len(evs), distinct)
}

// The old holder was idle when it lost its lock, and polls on until it notices (up to a
// second): events appended after the takeover must not start a batch on it. Only the lease it
// reads with keeps it out; there is no batch in flight for the takeover to make fail.
func TestIdleStaleHolderStartsNoBatchAfterTakeover(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	appendMany(t, b, 3, 3)
	starts := &batchStarts{starts: map[string][]time.Time{}}
	cfg := projections.Config{LockRetry: 20 * time.Millisecond, PollInterval: 5 * time.Millisecond}
	a, _, _ := run(t, b, cfg, &tally{name: "tally", before: starts.before("a")})
	waitCaughtUp(t, b, "tally")
	second, _, _ := run(t, b, cfg, &tally{name: "tally", before: starts.before("b")})
	var n int
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_locks
		WHERE locktype = 'advisory' AND mode = 'ExclusiveLock' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&n))
	require.Equal(t, 1, n)
	require.Eventually(t, func() bool { return second.Status()[0].Active }, time.Minute, time.Millisecond)
	tookOver := time.Now()
	for i := 0; i < 5; i++ {
		appendMany2(t, b)
		time.Sleep(20 * time.Millisecond)
	}
	waitCaughtUp(t, b, "tally")
	require.Equal(t, rawCounts(t, b), modelCounts(t, b))
	require.Zero(t, starts.after("a", tookOver), "the old holder began a batch after the takeover")
	require.NotZero(t, starts.after("b", tookOver))
	require.Eventually(t, func() bool { return !a.Status()[0].Active }, time.Minute, 5*time.Millisecond)
}
