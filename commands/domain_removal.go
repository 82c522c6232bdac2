package commands

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"mailplane/domain"
	"mailplane/eventstore"
)

// RemoveDomainJob is a removal to carry out: the domain, and which removal of that name it is
// (the domain stream's version of its DomainRemovalStarted), so that a name removed, created
// again and removed again gets a job of its own.
type RemoveDomainJob struct {
	Domain      string
	Removal     int
	RequestedBy string
}

// ErrRemovalNotStarted means a removal step ran for a domain that exists but is not being
// removed (a job outliving its cause): there is nothing it may delete.
var ErrRemovalNotStarted = errors.New("commands: the domain is not being removed")

// StartDomainRemoval starts removing a domain: DomainRemovalStarted (from here on nothing new is
// created in it), the removal's row in domain_removals, and the remove_domain job, all in one
// transaction. A removal already under way records nothing and answers with its job.
func (s *Service) StartDomainRemoval(ctx context.Context, req Request, name string) (Outcome, error) {
	if s.jobs == nil {
		return Outcome{}, ErrNoJobs
	}
	var removal int
	var jobID int64
	out, err := run(ctx, s, req, step[domain.Domain]{
		stream: domainStream(name),
		decide: func(_ context.Context, _ pgx.Tx, d domain.Domain, version int) ([]domain.Event, error) {
			if !d.Exists() {
				return nil, fmt.Errorf("domain %q: %w", name, domain.ErrNotFound)
			}
			removal = version + 1
			return d.Decide(domain.StartDomainRemoval{})
		},
		after: func(ctx context.Context, tx pgx.Tx, _ domain.Domain, _ []domain.Event) error {
			id, err := s.jobs.RemoveDomain(ctx, tx, RemoveDomainJob{Domain: name, Removal: removal, RequestedBy: req.Meta.Actor})
			if err != nil {
				return err
			}
			_, err = tx.Exec(ctx, `INSERT INTO domain_removals (domain, job_id) VALUES ($1, $2)
				ON CONFLICT (domain) DO UPDATE SET job_id = excluded.job_id, started_at = now(), finished_at = NULL`, name, id)
			return err
		},
		view: func(ctx context.Context, tx pgx.Tx, _ domain.Domain, _ int) error {
			err := tx.QueryRow(ctx, `SELECT job_id FROM domain_removals WHERE domain = $1 AND finished_at IS NULL`, name).Scan(&jobID)
			if errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("domain %s is being removed but its removal has no job: %w", name, domain.ErrConflict)
			}
			return err
		},
	})
	out.JobID = jobID
	return out, err
}

// RemovalProgress is how far a removal has come: objects (accounts, lists, resources, aliases of
// objects elsewhere, virtual hosts) and the domain itself.
type RemovalProgress struct {
	Done, Total int64
	// Finished is true once DomainRemoved is recorded and the data key destroyed.
	Finished bool
}

// removalActor is who the removal's events are recorded as.
const removalActor = "system:remove_domain"

// RemoveDomainStep does one step of a removal in one transaction and reports the progress: it
// deletes up to batch objects of the domain (one event each, appended together), or, when none
// is left, its virtual hosts, or, when those are gone too, the domain itself with its data key.
// Every step re-derives what is left from the write side (address_claims, virtual_host_claims,
// the streams): a step that did not commit left nothing behind, so the job may be killed at any
// point and run again.
func (s *Service) RemoveDomainStep(ctx context.Context, name string, jobID int64, batch int) (RemovalProgress, error) {
	if batch <= 0 {
		batch = 500
	}
	meta := eventstore.Metadata{Actor: removalActor, RequestID: fmt.Sprintf("job-%d", jobID), CorrelationID: "remove-domain-" + name}
	for attempt := 1; ; attempt++ {
		p, err := s.removeDomainStep(ctx, name, jobID, batch, meta)
		// A command on one of the streams (an outside account's alias) may win a race with the
		// batch: read again and redo it.
		if errors.Is(err, eventstore.ErrConcurrency) && attempt < maxAttempts {
			continue
		}
		return p, err
	}
}

func (s *Service) removeDomainStep(ctx context.Context, name string, jobID int64, batch int, meta eventstore.Metadata) (RemovalProgress, error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return RemovalProgress{}, err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()

	d, version, err := load[domain.Domain](ctx, s, tx, domain.DomainStreamID(name))
	if err != nil {
		return RemovalProgress{}, err
	}
	if !d.Exists() {
		// Removed already (the last step committed before a crash), or created again since:
		// either way this removal is over.
		b := &pgx.Batch{}
		p := queueProgress(b, name, jobID, 0, true)
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return RemovalProgress{}, err
		}
		return *p, tx.Commit(ctx)
	}
	if !d.Removing {
		return RemovalProgress{}, fmt.Errorf("domain %s: %w", name, ErrRemovalNotStarted)
	}

	// Objects first: every owner of an address in the domain. An owner of the domain goes with
	// all its addresses (its aliases elsewhere too); an owner elsewhere loses its aliases here.
	rows, err := tx.Query(ctx, `SELECT owner, array_agg(address ORDER BY address) FROM address_claims
		WHERE domain = $1 GROUP BY owner ORDER BY owner LIMIT $2`, name, batch)
	if err != nil {
		return RemovalProgress{}, err
	}
	type owned struct {
		owner string
		addrs []string
	}
	owners, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (owned, error) {
		var o owned
		return o, r.Scan(&o.owner, &o.addrs)
	})
	if err != nil {
		return RemovalProgress{}, err
	}
	if len(owners) > 0 {
		// The domain's own objects go whole: all the decision needs is that each still exists
		// and where its stream ends, which its last event says (HeadsTx). Objects elsewhere keep
		// living: which of their aliases go is decided on their full state.
		galOwner := domain.GALStreamID(name)
		var inside, outside []string
		for _, o := range owners {
			if o.owner == galOwner {
				continue // the GALSync account: galRemoval
			}
			if ownerInDomain(o.owner, name) {
				inside = append(inside, o.owner)
			} else {
				outside = append(outside, o.owner)
			}
		}
		heads, err := s.store.HeadsTx(ctx, tx, inside)
		if err != nil {
			return RemovalProgress{}, err
		}
		streams, err := s.store.LoadManyTx(ctx, tx, outside)
		if err != nil {
			return RemovalProgress{}, err
		}
		var appends []eventstore.StreamAppend
		var gone, trimmed, accounts []string
		galGone := false
		for _, o := range owners {
			var sa *eventstore.StreamAppend
			var whole bool
			var account string
			if o.owner == galOwner {
				sa, err = s.galRemoval(ctx, tx, name)
				whole, galGone = true, true
			} else if ownerInDomain(o.owner, name) {
				var head *eventstore.RecordedEvent
				if h, ok := heads[o.owner]; ok {
					head = &h
				}
				sa, account, err = s.wholeRemovalOf(o.owner, head)
				whole = true
			} else {
				sa, err = s.aliasRemovalOf(o.owner, o.addrs, streams[o.owner])
			}
			if err != nil {
				return RemovalProgress{}, err
			}
			if sa != nil {
				appends = append(appends, *sa)
			}
			if whole {
				gone = append(gone, o.owner)
			} else {
				trimmed = append(trimmed, o.owner)
			}
			if account != "" {
				accounts = append(accounts, account)
			}
		}
		if _, err := s.store.AppendManyTx(ctx, tx, meta, appends); err != nil {
			return RemovalProgress{}, err
		}
		b := &pgx.Batch{}
		b.Queue(`DELETE FROM address_claims WHERE owner = ANY($1)`, gone)
		b.Queue(`DELETE FROM address_claims WHERE owner = ANY($1) AND domain = $2`, trimmed, name)
		b.Queue(`UPDATE sessions SET ended_at = now(), ended_by = $2 WHERE account = ANY($1) AND ended_at IS NULL`,
			accounts, removalActor)
		b.Queue(`DELETE FROM cos_references WHERE referrer = ANY($1)`, accounts)
		if galGone {
			// What resyncs copied from another directory: outside the events, so it goes here.
			b.Queue(dropExternalEntries, name)
		}
		p := queueProgress(b, name, jobID, int64(len(owners)), false)
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return RemovalProgress{}, err
		}
		return *p, tx.Commit(ctx)
	}

	// Then the virtual hosts (their certificates go with them).
	rows, err = tx.Query(ctx, `SELECT host FROM virtual_host_claims WHERE domain = $1 ORDER BY host LIMIT $2`, name, batch)
	if err != nil {
		return RemovalProgress{}, err
	}
	hosts, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return RemovalProgress{}, err
	}
	if len(hosts) > 0 {
		ids := make([]string, len(hosts))
		for i, h := range hosts {
			ids[i] = domain.VirtualHostStreamID(name, h)
		}
		streams, err := s.store.LoadManyTx(ctx, tx, ids)
		if err != nil {
			return RemovalProgress{}, err
		}
		var appends []eventstore.StreamAppend
		for i, h := range hosts {
			v, err := Fold[domain.VirtualHost](s.store.Registry(), streams[ids[i]])
			if err != nil {
				return RemovalProgress{}, err
			}
			if !v.Exists() {
				continue // a stale claim: released below
			}
			evs, err := v.Decide(domain.RemoveVirtualHost{})
			if err != nil {
				return RemovalProgress{}, err
			}
			loaded := streams[ids[i]]
			appends = append(appends, eventstore.StreamAppend{Stream: virtualHostStream(name, h),
				Expected: eventstore.Exact(len(loaded)), Events: asStoreEvents(evs), Head: &loaded[len(loaded)-1]})
		}
		if _, err := s.store.AppendManyTx(ctx, tx, meta, appends); err != nil {
			return RemovalProgress{}, err
		}
		b := &pgx.Batch{}
		b.Queue(`DELETE FROM virtual_host_claims WHERE domain = $1 AND host = ANY($2)`, name, hosts)
		p := queueProgress(b, name, jobID, int64(len(hosts)), false)
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return RemovalProgress{}, err
		}
		return *p, tx.Commit(ctx)
	}

	// Nothing seems left. Claims that commands took before the removal began may still be in
	// flight: they hold the domain's guard shared (queueRemovalGuard) until they commit, so
	// once it is ours exclusively, what we read next is all there is. Later claims are refused
	// by domain_removals.
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, removalLockKey(name)); err != nil {
		return RemovalProgress{}, err
	}
	var left int
	if err := tx.QueryRow(ctx, `SELECT (SELECT count(*) FROM address_claims WHERE domain = $1)
		+ (SELECT count(*) FROM virtual_host_claims WHERE domain = $1)`, name).Scan(&left); err != nil {
		return RemovalProgress{}, err
	}
	if left > 0 {
		// Late arrivals: the next step removes them.
		b := &pgx.Batch{}
		p := queueProgress(b, name, jobID, 0, false)
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return RemovalProgress{}, err
		}
		return *p, tx.Commit(ctx)
	}
	evs, err := d.Decide(domain.FinishDomainRemoval{Remaining: left})
	if err != nil {
		return RemovalProgress{}, err
	}
	if _, err := s.store.AppendManyTx(ctx, tx, meta, []eventstore.StreamAppend{{Stream: domainStream(name),
		Expected: eventstore.Exact(version), Events: asStoreEvents(evs)}}); err != nil {
		return RemovalProgress{}, err
	}
	// Crypto-shredding in the transaction of the domain's last event: both or neither.
	if err := s.keys.Destroy(ctx, tx, name); err != nil {
		return RemovalProgress{}, err
	}
	b := &pgx.Batch{}
	b.Queue(`UPDATE domain_removals SET finished_at = now() WHERE domain = $1 AND finished_at IS NULL`, name)
	b.Queue(`DELETE FROM cos_references WHERE referrer = $1`, domainCOSReferrer(name))
	p := queueProgress(b, name, jobID, 1, true)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return RemovalProgress{}, err
	}
	return *p, tx.Commit(ctx)
}

// ownerInDomain reports whether a claim's owner (a stream of an address) is of the domain.
func ownerInDomain(owner, name string) bool {
	_, addr, ok := strings.Cut(owner, "-")
	return ok && strings.HasSuffix(addr, "@"+name)
}

// ownerStream names the stream and address of a claim's owner.
func ownerStream(owner string) (eventstore.Stream, domain.Address, error) {
	kind, addrStr, ok := strings.Cut(owner, "-")
	if !ok {
		return eventstore.Stream{}, domain.Address{}, fmt.Errorf("commands: claim owner %q is no stream of an address", owner)
	}
	addr, err := domain.ParseAddress(addrStr)
	if err != nil {
		return eventstore.Stream{}, addr, fmt.Errorf("commands: claim owner %q: %w", owner, err)
	}
	switch kind {
	case domain.StreamTypeAccount:
		return accountStream(addr), addr, nil
	case domain.StreamTypeList:
		return listStream(addr), addr, nil
	case domain.StreamTypeResource:
		return resourceStream(addr), addr, nil
	}
	return eventstore.Stream{}, addr, fmt.Errorf("commands: claim owner %q is of an unknown kind", owner)
}

// wholeRemovalOf decides the deletion of one of the domain's accounts, lists or resources from
// the last event of its stream (nil: the stream has none). An object exists while its stream
// does not end in its deletion (domain.EndsObject), and a deletion needs nothing else of its
// state: reading and folding twenty thousand whole streams would cost the removal more than
// writing their deletions. sa is nil for a claim left stale (nothing to delete; the claim goes
// all the same); account is the address of a deleted account, whose sessions end and whose COS
// reference goes.
func (s *Service) wholeRemovalOf(owner string, head *eventstore.RecordedEvent) (sa *eventstore.StreamAppend, account string, err error) {
	stream, addr, err := ownerStream(owner)
	if err != nil {
		return nil, "", err
	}
	if head == nil || domain.EndsObject(head.Type) {
		return nil, "", nil
	}
	var evs []domain.Event
	switch stream.Type {
	case domain.StreamTypeAccount:
		account = addr.String()
		evs, err = domain.Account{Address: addr}.Decide(domain.DeleteAccount{})
	case domain.StreamTypeList:
		evs, err = domain.MailingList{Address: addr}.Decide(domain.DeleteList{})
	case domain.StreamTypeResource:
		evs, err = domain.Resource{Address: addr}.Decide(domain.DeleteResource{})
	}
	if err != nil {
		return nil, "", err
	}
	return &eventstore.StreamAppend{Stream: stream, Expected: eventstore.Exact(head.Version), Events: asStoreEvents(evs),
		Head: head}, account, nil
}

// galRemoval decides the deletion of the domain's GALSync account (its claim is the GAL
// stream's), from the stream's full state; nil when it is deleted already.
func (s *Service) galRemoval(ctx context.Context, tx pgx.Tx, name string) (*eventstore.StreamAppend, error) {
	id := domain.GALStreamID(name)
	streams, err := s.store.LoadManyTx(ctx, tx, []string{id})
	if err != nil {
		return nil, err
	}
	loaded := streams[id]
	g, err := Fold[domain.GAL](s.store.Registry(), loaded)
	if err != nil {
		return nil, err
	}
	if !g.Exists() {
		return nil, nil // a stale claim: released all the same
	}
	evs, err := g.Decide(domain.DeleteGAL{})
	if err != nil {
		return nil, err
	}
	return &eventstore.StreamAppend{Stream: galStream(name), Expected: eventstore.Exact(len(loaded)), Events: asStoreEvents(evs),
		Head: &loaded[len(loaded)-1]}, nil
}

// aliasRemovalOf decides, on the full state of an object of another domain, the removal of
// its aliases in the domain being removed (addrs: its claims there). nil when none is left.
func (s *Service) aliasRemovalOf(owner string, addrs []string, events []eventstore.RecordedEvent) (*eventstore.StreamAppend, error) {
	stream, _, err := ownerStream(owner)
	if err != nil {
		return nil, err
	}
	aliases := domain.ParseAddresses(addrs)
	reg := s.store.Registry()
	var evs []domain.Event
	switch stream.Type {
	case domain.StreamTypeAccount:
		a, err := Fold[domain.Account](reg, events)
		if err != nil || !a.Exists() {
			return nil, err
		}
		for _, al := range aliases {
			if a.HasAlias(al) {
				evs = append(evs, domain.AliasRemoved{Address: a.Address, Alias: al})
			}
		}
	case domain.StreamTypeList:
		l, err := Fold[domain.MailingList](reg, events)
		if err != nil || !l.Exists() {
			return nil, err
		}
		if evs, err = l.Decide(domain.RemoveListAliases{Aliases: addrs}); err != nil {
			return nil, err
		}
	case domain.StreamTypeResource:
		r, err := Fold[domain.Resource](reg, events)
		if err != nil || !r.Exists() {
			return nil, err
		}
		for _, al := range aliases {
			if r.HasAlias(al) {
				evs = append(evs, domain.ResourceAliasRemoved{Address: r.Address, Alias: al})
			}
		}
	}
	if len(evs) == 0 {
		return nil, nil
	}
	return &eventstore.StreamAppend{Stream: stream, Expected: eventstore.Exact(len(events)), Events: asStoreEvents(evs),
		Head: &events[len(events)-1]}, nil
}

// queueProgress queues the update of the removal's job_progress row into the step's batch (so
// a crash never leaves it ahead of or behind what was removed); the returned progress is filled
// once the batch ran. done counts what the steps removed, n in this one. The total is fixed by
// the first step: what it removed and what was left after it (the domain's distinct claim owners
// and virtual hosts, plus one for the domain itself) — counted then only, since counting at every
// step would read every claim the domain has left each time. Objects that arrived in a race with
// the start of the removal push the total up as they are met.
func queueProgress(b *pgx.Batch, name string, jobID, n int64, finished bool) *RemovalProgress {
	p := &RemovalProgress{Done: n, Total: n, Finished: finished}
	b.Queue(`UPDATE job_progress SET
			total = CASE
				WHEN $4 THEN done + $2
				WHEN total = 0 THEN done + $2 + 1
					+ (SELECT count(DISTINCT owner) FROM address_claims WHERE domain = $3)
					+ (SELECT count(*) FROM virtual_host_claims WHERE domain = $3)
				ELSE greatest(total, done + $2 + 1) END,
			done = done + $2, updated_at = now()
		WHERE job_id = $1 RETURNING done, total`, jobID, n, name, finished).QueryRow(func(row pgx.Row) error {
		err := row.Scan(&p.Done, &p.Total)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // a step run without a job row (tools)
		}
		return err
	})
	return p
}

func asStoreEvents(evs []domain.Event) []eventstore.Event {
	out := make([]eventstore.Event, len(evs))
	for i, e := range evs {
		out[i] = e
	}
	return out
}
