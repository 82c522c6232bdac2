package workers

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
)

// ExpireIdempotencyKeysArgs deletes idempotency records older than their time to live. A
// periodic job (hourly); an expired record already answers nothing (eventstore), this only
// keeps the table small.
type ExpireIdempotencyKeysArgs struct{}

// Kind implements river.JobArgs.
func (ExpireIdempotencyKeysArgs) Kind() string { return "expire_idempotency_keys" }

// ExpireIdempotencyKeysWorker deletes expired idempotency records in batches, so that no one
// statement holds many row locks or a long transaction.
type ExpireIdempotencyKeysWorker struct {
	river.WorkerDefaults[ExpireIdempotencyKeysArgs]
	Pool *pgxpool.Pool
	TTL  time.Duration
}

// Work implements river.Worker.
func (w *ExpireIdempotencyKeysWorker) Work(ctx context.Context, _ *river.Job[ExpireIdempotencyKeysArgs]) error {
	for {
		tag, err := w.Pool.Exec(ctx, `DELETE FROM idempotency_keys WHERE ctid IN (
			SELECT ctid FROM idempotency_keys WHERE created_at <= now() - make_interval(secs => $1) LIMIT 1000)`,
			w.TTL.Seconds())
		if err != nil {
			return fmt.Errorf("expire idempotency keys: %w", err)
		}
		if tag.RowsAffected() < 1000 {
			return nil
		}
	}
}
