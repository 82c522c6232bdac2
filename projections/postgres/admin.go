// Package postgres holds the projections whose read models are PostgreSQL tables, and the
// queries that read them.
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

// AdminName is the admin projection's stable name (its checkpoint identity).
const AdminName = "postgres.admin"

// Admin projects the global configuration, COS, domains, accounts, mailing lists, resources,
// aliases, virtual hosts and GAL settings into the rm_* tables (the GAL's entries are GALEntries'). Each row keeps the aggregate's state at the version it has seen: an event at or below
// that version is a redelivery and changes nothing; one further ahead means a gap, and the
// projection stops (projections.ErrOutOfOrder).
type Admin struct {
	registry *eventstore.Registry
	quota    QuotaJobs
}

// NewAdmin returns the admin projection.
func NewAdmin(registry *eventstore.Registry) *Admin { return &Admin{registry: registry} }

// QuotaJobs queues the warnings of quota crossings, in the transaction that found them
// (workers.Queue).
type QuotaJobs interface {
	QuotaWarnings(ctx context.Context, tx pgx.Tx, crossings []domain.QuotaCrossing) error
}

// WithQuotaWarnings makes the projection judge the stored mailbox usage again whenever an event
// changes effective limits, and queue a warning for each crossing through q, in the same
// transaction as the read model and checkpoint: a limit lowered under the usage warns without
// waiting for the next report, exactly once. Without it, the next report finds the crossing.
func (a *Admin) WithQuotaWarnings(q QuotaJobs) *Admin {
	a.quota = q
	return a
}

// Name implements projections.Projection.
func (*Admin) Name() string { return AdminName }

// StreamTypes implements projections.Projection.
func (*Admin) StreamTypes() []string {
	return []string{domain.StreamTypeConfig, domain.StreamTypeCOS, domain.StreamTypeDomain, domain.StreamTypeAccount,
		domain.StreamTypeList, domain.StreamTypeResource, domain.StreamTypeVirtualHost, domain.StreamTypeGAL}
}

// Handle implements projections.Projection.
func (a *Admin) Handle(ctx context.Context, tx pgx.Tx, e eventstore.RecordedEvent) error {
	decoded, err := a.registry.Decode(e)
	if errors.Is(err, eventstore.ErrUnknownEvent) {
		// On a stream it reads, an event it cannot decode may change anything in its rows:
		// passing over it would leave them wrong for good.
		return fmt.Errorf("%w: admin projection: %w", projections.ErrUnknownMeaning, err)
	}
	if err != nil {
		return err
	}
	ev, ok := decoded.(domain.Event)
	if !ok {
		return fmt.Errorf("admin projection: %s is not a domain event", e.Type)
	}
	switch e.StreamType {
	case domain.StreamTypeConfig:
		if err := projectConfig(ctx, tx, e, ev); err != nil {
			return err
		}
		return a.recheckQuota(ctx, tx, e, ev)
	case domain.StreamTypeCOS:
		if err := projectCOS(ctx, tx, e, ev); err != nil {
			return err
		}
		return a.recheckQuota(ctx, tx, e, ev)
	case domain.StreamTypeDomain:
		if err := projectDomain(ctx, tx, e, ev); err != nil {
			return err
		}
		return a.recheckQuota(ctx, tx, e, ev)
	case domain.StreamTypeAccount:
		if err := projectAccount(ctx, tx, e, ev); err != nil {
			return err
		}
		return a.recheckQuota(ctx, tx, e, ev)
	case domain.StreamTypeList:
		return projectList(ctx, tx, e, ev)
	case domain.StreamTypeResource:
		return projectResource(ctx, tx, e, ev)
	case domain.StreamTypeVirtualHost:
		return projectVirtualHost(ctx, tx, e, ev)
	case domain.StreamTypeGAL:
		return projectGAL(ctx, tx, e, ev)
	}
	return nil
}

// evolvable is an aggregate state.
type evolvable[S any] interface {
	Evolve(domain.Event) S
}

// rowCreatedAt is the created_at of an object's row: its state's creation time, or the event's
// time for a state without one (a deleted object's, which Evolve empties).
func rowCreatedAt(created time.Time, e eventstore.RecordedEvent) time.Time {
	if created.IsZero() {
		return e.RecordedAt
	}
	return created
}

// next loads the row's state (query must select version, state), checks that e is the next
// event for it, and returns the evolved state. skip is true for a redelivered event.
//
// In a rebuild's transaction (a stateCache), the row's state as this transaction last wrote it
// is taken from the cache instead of being read back, and the evolved state is remembered.
func next[S evolvable[S]](ctx context.Context, tx pgx.Tx, e eventstore.RecordedEvent, ev domain.Event, query string, key any) (state S, skip bool, err error) {
	version := 0
	cache, caching := tx.(stateCache)
	cacheKey := ""
	if caching {
		cacheKey = query + "\x00" + fmt.Sprint(key)
	}
	if e.Version > 1 {
		var raw []byte
		var err error
		if v, r, ok := cacheGet(cache, cacheKey); ok {
			version, raw = v, r
		} else {
			err = tx.QueryRow(ctx, query, key).Scan(&version, &raw)
		}
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return state, false, err
		}
		if err == nil {
			if err := json.Unmarshal(raw, &state); err != nil {
				return state, false, fmt.Errorf("admin projection: state of %s: %w", e.StreamID, err)
			}
		}
	}
	if version == 0 && e.Version > 1 {
		// No row: the stream's rows may have gone with its removed domain, which left the
		// version they had reached.
		err := tx.QueryRow(ctx, `SELECT version FROM rm_tombstones WHERE stream_id = $1`, e.StreamID).Scan(&version)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return state, false, err
		}
	}
	switch {
	case e.Version <= version:
		return state, true, nil
	case e.Version != version+1:
		return state, false, fmt.Errorf("%w: admin projection: %s is at version %d, got event version %d",
			projections.ErrOutOfOrder, e.StreamID, version, e.Version)
	}
	state = state.Evolve(ev)
	if caching {
		if err := cache.remember(cacheKey, e.Version, state); err != nil {
			return state, false, err
		}
	}
	return state, false, nil
}

// cacheGet looks key up in cache, which may be nil.
func cacheGet(cache stateCache, key string) (int, []byte, bool) {
	if cache == nil {
		return 0, nil, false
	}
	return cache.cached(key)
}

func projectConfig(ctx context.Context, tx pgx.Tx, e eventstore.RecordedEvent, ev domain.Event) error {
	g, skip, err := next[domain.GlobalConfig](ctx, tx, e, ev, `SELECT version, state FROM rm_config WHERE id = $1`, 1)
	if err != nil || skip {
		return err
	}
	state, err := json.Marshal(g)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO rm_config (id, version, state) VALUES (1, $1, $2)
		ON CONFLICT (id) DO UPDATE SET version = excluded.version, state = excluded.state
		WHERE rm_config.version < excluded.version`, e.Version, state)
	return err
}

func projectCOS(ctx context.Context, tx pgx.Tx, e eventstore.RecordedEvent, ev domain.Event) error {
	name := strings.TrimPrefix(e.StreamID, domain.COSStreamID(""))
	c, skip, err := next[domain.COS](ctx, tx, e, ev, `SELECT version, state FROM rm_cos WHERE name = $1`, name)
	if err != nil || skip {
		return err
	}
	state, err := json.Marshal(c)
	if err != nil {
		return err
	}
	// A COS created again after a delete starts a new life: its created_at moves.
	_, recreated := ev.(domain.COSCreated)
	_, err = tx.Exec(ctx, `INSERT INTO rm_cos (name, version, deleted, state, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)
		ON CONFLICT (name) DO UPDATE SET version = excluded.version, deleted = excluded.deleted,
			state = excluded.state, updated_at = excluded.updated_at,
			created_at = CASE WHEN $6 THEN excluded.created_at ELSE rm_cos.created_at END
		WHERE rm_cos.version < excluded.version`, name, e.Version, !c.Exists(), state, e.RecordedAt, recreated)
	return err
}

func projectDomain(ctx context.Context, tx pgx.Tx, e eventstore.RecordedEvent, ev domain.Event) error {
	name := strings.TrimPrefix(e.StreamID, domain.DomainStreamID(""))
	d, skip, err := next[domain.Domain](ctx, tx, e, ev, `SELECT version, state FROM rm_domains WHERE name = $1`, name)
	if err != nil || skip {
		return err
	}
	if _, ok := ev.(domain.DomainRemoved); ok {
		return purgeDomain(ctx, tx, name, e.Version)
	}
	state, err := json.Marshal(d)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO rm_domains (name, unicode_name, description, status, default_cos, version, state, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)
		ON CONFLICT (name) DO UPDATE SET unicode_name = excluded.unicode_name, description = excluded.description,
			status = excluded.status, default_cos = excluded.default_cos, version = excluded.version,
			state = excluded.state, updated_at = excluded.updated_at
		WHERE rm_domains.version < excluded.version`,
		name, d.UnicodeName, d.Description, d.Status, d.DefaultCOS, e.Version, state, e.RecordedAt)
	return err
}

func projectAccount(ctx context.Context, tx pgx.Tx, e eventstore.RecordedEvent, ev domain.Event) error {
	address := strings.TrimPrefix(e.StreamID, "account-") // see domain.AccountStreamID
	a, skip, err := next[domain.Account](ctx, tx, e, ev, `SELECT version, state FROM rm_accounts WHERE address = $1`, address)
	if err != nil || skip {
		return err
	}
	state, err := json.Marshal(a)
	if err != nil {
		return err
	}
	createdAt := rowCreatedAt(a.CreatedAt, e)
	_, err = tx.Exec(ctx, `INSERT INTO rm_accounts (address, domain, display_name, status, cos, version, deleted, state, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		ON CONFLICT (address) DO UPDATE SET display_name = excluded.display_name, status = excluded.status,
			cos = excluded.cos, version = excluded.version, deleted = excluded.deleted, state = excluded.state,
			created_at = excluded.created_at, updated_at = excluded.updated_at
		WHERE rm_accounts.version < excluded.version`,
		address, e.Domain, a.DisplayName, a.Status, a.COS, e.Version, !a.Exists(), state, createdAt, e.RecordedAt)
	if err != nil {
		return err
	}
	switch x := ev.(type) {
	case domain.AliasAdded:
		_, err = tx.Exec(ctx, `INSERT INTO rm_aliases (alias, target, kind, domain) VALUES ($1, $2, 'account', $3)
			ON CONFLICT (alias) DO UPDATE SET target = excluded.target, kind = excluded.kind, domain = excluded.domain`,
			x.Alias.String(), address, x.Alias.Domain)
	case domain.AliasRemoved:
		_, err = tx.Exec(ctx, `DELETE FROM rm_aliases WHERE alias = $1 AND target = $2`, x.Alias.String(), address)
	case domain.AccountDeleted:
		_, err = tx.Exec(ctx, `DELETE FROM rm_aliases WHERE target = $1 AND kind = 'account'`, address)
	}
	return err
}

func projectVirtualHost(ctx context.Context, tx pgx.Tx, e eventstore.RecordedEvent, ev domain.Event) error {
	// The row is keyed by its stream (domain, host): a removed host's row stays, deleted, so
	// that the stream's next event still finds its version.
	host := strings.TrimPrefix(e.StreamID, domain.VirtualHostStreamID(e.Domain, ""))
	v, skip, err := next[domain.VirtualHost](ctx, tx, e, ev, `SELECT version, state FROM rm_virtual_hosts
		WHERE (domain, host) = (split_part($1, '/', 1), split_part($1, '/', 2))`, e.Domain+"/"+host)
	if err != nil || skip {
		return err
	}
	state, err := json.Marshal(v) // without the sealed key (json "-")
	if err != nil {
		return err
	}
	var source *string
	var notAfter, due, nextAttempt, issuing *time.Time
	if c := v.Certificate; c != nil {
		source, notAfter = &c.Source, &c.NotAfter
		if c.Source == domain.SourceACME {
			d := c.RenewalDue()
			due = &d
		}
	}
	if !v.Renewal.NextAttemptAt.IsZero() {
		nextAttempt = &v.Renewal.NextAttemptAt
	}
	if v.Issuance != nil {
		issuing = &v.Issuance.RequestedAt
	}
	createdAt := rowCreatedAt(v.CreatedAt, e)
	_, err = tx.Exec(ctx, `INSERT INTO rm_virtual_hosts (domain, host, version, deleted, state, source, not_after,
			renewal_due_at, next_attempt_at, issuing_since, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
		ON CONFLICT (domain, host) DO UPDATE SET version = excluded.version, deleted = excluded.deleted,
			state = excluded.state, source = excluded.source, not_after = excluded.not_after,
			renewal_due_at = excluded.renewal_due_at, next_attempt_at = excluded.next_attempt_at,
			issuing_since = excluded.issuing_since, created_at = excluded.created_at, updated_at = excluded.updated_at
		WHERE rm_virtual_hosts.version < excluded.version`,
		e.Domain, host, e.Version, !v.Exists(), state, source, notAfter, due, nextAttempt, issuing,
		createdAt, e.RecordedAt)
	return err
}

// purgeDomain drops every row of a removed domain from the read model: by now each of its
// objects has had its own deletion event (the removal appends the domain's last event after
// them), but their rows were kept, deleted, for their versions. Those versions move to
// rm_tombstones, so that a name created again continues its stream without a gap.
func purgeDomain(ctx context.Context, tx pgx.Tx, name string, version int) error {
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO rm_tombstones (stream_id, version)
		SELECT 'account-' || address, version FROM rm_accounts WHERE domain = $1
		UNION ALL SELECT 'list-' || address, version FROM rm_lists WHERE domain = $1
		UNION ALL SELECT 'resource-' || address, version FROM rm_resources WHERE domain = $1
		UNION ALL SELECT 'vhost-' || domain || '/' || host, version FROM rm_virtual_hosts WHERE domain = $1
		UNION ALL SELECT 'domain-' || $1, $2::int
		ON CONFLICT (stream_id) DO UPDATE SET version = greatest(rm_tombstones.version, excluded.version)`, name, version)
	b.Queue(`DELETE FROM rm_list_members WHERE list IN (SELECT address FROM rm_lists WHERE domain = $1)`, name)
	b.Queue(`DELETE FROM rm_aliases WHERE domain = $1 OR split_part(target, '@', 2) = $1`, name)
	b.Queue(`DELETE FROM rm_accounts WHERE domain = $1`, name)
	b.Queue(`DELETE FROM rm_lists WHERE domain = $1`, name)
	b.Queue(`DELETE FROM rm_resources WHERE domain = $1`, name)
	b.Queue(`DELETE FROM rm_virtual_hosts WHERE domain = $1`, name)
	b.Queue(`DELETE FROM rm_domains WHERE name = $1`, name)
	return tx.SendBatch(ctx, b).Close()
}

// Reset empties the admin read model (projections.Resetter). Mailbox usage is no read model
// (the events cannot rebuild it) and stays; the replay mark keeps the rebuild from judging it
// against limits of the past.
func (*Admin) Reset(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `TRUNCATE rm_config, rm_cos, rm_domains, rm_accounts, rm_aliases,
		rm_lists, rm_list_members, rm_resources, rm_virtual_hosts, rm_tombstones, rm_gal`)
	if err != nil {
		return err
	}
	return MarkReplay(ctx, tx)
}

// recheckScope says whose effective limits ev changes, if anyone's.
func recheckScope(e eventstore.RecordedEvent, ev domain.Event) (RecheckScope, bool) {
	switch x := ev.(type) {
	case domain.GlobalConfigUpdated:
		return RecheckScope{All: true}, true
	case domain.COSCreated:
		return RecheckScope{COS: x.Name}, true
	case domain.COSUpdated:
		return RecheckScope{COS: x.Name}, true
	case domain.COSDeleted:
		return RecheckScope{COS: x.Name}, true
	case domain.DomainUpdated:
		if x.Limits != nil || x.DefaultCOS != nil || len(x.Cleared) > 0 {
			return RecheckScope{Domain: strings.TrimPrefix(e.StreamID, domain.DomainStreamID(""))}, true
		}
	case domain.AccountUpdated:
		if x.MailQuotaBytes != nil || x.COS != nil || len(x.Cleared) > 0 {
			return RecheckScope{Address: x.Address.String()}, true
		}
	}
	return RecheckScope{}, false
}

// recheckQuota follows an event that changes limits (or deletes an account) on the usage,
// after the read model took it. Events a rebuild replays (at or below the replay mark) are
// history and judge nothing.
func (a *Admin) recheckQuota(ctx context.Context, tx pgx.Tx, e eventstore.RecordedEvent, ev domain.Event) error {
	if a.quota == nil {
		return nil
	}
	del, deleted := ev.(domain.AccountDeleted)
	scope, ok := recheckScope(e, ev)
	if !ok && !deleted {
		return nil
	}
	var replayedUntil int64
	err := tx.QueryRow(ctx, `SELECT replayed_until FROM quota_recheck_mark WHERE id = 1`).Scan(&replayedUntil)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return err
	}
	if e.Position <= replayedUntil {
		return nil
	}
	if err := LockQuotaExclusive(ctx, tx); err != nil {
		return err
	}
	if deleted {
		return ForgetUsage(ctx, tx, del.Address.String())
	}
	g, _, err := NewReadModel(tx).GlobalConfig(ctx)
	if err != nil {
		return err
	}
	crossings, err := RecheckQuota(ctx, tx, g, scope)
	if err != nil || len(crossings) == 0 {
		return err
	}
	return a.quota.QuotaWarnings(ctx, tx, crossings)
}
