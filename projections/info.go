package projections

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// LagLimit is as far as Inspect counts a projection's lag in events: a projection far behind
// costs a bounded query.
const LagLimit = 1_000_000

// Info is what the database says of one projection, whichever process runs it. The JSON form
// is what the HTTP API shows.
type Info struct {
	Name string `json:"name"`
	// Position is the global position of the last event the checkpoint has passed.
	Position      int64  `json:"position"`
	TransactionID uint64 `json:"-"`
	// LagEvents counts the events after the checkpoint (at most LagLimit); LagSeconds is the
	// age of the oldest of them.
	LagEvents  int64   `json:"lag_events"`
	LagSeconds float64 `json:"lag_seconds"`
	// State is "running" or "stopped"; Stopped is the stop when it is stopped.
	State   string `json:"state"`
	Stopped *Stop  `json:"stopped"`
	// DeadLetters counts the projection's unresolved dead letters.
	DeadLetters int64 `json:"dead_letters"`
	// Holder names the process that holds the projection's lock now, if one does.
	Holder string `json:"-"`
}

// States of Info.
const (
	StateRunning = "running"
	StateStopped = "stopped"
)

// Inspect reports the named projections, in that order.
func Inspect(ctx context.Context, pool *pgxpool.Pool, names ...string) ([]Info, error) {
	held, err := heldLocks(ctx, pool)
	if err != nil {
		return nil, err
	}
	rows, err := pool.Query(ctx, `SELECT n.name, coalesce(c.transaction_id, '0')::text::bigint, coalesce(c.position, 0),
			coalesce(c.leased_by, ''), lag.n, coalesce(extract(epoch FROM now() - oldest.recorded_at), 0)::float8,
			(SELECT count(*) FROM projection_dead_letters d WHERE d.projection = n.name AND d.resolved_at IS NULL),
			EXISTS (SELECT 1 FROM projection_stops s WHERE s.projection = n.name)
		FROM unnest($1::text[]) WITH ORDINALITY AS n (name, i)
		LEFT JOIN projection_checkpoints c ON c.name = n.name
		CROSS JOIN LATERAL (SELECT count(*) AS n FROM (SELECT 1 FROM events e
			WHERE (e.transaction_id, e.position) > (coalesce(c.transaction_id, '0'), coalesce(c.position, 0)) LIMIT $2) l) lag
		LEFT JOIN LATERAL (SELECT e.recorded_at FROM events e
			WHERE (e.transaction_id, e.position) > (coalesce(c.transaction_id, '0'), coalesce(c.position, 0))
			ORDER BY e.transaction_id, e.position LIMIT 1) oldest ON true
		ORDER BY n.i`, names, LagLimit)
	if err != nil {
		return nil, fmt.Errorf("projections: inspect: %w", err)
	}
	infos, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Info, error) {
		var in Info
		var txid int64
		var isStopped bool
		err := row.Scan(&in.Name, &txid, &in.Position, &in.Holder, &in.LagEvents, &in.LagSeconds, &in.DeadLetters, &isStopped)
		in.TransactionID, in.State = uint64(txid), StateRunning
		if isStopped {
			in.State = StateStopped
		}
		return in, err
	})
	if err != nil {
		return nil, fmt.Errorf("projections: inspect: %w", err)
	}
	for i := range infos {
		if !held[lockKey(infos[i].Name)] {
			infos[i].Holder = ""
		}
		if infos[i].State == StateStopped {
			if infos[i].Stopped, err = LoadStop(ctx, pool, infos[i].Name); err != nil {
				return nil, err
			}
			if infos[i].Stopped == nil { // resumed between the two queries
				infos[i].State = StateRunning
			}
		}
	}
	return infos, nil
}

// InspectKnown reports the named projections (those this release runs) and every other the
// database knows of (see Known), sorted by name: what an operator's status shows.
func InspectKnown(ctx context.Context, pool *pgxpool.Pool, names ...string) ([]Info, error) {
	known, err := Known(ctx, pool)
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		if !slices.Contains(known, n) {
			known = append(known, n)
		}
	}
	slices.Sort(known)
	return Inspect(ctx, pool, known...)
}

// Known returns the name of every projection the database has a checkpoint, a stop or a dead
// letter for, sorted: the ones a process has run, including any this release no longer has.
func Known(ctx context.Context, pool *pgxpool.Pool) ([]string, error) {
	rows, err := pool.Query(ctx, `SELECT name FROM projection_checkpoints
		UNION SELECT projection FROM projection_stops
		UNION SELECT projection FROM projection_dead_letters
		ORDER BY 1`)
	if err != nil {
		return nil, fmt.Errorf("projections: known projections: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("projections: known projections: %w", err)
	}
	return names, nil
}

// heldLocks returns the advisory lock keys held in this database (lockKey values).
func heldLocks(ctx context.Context, pool *pgxpool.Pool) (map[int64]bool, error) {
	// A bigint key is held as classid (its high half) and objid (its low half).
	rows, err := pool.Query(ctx, `SELECT (classid::bigint << 32) | objid::bigint FROM pg_locks
		WHERE locktype = 'advisory' AND granted AND objsubid = 1
		  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`)
	if err != nil {
		return nil, fmt.Errorf("projections: locks: %w", err)
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("projections: locks: %w", err)
	}
	held := make(map[int64]bool, len(keys))
	for _, k := range keys {
		held[k] = true
	}
	return held, nil
}

// ErrUnknownProjection means no projection has that name.
var ErrUnknownProjection = errors.New("projections: no such projection")

// Operator is what the HTTP API offers operators over the projections this release runs: the
// state of each (InspectKnown) and Resume.
type Operator struct {
	Pool  *pgxpool.Pool
	Names []string
}

// Inspect reports every projection, sorted by name.
func (o Operator) Inspect(ctx context.Context) ([]Info, error) {
	return InspectKnown(ctx, o.Pool, o.Names...)
}

// Resume clears a projection's stop (see Resume), the named projection being one this release
// runs or the database knows.
func (o Operator) Resume(ctx context.Context, name string, skip *int64, actor string) (Info, error) {
	known, err := Known(ctx, o.Pool)
	if err != nil {
		return Info{}, err
	}
	if !slices.Contains(known, name) && !slices.Contains(o.Names, name) {
		return Info{}, fmt.Errorf("%w: %q", ErrUnknownProjection, name)
	}
	if _, err := Resume(ctx, o.Pool, name, skip, actor); err != nil {
		return Info{}, err
	}
	infos, err := Inspect(ctx, o.Pool, name)
	if err != nil || len(infos) == 0 {
		return Info{}, err
	}
	return infos[0], nil
}
