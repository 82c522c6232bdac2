package projections

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"mailplane/eventstore"
)

// This file is for projections that keep their checkpoint outside PostgreSQL (the LDAP
// directory's projection): they read the events themselves, and check and stop like the
// runner's projections do.

// Read is an event as such a projection reads it, with the place in the global order of its
// stream's previous version (nil when the events table has none).
type Read struct {
	Event    eventstore.RecordedEvent
	Previous *eventstore.Position
}

// ReadBatch returns up to limit events after the position, in the gap-safe global order (never
// past a transaction in flight), each with its stream's previous version. With upTo set it reads
// no further than that position, which must be one some reader already passed (all before it
// committed): it then need not wait for transactions in flight. Data is not upcast.
func ReadBatch(ctx context.Context, pool *pgxpool.Pool, after eventstore.Position, upTo *eventstore.Position, limit int) ([]Read, error) {
	bounded := upTo != nil
	var end eventstore.Position
	if bounded {
		end = *upTo
	}
	rows, err := pool.Query(ctx, `SELECT e.position, e.transaction_id::text::bigint, e.stream_id, e.stream_type,
			coalesce(e.domain, ''), e.stream_version, e.event_type, e.schema_version, e.data, e.metadata, e.recorded_at,
			p.transaction_id::text::bigint, p.position
		FROM events e
		LEFT JOIN events p ON p.stream_id = e.stream_id AND p.stream_version = e.stream_version - 1
		WHERE (e.transaction_id, e.position) > ($1::bigint::text::xid8, $2)
		  AND CASE WHEN $4 THEN (e.transaction_id, e.position) <= ($5::bigint::text::xid8, $6)
		           ELSE e.transaction_id < pg_snapshot_xmin(pg_current_snapshot()) END
		ORDER BY e.transaction_id, e.position
		LIMIT $3`, int64(after.TransactionID), after.Position, limit, bounded, int64(end.TransactionID), end.Position)
	if err != nil {
		return nil, fmt.Errorf("projections: read events: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Read, error) {
		var r Read
		e := &r.Event
		var txid int64
		var meta []byte
		var prevTxid, prevPos *int64
		if err := row.Scan(&e.Position, &txid, &e.StreamID, &e.StreamType, &e.Domain, &e.Version, &e.Type,
			&e.SchemaVersion, &e.Data, &meta, &e.RecordedAt, &prevTxid, &prevPos); err != nil {
			return r, err
		}
		e.TransactionID, e.RecordedAt = uint64(txid), e.RecordedAt.UTC()
		if prevTxid != nil && prevPos != nil {
			r.Previous = &eventstore.Position{TransactionID: uint64(*prevTxid), Position: *prevPos}
		}
		if err := json.Unmarshal(meta, &e.Metadata); err != nil {
			return r, fmt.Errorf("projections: metadata at position %d: %w", e.Position, err)
		}
		return r, nil
	})
}

// CheckEvent returns the stop an event calls for before a projection may see it — a version
// gap, a version going backwards, an event type the registry does not know or a schema version
// newer than it reads — or nil. The stop is not recorded yet (RecordStop).
func CheckEvent(reg *eventstore.Registry, projection string, r Read) *Stop {
	e := r.Event
	st := &Stop{Projection: projection, Position: e.Position, TransactionID: e.TransactionID,
		StreamID: e.StreamID, StreamType: e.StreamType, Version: e.Version, EventType: e.Type, SchemaVersion: e.SchemaVersion}
	switch {
	case e.Version > 1 && r.Previous == nil:
		st.Kind = StopVersionGap
		return st
	case e.Version > 1 && !r.Previous.Less(e.GlobalPosition()):
		st.Kind = StopVersionBackwards
		return st
	}
	if current, known := reg.Current(e.Type); !known {
		st.Kind = StopUnknownEventType
		st.Error = fmt.Sprintf("%s (stream %s version %d, position %d) is not an event type this release knows; a newer release wrote it?",
			e.Type, e.StreamID, e.Version, e.Position)
		return st
	} else if e.SchemaVersion > current {
		st.Kind = StopNewerSchemaVersion
		st.Error = fmt.Sprintf("%s schema version %d (stream %s version %d, position %d) is newer than this release reads (%d)",
			e.Type, e.SchemaVersion, e.StreamID, e.Version, e.Position, current)
		return st
	}
	return nil
}

// RecordStop records a projection's stop in its own transaction.
func RecordStop(ctx context.Context, pool *pgxpool.Pool, st *Stop) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return recordStop(ctx, tx, st) })
}

// LockKey is the advisory lock a projection is run under: whoever holds it runs the projection.
func LockKey(name string) int64 { return lockKey(name) }

// SwapLockKey is the transaction-level advisory lock each of the projection's batches holds
// shared from its first statement to its commit. A rebuild that swaps the projection's read
// model for a freshly built one takes it exclusive in the swap transaction: it waits for the
// batch in flight to commit, and the batches that start meanwhile read no event (they poll
// again), so no batch applies an event to tables the swap replaces or moves the checkpoint the
// swap sets. (A batch whose snapshot was taken just before the swap committed but whose lock
// came just after fails on the checkpoint row the swap updated, under repeatable read, and is
// replayed.)
func SwapLockKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte("mailplane projection swap " + name))
	return int64(h.Sum64())
}

// Skips returns the positions an operator told the projection to skip.
func Skips(ctx context.Context, pool *pgxpool.Pool, name string) (map[int64]bool, error) {
	return loadSkips(ctx, pool, name)
}

// MirrorCheckpoint records, in projection_checkpoints, where a projection that keeps its
// checkpoint elsewhere has got to: status, lag, metrics, readiness and read-your-writes waits
// read it there. It only ever moves forward.
func MirrorCheckpoint(ctx context.Context, pool *pgxpool.Pool, name string, pos eventstore.Position) error {
	_, err := pool.Exec(ctx, `INSERT INTO projection_checkpoints (name, transaction_id, position, updated_at)
		VALUES ($1, $2::bigint::text::xid8, $3, now())
		ON CONFLICT (name) DO UPDATE SET transaction_id = excluded.transaction_id, position = excluded.position,
			updated_at = now()
		WHERE (projection_checkpoints.transaction_id, projection_checkpoints.position) < (excluded.transaction_id, excluded.position)`,
		name, int64(pos.TransactionID), pos.Position)
	if err != nil {
		return fmt.Errorf("projections: mirror the checkpoint of %s: %w", name, err)
	}
	return nil
}
