package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"mailplane/eventstore"
	"mailplane/projections"
)

// ShadowSchema is where a rebuild builds the read models afresh, beside the live ones.
const ShadowSchema = "rebuild"

// ShadowChecker compares the read-model tables of a schema with an independent computation from
// the events, up to and including at (the shadow holds exactly the events up to there; events
// after it may already be in the events table and must be left out). A non-nil error refuses the
// swap: the shadow is left in place, for inspection, and a rerun goes on from it.
type ShadowChecker interface {
	Check(ctx context.Context, schema string, at eventstore.Position) error
}

// ErrShadowDiffers wraps the checker's error when it refuses a shadow.
var ErrShadowDiffers = errors.New("rebuild: the shadow tables differ from an independent computation from the events")

// ErrRebuilding means another rebuild of the Postgres read models is running.
var ErrRebuilding = errors.New("rebuild: another rebuild of the Postgres read models is running")

// Shadowed is a projection whose read model is a set of tables of its own, which a rebuild can
// build afresh in the shadow schema and swap in.
type Shadowed struct {
	Projection projections.Projection
	// Tables are the read model's tables (in public).
	Tables []string
	// Carry copies, in the swap transaction, the rows of the tables that the events do not make
	// and the projection does not own (the GAL's external entries) into the shadow.
	Carry func(ctx context.Context, tx pgx.Tx) error
}

// AdminTables are the admin projection's tables.
var AdminTables = []string{"rm_config", "rm_cos", "rm_domains", "rm_accounts", "rm_aliases", "rm_lists",
	"rm_list_members", "rm_resources", "rm_virtual_hosts", "rm_tombstones", "rm_gal"}

// GALEntriesTables are the GAL entries projection's tables (shared with the resync's external
// entries, which a swap carries over).
var GALEntriesTables = []string{"gal_entries", "gal_tokens"}

// ShadowedAdmin is the admin projection as a rebuild runs it: without quota warnings (a rebuild
// replays history, which judges nothing).
func ShadowedAdmin(reg *eventstore.Registry) Shadowed {
	return Shadowed{Projection: NewAdmin(reg), Tables: AdminTables}
}

// ShadowedGALEntries is the GAL entries projection as a rebuild runs it; the external entries
// are copied over at the swap, under a lock that keeps a resync from changing them meanwhile.
func ShadowedGALEntries(reg *eventstore.Registry, store StreamLoader) Shadowed {
	return Shadowed{Projection: NewGALEntries(reg, store), Tables: GALEntriesTables,
		Carry: func(ctx context.Context, tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `INSERT INTO rebuild.gal_entries SELECT * FROM public.gal_entries WHERE source <> 'internal'`)
			if err != nil {
				return err
			}
			_, err = tx.Exec(ctx, `INSERT INTO rebuild.gal_tokens SELECT * FROM public.gal_tokens WHERE source <> 'internal'`)
			return err
		}}
}

// RebuildOptions configure ShadowRebuild.
type RebuildOptions struct {
	Pool     *pgxpool.Pool
	Registry *eventstore.Registry
	// Projections are rebuilt together, in one pass over the events.
	Projections []Shadowed
	// Checker, when set, must accept the shadow before it is swapped in.
	Checker ShadowChecker
	// PageSize is how many events one shadow transaction takes (default 5000).
	PageSize int
	// Pipeline is how many of the handlers' writes are sent at most in one pipelined batch
	// (default 1000; 1 sends each alone, as the live projection does).
	Pipeline int
	// LockTimeout bounds each wait of the swap for a lock (default 10s): the live batch in
	// flight, the API's reads of the tables. The swap fails rather than stall the API longer.
	LockTimeout time.Duration
	// Progress, when set, is called as the rebuild goes (after each page: it decides itself
	// how often to show something).
	Progress func(RebuildProgress)
}

// Phases of a shadow rebuild, as RebuildProgress names them.
const (
	PhaseBuild = "build" // the pages from the recorded position to the head
	PhaseCheck = "check" // the checker
	PhaseSwap  = "swap"  // the final catch-up and the swap
)

// RebuildProgress is where a rebuild has got to.
type RebuildProgress struct {
	Phase       string
	Done, Total int
	Elapsed     time.Duration
	Final       bool
}

// RebuildSummary says what a rebuild did.
type RebuildSummary struct {
	// Head is where the shadow, and so each projection's checkpoint, stood at the swap.
	Head eventstore.Position
	// Resumed is true when the build went on from a shadow an earlier run left; From is where.
	Resumed bool
	From    eventstore.Position
	// Events were folded by this run (SwapEvents of them inside the swap transaction).
	Events, SwapEvents int
	// Checked is true when a checker accepted the shadow.
	Checked bool
	// Before are the checkpoints the live projections had at the swap.
	Before map[string]eventstore.Position
	// Rows counts each swapped table's rows.
	Rows                   map[string]int64
	Build, Check, SwapTime time.Duration
}

func (o *RebuildOptions) setDefaults() error {
	if o.Pool == nil || o.Registry == nil || len(o.Projections) == 0 {
		return errors.New("rebuild: pool, registry and projections are required")
	}
	if o.PageSize <= 0 {
		o.PageSize = 5000
	}
	if o.Pipeline <= 0 {
		o.Pipeline = 1000
	}
	if o.LockTimeout <= 0 {
		o.LockTimeout = 10 * time.Second
	}
	return nil
}

// rebuildLockKey keeps rebuilds of the Postgres read models one at a time.
const rebuildLockKey int64 = 0x6d70_7265_6275_696c // "mprebuil"

// ShadowRebuild rebuilds the projections' read models from position 0 into fresh tables in the
// shadow schema, while the live projections keep running and the API keeps reading the live
// tables; catches up with the head; has the checker compare the shadow with the events; and
// then, in one short transaction that locks the live projections out, catches up the last
// events, swaps the tables and sets each projection's checkpoint to where the shadow stands.
// The shadow's position is recorded with each page (rebuild_progress), so a rebuild killed
// midway goes on from there when run again.
func ShadowRebuild(ctx context.Context, o RebuildOptions) (*RebuildSummary, error) {
	if err := o.setDefaults(); err != nil {
		return nil, err
	}
	conn, err := o.Pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Release()
	var held bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, rebuildLockKey).Scan(&held); err != nil {
		return nil, err
	}
	if !held {
		return nil, ErrRebuilding
	}
	defer func() { _, _ = conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, rebuildLockKey) }()

	r := &rebuilder{o: o, skips: make(map[string]map[int64]bool)}
	for _, s := range o.Projections {
		if r.skips[s.Projection.Name()], err = projections.Skips(ctx, o.Pool, s.Projection.Name()); err != nil {
			return nil, err
		}
	}
	sum := &RebuildSummary{Before: map[string]eventstore.Position{}, Rows: map[string]int64{}}
	start := time.Now()
	pos, done, resumed, err := r.prepare(ctx)
	if err != nil {
		return nil, err
	}
	sum.Resumed, sum.From = resumed, pos
	var total int
	if err := o.Pool.QueryRow(ctx, `SELECT count(*) FROM events WHERE (transaction_id, position) > ($1::bigint::text::xid8, $2)`,
		int64(pos.TransactionID), pos.Position).Scan(&total); err != nil {
		return nil, err
	}
	total += done
	report := func(phase string, n int, since time.Time, final bool) {
		if o.Progress != nil {
			o.Progress(RebuildProgress{Phase: phase, Done: n, Total: max(total, n), Elapsed: time.Since(since), Final: final})
		}
	}
	// Build, then catch up until a page comes back short: the swap's own catch-up is then a
	// few events.
	for {
		n, next, err := r.page(ctx, pos)
		if err != nil {
			return nil, err
		}
		pos, done, sum.Events = next, done+n, sum.Events+n
		report(PhaseBuild, done, start, false)
		if n < o.PageSize {
			break
		}
	}
	report(PhaseBuild, done, start, true)
	if err := r.analyze(ctx); err != nil {
		return nil, err
	}
	sum.Build = time.Since(start)

	if o.Checker != nil {
		t := time.Now()
		report(PhaseCheck, 0, t, false)
		if err := o.Checker.Check(ctx, ShadowSchema, pos); err != nil {
			return sum, fmt.Errorf("%w (at position %d): %w", ErrShadowDiffers, pos.Position, err)
		}
		sum.Checked, sum.Check = true, time.Since(t)
		report(PhaseCheck, 1, t, true)
		// What came while the checker ran.
		for {
			n, next, err := r.page(ctx, pos)
			if err != nil {
				return nil, err
			}
			pos, sum.Events = next, sum.Events+n
			if n < o.PageSize {
				break
			}
		}
	}

	t := time.Now()
	if err := r.swap(ctx, pos, sum); err != nil {
		return sum, err
	}
	sum.SwapTime = time.Since(t)
	sum.Events += sum.SwapEvents
	report(PhaseSwap, sum.SwapEvents, t, true)
	return sum, nil
}

type rebuilder struct {
	o     RebuildOptions
	skips map[string]map[int64]bool
	// states outlive a page: only this rebuild writes the shadow, so what a page wrote is what
	// the next would read back (a page that fails ends the rebuild, and the cache with it).
	states map[string]cachedState
	// pages counts the pages this run wrote.
	pages int
}

// maxCachedStates bounds the states kept between pages (a few hundred bytes each).
const maxCachedStates = 200_000

func (r *rebuilder) pipe(tx pgx.Tx) *pipeTx {
	if r.states == nil || len(r.states) > maxCachedStates {
		r.states = make(map[string]cachedState)
	}
	p := newPipeTx(tx, r.o.Pipeline)
	p.states = r.states
	return p
}

func (r *rebuilder) names() []string {
	names := make([]string, len(r.o.Projections))
	for i, s := range r.o.Projections {
		names[i] = s.Projection.Name()
	}
	sort.Strings(names)
	return names
}

func (r *rebuilder) tables() []string {
	var ts []string
	for _, s := range r.o.Projections {
		ts = append(ts, s.Tables...)
	}
	return ts
}

// prepare finds the shadow an earlier run left, or makes a fresh one: an empty copy of each
// table's definition (columns, defaults, constraints, indexes under the live ones' names), and
// its progress row at position 0, in one transaction.
func (r *rebuilder) prepare(ctx context.Context) (eventstore.Position, int, bool, error) {
	var pos eventstore.Position
	var done int
	resumed := false
	err := pgx.BeginFunc(ctx, r.o.Pool, func(tx pgx.Tx) error {
		var names []string
		var txid int64
		err := tx.QueryRow(ctx, `SELECT projections, transaction_id::text::bigint, position, events FROM rebuild_progress
			WHERE schema_name = $1 FOR UPDATE`, ShadowSchema).Scan(&names, &txid, &pos.Position, &done)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if err == nil && slices.Equal(names, r.names()) {
			var present int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename = ANY($2)`,
				ShadowSchema, r.tables()).Scan(&present); err != nil {
				return err
			}
			if present == len(r.tables()) {
				pos.TransactionID, resumed = uint64(txid), true
				return nil
			}
		}
		pos, done = eventstore.Position{}, 0
		if _, err := tx.Exec(ctx, `DROP SCHEMA IF EXISTS rebuild CASCADE`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE SCHEMA rebuild`); err != nil {
			return err
		}
		for _, t := range r.tables() {
			id := pgx.Identifier{t}.Sanitize()
			if _, err := tx.Exec(ctx, `CREATE TABLE rebuild.`+id+` (LIKE public.`+id+` INCLUDING ALL)`); err != nil {
				return fmt.Errorf("rebuild: shadow of %s: %w", t, err)
			}
			if err := nameIndexesLike(ctx, tx, t); err != nil {
				return err
			}
		}
		_, err = tx.Exec(ctx, `INSERT INTO rebuild_progress (schema_name, projections) VALUES ($1, $2)
			ON CONFLICT (schema_name) DO UPDATE SET projections = excluded.projections, transaction_id = '0', position = 0,
				events = 0, started_at = now(), updated_at = now()`, ShadowSchema, r.names())
		return err
	})
	return pos, done, resumed, err
}

var indexHead = regexp.MustCompile(`^CREATE (UNIQUE )?INDEX \S+ ON \S+ `)

// nameIndexesLike gives the shadow table's indexes (and so their constraints) the names of the
// live table's: LIKE makes names of its own, and after the swap a later migration names them.
func nameIndexesLike(ctx context.Context, tx pgx.Tx, table string) error {
	defs := func(schema string) (map[string]string, error) {
		rows, err := tx.Query(ctx, `SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i
			JOIN pg_class c ON c.oid = i.indexrelid
			WHERE i.indrelid = (quote_ident($1) || '.' || quote_ident($2))::regclass`, schema, table)
		if err != nil {
			return nil, err
		}
		out := map[string]string{}
		for rows.Next() {
			var name, def string
			if err := rows.Scan(&name, &def); err != nil {
				return nil, err
			}
			out[indexHead.ReplaceAllString(def, "$1")] = name
		}
		return out, rows.Err()
	}
	live, err := defs("public")
	if err != nil {
		return err
	}
	shadow, err := defs(ShadowSchema)
	if err != nil {
		return err
	}
	if len(live) != len(shadow) {
		return fmt.Errorf("rebuild: %s has %d indexes, its shadow %d", table, len(live), len(shadow))
	}
	// Through temporary names: a shadow index may bear the name another live one has.
	i := 0
	tmp := map[string]string{}
	for def, name := range shadow {
		want, ok := live[def]
		if !ok {
			return fmt.Errorf("rebuild: the shadow of %s has an index the table has not: %s", table, def)
		}
		t := fmt.Sprintf("rebuild_tmp_%s_%d", table, i)
		i++
		if _, err := tx.Exec(ctx, `ALTER INDEX rebuild.`+pgx.Identifier{name}.Sanitize()+` RENAME TO `+pgx.Identifier{t}.Sanitize()); err != nil {
			return err
		}
		tmp[t] = want
	}
	for t, want := range tmp {
		if _, err := tx.Exec(ctx, `ALTER INDEX rebuild.`+pgx.Identifier{t}.Sanitize()+` RENAME TO `+pgx.Identifier{want}.Sanitize()); err != nil {
			return err
		}
	}
	return nil
}

// page folds the next page of events into the shadow, with the progress row, in one transaction.
func (r *rebuilder) page(ctx context.Context, after eventstore.Position) (int, eventstore.Position, error) {
	reads, err := readPage(ctx, r.o.Pool, after, r.o.PageSize)
	if err != nil || len(reads) == 0 {
		return 0, after, err
	}
	last := reads[len(reads)-1].Event.GlobalPosition()
	err = pgx.BeginFunc(ctx, r.o.Pool, func(tx pgx.Tx) error {
		// The shadow is rebuilt from the events if lost: its commits need not wait for the disk.
		set := `SET LOCAL synchronous_commit = off; SET LOCAL search_path = rebuild, public`
		if r.pages == 0 {
			// The tables are empty and have no statistics yet: a generic plan made now (a
			// sequential scan) would stay as they grow, and each DELETE of gal_tokens would read
			// the whole table (the rebuild ran at 200 events/s). Planned per statement until the
			// first ANALYZE.
			set += `; SET LOCAL plan_cache_mode = force_custom_plan`
		}
		if _, err := tx.Exec(ctx, set); err != nil {
			return err
		}
		ptx := r.pipe(tx)
		if err := r.apply(ctx, ptx, reads); err != nil {
			return err
		}
		if err := ptx.flush(ctx); err != nil {
			return fmt.Errorf("rebuild: the page after position %d: %w", after.Position, err)
		}
		return r.record(ctx, tx, last, len(reads))
	})
	if err != nil {
		return 0, after, err
	}
	r.pages++
	// Statistics as the tables grow (after pages 1, 2, 4, 8…), which also makes the cached plans
	// be planned again for the tables' size.
	if r.pages&(r.pages-1) == 0 {
		if err := r.analyze(ctx); err != nil {
			return 0, after, err
		}
	}
	return len(reads), last, nil
}

func (r *rebuilder) analyze(ctx context.Context) error {
	for _, t := range r.tables() {
		if _, err := r.o.Pool.Exec(ctx, `ANALYZE rebuild.`+pgx.Identifier{t}.Sanitize()); err != nil {
			return err
		}
	}
	return nil
}

func (r *rebuilder) record(ctx context.Context, tx pgx.Tx, at eventstore.Position, n int) error {
	_, err := tx.Exec(ctx, `UPDATE rebuild_progress SET transaction_id = $2::bigint::text::xid8, position = $3,
		events = events + $4, updated_at = now() WHERE schema_name = $1`, ShadowSchema, int64(at.TransactionID), at.Position, n)
	return err
}

// apply runs each projection's own handler on the events, in tx, whose search_path puts the
// shadow schema first: the handlers' unqualified tables are the shadow's. The events are checked
// as the runner checks them (order, meaning), and an operator's skips are skipped.
func (r *rebuilder) apply(ctx context.Context, tx pgx.Tx, reads []projections.Read) error {
	for _, rd := range reads {
		e := rd.Event
		upcast := false
		for _, s := range r.o.Projections {
			p := s.Projection
			if types := p.StreamTypes(); types != nil && !slices.Contains(types, e.StreamType) {
				continue
			}
			if r.skips[p.Name()][e.Position] {
				continue
			}
			if st := projections.CheckEvent(r.o.Registry, p.Name(), rd); st != nil {
				return fmt.Errorf("rebuild: %s cannot take position %d (stream %s version %d, %s): %s %s",
					p.Name(), e.Position, e.StreamID, e.Version, e.Type, st.Kind, st.Error)
			}
			if !upcast {
				var err error
				if e.Data, e.SchemaVersion, err = r.o.Registry.Upcast(e.Type, e.SchemaVersion, e.Data); err != nil {
					return fmt.Errorf("rebuild: upcast position %d: %w", e.Position, err)
				}
				upcast = true
			}
			if err := p.Handle(ctx, tx, e); err != nil {
				return fmt.Errorf("rebuild: %s at position %d (stream %s version %d, %s): %w",
					p.Name(), e.Position, e.StreamID, e.Version, e.Type, err)
			}
		}
	}
	return nil
}

// readPage reads up to limit events after the position in the gap-safe order, each with its
// stream's previous version (for the order check). The metadata is not read: no handler of
// these projections uses it.
func readPage(ctx context.Context, q eventstore.DBTX, after eventstore.Position, limit int) ([]projections.Read, error) {
	rows, err := q.Query(ctx, `SELECT e.position, e.transaction_id::text::bigint, e.stream_id, e.stream_type,
			coalesce(e.domain, ''), e.stream_version, e.event_type, e.schema_version, e.data, e.recorded_at,
			p.transaction_id::text::bigint, p.position
		FROM events e
		LEFT JOIN events p ON p.stream_id = e.stream_id AND p.stream_version = e.stream_version - 1
		WHERE (e.transaction_id, e.position) > ($1::bigint::text::xid8, $2)
		  AND e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
		ORDER BY e.transaction_id, e.position
		LIMIT $3`, int64(after.TransactionID), after.Position, limit)
	if err != nil {
		return nil, fmt.Errorf("rebuild: read events: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (projections.Read, error) {
		var rd projections.Read
		e := &rd.Event
		var txid int64
		var data []byte
		var prevTxid, prevPos *int64
		if err := row.Scan(&e.Position, &txid, &e.StreamID, &e.StreamType, &e.Domain, &e.Version, &e.Type,
			&e.SchemaVersion, &data, &e.RecordedAt, &prevTxid, &prevPos); err != nil {
			return rd, err
		}
		e.TransactionID, e.Data, e.RecordedAt = uint64(txid), json.RawMessage(data), e.RecordedAt.UTC()
		if prevTxid != nil && prevPos != nil {
			rd.Previous = &eventstore.Position{TransactionID: uint64(*prevTxid), Position: *prevPos}
		}
		return rd, nil
	})
}

// swap ends the rebuild in one transaction: it takes each projection's swap lock (waiting for
// the live batch in flight; batches that start meanwhile read nothing), locks the live tables
// (waiting for the API's reads in flight; new ones wait for the commit, then read the new
// tables), folds the events that came since the last page, carries over the rows that are not
// the events', replaces each live table by its shadow, and sets each checkpoint to the shadow's
// position. A live checkpoint ahead of the shadow cannot be (the shadow has read up to the
// gap-safe head, which the live projection cannot pass), and is refused.
func (r *rebuilder) swap(ctx context.Context, pos eventstore.Position, sum *RebuildSummary) error {
	return pgx.BeginFunc(ctx, r.o.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, fmt.Sprintf(`SET LOCAL lock_timeout = '%dms'; SET LOCAL search_path = rebuild, public`,
			r.o.LockTimeout.Milliseconds())); err != nil {
			return err
		}
		names := r.names()
		for _, n := range names {
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, projections.SwapLockKey(n)); err != nil {
				return fmt.Errorf("rebuild: lock out %s: %w", n, err)
			}
		}
		var live []string
		for _, t := range r.tables() {
			live = append(live, "public."+pgx.Identifier{t}.Sanitize())
		}
		if _, err := tx.Exec(ctx, `LOCK TABLE `+strings.Join(live, ", ")+` IN ACCESS EXCLUSIVE MODE`); err != nil {
			return fmt.Errorf("rebuild: lock the live tables: %w", err)
		}
		rows, err := tx.Query(ctx, `SELECT name, transaction_id::text::bigint, position FROM projection_checkpoints
			WHERE name = ANY($1) FOR UPDATE`, names)
		if err != nil {
			return err
		}
		for rows.Next() {
			var n string
			var txid int64
			var p eventstore.Position
			if err := rows.Scan(&n, &txid, &p.Position); err != nil {
				return err
			}
			p.TransactionID = uint64(txid)
			sum.Before[n] = p
		}
		if err := rows.Err(); err != nil {
			return err
		}
		for {
			reads, err := readPage(ctx, tx, pos, r.o.PageSize)
			if err != nil {
				return err
			}
			if len(reads) == 0 {
				break
			}
			ptx := r.pipe(tx)
			if err := r.apply(ctx, ptx, reads); err != nil {
				return err
			}
			if err := ptx.flush(ctx); err != nil {
				return err
			}
			pos, sum.SwapEvents = reads[len(reads)-1].Event.GlobalPosition(), sum.SwapEvents+len(reads)
		}
		for n, p := range sum.Before {
			if pos.Less(p) {
				return fmt.Errorf("rebuild: %s is at position %d, past the shadow's %d", n, p.Position, pos.Position)
			}
		}
		for _, s := range r.o.Projections {
			if s.Carry != nil {
				if err := s.Carry(ctx, tx); err != nil {
					return fmt.Errorf("rebuild: carry over %s's other rows: %w", s.Projection.Name(), err)
				}
			}
		}
		for _, t := range r.tables() {
			if err := replaceTable(ctx, tx, t); err != nil {
				return err
			}
			var n int64
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM public.`+pgx.Identifier{t}.Sanitize()).Scan(&n); err != nil {
				return err
			}
			sum.Rows[t] = n
		}
		for _, n := range names {
			_, err := tx.Exec(ctx, `INSERT INTO projection_checkpoints (name, transaction_id, position) VALUES ($1, $2::bigint::text::xid8, $3)
				ON CONFLICT (name) DO UPDATE SET transaction_id = excluded.transaction_id, position = excluded.position,
					consecutive_parks = 0, updated_at = now()`, n, int64(pos.TransactionID), pos.Position)
			if err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `DELETE FROM rebuild_progress WHERE schema_name = $1`, ShadowSchema); err != nil {
			return err
		}
		// RESTRICT: anything left in the schema is something this code did not expect.
		if _, err := tx.Exec(ctx, `DROP SCHEMA rebuild RESTRICT`); err != nil {
			return fmt.Errorf("rebuild: drop the emptied shadow schema: %w", err)
		}
		sum.Head = pos
		return nil
	})
}

// replaceTable drops the live table and moves its shadow into its place. A sequence the live
// table owns (gal_entries.id) serves the shadow's default already (LIKE copied the default); it
// is let go before the drop and given to the new table after.
func replaceTable(ctx context.Context, tx pgx.Tx, table string) error {
	id := pgx.Identifier{table}.Sanitize()
	rows, err := tx.Query(ctx, `SELECT s.oid::regclass::text, a.attname FROM pg_depend d
		JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
		JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
		WHERE d.refobjid = ('public.' || quote_ident($1))::regclass AND d.deptype = 'a'`, table)
	if err != nil {
		return err
	}
	type owned struct{ seq, column string }
	seqs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (owned, error) {
		var o owned
		return o, row.Scan(&o.seq, &o.column)
	})
	if err != nil {
		return err
	}
	for _, s := range seqs {
		if _, err := tx.Exec(ctx, `ALTER SEQUENCE `+s.seq+` OWNED BY NONE`); err != nil {
			return err
		}
	}
	if _, err := tx.Exec(ctx, `DROP TABLE public.`+id); err != nil {
		return fmt.Errorf("rebuild: drop the old %s: %w", table, err)
	}
	if _, err := tx.Exec(ctx, `ALTER TABLE rebuild.`+id+` SET SCHEMA public`); err != nil {
		return fmt.Errorf("rebuild: move the shadow %s in: %w", table, err)
	}
	for _, s := range seqs {
		if _, err := tx.Exec(ctx, `ALTER SEQUENCE `+s.seq+` OWNED BY public.`+id+`.`+pgx.Identifier{s.column}.Sanitize()); err != nil {
			return err
		}
	}
	return nil
}
