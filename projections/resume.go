package projections

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

var (
	// ErrNotStopped means there is no stop to resume from.
	ErrNotStopped = errors.New("projections: the projection is not stopped")
	// ErrSkipMismatch means the position to skip is not the one the projection stopped at:
	// only the event that stopped it may be skipped, so that a typo cannot drop another.
	ErrSkipMismatch = errors.New("projections: only the event a projection stopped at can be skipped")
)

// Resume clears the projection's stop; the processes that run projections take it up again
// within their LockRetry. With skip (which must be the stop's position), the event it stopped
// at is recorded as skipped: it is never handed to this projection, however far behind its
// checkpoint is, rebuilds included. The action is recorded with the actor. It returns the stop
// it cleared.
func Resume(ctx context.Context, pool *pgxpool.Pool, name string, skip *int64, actor string) (Stop, error) {
	if err := checkActor(actor); err != nil {
		return Stop{}, err
	}
	var st Stop
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var err error
		st, err = scanStop(tx.QueryRow(ctx, `SELECT `+stopColumns+` FROM projection_stops WHERE projection = $1 FOR UPDATE`, name))
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("%w: %s", ErrNotStopped, name)
		}
		if err != nil {
			return fmt.Errorf("projections: stop of %s: %w", name, err)
		}
		if skip != nil {
			if *skip != st.Position {
				return fmt.Errorf("%w: %s stopped at position %d, not %d", ErrSkipMismatch, name, st.Position, *skip)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO projection_skips (projection, position, stream_id, event_type, skipped_by)
				VALUES ($1, $2, $3, $4, $5) ON CONFLICT (projection, position) DO NOTHING`,
				name, st.Position, st.StreamID, st.EventType, actor); err != nil {
				return fmt.Errorf("projections: record the skip: %w", err)
			}
		}
		if _, err := tx.Exec(ctx, `DELETE FROM projection_stops WHERE projection = $1`, name); err != nil {
			return fmt.Errorf("projections: clear the stop of %s: %w", name, err)
		}
		return recordAction(ctx, tx, name, "resume", actor, map[string]any{
			"position": st.Position, "skip": skip != nil, "stream": st.StreamID, "version": st.Version,
			"event_type": st.EventType, "kind": st.Kind, "reason": st.Reason, "stopped_at": st.At, "stopped_by": st.By,
		})
	})
	return st, err
}
