package projections_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
)

// A write that fails is seen only when the batch's queued writes are sent (at the next read or
// at the ack), not by the handler that queued it: the batch must still not commit, and the
// replay with a savepoint per event must find that event, park it after its attempts, and keep
// every other event of the batch exactly once.
func TestQueuedWriteThatFailsIsParkedAndTheRestKept(t *testing.T) {
	// A write whose error a pipelined transaction reports later.
	requireFailingEventParked(t, func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO counts (stream_id, n, version) VALUES (NULL, 1, 1)`)
		return err
	})
}
