package projections

import (
	"context"

	"github.com/jackc/pgx/v5/pgxpool"

	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
)

// checkpoints keeps each projection's place in projection_checkpoints. Unlike watermill's
// default adapter it takes no FOR UPDATE on the offsets row: each projection runs on one process
// at a time (an advisory lock), and an empty poll then takes no transaction id, so idle polling
// does not hold back other consumers or burn through xids.
type checkpoints struct{}

func (checkpoints) SchemaInitializingQueries(wsql.OffsetsSchemaInitializingQueriesParams) ([]wsql.Query, error) {
	return nil, nil // the table belongs to migrations
}

// BeforeSubscribingQueries returns nothing: the runner creates the checkpoint row itself before
// subscribing. A query here can fail inside watermill's Router.RunHandlers, which then leaves a
// goroutine waiting forever for a handler that never started.
func (checkpoints) BeforeSubscribingQueries(wsql.BeforeSubscribingQueriesParams) ([]wsql.Query, error) {
	return nil, nil
}

// ensureCheckpoint creates the projection's checkpoint at the start if it has none.
func ensureCheckpoint(ctx context.Context, pool *pgxpool.Pool, name string) error {
	_, err := pool.Exec(ctx, `INSERT INTO projection_checkpoints (name) VALUES ($1) ON CONFLICT (name) DO NOTHING`, name)
	return err
}

func (checkpoints) NextOffsetQuery(p wsql.NextOffsetQueryParams) (wsql.Query, error) {
	return wsql.Query{
		Query: `SELECT position, transaction_id FROM projection_checkpoints WHERE name = $1`,
		Args:  []any{p.ConsumerGroup},
	}, nil
}

func (checkpoints) AckMessageQuery(p wsql.AckMessageQueryParams) (wsql.Query, error) {
	return wsql.Query{
		Query: `UPDATE projection_checkpoints
			SET position = $1, transaction_id = $2::bigint::text::xid8, updated_at = now()
			WHERE name = $3`,
		Args: []any{p.LastRow.Offset, p.LastRow.ExtraData["transaction_id"], p.ConsumerGroup},
	}, nil
}

func (checkpoints) ConsumedMessageQuery(wsql.ConsumedMessageQueryParams) (wsql.Query, error) {
	return wsql.Query{}, nil
}
