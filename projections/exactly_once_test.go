package projections_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"mailplane/eventstore"
	"mailplane/migrations/testdb"
	"mailplane/projections"
)

// watermill's Duplicator hands every message to the handler twice, in the same batch
// transaction: the runner itself must not let the second call count.
func TestUnguardedProjectionIsExactlyOnceUnderDuplicates(t *testing.T) {
	b := setup(t)
	appendMany(t, b, 20, 15)
	run(t, b, projections.Config{BatchSize: 7, Middlewares: []message.HandlerMiddleware{middleware.Duplicator}},
		&tally{name: "tally"})
	waitCaughtUp(t, b, "tally")
	require.Equal(t, rawCounts(t, b), modelCounts(t, b))
}

// A handler that has written and then outlives its deadline fails; the clean-up after it (the
// savepoint rollback, the abandoned batch) must still run although its context has ended, or the
// failed attempt's write commits with the batch.
func TestHandlerOutlivingItsDeadlineLeavesNoWrite(t *testing.T) {
	b := setup(t)
	appendMany(t, b, 4, 4)
	evs, err := b.store.Load(context.Background(), "s-2", eventstore.LoadOptions{})
	require.NoError(t, err)
	slow := evs[1].Position

	var mu sync.Mutex
	attempts := 0
	c := &tally{name: "tally", hook: func(ctx context.Context, _ pgx.Tx, e eventstore.RecordedEvent) error {
		if e.Position != slow {
			return nil
		}
		mu.Lock()
		attempts++
		n := attempts
		mu.Unlock()
		if n <= 2 { // the batch's fast attempt, then the first careful one
			<-ctx.Done()
			return ctx.Err()
		}
		return nil
	}}
	run(t, b, projections.Config{HandlerTimeout: 200 * time.Millisecond, RetryInterval: 10 * time.Millisecond}, c)
	waitCaughtUp(t, b, "tally")
	require.Equal(t, rawCounts(t, b), modelCounts(t, b))
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, 3, attempts)
}

// The process is killed (SIGKILL) right after a read-model write, before its batch commits,
// several times over; the unguarded count must still equal the events table's.
func TestExactlyOnceAcrossSIGKILL(t *testing.T) {
	t.Parallel()
	url := testdb.NewURL(t)
	b := bundleAt(t, url)
	appendMany(t, b, 10, 30)
	for round := 0; round < 3; round++ {
		startChild(t, "kill-at", url, 37).requireKilled(t)
	}
	cp, err := checkpointOf(b, "tally")
	require.NoError(t, err)
	require.NotZero(t, cp.Position, "the children got somewhere before they were killed")
	require.Equal(t, countsUpTo(t, b, cp), modelCounts(t, b), "what committed is the checkpoint's, once")

	run(t, b, projections.Config{BatchSize: 25}, &tally{name: "tally"})
	waitCaughtUp(t, b, "tally")
	require.Equal(t, rawCounts(t, b), modelCounts(t, b))
}
