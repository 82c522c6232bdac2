package projections_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"mailplane/eventstore"
)

// tally counts events per stream with no guard at all: every call adds one, so only a runner
// whose effect is exactly once keeps it equal to an independent count of the events table.
type tally struct {
	name string
	// before runs first, in the batch transaction.
	before func(ctx context.Context, tx pgx.Tx) error
	// hook runs after the write, in the batch transaction, before the checkpoint can commit.
	hook func(ctx context.Context, tx pgx.Tx, e eventstore.RecordedEvent) error
}

func (c *tally) Name() string { return c.name }

func (c *tally) StreamTypes() []string { return []string{"thing"} }

func (c *tally) Handle(ctx context.Context, tx pgx.Tx, e eventstore.RecordedEvent) error {
	if c.before != nil {
		if err := c.before(ctx, tx); err != nil {
			return err
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO counts (stream_id, n, version) VALUES ($1, 1, $2)
		ON CONFLICT (stream_id) DO UPDATE SET n = counts.n + 1, version = excluded.version`, e.StreamID, e.Version); err != nil {
		return err
	}
	if c.hook != nil {
		return c.hook(ctx, tx, e)
	}
	return nil
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// rawInsert writes an event past the store's checks, the way a bug, a hand edit or a botched
// restore would: the runner must notice what it breaks.
func rawInsert(t *testing.T, q querier, streamID, streamType string, version int, eventType string, schemaVersion int) eventstore.Position {
	t.Helper()
	var txid, pos int64
	require.NoError(t, q.QueryRow(context.Background(), `INSERT INTO events
		(stream_id, stream_type, stream_version, event_type, schema_version, data, recorded_at, prev_hash, hash)
		VALUES ($1, $2, $3, $4, $5, '{"name":"raw"}', now(), '\x', '\x')
		RETURNING transaction_id::text::bigint, position`,
		streamID, streamType, version, eventType, schemaVersion).Scan(&txid, &pos))
	return eventstore.Position{TransactionID: uint64(txid), Position: pos}
}

// checkpointOf reads a projection's checkpoint (zero if it has none). It returns errors rather
// than failing, for use inside Eventually and Never.
func checkpointOf(b bundle, name string) (eventstore.Position, error) {
	var txid, pos int64
	err := b.pool.QueryRow(context.Background(),
		`SELECT transaction_id::text::bigint, position FROM projection_checkpoints WHERE name = $1`, name).Scan(&txid, &pos)
	if errors.Is(err, pgx.ErrNoRows) {
		return eventstore.Position{}, nil
	}
	return eventstore.Position{TransactionID: uint64(txid), Position: pos}, err
}

// passed reports whether the projection's checkpoint is at or past p.
func passed(b bundle, name string, p eventstore.Position) bool {
	cp, err := checkpointOf(b, name)
	return err == nil && !cp.Less(p)
}

// countsUpTo counts events per stream from the events table up to and including p: what a
// projection whose checkpoint is p must have seen, exactly once each.
func countsUpTo(t *testing.T, b bundle, p eventstore.Position) map[string]int {
	t.Helper()
	rows, err := b.pool.Query(context.Background(), `SELECT stream_id, count(*) FROM events
		WHERE stream_type = 'thing' AND (transaction_id, position) <= ($1::bigint::text::xid8, $2::bigint)
		GROUP BY stream_id`, int64(p.TransactionID), p.Position)
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

// stopRow is a projection_stops row.
type stopRow struct {
	Position        int64
	TransactionID   int64
	StreamID        string
	StreamType      string
	Version         int
	ExpectedVersion *int
	EventType       string
	SchemaVersion   int
	Kind            string
	Error           string
}

// stopOf returns the projection's recorded stop; ok is false while it has none.
func stopOf(b bundle, name string) (s stopRow, ok bool, err error) {
	err = b.pool.QueryRow(context.Background(), `SELECT position, transaction_id::text::bigint, stream_id,
		stream_type, stream_version, expected_version, event_type, schema_version, kind, error
		FROM projection_stops WHERE projection = $1`, name).Scan(&s.Position, &s.TransactionID, &s.StreamID,
		&s.StreamType, &s.Version, &s.ExpectedVersion, &s.EventType, &s.SchemaVersion, &s.Kind, &s.Error)
	if errors.Is(err, pgx.ErrNoRows) {
		return s, false, nil
	}
	return s, err == nil, err
}

// waitStopped waits for the projection's stop to be recorded and returns it.
func waitStopped(t *testing.T, b bundle, name string) stopRow {
	t.Helper()
	var s stopRow
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		var ok bool
		var err error
		s, ok, err = stopOf(b, name)
		assert.NoError(c, err)
		assert.True(c, ok, "no stop recorded for %s", name)
	}, 30*time.Second, 10*time.Millisecond)
	return s
}

// deadLetters counts the projection's dead letters.
func deadLetters(t *testing.T, b bundle, name string) int {
	t.Helper()
	var n int
	require.NoError(t, b.pool.QueryRow(context.Background(),
		`SELECT count(*) FROM projection_dead_letters WHERE projection = $1`, name).Scan(&n))
	return n
}
