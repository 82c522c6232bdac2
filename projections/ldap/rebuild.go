package ldap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"mailplane/eventstore"
	"mailplane/eventstore/keyring"
	"mailplane/projections"
)

// RebuildOptions configure a rebuild of the directory from the events (Rebuild, RebuildOffline).
type RebuildOptions struct {
	Directory Config
	Pool      *pgxpool.Pool
	Registry  *eventstore.Registry
	// Keyring opens the sealed password hashes, which are compared and written too.
	Keyring *keyring.Keyring
	// Logger, when set, gets a line per phase.
	Logger *slog.Logger
	// BatchOps bounds the operations (adds, modifies, deletes) one directory transaction
	// carries (default 1000).
	BatchOps int
	// Progress, when set, is called as each phase goes on (often: it decides itself how often
	// to show something).
	Progress func(Progress)
	// Examples is how many DNs of each kind of difference the summary keeps (default 5).
	Examples int
	// HeadWait bounds the wait for transactions still in flight that could commit events
	// before the last one committed (default 10s); after it, the rebuild goes to the gap-safe
	// head as it stands, and the projection catches up from there.
	HeadWait time.Duration
}

func (o *RebuildOptions) setDefaults() error {
	var errs []error
	if o.Pool == nil || o.Registry == nil || o.Keyring == nil {
		errs = append(errs, errors.New("ldap: rebuild: pool, registry and keyring are required"))
	}
	if o.Directory.URL == "" || o.Directory.DIT.Base == "" {
		errs = append(errs, errors.New("ldap: rebuild: the directory's URL and base DN are required"))
	}
	if o.BatchOps <= 0 {
		o.BatchOps = 1000
	}
	if o.Examples <= 0 {
		o.Examples = 5
	}
	if o.HeadWait <= 0 {
		o.HeadWait = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return errors.Join(errs...)
}

// Phases of a rebuild, as Progress names them.
const (
	PhaseFold  = "fold"  // reading the events into the model
	PhaseRead  = "read"  // reading what the directory holds
	PhaseWrite = "write" // writing the difference (online)
	PhaseLDIF  = "ldif"  // writing the LDIF (offline)
	PhaseLoad  = "load"  // the offline load (slapadd and the swap)
)

// Progress is where a rebuild has got to in one phase.
type Progress struct {
	Phase string
	// Done and Total count events (fold), entries (read, the LDIF) or operations (write);
	// Total is 0 when not known yet.
	Done, Total int
	// Elapsed is the time since the phase began.
	Elapsed time.Duration
	// Final is set on the phase's last call.
	Final bool
}

// RebuildSummary is what a rebuild found and did.
type RebuildSummary struct {
	// Head is the position the directory was rebuilt to: the checkpoint it now holds.
	Head eventstore.Position
	// Events counts the events read from position 0 to Head.
	Events int
	// Entries counts the entries the events call for.
	Entries int
	// Added, Changed, Deleted and Unchanged count entries: missing from the directory, holding
	// other attribute values, present without the events calling for them, as they should be.
	Added, Changed, Deleted, Unchanged int
	// AddedDNs, ChangedDNs ("DN: attribute, ..."), DeletedDNs: the first few of each.
	AddedDNs, ChangedDNs, DeletedDNs []string
	// Operations and Transactions count what was written.
	Operations, Transactions int
	// Stop is set when an event would stop the projection (lost order, unknown meaning, an
	// event it cannot fold): the rebuild goes up to the event before it, where the projection
	// then stops as it would have.
	Stop *projections.Stop
	// Fold, Read and Write are the phases' durations.
	Fold, Read, Write time.Duration
}

// Differences is the number of entries that were not as the events say.
func (s *RebuildSummary) Differences() int { return s.Added + s.Changed + s.Deleted }

// Rebuild makes the directory under the projection's base equal to the events: holding the
// projection's lock (projections.ErrRunning if a process runs it), it folds every event from
// position 0 to the head (headToRebuild), reads what the directory holds under the owned
// subtrees (OwnedOUs) meanwhile, and writes only the difference — adds, modifies of the attributes that
// differ, deletes — in RFC 5805 transactions of BatchOps operations. Each transaction asserts
// the checkpoint the rebuild started from; the last one moves it to the head, so that the
// projection goes on from there. Nothing outside the owned subtrees is touched.
//
// An interrupted rebuild leaves entries of the head's state beside a checkpoint that has not
// moved: the projection converges from there (it rewrites every entry an event after its
// checkpoint touches), and running the rebuild again finishes it.
func Rebuild(ctx context.Context, o RebuildOptions) (*RebuildSummary, error) {
	if err := o.setDefaults(); err != nil {
		return nil, err
	}
	unlock, err := lockProjection(ctx, o.Pool)
	if err != nil {
		return nil, err
	}
	defer unlock()

	dir, err := Dial(ctx, o.Directory)
	if err != nil {
		return nil, err
	}
	defer func() { dir.Close() }()
	if err := dir.Ensure(Name); err != nil {
		return nil, err
	}
	// The directory is read while the events are folded: neither needs the other.
	type read struct {
		from eventstore.Position
		held map[string]held
		took time.Duration
		err  error
	}
	reading := make(chan read, 1)
	readAll := func() {
		t0 := time.Now()
		var r read
		if r.from, r.err = dir.Checkpoint(Name); r.err == nil {
			r.held, r.err = dir.readOwned(o)
		}
		r.took = time.Since(t0)
		reading <- r
	}
	go readAll()
	model, f, err := foldToHead(ctx, o)
	if err != nil {
		<-reading
		return nil, err
	}
	sum := &RebuildSummary{Head: f.head, Events: f.events, Stop: f.stop, Fold: f.took}
	desired, err := openEntries(ctx, o, model.Entries())
	if err != nil {
		<-reading
		return nil, err
	}
	sum.Entries = len(desired)

	// A conflict means someone changed the directory between the read and the write: the
	// transaction failed whole; read again, and write what still differs.
	for round := 1; ; round++ {
		if round > 1 {
			go readAll()
		}
		r := <-reading
		if r.err != nil {
			return nil, r.err
		}
		from, held := r.from, r.held
		sum.Read += r.took
		plan := diff(o.Directory.DIT, desired, held)
		if round == 1 {
			plan.summarise(sum, o.Examples)
			o.Logger.Info("ldap rebuild: compared", "entries", len(desired), "held", len(held), "added", sum.Added,
				"changed", sum.Changed, "deleted", sum.Deleted, "unchanged", sum.Unchanged)
		}
		t0 := time.Now()
		err = dir.writePlan(ctx, o, plan.ops, from, sum.Head, sum)
		sum.Write += time.Since(t0)
		if err == nil {
			break
		}
		if !errors.Is(err, errConflict) || round == 3 {
			return nil, err
		}
		o.Logger.Warn("ldap rebuild: the directory changed while the rebuild wrote it; comparing again", "err", err)
	}
	if err := projections.MirrorCheckpoint(ctx, o.Pool, Name, sum.Head); err != nil {
		return nil, err
	}
	return sum, nil
}

// lockProjection takes the projection's advisory lock, as the projection runs under it, and
// returns its release.
func lockProjection(ctx context.Context, pool *pgxpool.Pool) (func(), error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	var held bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, projections.LockKey(Name)).Scan(&held); err != nil {
		conn.Release()
		return nil, fmt.Errorf("ldap: take the projection's lock: %w", err)
	}
	if !held {
		conn.Release()
		return nil, fmt.Errorf("%w: %s", projections.ErrRunning, Name)
	}
	return func() {
		_, _ = conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, projections.LockKey(Name))
		conn.Release()
	}, nil
}

// folded is how far foldToHead got.
type folded struct {
	head   eventstore.Position
	events int
	stop   *projections.Stop
	took   time.Duration
}

// foldToHead folds every event into a new model, up to the gap-safe head or the event before
// the first that would stop the projection (the same checks, skips included). The next page of
// events is read while the current one is folded.
func foldToHead(ctx context.Context, o RebuildOptions) (*Model, folded, error) {
	t0 := time.Now()
	var f folded
	skips, err := projections.Skips(ctx, o.Pool, Name)
	if err != nil {
		return nil, f, err
	}
	m := NewModel(o.Directory.DIT, o.Registry)
	progress := func(final bool) {
		if o.Progress != nil {
			o.Progress(Progress{Phase: PhaseFold, Done: f.events, Elapsed: time.Since(t0), Final: final})
		}
	}
	upTo, err := headToRebuild(ctx, o)
	if err != nil {
		return nil, f, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pages := readPages(ctx, o.Pool, 5000, upTo)
fold:
	for page := range pages {
		if page.err != nil {
			return nil, f, page.err
		}
		b := m.Begin()
		for _, r := range page.reads {
			e := r.Event
			if skips[e.Position] || !slices.Contains(StreamTypes, e.StreamType) {
				f.head = e.GlobalPosition()
				f.events++
				continue
			}
			if st := projections.CheckEvent(o.Registry, Name, r); st != nil {
				f.stop = st
				break fold
			}
			if e.Data, e.SchemaVersion, err = o.Registry.Upcast(e.Type, e.SchemaVersion, e.Data); err == nil {
				err = b.Apply(e)
			}
			if err != nil {
				f.stop = &projections.Stop{Projection: Name, Position: e.Position, TransactionID: e.TransactionID,
					StreamID: e.StreamID, StreamType: e.StreamType, Version: e.Version, EventType: e.Type,
					SchemaVersion: e.SchemaVersion, Kind: projections.StopProjectionRefused,
					Error: fmt.Sprintf("stream %s version %d (%s at position %d): %v", e.StreamID, e.Version, e.Type, e.Position, err)}
				break fold
			}
			f.head = e.GlobalPosition()
			f.events++
		}
		progress(false)
	}
	f.took = time.Since(t0)
	progress(true)
	o.Logger.Info("ldap rebuild: folded the events", "events", f.events, "head", formatPosition(f.head), "took", f.took)
	return m, f, nil
}

// headToRebuild returns the position to rebuild to: the last event committed, once every
// transaction that could still commit an event before it has ended — then everything up to it
// can be read as it is. A transaction that stays open longer than o.HeadWait (anywhere in the
// cluster: transaction ids are the cluster's) leaves nil: the gap-safe head as it stands then.
func headToRebuild(ctx context.Context, o RebuildOptions) (*eventstore.Position, error) {
	var head eventstore.Position
	var txid int64
	err := o.Pool.QueryRow(ctx, `SELECT transaction_id::text::bigint, position FROM events
		ORDER BY transaction_id DESC, position DESC LIMIT 1`).Scan(&txid, &head.Position)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return &head, nil
	case err != nil:
		return nil, fmt.Errorf("ldap: read the head: %w", err)
	}
	head.TransactionID = uint64(txid)
	deadline := time.Now().Add(o.HeadWait)
	for {
		var xmin int64
		if err := o.Pool.QueryRow(ctx, `SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint`).Scan(&xmin); err != nil {
			return nil, fmt.Errorf("ldap: read the oldest transaction in flight: %w", err)
		}
		if uint64(xmin) > head.TransactionID {
			return &head, nil
		}
		if time.Now().After(deadline) {
			o.Logger.Warn("ldap rebuild: a transaction older than the last event is still open; rebuilding to the gap-safe head",
				"head", formatPosition(head), "oldest_in_flight", xmin, "waited", o.HeadWait)
			return nil, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// page is one read of readPages.
type page struct {
	reads []projections.Read
	err   error
}

// readPages reads every event from position 0 to upTo (which every transaction that could
// sort before it has passed) or, for nil, to the gap-safe head, in pages, one page ahead of the
// reader. It is projections.ReadBatch without the metadata (the directory needs none)
// and with the data read as text: decoding both dominated a rebuild's fold.
func readPages(ctx context.Context, pool *pgxpool.Pool, limit int, upTo *eventstore.Position) <-chan page {
	out := make(chan page, 1)
	go func() {
		defer close(out)
		var after eventstore.Position
		for {
			reads, err := readFold(ctx, pool, after, upTo, limit)
			select {
			case out <- page{reads: reads, err: err}:
			case <-ctx.Done():
				return
			}
			if err != nil || len(reads) < limit {
				return
			}
			after = reads[len(reads)-1].Event.GlobalPosition()
		}
	}()
	return out
}

func readFold(ctx context.Context, pool *pgxpool.Pool, after eventstore.Position, upTo *eventstore.Position, limit int) ([]projections.Read, error) {
	bounded := upTo != nil
	var end eventstore.Position
	if bounded {
		end = *upTo
	}
	rows, err := pool.Query(ctx, `SELECT e.position, e.transaction_id::text::bigint, e.stream_id, e.stream_type,
			e.stream_version, e.event_type, e.schema_version, e.data::text, p.transaction_id::text::bigint, p.position
		FROM events e
		LEFT JOIN events p ON p.stream_id = e.stream_id AND p.stream_version = e.stream_version - 1
		WHERE (e.transaction_id, e.position) > ($1::bigint::text::xid8, $2)
		  AND CASE WHEN $4 THEN (e.transaction_id, e.position) <= ($5::bigint::text::xid8, $6)
		           ELSE e.transaction_id < pg_snapshot_xmin(pg_current_snapshot()) END
		ORDER BY e.transaction_id, e.position
		LIMIT $3`, int64(after.TransactionID), after.Position, limit, bounded, int64(end.TransactionID), end.Position)
	if err != nil {
		return nil, fmt.Errorf("ldap: read events: %w", err)
	}
	defer rows.Close()
	var out []projections.Read
	for rows.Next() {
		var r projections.Read
		e := &r.Event
		var txid int64
		var data []byte
		var prevTxid, prevPos *int64
		if err := rows.Scan(&e.Position, &txid, &e.StreamID, &e.StreamType, &e.Version, &e.Type, &e.SchemaVersion,
			&data, &prevTxid, &prevPos); err != nil {
			return nil, fmt.Errorf("ldap: read events: %w", err)
		}
		e.TransactionID, e.Data = uint64(txid), data
		if prevTxid != nil && prevPos != nil {
			r.Previous = &eventstore.Position{TransactionID: uint64(*prevTxid), Position: *prevPos}
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("ldap: read events: %w", err)
	}
	return out, nil
}

// wanted is an entry the events call for, with its password opened: what the directory must hold.
type wanted struct {
	Entry
	password string
}

// attrs returns the entry's attributes as the directory holds them: every attribute with the
// object classes and userPassword, names in lower case.
func (w wanted) attrs() map[string][]string {
	out := make(map[string][]string, len(w.Attrs)+2)
	for n, vs := range w.Attrs {
		out[strings.ToLower(n)] = vs
	}
	out["objectclass"] = w.Classes
	if w.password != "" {
		out["userpassword"] = []string{w.password}
	}
	return out
}

// openEntries opens every entry's password, as the projection would write it.
func openEntries(ctx context.Context, o RebuildOptions, entries []Entry) ([]wanted, error) {
	passwords := sealedPasswords(o.Keyring)
	out := make([]wanted, len(entries))
	for i, e := range entries {
		out[i].Entry = e
		if e.Secret == "" {
			continue
		}
		pw, err := passwords(ctx, e.Secret)
		if err != nil {
			return nil, fmt.Errorf("ldap: password of %s: %w", e.DN, err)
		}
		out[i].password = pw
	}
	return out, nil
}

// sealedPasswords opens sealed hashes with one read of each data key.
func sealedPasswords(k *keyring.Keyring) Passwords {
	opener := k.Opener()
	return func(ctx context.Context, sealed string) (string, error) {
		hash, err := opener.Open(ctx, sealed)
		if errors.Is(err, keyring.ErrShredded) {
			return "", nil // the domain's key was destroyed: nobody logs in with this any more
		}
		if err != nil {
			return "", err
		}
		return ldapPassword(string(hash)), nil
	}
}

// held is an entry as the directory holds it.
type held struct {
	dn    string
	attrs map[string][]string // lower-case names
	names map[string]string   // lower-case name → the directory's spelling
}

// readOwned reads every entry below the owned subtrees (not the subtrees' own entries), with
// every user attribute: as the rootdn, userPassword too. It is keyed by dnKey.
func (d *Directory) readOwned(o RebuildOptions) (map[string]held, error) {
	t0 := time.Now()
	out := map[string]held{}
	for _, ou := range OwnedOUs {
		base := d.cfg.DIT.OU(ou)
		baseKey, keeperKey := dnKey(base), dnKey(d.cfg.DIT.Keeper(ou))
		err := d.pagedSearch(base, goldap.ScopeWholeSubtree, []string{"*"}, func(e *goldap.Entry) {
			k := dnKey(e.DN)
			if k == baseKey || k == keeperKey {
				return
			}
			h := held{dn: e.DN, attrs: make(map[string][]string, len(e.Attributes)), names: make(map[string]string, len(e.Attributes))}
			for _, a := range e.Attributes {
				n := strings.ToLower(a.Name)
				h.attrs[n] = append(h.attrs[n], a.Values...)
				h.names[n] = a.Name
			}
			out[k] = h
			if o.Progress != nil && len(out)%1000 == 0 {
				o.Progress(Progress{Phase: PhaseRead, Done: len(out), Elapsed: time.Since(t0)})
			}
		})
		if err != nil {
			return nil, err
		}
	}
	if o.Progress != nil {
		o.Progress(Progress{Phase: PhaseRead, Done: len(out), Total: len(out), Elapsed: time.Since(t0), Final: true})
	}
	return out, nil
}

// pagedSearch runs a search in pages of 1000 (RFC 2696) and hands each entry to f. A base that
// does not exist yields nothing.
func (d *Directory) pagedSearch(base string, scope int, attrs []string, f func(*goldap.Entry), filter ...string) error {
	query := "(objectClass=*)"
	if len(filter) > 0 {
		query = filter[0]
	}
	paging := goldap.NewControlPaging(1000)
	for {
		res, err := d.conn.Search(goldap.NewSearchRequest(base, scope, goldap.NeverDerefAliases, 0, 0, false,
			query, attrs, []goldap.Control{paging}))
		if goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("ldap: read %s: %w", base, err)
		}
		for _, e := range res.Entries {
			f(e)
		}
		c, _ := goldap.FindControl(res.Controls, goldap.ControlTypePaging).(*goldap.ControlPaging)
		if c == nil || len(c.Cookie) == 0 {
			return nil
		}
		paging.SetCookie(c.Cookie)
	}
}

// dnKey is a DN in one spelling per entry: attribute types and values in lower case (every
// naming attribute the projection uses matches without case), escaped as RFC 4514 says.
func dnKey(dn string) string { return strings.Join(rdnKeys(dn), ",") }

// parentKey is the dnKey of the entry's parent.
func parentKey(dn string) string {
	rdns := rdnKeys(dn)
	if len(rdns) == 0 {
		return ""
	}
	return strings.Join(rdns[1:], ",")
}

func rdnKeys(dn string) []string {
	parsed, err := goldap.ParseDN(dn)
	if err != nil {
		return []string{strings.ToLower(dn)}
	}
	rdns := make([]string, len(parsed.RDNs))
	for i, rdn := range parsed.RDNs {
		parts := make([]string, len(rdn.Attributes))
		for j, a := range rdn.Attributes {
			parts[j] = strings.ToLower(a.Type) + "=" + escapeDNValue(strings.ToLower(a.Value))
		}
		slices.Sort(parts)
		rdns[i] = strings.Join(parts, "+")
	}
	return rdns
}

// depth is the number of RDNs of a DN.
func depth(dn string) int {
	parsed, err := goldap.ParseDN(dn)
	if err != nil {
		return strings.Count(dn, ",") + 1
	}
	return len(parsed.RDNs)
}

// op is one directory operation of a rebuild.
type op struct {
	dn  string
	del *goldap.DelRequest
	add *goldap.AddRequest
	mod *goldap.ModifyRequest
	// plain marks a delete sent outside any transaction: slapd 2.5.13 fails a transaction
	// (result 80, "mdb_delete: txn_commit failed: MDB_NOTFOUND") in which a delete leaves its
	// parent without children.
	plain bool
}

// plan is the difference between what the events call for and what the directory holds.
type plan struct {
	ops                                []op
	added, changed, deleted, unchanged []string // DNs; changed ones with their attributes
}

// diff compares. Entries the events do not call for are deleted (deepest first); entries whose
// object classes differ are deleted and added again (slapd 2.5 refuses both in one transaction,
// so writePlan puts them in two); other differing entries get one modify replacing the
// attributes that differ, unmanaged ones included, so that the entry ends exactly as the events
// say. Deletes come first, then modifies, then adds.
func diff(dit DIT, desired []wanted, holds map[string]held) plan {
	var p plan
	var dels, mods, adds []op
	seen := make(map[string]bool, len(desired))
	for _, w := range desired {
		k := dnKey(w.DN)
		seen[k] = true
		h, ok := holds[k]
		if !ok {
			adds = append(adds, op{dn: w.DN, add: w.addRequest(w.password, nil)})
			p.added = append(p.added, w.DN)
			continue
		}
		want := w.attrs()
		if !sameValues(want["objectclass"], h.attrs["objectclass"], true) {
			dels = append(dels, op{dn: h.dn, del: goldap.NewDelRequest(h.dn, nil)})
			adds = append(adds, op{dn: w.DN, add: w.addRequest(w.password, nil)})
			p.changed = append(p.changed, w.DN+": objectClass")
			continue
		}
		var differ []string
		for n := range want {
			if n != "objectclass" && !sameValues(want[n], h.attrs[n], false) {
				differ = append(differ, n)
			}
		}
		for n := range h.attrs {
			if _, ok := want[n]; !ok {
				differ = append(differ, n)
			}
		}
		if len(differ) == 0 {
			p.unchanged = append(p.unchanged, w.DN)
			continue
		}
		slices.Sort(differ)
		r := goldap.NewModifyRequest(h.dn, nil)
		names := make([]string, len(differ))
		for i, n := range differ {
			names[i] = attrName(w.Entry, h, n)
			r.Replace(names[i], want[n])
		}
		mods = append(mods, op{dn: h.dn, mod: r})
		p.changed = append(p.changed, w.DN+": "+strings.Join(names, ", "))
	}
	var extra []held
	for k, h := range holds {
		if !seen[k] {
			extra = append(extra, h)
		}
	}
	slices.SortFunc(extra, func(a, b held) int {
		if da, db := depth(a.dn), depth(b.dn); da != db {
			return db - da
		}
		return strings.Compare(dnKey(a.dn), dnKey(b.dn))
	})
	// The extras' deletes, deepest first, before those of entries added again (which may have
	// had extras below them).
	extraDels := make([]op, len(extra))
	for i, h := range extra {
		extraDels[i] = op{dn: h.dn, del: goldap.NewDelRequest(h.dn, nil)}
		p.deleted = append(p.deleted, h.dn)
	}
	p.ops = slices.Concat(extraDels, dels, mods, adds)
	// Which parents the deletes leave without children: their children's deletes go plain.
	children, deletes := map[string]int{}, map[string]int{}
	for _, h := range holds {
		children[parentKey(h.dn)]++
	}
	for _, o := range p.ops {
		if o.del != nil {
			deletes[parentKey(o.dn)]++
		}
	}
	for i, o := range p.ops {
		if k := parentKey(o.dn); o.del != nil && deletes[k] == children[k] {
			p.ops[i].plain = true
		}
	}
	slices.Sort(p.deleted)
	return p
}

// attrName spells an attribute as the schema does when the entry has it, else as the
// directory returned it.
func attrName(e Entry, h held, lower string) string {
	switch lower {
	case "userpassword":
		return "userPassword"
	case "objectclass":
		return "objectClass"
	}
	for n := range e.Attrs {
		if strings.ToLower(n) == lower {
			return n
		}
	}
	if n, ok := h.names[lower]; ok {
		return n
	}
	return lower
}

// sameValues compares two sets of values (object classes without case).
func sameValues(a, b []string, fold bool) bool {
	if len(a) != len(b) {
		return false
	}
	norm := func(vs []string) []string {
		out := slices.Clone(vs)
		if fold {
			for i := range out {
				out[i] = strings.ToLower(out[i])
			}
		}
		slices.Sort(out)
		return out
	}
	return slices.Equal(norm(a), norm(b))
}

func (p plan) summarise(sum *RebuildSummary, n int) {
	sum.Added, sum.Changed, sum.Deleted, sum.Unchanged = len(p.added), len(p.changed), len(p.deleted), len(p.unchanged)
	first := func(dns []string) []string { return slices.Clone(dns[:min(n, len(dns))]) }
	sum.AddedDNs, sum.ChangedDNs, sum.DeletedDNs = first(p.added), first(p.changed), first(p.deleted)
}

// writePlan writes the operations in transactions of o.BatchOps, each with the checkpoint's
// modify asserting "from" (errFenced when another process moved it); the last moves it to head.
// A transaction the directory refused because it did not hold what the plan was made from
// returns errConflict: the transactions before it are committed.
func (d *Directory) writePlan(ctx context.Context, o RebuildOptions, ops []op, from, head eventstore.Position, sum *RebuildSummary) error {
	t0 := time.Now()
	filter := "(!(mailplaneCheckpoint=*))"
	var keep []string
	if from != (eventstore.Position{}) {
		filter = "(mailplaneCheckpoint=" + goldap.EscapeFilter(formatPosition(from)) + ")"
		keep = []string{formatPosition(from)}
	}
	done, plain := 0, 0
	// The plain deletes first: they are the deepest (a parent deleted too is left without
	// children, so all its children's deletes are plain).
	var txnOps []op
	for _, o := range ops {
		if !o.plain {
			txnOps = append(txnOps, o)
			continue
		}
		if err := d.conn.Del(o.del); err != nil && !goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject) {
			if dataConflict(err) {
				return fmt.Errorf("%w: ldap: %s: %w", errConflict, o.dn, err)
			}
			return fmt.Errorf("ldap: %s: %w", o.dn, err)
		}
		sum.Operations++
		done++
		plain++
	}
	ops = txnOps
	for start := 0; start == 0 || start < len(ops); {
		if err := ctx.Err(); err != nil {
			return err
		}
		// A batch ends after BatchOps operations, or before the add of an entry it deletes.
		end, deleted := start, map[string]bool{}
		for end < len(ops) && end-start < o.BatchOps {
			k := dnKey(ops[end].dn)
			if ops[end].add != nil && deleted[k] {
				break
			}
			if ops[end].del != nil {
				deleted[k] = true
			}
			end++
		}
		last := end == len(ops)
		cp := keep
		if last {
			cp = []string{formatPosition(head)}
		}
		if err := d.writeTxn(ops[start:end], filter, cp); err != nil {
			return err
		}
		sum.Operations += end - start
		sum.Transactions++
		done += end - start
		if o.Progress != nil {
			o.Progress(Progress{Phase: PhaseWrite, Done: done, Total: plain + len(ops), Elapsed: time.Since(t0), Final: last})
		}
		if last {
			return nil
		}
		start = end
	}
	return nil
}

// writeTxn sends the operations and the checkpoint's modify in one transaction.
func (d *Directory) writeTxn(ops []op, filter string, checkpoint []string) error {
	t, err := startTxn(d.conn)
	if err != nil {
		return err
	}
	abort := func(err error) error {
		_ = t.end(false)
		return err
	}
	// Deletes one by one, in their order (children first); then the modifies and adds, which
	// are of distinct entries none below another, pipelined.
	var rest []op
	for _, o := range ops {
		if o.del == nil {
			rest = append(rest, o)
			continue
		}
		o.del.Controls = t.controls
		if err := d.conn.Del(o.del); err != nil {
			return abort(fmt.Errorf("ldap: %s: %w", o.dn, err))
		}
	}
	err = pipeline(len(rest), func(i int) error {
		o := rest[i]
		var err error
		if o.add != nil {
			o.add.Controls = t.controls
			err = d.conn.Add(o.add)
		} else {
			o.mod.Controls = t.controls
			err = d.conn.Modify(o.mod)
		}
		if err != nil {
			return fmt.Errorf("ldap: %s: %w", o.dn, err)
		}
		return nil
	})
	if err != nil {
		return abort(err)
	}
	assert, err := newAssertion(filter)
	if err != nil {
		return abort(err)
	}
	cp := goldap.NewModifyRequest(d.cfg.DIT.Checkpoint(Name), append([]goldap.Control{assert}, t.controls...))
	cp.Replace("mailplaneCheckpoint", checkpoint)
	if err := d.conn.Modify(cp); err != nil {
		return abort(fmt.Errorf("ldap: checkpoint: %w", err))
	}
	if err := t.end(true); err != nil {
		switch {
		case goldap.IsErrorWithCode(err, goldap.LDAPResultAssertionFailed):
			return fmt.Errorf("%w: %w", errFenced, err)
		case dataConflict(err):
			return fmt.Errorf("%w: %w", errConflict, err)
		}
		return err
	}
	return nil
}
