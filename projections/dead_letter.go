package projections

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrNoDeadLetter means there is no unresolved dead letter to resolve there.
var ErrNoDeadLetter = errors.New("projections: no unresolved dead letter")

// DeadLetter is an event a projection gave up on after its retries, and went past.
type DeadLetter struct {
	Projection string    `json:"projection"`
	Position   int64     `json:"position"`
	StreamID   string    `json:"stream"`
	EventType  string    `json:"event_type"`
	Error      string    `json:"error"`
	Attempts   int       `json:"attempts"`
	ParkedAt   time.Time `json:"parked_at"`
}

// DeadLetters returns the projection's unresolved dead letters, in position order.
func DeadLetters(ctx context.Context, pool *pgxpool.Pool, name string) ([]DeadLetter, error) {
	rows, err := pool.Query(ctx, `SELECT projection, position, stream_id, event_type, error, attempts, parked_at
		FROM projection_dead_letters WHERE projection = $1 AND resolved_at IS NULL ORDER BY position`, name)
	if err != nil {
		return nil, fmt.Errorf("projections: dead letters of %s: %w", name, err)
	}
	dead, err := pgx.CollectRows(rows, pgx.RowToStructByPos[DeadLetter])
	if err != nil {
		return nil, fmt.Errorf("projections: dead letters of %s: %w", name, err)
	}
	return dead, nil
}

// Resolve marks the projection's unresolved dead letter at position resolved, or all of them
// when position is nil, and returns how many it resolved. It changes no read model: the
// operator has dealt with the events (or accepts their loss). The action is recorded with the
// actor.
func Resolve(ctx context.Context, pool *pgxpool.Pool, name string, position *int64, actor string) (int64, error) {
	if err := checkActor(actor); err != nil {
		return 0, err
	}
	var n int64
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `UPDATE projection_dead_letters SET resolved_at = now(), resolved_by = $3
			WHERE projection = $1 AND resolved_at IS NULL AND ($2::bigint IS NULL OR position = $2)
			RETURNING position`, name, position, actor)
		if err != nil {
			return fmt.Errorf("projections: resolve dead letters of %s: %w", name, err)
		}
		positions, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return fmt.Errorf("projections: resolve dead letters of %s: %w", name, err)
		}
		n = int64(len(positions))
		switch {
		case position != nil && n == 0:
			return fmt.Errorf("%w: %s has none at position %d", ErrNoDeadLetter, name, *position)
		case n == 0:
			return nil
		case position != nil:
			return recordAction(ctx, tx, name, "resolve", actor, map[string]any{"position": *position})
		}
		return recordAction(ctx, tx, name, "resolve", actor, map[string]any{"positions": positions})
	})
	return n, err
}
