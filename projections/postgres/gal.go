package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"mailplane/domain"
	"mailplane/eventstore"
	"mailplane/projections"
)

func projectGAL(ctx context.Context, tx pgx.Tx, e eventstore.RecordedEvent, ev domain.Event) error {
	name := strings.TrimPrefix(e.StreamID, domain.GALStreamID(""))
	g, skip, err := next[domain.GAL](ctx, tx, e, ev, `SELECT version, state FROM rm_gal WHERE domain = $1`, name)
	if err != nil || skip {
		return err
	}
	state, err := json.Marshal(g) // without the sealed bind password (json "-")
	if err != nil {
		return err
	}
	var lastSync, sourceChanged *time.Time
	if g.LastSync != nil {
		lastSync = &g.LastSync.FinishedAt
	}
	if !g.SourceChangedAt.IsZero() {
		sourceChanged = &g.SourceChangedAt
	}
	createdAt := rowCreatedAt(g.CreatedAt, e)
	_, err = tx.Exec(ctx, `INSERT INTO rm_gal (domain, version, deleted, state, has_external, polling_interval_seconds,
			last_sync_at, source_changed_at, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		ON CONFLICT (domain) DO UPDATE SET version = excluded.version, deleted = excluded.deleted, state = excluded.state,
			has_external = excluded.has_external, polling_interval_seconds = excluded.polling_interval_seconds,
			last_sync_at = excluded.last_sync_at, source_changed_at = excluded.source_changed_at,
			created_at = excluded.created_at, updated_at = excluded.updated_at
		WHERE rm_gal.version < excluded.version`,
		name, e.Version, !g.Exists(), state, g.External != nil && g.ShowsExternal(), g.PollingIntervalSeconds,
		lastSync, sourceChanged, createdAt, e.RecordedAt)
	return err
}

// GALEntriesName is the GAL entries projection's stable name (its checkpoint identity).
const GALEntriesName = "postgres.gal"

// StreamLoader reads a stream in the projection's transaction (eventstore.Postgres).
type StreamLoader interface {
	LoadTx(ctx context.Context, q eventstore.DBTX, streamID string, opts eventstore.LoadOptions) ([]eventstore.RecordedEvent, error)
}

// GALEntries keeps the internal entries of every domain's GAL (gal_entries, gal_tokens, source
// 'internal'): accounts that are not closed, lists not hidden from the GAL, resources. A
// projection of its own, beside the admin one: an account created costs it an entry and its
// 7–8 tokens, which would otherwise double the admin projection's work per account, and every
// read-your-writes wait with it; a search does not wait for it anyway. Each entry is computed
// whole from the object's state at the event (a created object's from the event itself, others'
// by folding its stream up to the event, a rare event), so the projection is idempotent and
// keeps no state of its own beside the entries.
type GALEntries struct {
	registry *eventstore.Registry
	store    StreamLoader
}

// NewGALEntries returns the GAL entries projection.
func NewGALEntries(registry *eventstore.Registry, store StreamLoader) *GALEntries {
	return &GALEntries{registry: registry, store: store}
}

// Name implements projections.Projection.
func (*GALEntries) Name() string { return GALEntriesName }

// StreamTypes implements projections.Projection.
func (*GALEntries) StreamTypes() []string {
	return []string{domain.StreamTypeAccount, domain.StreamTypeList, domain.StreamTypeResource}
}

// Handle implements projections.Projection.
func (p *GALEntries) Handle(ctx context.Context, tx pgx.Tx, e eventstore.RecordedEvent) error {
	decoded, err := p.registry.Decode(e)
	if errors.Is(err, eventstore.ErrUnknownEvent) {
		return fmt.Errorf("%w: GAL entries projection: %w", projections.ErrUnknownMeaning, err)
	}
	if err != nil {
		return err
	}
	ev, ok := decoded.(domain.Event)
	if !ok {
		return fmt.Errorf("GAL entries projection: %s is not a domain event", e.Type)
	}
	// Only these change what the GAL shows (a login, a quota, a member or an alias do not).
	switch x := ev.(type) {
	case domain.AccountCreated:
		a := domain.Account{}.Evolve(x)
		if err := rememberCreated(tx, e, a); err != nil {
			return err
		}
		return projectGALEntry(ctx, tx, accountGALEntry(e.Domain, x.Address.String(), a))
	case domain.AccountDeleted:
		return projectGALEntry(ctx, tx, galEntry{domain: e.Domain, address: x.Address.String()})
	case domain.AccountUpdated:
		if x.DisplayName == nil && x.Status == nil && len(x.Attributes) == 0 && len(x.Cleared) == 0 {
			return keepFold(tx, e, ev)
		}
		a, err := foldTo[domain.Account](ctx, p, tx, e)
		if err != nil {
			return err
		}
		return projectGALEntry(ctx, tx, accountGALEntry(e.Domain, x.Address.String(), a))
	case domain.ListCreated:
		l := domain.MailingList{}.Evolve(x)
		if err := rememberCreated(tx, e, l); err != nil {
			return err
		}
		return projectGALEntry(ctx, tx, listGALEntry(e.Domain, l))
	case domain.ListDeleted:
		return projectGALEntry(ctx, tx, galEntry{domain: e.Domain, address: x.Address.String()})
	case domain.ListUpdated:
		if x.DisplayName == nil && x.HideInGAL == nil {
			return keepFold(tx, e, ev)
		}
		l, err := foldTo[domain.MailingList](ctx, p, tx, e)
		if err != nil {
			return err
		}
		return projectGALEntry(ctx, tx, listGALEntry(e.Domain, l))
	case domain.ResourceCreated:
		r := domain.Resource{}.Evolve(x)
		if err := rememberCreated(tx, e, r); err != nil {
			return err
		}
		return projectGALEntry(ctx, tx, resourceGALEntry(e.Domain, r))
	case domain.ResourceDeleted:
		return projectGALEntry(ctx, tx, galEntry{domain: e.Domain, address: x.Address.String()})
	case domain.ResourceUpdated:
		if x.DisplayName == nil {
			return keepFold(tx, e, ev)
		}
		r, err := foldTo[domain.Resource](ctx, p, tx, e)
		if err != nil {
			return err
		}
		return projectGALEntry(ctx, tx, resourceGALEntry(e.Domain, r))
	}
	return keepFold(tx, e, ev)
}

// Reset empties the internal entries (projections.Resetter). The external ones are the
// resync's, not the events': they stay.
func (*GALEntries) Reset(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `WITH gone AS (DELETE FROM gal_entries WHERE source = 'internal' RETURNING id)
		DELETE FROM gal_tokens WHERE entry_id IN (SELECT id FROM gone)`)
	return err
}

// foldTo is the state of e's stream as e left it.
//
// In a rebuild's transaction (a stateCache), the state this transaction folded for the stream's
// previous version, if it did, is evolved by e alone instead of folding the stream from its start.
func foldTo[S evolvable[S]](ctx context.Context, p *GALEntries, tx pgx.Tx, e eventstore.RecordedEvent) (S, error) {
	var state S
	cache, caching := tx.(stateCache)
	key := "gal\x00" + e.StreamID
	if caching {
		if v, raw, ok := cache.cached(key); ok && v == e.Version-1 {
			if err := json.Unmarshal(raw, &state); err != nil {
				return state, err
			}
			decoded, err := p.registry.Decode(e)
			if err != nil {
				return state, err
			}
			ev, ok := decoded.(domain.Event)
			if !ok {
				return state, fmt.Errorf("GAL entries projection: %s is not a domain event", e.Type)
			}
			state = state.Evolve(ev)
			return state, cache.remember(key, e.Version, state)
		}
	}
	events, err := p.store.LoadTx(ctx, tx, e.StreamID, eventstore.LoadOptions{UpToVersion: e.Version, SkipMetadata: true})
	if err != nil {
		return state, err
	}
	for _, re := range events {
		decoded, err := p.registry.Decode(re)
		if err != nil {
			return state, err
		}
		ev, ok := decoded.(domain.Event)
		if !ok {
			return state, fmt.Errorf("GAL entries projection: %s is not a domain event", re.Type)
		}
		state = state.Evolve(ev)
	}
	if caching {
		return state, cache.remember(key, e.Version, state)
	}
	return state, nil
}

// keepFold carries a rebuild's cached state of e's stream over an event that does not change
// the GAL (a login, a member, an alias), so that the stream's next event that does finds it.
func keepFold(tx pgx.Tx, e eventstore.RecordedEvent, ev domain.Event) error {
	cache, ok := tx.(stateCache)
	if !ok {
		return nil
	}
	key := "gal\x00" + e.StreamID
	v, raw, ok := cache.cached(key)
	if !ok || v != e.Version-1 {
		return nil
	}
	switch e.StreamType {
	case domain.StreamTypeAccount:
		return keepFolded[domain.Account](cache, key, raw, e, ev)
	case domain.StreamTypeList:
		return keepFolded[domain.MailingList](cache, key, raw, e, ev)
	case domain.StreamTypeResource:
		return keepFolded[domain.Resource](cache, key, raw, e, ev)
	}
	return nil
}

func keepFolded[S evolvable[S]](cache stateCache, key string, raw []byte, e eventstore.RecordedEvent, ev domain.Event) error {
	var state S
	if err := json.Unmarshal(raw, &state); err != nil {
		return err
	}
	return cache.remember(key, e.Version, state.Evolve(ev))
}

// rememberCreated keeps a created object's state in a rebuild's cache (see foldTo).
func rememberCreated(tx pgx.Tx, e eventstore.RecordedEvent, state any) error {
	if cache, ok := tx.(stateCache); ok {
		return cache.remember("gal\x00"+e.StreamID, e.Version, state)
	}
	return nil
}

// galEntry is an internal entry as the events leave it; visible false (the zero value) removes
// it from the GAL: a deleted or closed account, a list hidden from the GAL, a deleted object.
type galEntry struct {
	domain, kind, address, displayName string
	names                              []string
	visible                            bool
}

// projectGALEntry keeps an object's internal GAL entry and its tokens. It rewrites the
// entry's tokens whole: an object's change is rare next to searches, and a handful of rows.
func projectGALEntry(ctx context.Context, tx pgx.Tx, g galEntry) error {
	if !g.visible {
		_, err := tx.Exec(ctx, `WITH gone AS (DELETE FROM gal_entries WHERE domain = $1 AND source = 'internal' AND address = $2
			RETURNING id) DELETE FROM gal_tokens WHERE entry_id IN (SELECT id FROM gone)`, g.domain, g.address)
		return err
	}
	weights, tokens := tokenColumns(domain.GALTokens(g.address, g.displayName, g.names...))
	// One statement, one round trip. The DELETE sees the tokens as they were before the
	// statement, so it takes only the old ones (and an event delivered twice writes them once).
	_, err := tx.Exec(ctx, `WITH e AS (
			INSERT INTO gal_entries (domain, source, address, display_name, kind) VALUES ($1, 'internal', $2, $3, $4)
			ON CONFLICT (domain, source, address) DO UPDATE SET display_name = excluded.display_name, kind = excluded.kind
			RETURNING id
		), gone AS (
			DELETE FROM gal_tokens WHERE entry_id = (SELECT id FROM e)
		)
		INSERT INTO gal_tokens (entry_id, domain, source, weight, token, address)
		SELECT (SELECT id FROM e), $1, 'internal', w, t, $2 FROM unnest($5::smallint[], $6::text[]) AS x(w, t)`,
		g.domain, g.address, g.displayName, g.kind, weights, tokens)
	return err
}

// tokenColumns splits tokens into the arrays an unnest insert takes.
func tokenColumns(ts []domain.GALToken) ([]int16, []string) {
	weights, tokens := make([]int16, len(ts)), make([]string, len(ts))
	for i, t := range ts {
		weights[i], tokens[i] = int16(t.Weight), t.Token
	}
	return weights, tokens
}

// accountNames are the name attributes of an account its GAL entry is also found by.
var accountNames = []string{"givenName", "sn", "cn", "first_name", "last_name"}

func accountGALEntry(domainName, address string, a domain.Account) galEntry {
	var names []string
	for _, k := range accountNames {
		if v := a.Attributes[k]; v != "" {
			names = append(names, v)
		}
	}
	return galEntry{domain: domainName, kind: domain.GALKindAccount, address: address, displayName: a.DisplayName,
		names: names, visible: a.Exists() && a.Status != domain.StatusClosed}
}

// listGALEntry: a list hidden from the GAL has no entry at all, so no search can show it.
func listGALEntry(domainName string, l domain.MailingList) galEntry {
	return galEntry{domain: domainName, kind: domain.GALKindList, address: l.Address.String(), displayName: l.DisplayName,
		visible: l.Exists() && !l.HideInGAL}
}

func resourceGALEntry(domainName string, r domain.Resource) galEntry {
	return galEntry{domain: domainName, kind: domain.GALKindResource, address: r.Address.String(), displayName: r.DisplayName,
		visible: r.Exists()}
}

// GALRow is a domain's GAL settings.
type GALRow struct {
	Row
	GAL domain.GAL
}

// GAL returns a domain's GAL, or domain.ErrNotFound.
func (r *ReadModel) GAL(ctx context.Context, domainName string) (GALRow, error) {
	var g GALRow
	var raw []byte
	err := r.db.QueryRow(ctx, `SELECT version, state, created_at, updated_at FROM rm_gal WHERE domain = $1 AND NOT deleted`,
		domainName).Scan(&g.Version, &raw, &g.CreatedAt, &g.UpdatedAt)
	if err == pgx.ErrNoRows {
		return g, fmt.Errorf("GAL of %s: %w", domainName, domain.ErrNotFound)
	}
	if err != nil {
		return g, fmt.Errorf("read model: GAL: %w", err)
	}
	g.GAL, err = decode[domain.GAL](raw, "GAL")
	return g, err
}

// DueGALResyncs lists the domains whose GAL has an external source shown by its mode and whose
// last resync ended at least its polling interval before now, or before the source was last
// set or changed (never resynced: due at once). global is the global configuration's interval,
// for GALs that take it; 0 there means no schedule for them.
func (r *ReadModel) DueGALResyncs(ctx context.Context, now time.Time, global time.Duration, limit int) ([]string, error) {
	rows, err := r.db.Query(ctx, `SELECT domain FROM rm_gal
		WHERE NOT deleted AND has_external
			AND (polling_interval_seconds > 0 OR $2 > 0)
			AND (last_sync_at IS NULL OR last_sync_at < source_changed_at OR last_sync_at + make_interval(secs =>
				CASE WHEN polling_interval_seconds > 0 THEN polling_interval_seconds ELSE $2 END) <= $1)
		ORDER BY last_sync_at NULLS FIRST, domain LIMIT $3`, now, int(global/time.Second), limit)
	if err != nil {
		return nil, fmt.Errorf("read model: due GAL resyncs: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// GALEntry is one address-book entry a search found.
type GALEntry struct {
	Address     string `json:"address"`
	DisplayName string `json:"display_name"`
	Kind        string `json:"kind"`
	// Rank is how it matched: 0 exact, 1 prefix of the address, 2 prefix of a name word.
	Rank int `json:"-"`
}

// GALQuery is a GAL search.
type GALQuery struct {
	// Q is what the user typed (folded here).
	Q     string
	Limit int
	// Offset skips the entries of the pages before.
	Offset int
}

// GALSearch finds a domain's entries for autocomplete, as its GAL's mode shows them: exact
// matches first, then prefixes of an address, then prefixes of a name word (the SQL function
// gal_search, migration 00011, says how). It does not tell a domain that does not exist from
// one without a match.
func (r *ReadModel) GALSearch(ctx context.Context, domainName string, q GALQuery) ([]GALEntry, error) {
	folded := strings.TrimSpace(domain.FoldGAL(q.Q))
	if folded == "" {
		return nil, nil
	}
	rows, err := r.db.Query(ctx, `SELECT address, display_name, kind, rank FROM gal_search($1, $2, $3, $4, $5, $6)`, domainName, folded, folded+prefixEnd, q.Offset+q.Limit, q.Offset, q.Limit)
	if err != nil {
		return nil, fmt.Errorf("read model: GAL search: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (GALEntry, error) {
		var e GALEntry
		return e, row.Scan(&e.Address, &e.DisplayName, &e.Kind, &e.Rank)
	})
}

// prefixEnd closes the range of the tokens that start with a prefix: in the C collation
// (byte order) every token prefix+rest sorts at or below prefix+U+10FFFF, the highest code
// point (a token holding it, a noncharacter, could only be missed). A range, unlike LIKE with
// a parameter, bounds the index scan in a generic plan too, which pgx's prepared statements
// get after a few executions.
const prefixEnd = "\U0010FFFF"
