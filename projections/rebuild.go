package projections

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Resetter is a projection that can empty its read model, so it can be rebuilt from position 0.
type Resetter interface {
	Projection
	Reset(ctx context.Context, tx pgx.Tx) error
}

// ErrRunning means a process is running the projection; it must be stopped (or its process run
// with --no-projections) before the projection can be rebuilt.
var ErrRunning = errors.New("projections: the projection is running on some process")

// Rebuild empties the projection's read model and puts its checkpoint back to the start, in one
// transaction, while holding its lock so no process runs it meanwhile. The next runner to take
// it replays every event.
func Rebuild(ctx context.Context, pool *pgxpool.Pool, p Resetter) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	var held bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", lockKey(p.Name())).Scan(&held); err != nil {
		return err
	}
	if !held {
		return fmt.Errorf("%w: %s", ErrRunning, p.Name())
	}
	defer func() {
		_, _ = conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", lockKey(p.Name()))
	}()
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if err := p.Reset(ctx, tx); err != nil {
			return fmt.Errorf("projections: reset %s: %w", p.Name(), err)
		}
		_, err := tx.Exec(ctx, `DELETE FROM projection_checkpoints WHERE name = $1`, p.Name())
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM projection_dead_letters WHERE projection = $1`, p.Name())
		return err
	})
}
