package projections

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"

	"mailplane/eventstore"
)

// checkpoints keeps each projection's place in projection_checkpoints. Unlike watermill's
// default adapter it takes no FOR UPDATE on the offsets row: each projection runs on one process
// at a time (an advisory lock, and the lease against a process that lost it), and an empty poll
// then takes no transaction id, so idle polling does not hold back other consumers or burn
// through xids.
type checkpoints struct {
	// batch tells, as the subscriber acks a batch, what the batch really got to.
	batch func() (batchEnd, error)
}

// batchEnd is what an acked batch may record: the checkpoint can stop short of the last message
// (a stop in the middle of the batch acks the rest without handling them), and the count of
// events parked in a row travels with it.
type batchEnd struct {
	// limited: the checkpoint moves to last only (not at all when last is zero).
	limited bool
	last    eventstore.Position
	parks   int
}

func (checkpoints) SchemaInitializingQueries(wsql.OffsetsSchemaInitializingQueriesParams) ([]wsql.Query, error) {
	return nil, nil // the table belongs to migrations
}

// BeforeSubscribingQueries returns nothing: the runner creates the checkpoint row itself before
// subscribing. A query here can fail inside watermill's Router.RunHandlers, which then leaves a
// goroutine waiting forever for a handler that never started.
func (checkpoints) BeforeSubscribingQueries(wsql.BeforeSubscribingQueriesParams) ([]wsql.Query, error) {
	return nil, nil
}

// errStopped means the projection is stopped (see projection_stops).
var errStopped = errors.New("projections: the projection is stopped")

// takeLease creates the projection's checkpoint if it has none and takes a new lease on it for
// this process, which must hold the projection's lock. The bump itself fences off any batch
// still in flight on a process that lost the lock: that batch's checkpoint update now fails
// under repeatable read. It returns errStopped if the projection is stopped.
func takeLease(ctx context.Context, pool *pgxpool.Pool, name, process string) (int64, error) {
	if _, err := pool.Exec(ctx, `INSERT INTO projection_checkpoints (name) VALUES ($1) ON CONFLICT (name) DO NOTHING`, name); err != nil {
		return 0, fmt.Errorf("projections: checkpoint of %s: %w", name, err)
	}
	var lease int64
	err := pool.QueryRow(ctx, `UPDATE projection_checkpoints SET lease = lease + 1, leased_by = $2, leased_at = now()
		WHERE name = $1 AND NOT EXISTS (SELECT 1 FROM projection_stops WHERE projection = $1)
		RETURNING lease`, name, process).Scan(&lease)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return 0, errStopped
	case err != nil:
		return 0, fmt.Errorf("projections: lease on %s: %w", name, err)
	}
	return lease, nil
}

func (checkpoints) NextOffsetQuery(p wsql.NextOffsetQueryParams) (wsql.Query, error) {
	return wsql.Query{
		Query: `SELECT position, transaction_id FROM projection_checkpoints WHERE name = $1`,
		Args:  []any{p.ConsumerGroup},
	}, nil
}

// AckMessageQuery moves the checkpoint with the batch's writes. It always updates the row, even
// when the checkpoint stays: that is what makes a batch of a process whose lease was taken over
// fail instead of committing.
func (c checkpoints) AckMessageQuery(p wsql.AckMessageQueryParams) (wsql.Query, error) {
	end := batchEnd{}
	if c.batch != nil {
		var err error
		if end, err = c.batch(); err != nil {
			// The subscriber rolls the batch back.
			return wsql.Query{}, err
		}
	}
	txid, position := p.LastRow.ExtraData["transaction_id"], p.LastRow.Offset
	if end.limited {
		if end.last.Position == 0 {
			return wsql.Query{
				Query: `UPDATE projection_checkpoints SET consecutive_parks = $2, updated_at = now() WHERE name = $1`,
				Args:  []any{p.ConsumerGroup, end.parks},
			}, nil
		}
		txid, position = int64(end.last.TransactionID), end.last.Position
	}
	return wsql.Query{
		Query: `UPDATE projection_checkpoints
			SET position = $1, transaction_id = $2::bigint::text::xid8, consecutive_parks = $4, updated_at = now()
			WHERE name = $3`,
		Args: []any{position, txid, p.ConsumerGroup, end.parks},
	}, nil
}

func (checkpoints) ConsumedMessageQuery(wsql.ConsumedMessageQueryParams) (wsql.Query, error) {
	return wsql.Query{}, nil
}
