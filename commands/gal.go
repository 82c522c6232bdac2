package commands

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"mailplane/domain"
	"mailplane/eventstore"
)

// GALSyncActor is the actor of the outcomes the resync job records.
const GALSyncActor = "system:gal-sync"

// GAL resync triggers, as last_sync shows them.
const (
	GALTriggerSchedule = "schedule"
	GALTriggerRequest  = "request"
)

// dropExternalEntries deletes a domain's external GAL entries with their tokens.
const dropExternalEntries = `WITH gone AS (DELETE FROM gal_entries WHERE domain = $1 AND source = 'external' RETURNING id)
	DELETE FROM gal_tokens WHERE entry_id IN (SELECT id FROM gone)`

// ResyncGALJob is a resync to carry out.
type ResyncGALJob struct {
	Domain      string
	Trigger     string
	RequestedBy string
}

func galStream(domainName string) eventstore.Stream {
	return eventstore.Stream{ID: domain.GALStreamID(domainName), Type: domain.StreamTypeGAL, Domain: domainName}
}

// GALInput is a PUT of the GAL as its caller gave it; the bind password in clear (sealed here).
type GALInput struct {
	Account                string
	Mode                   string
	PollingIntervalSeconds int
	External               *GALSourceInput
}

// GALSourceInput is the external source of a GALInput. BindPassword nil keeps the one set.
type GALSourceInput struct {
	LDAPURL      string
	BindDN       string
	BindPassword *string
	SearchBase   string
	SearchFilter string
	StartTLS     bool
	// TimeoutSeconds 0 takes domain.DefaultGALTimeoutSeconds.
	TimeoutSeconds int
}

// PutGAL creates the domain's GALSync account when it is missing, or replaces its settings;
// created says which it did.
// The account's address is claimed like an account's (unique across accounts, aliases, lists
// and resources); a changed address frees the old one. The bind password is sealed with the
// domain's key before it goes into the event.
func (s *Service) PutGAL(ctx context.Context, req Request, domainName string, in GALInput) (created bool, out Outcome, err error) {
	// A domain that does not exist gets no data key made for it by the seal below.
	if _, err := s.loadDomain(ctx, s.pool, domainName); err != nil {
		return false, Outcome{}, err
	}
	settings := domain.GALSettings{Account: in.Account, Mode: in.Mode, PollingIntervalSeconds: in.PollingIntervalSeconds}
	if x := in.External; x != nil {
		src := &domain.GALSourceSettings{LDAPURL: x.LDAPURL, BindDN: x.BindDN, SearchBase: x.SearchBase,
			SearchFilter: x.SearchFilter, StartTLS: x.StartTLS, TimeoutSeconds: x.TimeoutSeconds}
		if x.BindPassword != nil {
			sealed := ""
			if *x.BindPassword != "" {
				var err error
				if sealed, err = s.keys.Seal(ctx, domainName, []byte(*x.BindPassword)); err != nil {
					return false, Outcome{}, err
				}
			}
			src.BindPasswordSecret = &sealed
		}
		settings.External = src
	}
	var configured *domain.GALConfigured
	out, err = run(ctx, s, req, step[domain.GAL]{
		stream: galStream(domainName),
		with:   []string{domain.DomainStreamID(domainName)},
		decide: func(ctx context.Context, tx pgx.Tx, g domain.GAL, _ int) ([]domain.Event, error) {
			configured = nil
			d, err := s.loadDomain(ctx, tx, domainName)
			if err != nil {
				return nil, err
			}
			if err := d.CheckAcceptsChanges(); err != nil {
				return nil, err
			}
			events, err := g.Decide(domain.PutGAL{Domain: domainName, Settings: settings, At: s.now()})
			if len(events) == 1 {
				ev := events[0].(domain.GALConfigured)
				configured = &ev
			}
			return events, err
		},
		queue: func(b *pgx.Batch, g domain.GAL) func(context.Context, pgx.Tx) error {
			if configured == nil {
				return nil
			}
			if configured.External == nil && !configured.Created {
				// Without a source, what the last one said is nobody's to keep up to date.
				b.Queue(dropExternalEntries, domainName)
			}
			if !configured.Created && configured.PreviousAccount == nil {
				return nil
			}
			owner := domain.GALStreamID(domainName)
			if configured.PreviousAccount != nil {
				queueRelease(b, owner, []domain.Address{*configured.PreviousAccount})
			}
			return s.queueClaim(b, g.Account, "gal", owner)
		},
	})
	return configured != nil && configured.Created && err == nil, out, err
}

// DeleteGAL removes the GALSync account, frees its address and drops the external entries it
// copied. The internal entries stay: they are the domain's objects, not the account's.
func (s *Service) DeleteGAL(ctx context.Context, req Request, domainName string) (Outcome, error) {
	return s.galCommand(ctx, req, domainName, true, func(domain.GAL) (domain.GALCommand, error) {
		return domain.DeleteGAL{}, nil
	}, func(b *pgx.Batch) {
		queueRelease(b, domain.GALStreamID(domainName), nil)
		b.Queue(dropExternalEntries, domainName)
	}, nil)
}

// RequestGALResync records an administrator's request for a resync and queues its job in one
// transaction (Outcome.JobID). A resync of the domain already queued or running is the job
// returned: two at once would only do the same work twice.
func (s *Service) RequestGALResync(ctx context.Context, req Request, domainName string) (Outcome, error) {
	if s.jobs == nil {
		return Outcome{}, ErrNoJobs
	}
	var jobID int64
	out, err := s.galCommand(ctx, req, domainName, true, func(domain.GAL) (domain.GALCommand, error) {
		jobID = 0
		return domain.RequestGALResync{RequestID: newRequestID(), At: s.now(), By: req.Meta.Actor}, nil
	}, nil, func(ctx context.Context, tx pgx.Tx) error {
		var err error
		jobID, err = s.jobs.ResyncGAL(ctx, tx, ResyncGALJob{Domain: domainName, Trigger: GALTriggerRequest, RequestedBy: req.Meta.Actor})
		return err
	})
	out.JobID = jobID
	return out, err
}

// ScheduleGALResyncs queues the scheduled resync of each domain (the periodic job finds them
// due), one transaction for all; a domain whose resync is queued or running already keeps it.
func (s *Service) ScheduleGALResyncs(ctx context.Context, domains []string) error {
	if s.jobs == nil {
		return ErrNoJobs
	}
	if len(domains) == 0 {
		return nil
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	for _, d := range domains {
		if _, err := s.jobs.ResyncGAL(ctx, tx, ResyncGALJob{Domain: d, Trigger: GALTriggerSchedule, RequestedBy: GALSyncActor}); err != nil {
			return err
		}
	}
	return tx.Commit(ctx)
}

// galCommand runs a command on an existing GAL. queue adds writes to the append's batch and
// after runs once the events are appended; either may be nil.
func (s *Service) galCommand(ctx context.Context, req Request, domainName string, checkStatus bool,
	cmd func(domain.GAL) (domain.GALCommand, error), queue func(b *pgx.Batch),
	after func(ctx context.Context, tx pgx.Tx) error,
) (Outcome, error) {
	st := step[domain.GAL]{
		stream: galStream(domainName),
		with:   []string{domain.DomainStreamID(domainName)},
		decide: func(ctx context.Context, tx pgx.Tx, g domain.GAL, _ int) ([]domain.Event, error) {
			d, err := s.loadDomain(ctx, tx, domainName)
			if err != nil {
				return nil, err
			}
			if !g.Exists() {
				return nil, fmt.Errorf("GAL of %s: %w", domainName, domain.ErrNotFound)
			}
			if checkStatus {
				if err := d.CheckAcceptsChanges(); err != nil {
					return nil, err
				}
			}
			c, err := cmd(g)
			if err != nil || c == nil {
				return nil, err
			}
			return g.Decide(c)
		},
	}
	if queue != nil {
		st.queue = func(b *pgx.Batch, _ domain.GAL) func(context.Context, pgx.Tx) error {
			queue(b)
			return nil
		}
	}
	if after != nil {
		st.after = func(ctx context.Context, tx pgx.Tx, _ domain.GAL, _ []domain.Event) error { return after(ctx, tx) }
	}
	return run(ctx, s, req, st)
}

// GAL returns a domain's GAL straight from its stream (the sealed bind password included), or
// domain.ErrNotFound.
func (s *Service) GAL(ctx context.Context, domainName string) (domain.GAL, int, error) {
	g, version, err := Load[domain.GAL](ctx, s, domain.GALStreamID(domainName))
	if err != nil {
		return g, 0, err
	}
	if !g.Exists() {
		return g, 0, fmt.Errorf("GAL of %s: %w", domainName, domain.ErrNotFound)
	}
	return g, version, nil
}

// GALBindPassword opens the external source's bind password ("" when none is set).
func (s *Service) GALBindPassword(ctx context.Context, g domain.GAL) (string, error) {
	if g.External == nil || g.External.BindPasswordSecret == "" {
		return "", nil
	}
	b, err := s.keys.Open(ctx, g.External.BindPasswordSecret)
	if err != nil {
		return "", fmt.Errorf("GAL of %s: bind password: %w", g.Domain, err)
	}
	return string(b), nil
}

// ExternalEntry is one entry an external directory holds.
type ExternalEntry struct {
	Address     string
	DisplayName string
	// Names are the entry's other names (cn, givenName, sn) it is also found by.
	Names []string
}

func (e ExternalEntry) digest() string {
	h := sha256.New()
	h.Write([]byte(e.Address + "\x00" + e.DisplayName))
	for _, n := range e.Names {
		h.Write([]byte("\x00" + n))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// GALSyncReport is a finished resync: what the directory held (Entries), or why it could not
// be read (Err).
type GALSyncReport struct {
	Entries []ExternalEntry
	// Pages is how many pages the paged search read.
	Pages     int
	Err       error
	StartedAt time.Time
	Trigger   string
}

// storedEntry is an external entry as the GAL holds it.
type storedEntry struct {
	id     int64
	digest string
}

// galDiff is what a resync changes.
type galDiff struct {
	added, changed []ExternalEntry
	changedIDs     []int64
	removedIDs     []int64
	total          int
}

// RecordGALSync records a resync's outcome and applies it in one transaction: the entries the
// directory added, changed or dropped since the last good resync, and a GALSynced event with
// their counts and the duration. A failed read of the directory records the failure and keeps
// the entries as they are. The GAL deleted meanwhile: nothing is recorded.
func (s *Service) RecordGALSync(ctx context.Context, domainName string, rep GALSyncReport) (domain.GALSyncResult, Outcome, error) {
	var result domain.GALSyncResult
	var diff galDiff
	req := Request{Meta: eventstore.Metadata{Actor: GALSyncActor}}
	out, err := run(ctx, s, req, step[domain.GAL]{
		stream: galStream(domainName),
		decide: func(ctx context.Context, tx pgx.Tx, g domain.GAL, _ int) ([]domain.Event, error) {
			if !g.Exists() {
				return nil, nil
			}
			now := s.now()
			result = domain.GALSyncResult{StartedAt: rep.StartedAt.UTC().Truncate(time.Microsecond), FinishedAt: now,
				Trigger: rep.Trigger, Status: domain.GALSyncSucceeded, Pages: rep.Pages}
			result.DurationMS = now.Sub(result.StartedAt).Milliseconds()
			if rep.Err != nil {
				result.Status, result.Error = domain.GALSyncFailed, rep.Err.Error()
				if g.LastSuccess != nil {
					result.Total = g.LastSuccess.Total
				}
			} else {
				var err error
				if diff, err = s.galDiff(ctx, tx, domainName, rep.Entries); err != nil {
					return nil, err
				}
				result.Added, result.Changed, result.Removed, result.Total = len(diff.added), len(diff.changed), len(diff.removedIDs), diff.total
			}
			return g.Decide(domain.RecordGALSync{Result: result})
		},
		after: func(ctx context.Context, tx pgx.Tx, _ domain.GAL, _ []domain.Event) error {
			if rep.Err != nil {
				return nil
			}
			return applyGALDiff(ctx, tx, domainName, diff)
		},
	})
	return result, out, err
}

// galDiff compares the directory's entries with the stored ones. Entries without a valid
// address are skipped, and an address the directory holds twice counts once (the first).
func (s *Service) galDiff(ctx context.Context, tx pgx.Tx, domainName string, entries []ExternalEntry) (galDiff, error) {
	rows, err := tx.Query(ctx, `SELECT address, id, digest FROM gal_entries WHERE domain = $1 AND source = 'external'`, domainName)
	if err != nil {
		return galDiff{}, err
	}
	stored := map[string]storedEntry{}
	for rows.Next() {
		var addr string
		var e storedEntry
		if err := rows.Scan(&addr, &e.id, &e.digest); err != nil {
			rows.Close()
			return galDiff{}, err
		}
		stored[addr] = e
	}
	if err := rows.Err(); err != nil {
		return galDiff{}, err
	}
	var d galDiff
	seen := map[string]bool{}
	for _, e := range entries {
		a, err := domain.ParseAddress(strings.TrimSpace(e.Address))
		if err != nil {
			continue
		}
		e.Address = a.String()
		if seen[e.Address] {
			continue
		}
		seen[e.Address] = true
		cur, ok := stored[e.Address]
		switch {
		case !ok:
			d.added = append(d.added, e)
		case cur.digest != e.digest():
			d.changed = append(d.changed, e)
			d.changedIDs = append(d.changedIDs, cur.id)
		}
	}
	for addr, cur := range stored {
		if !seen[addr] {
			d.removedIDs = append(d.removedIDs, cur.id)
		}
	}
	d.total = len(seen)
	return d, nil
}

// applyGALDiff writes a resync's changes: a handful of statements whatever their size.
func applyGALDiff(ctx context.Context, tx pgx.Tx, domainName string, d galDiff) error {
	drop := append(append([]int64{}, d.removedIDs...), d.changedIDs...)
	if len(drop) > 0 {
		if _, err := tx.Exec(ctx, `DELETE FROM gal_tokens WHERE entry_id = ANY($1)`, drop); err != nil {
			return fmt.Errorf("GAL resync: %w", err)
		}
	}
	if len(d.removedIDs) > 0 {
		if _, err := tx.Exec(ctx, `DELETE FROM gal_entries WHERE id = ANY($1)`, d.removedIDs); err != nil {
			return fmt.Errorf("GAL resync: %w", err)
		}
	}
	ids := append([]int64{}, d.changedIDs...)
	if len(d.changed) > 0 {
		names, digests := make([]string, len(d.changed)), make([]string, len(d.changed))
		for i, e := range d.changed {
			names[i], digests[i] = e.DisplayName, e.digest()
		}
		if _, err := tx.Exec(ctx, `UPDATE gal_entries e SET display_name = x.d, digest = x.g
			FROM unnest($1::bigint[], $2::text[], $3::text[]) AS x(id, d, g) WHERE e.id = x.id`,
			d.changedIDs, names, digests); err != nil {
			return fmt.Errorf("GAL resync: %w", err)
		}
	}
	withTokens := d.changed
	if len(d.added) > 0 {
		addrs, names, digests := make([]string, len(d.added)), make([]string, len(d.added)), make([]string, len(d.added))
		for i, e := range d.added {
			addrs[i], names[i], digests[i] = e.Address, e.DisplayName, e.digest()
		}
		rows, err := tx.Query(ctx, `INSERT INTO gal_entries (domain, source, address, display_name, kind, digest)
			SELECT $1, 'external', a, d, 'external', g FROM unnest($2::text[], $3::text[], $4::text[]) AS x(a, d, g)
			RETURNING address, id`, domainName, addrs, names, digests)
		if err != nil {
			return fmt.Errorf("GAL resync: %w", err)
		}
		byAddr := map[string]int64{}
		var addr string
		var id int64
		if _, err := pgx.ForEachRow(rows, []any{&addr, &id}, func() error { byAddr[addr] = id; return nil }); err != nil {
			return fmt.Errorf("GAL resync: %w", err)
		}
		for _, e := range d.added {
			id, ok := byAddr[e.Address]
			if !ok {
				return fmt.Errorf("GAL resync: no id for the new entry %s", e.Address)
			}
			ids = append(ids, id)
		}
		withTokens = append(append([]ExternalEntry{}, d.changed...), d.added...)
	}
	if len(withTokens) == 0 {
		return nil
	}
	var entryIDs []int64
	var weights []int16
	var tokens, addrs []string
	for i, e := range withTokens {
		for _, t := range domain.GALTokens(e.Address, e.DisplayName, e.Names...) {
			entryIDs = append(entryIDs, ids[i])
			weights = append(weights, int16(t.Weight))
			tokens = append(tokens, t.Token)
			addrs = append(addrs, e.Address)
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO gal_tokens (entry_id, domain, source, weight, token, address)
		SELECT id, $1, 'external', w, t, a FROM unnest($2::bigint[], $3::smallint[], $4::text[], $5::text[]) AS x(id, w, t, a)`,
		domainName, entryIDs, weights, tokens, addrs); err != nil {
		return fmt.Errorf("GAL resync: %w", err)
	}
	return nil
}
