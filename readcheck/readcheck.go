// Package readcheck proves the Postgres read models equal the events: it computes every row the
// projections of projections/postgres should have written, from the raw events and apart from
// those projections' code, and compares them with the tables, naming the first differing row of
// each table (`mailplane verify --read-models`, and the rebuild's check before it swaps its
// shadow tables in).
//
// # Contract
//
// Check(ctx, db, schema) reads, in one REPEATABLE READ READ ONLY transaction (one snapshot):
//
//   - each projection's checkpoint: postgres.admin's and postgres.gal's rows of
//     <schema>.projection_checkpoints when that schema has such a table (a shadow rebuild keeps
//     the position its shadow tables reached there; a projection without a row there is at
//     position 0: its tables must be empty), else of the live projection_checkpoints;
//   - the events of the stream types each projection handles, up to and including its
//     checkpoint in the (transaction_id, position) order, without those an operator skipped for
//     it (projection_skips), streamed in that order and folded here;
//   - the read-model tables in schema, each streamed in key order and merged with the expected
//     rows.
//
// A projection merely behind the head is therefore no difference: its tables are compared with
// the events it has reached, and the checkpoint and the rows it wrote in the same transaction are
// seen together (nothing waits for the projections to catch up). An event parked as a dead
// letter was not applied, and shows as the difference it makes.
//
// In a schema other than public, a table the schema does not have is reported Absent and not
// compared (a rebuild's shadow holds the tables it rebuilds); in public every table must exist.
//
// The Report lists every checked table with the rows compared (keys on either side), the number
// of differing rows and the first one in key order: its key, and either the first differing
// column with the expected and the stored value (for a state column, the path of the first
// differing field), or that the row is missing or extra. An error means the check could not be
// made (a database error, an event that cannot be decoded); a difference is no error.
//
// db is a pool or a connection (anything that begins a transaction: the check begins its own),
// or a transaction the caller opened at REPEATABLE READ or SERIALIZABLE (the rebuild, to check
// the same snapshot it swaps in); a transaction at another isolation is refused.
//
// # What is independent of the projections
//
// The projections write rows event by event (inserts, upserts guarded by version, deletes of
// aliases and members, the purge of a removed domain, tombstones, GAL entries rewritten per
// event). This package instead folds every stream whole, in memory, and derives each table from
// the objects' final states: an alias row from the aliases the owner's state holds, a member row
// from the list's members, a GAL entry from the object's visibility, a tombstone from the
// versions the objects had when their domain was removed. One mistake in the projections' writes
// cannot also be here. What both share is the domain package: its events, its upcasters, the
// aggregates' Evolve (the meaning of the events, which the write side decides with too) and
// domain.GALTokens (the search keys).
//
// Memory holds one state per object of the read models (not the events: they stream), twice for
// accounts, lists and resources, whose GAL entries follow their own projection's checkpoint.
//
// # Tables
//
// Checked (see Tables): rm_config, rm_cos, rm_domains, rm_accounts, rm_aliases, rm_lists,
// rm_list_members, rm_resources, rm_virtual_hosts (with the certificates' metadata), rm_gal and
// rm_tombstones (postgres.admin); gal_entries and gal_tokens of source 'internal'
// (postgres.gal). Every column is compared except gal_entries.id and gal_tokens.entry_id:
// surrogate keys taken from a sequence as rows are inserted, which any replay numbers anew
// (tokens are matched to their entry through the join instead). No column holds the time of the
// projection: updated_at is the time the row's latest event was recorded, created_at the
// object's own creation time (a COS's and a domain's: when their latest creation was recorded);
// a row whose state records none (a deleted object: its state is empty) carries the time of the
// event that last wrote it, as the projection writes it. The LDAP and OpenDKIM projections
// write no Postgres table and are not checked here.
//
// The usage tables (mailbox_usage, domain_usage) hold the mail store's measurements, which no
// event decides, but also what is judged from the effective limits, which the events do
// decide: whether each mailbox and each domain is at or over its warning line, and a domain's
// effective limit and warning percent (limit_bytes, warn_percent). Those columns are checked,
// resolved here with the domain package's rules over this fold's states (the projection
// resolves them in SQL): see usage.go. The other columns (used_bytes, crossings...) are not, nor
// which rows exist.
//
// Not checked (see Unchecked), as no event decides them: gal_entries and gal_tokens of source
// 'external' (a copy of another directory, written by the resync); the measured columns of the
// usage tables; quota_recheck_mark (the rebuild's replay mark). The write-side reservations
// (address_claims, virtual_host_claims, cos_references, domain_removals, sessions...) are no
// read model. No other checked table stores an effective value: the API resolves them at read
// time.
package readcheck

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"mailplane/domain"
	"mailplane/eventstore"
	"mailplane/projections/postgres"
)

// Querier is what Check reads through: a pool, a connection or a transaction.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// txBeginner is a Querier that can begin the check's own transaction (pgxpool.Pool, pgx.Conn).
type txBeginner interface {
	BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error)
}

// Report is what Check found.
type Report struct {
	// Schema is where the read models were read.
	Schema string `json:"schema"`
	// Checkpoints are the positions the tables were compared at, one per projection.
	Checkpoints []Checkpoint `json:"checkpoints"`
	// Tables are the checked tables, in the order of Tables.
	Tables []TableReport `json:"tables"`
}

// Checkpoint is a projection's position in the snapshot, and how many events of its stream types
// up to it were folded.
type Checkpoint struct {
	Projection    string `json:"projection"`
	TransactionID uint64 `json:"transaction_id"`
	Position      int64  `json:"position"`
	Events        int64  `json:"events"`
	// Skipped are events an operator skipped for the projection, left out of the fold.
	Skipped int `json:"skipped,omitempty"`
}

// TableReport is one table's comparison.
type TableReport struct {
	Table      string `json:"table"`
	Projection string `json:"projection"`
	// Rows is the number of keys compared: those expected and those stored, once each.
	Rows int64 `json:"rows"`
	// Differences counts the differing rows (missing, extra or with a differing column).
	Differences int64 `json:"differences"`
	// First is the first differing row in key order, nil when the table equals the events.
	First *Difference `json:"first,omitempty"`
	// Absent: the schema (not public) has no such table, and nothing was compared.
	Absent bool `json:"absent,omitempty"`
	// Skipped says why nothing was compared in a table that is there.
	Skipped string `json:"skipped,omitempty"`
}

// Difference kinds.
const (
	// Differs: the row is there, a column holds another value.
	Differs = "differs"
	// Missing: the events call for the row, the table has none.
	Missing = "missing"
	// Extra: the table has the row, the events call for none (or the key is stored twice).
	Extra = "extra"
)

// Difference is one differing row.
type Difference struct {
	Kind string `json:"kind"`
	// Key is the row's key; the columns of a composite key are joined with " / ".
	Key string `json:"key"`
	// Column is the first differing column (for a jsonb state, its path: state.DisplayName);
	// empty for a missing or extra row.
	Column string `json:"column,omitempty"`
	// Expected and Got are the values (NULL for SQL NULL; for a state field, JSON).
	Expected string `json:"expected,omitempty"`
	Got      string `json:"got,omitempty"`
}

func (d Difference) String() string {
	switch d.Kind {
	case Missing:
		return fmt.Sprintf("row %s is missing", d.Key)
	case Extra:
		return fmt.Sprintf("row %s is extra (no event calls for it)", d.Key)
	}
	return fmt.Sprintf("row %s: %s is %s, the events say %s", d.Key, d.Column, d.Got, d.Expected)
}

// OK reports whether every table equals the events.
func (r Report) OK() bool {
	for _, t := range r.Tables {
		if t.Differences > 0 {
			return false
		}
	}
	return true
}

// Tables are the checked tables, by projection.
var Tables = []struct{ Table, Projection string }{
	{"rm_config", postgres.AdminName}, {"rm_cos", postgres.AdminName}, {"rm_domains", postgres.AdminName},
	{"rm_accounts", postgres.AdminName}, {"rm_aliases", postgres.AdminName}, {"rm_lists", postgres.AdminName},
	{"rm_list_members", postgres.AdminName}, {"rm_resources", postgres.AdminName},
	{"rm_virtual_hosts", postgres.AdminName}, {"rm_gal", postgres.AdminName}, {"rm_tombstones", postgres.AdminName},
	{"gal_entries", postgres.GALEntriesName}, {"gal_tokens", postgres.GALEntriesName},
	// Only their judged columns (see usage.go).
	{"mailbox_usage", postgres.AdminName}, {"domain_usage", postgres.AdminName},
}

// Unchecked are the tables beside the read models that no event decides, with why.
var Unchecked = map[string]string{
	"gal_entries (source external)": "a copy of another directory, written by the GAL resync, not by events",
	"gal_tokens (source external)":  "the search keys of the external entries",
	"mailbox_usage (used_bytes, previous_used_bytes, crossings, crossed_xact, reported_at)": "the mail store's measurements (POST /api/v1/usage) and their count of crossings, outside the event stream",
	"domain_usage (used_bytes, crossings, crossed_xact)":                                    "sums of the measurements",
	"quota_recheck_mark": "where a rebuild's replay ended, not a read model",
}

// Check compares the read models in schema with the events (see the package's contract).
func Check(ctx context.Context, db Querier, schema string) (Report, error) {
	rep := Report{Schema: schema}
	if schema == "" {
		return rep, errors.New("readcheck: no schema named")
	}
	if b, ok := db.(txBeginner); ok {
		tx, err := b.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
		if err != nil {
			return rep, fmt.Errorf("readcheck: begin: %w", err)
		}
		// Read only: nothing to commit, and a rollback cannot lose anything.
		defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
		db = tx
	} else {
		var iso string
		if err := db.QueryRow(ctx, `SELECT current_setting('transaction_isolation')`).Scan(&iso); err != nil {
			return rep, fmt.Errorf("readcheck: isolation: %w", err)
		}
		if iso != "repeatable read" && iso != "serializable" {
			return rep, fmt.Errorf("readcheck: the transaction is at %s: the check needs one snapshot (repeatable read)", iso)
		}
	}
	var found bool
	if err := db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, schema).Scan(&found); err != nil {
		return rep, fmt.Errorf("readcheck: schema %s: %w", schema, err)
	}
	if !found {
		return rep, fmt.Errorf("readcheck: no schema %q", schema)
	}
	reg, err := registry()
	if err != nil {
		return rep, err
	}
	cps, err := checkpoints(ctx, db, schema)
	if err != nil {
		return rep, err
	}
	f := newFold(reg)
	if err := f.run(ctx, db, cps); err != nil {
		return rep, err
	}
	for _, name := range []string{postgres.AdminName, postgres.GALEntriesName} {
		c := cps[name]
		rep.Checkpoints = append(rep.Checkpoints, Checkpoint{Projection: name, TransactionID: c.at.TransactionID,
			Position: c.at.Position, Events: f.events[name], Skipped: len(c.skips)})
	}
	compared := 0
	for _, t := range f.tables() {
		tr, err := compare(ctx, db, schema, t)
		if err != nil {
			return rep, err
		}
		rep.Tables = append(rep.Tables, tr)
		if !tr.Absent {
			compared++
		}
	}
	usage, err := compareUsage(ctx, db, schema, f, cps[postgres.AdminName])
	if err != nil {
		return rep, err
	}
	rep.Tables = append(rep.Tables, usage...)
	if compared == 0 {
		return rep, fmt.Errorf("readcheck: schema %q has none of the read-model tables", schema)
	}
	return rep, nil
}

// registry knows every domain event and its upcasters, as the projections' runner does.
func registry() (*eventstore.Registry, error) {
	events := domain.Events()
	evs := make([]eventstore.Event, len(events))
	for i, e := range events {
		evs[i] = e
	}
	var ups []eventstore.Upcaster
	for _, u := range domain.Upcasters() {
		ups = append(ups, eventstore.Upcaster{EventType: u.EventType, From: u.FromVersion, Up: u.Upcast})
	}
	reg, err := eventstore.NewRegistry(evs, ups)
	if err != nil {
		return nil, fmt.Errorf("readcheck: registry: %w", err)
	}
	return reg, nil
}

// checkpoint is where a projection stands, and the events skipped for it.
type checkpoint struct {
	at    eventstore.Position
	skips map[int64]bool
}

func checkpoints(ctx context.Context, db Querier, schema string) (map[string]checkpoint, error) {
	table := "projection_checkpoints"
	var own bool
	err := db.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, pgx.Identifier{schema, "projection_checkpoints"}.Sanitize()).Scan(&own)
	if err != nil {
		return nil, fmt.Errorf("readcheck: checkpoints: %w", err)
	}
	if own {
		table = pgx.Identifier{schema, "projection_checkpoints"}.Sanitize()
	}
	out := map[string]checkpoint{}
	for _, name := range []string{postgres.AdminName, postgres.GALEntriesName} {
		c := checkpoint{skips: map[int64]bool{}}
		var txid int64
		err := db.QueryRow(ctx, `SELECT transaction_id::text::bigint, position FROM `+table+` WHERE name = $1`, name).
			Scan(&txid, &c.at.Position)
		switch {
		case errors.Is(err, pgx.ErrNoRows): // never ran: nothing projected
		case err != nil:
			return nil, fmt.Errorf("readcheck: checkpoint of %s: %w", name, err)
		}
		c.at.TransactionID = uint64(txid)
		rows, err := db.Query(ctx, `SELECT position FROM projection_skips WHERE projection = $1`, name)
		if err != nil {
			return nil, fmt.Errorf("readcheck: skips of %s: %w", name, err)
		}
		skips, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return nil, fmt.Errorf("readcheck: skips of %s: %w", name, err)
		}
		for _, p := range skips {
			c.skips[p] = true
		}
		out[name] = c
	}
	return out, nil
}

// displayKey shows a composite key.
func displayKey(k string) string { return strings.ReplaceAll(k, keySep, " / ") }
