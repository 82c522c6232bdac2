package readcheck

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"mailplane/domain"
	"mailplane/eventstore"
	"mailplane/projections/postgres"
)

// object is one stream's state as this fold has it, with what its row carries beside the state.
type object[S any] struct {
	state   S
	version int
	// domain is the events' domain column when the row was (re)made.
	domain string
	// made is when the row was (re)made; created is when the latest creation event was recorded.
	made, created time.Time
	// updated is when the latest event was recorded.
	updated time.Time
}

// apply folds one event into the object of a map, making it if the stream has none (or has none
// since its domain was removed).
func apply[S interface{ Evolve(domain.Event) S }](m map[string]*object[S], key string, e eventstore.RecordedEvent, ev domain.Event) *object[S] {
	o := m[key]
	if o == nil {
		o = &object[S]{domain: e.Domain, made: e.RecordedAt}
		m[key] = o
	}
	o.state = o.state.Evolve(ev)
	o.version, o.updated = e.Version, e.RecordedAt
	return o
}

// fold is the read models computed from the events.
type fold struct {
	reg    *eventstore.Registry
	events map[string]int64

	// postgres.admin's objects, by read-model key.
	config    map[string]*object[domain.GlobalConfig]
	cos       map[string]*object[domain.COS]
	domains   map[string]*object[domain.Domain]
	accounts  map[string]*object[domain.Account]
	lists     map[string]*object[domain.MailingList]
	resources map[string]*object[domain.Resource]
	vhosts    map[string]*object[domain.VirtualHost]
	gal       map[string]*object[domain.GAL]
	tombs     map[string]int

	// postgres.gal's objects, by stream: it sees no domain events, so nothing is purged here.
	galAccounts  map[string]*object[domain.Account]
	galLists     map[string]*object[domain.MailingList]
	galResources map[string]*object[domain.Resource]
}

func newFold(reg *eventstore.Registry) *fold {
	return &fold{reg: reg, events: map[string]int64{},
		config: map[string]*object[domain.GlobalConfig]{}, cos: map[string]*object[domain.COS]{},
		domains: map[string]*object[domain.Domain]{}, accounts: map[string]*object[domain.Account]{},
		lists: map[string]*object[domain.MailingList]{}, resources: map[string]*object[domain.Resource]{},
		vhosts: map[string]*object[domain.VirtualHost]{}, gal: map[string]*object[domain.GAL]{}, tombs: map[string]int{},
		galAccounts: map[string]*object[domain.Account]{}, galLists: map[string]*object[domain.MailingList]{},
		galResources: map[string]*object[domain.Resource]{},
	}
}

var (
	adminTypes = []string{domain.StreamTypeConfig, domain.StreamTypeCOS, domain.StreamTypeDomain, domain.StreamTypeAccount,
		domain.StreamTypeList, domain.StreamTypeResource, domain.StreamTypeVirtualHost, domain.StreamTypeGAL}
	galTypes = []string{domain.StreamTypeAccount, domain.StreamTypeList, domain.StreamTypeResource}
)

// run streams the events up to the later checkpoint once, in the projections' order, and folds
// each into the projections whose checkpoint it is at or before.
func (f *fold) run(ctx context.Context, db Querier, cps map[string]checkpoint) error {
	admin, gal := cps[postgres.AdminName], cps[postgres.GALEntriesName]
	last := admin.at
	if last.Less(gal.at) {
		last = gal.at
	}
	rows, err := db.Query(ctx, `SELECT position, transaction_id::text::bigint, stream_id, stream_type, coalesce(domain, ''),
			stream_version, event_type, schema_version, data, recorded_at
		FROM events
		WHERE stream_type = ANY($1) AND (transaction_id, position) <= ($2::text::xid8, $3)
		ORDER BY transaction_id, position`, adminTypes, strconv.FormatUint(last.TransactionID, 10), last.Position)
	if err != nil {
		return fmt.Errorf("readcheck: events: %w", err)
	}
	defer rows.Close()
	var (
		e    eventstore.RecordedEvent
		txid int64
		data []byte
	)
	for rows.Next() {
		if err := rows.Scan(&e.Position, &txid, &e.StreamID, &e.StreamType, &e.Domain, &e.Version, &e.Type,
			&e.SchemaVersion, &data, &e.RecordedAt); err != nil {
			return fmt.Errorf("readcheck: scan event: %w", err)
		}
		e.TransactionID, e.RecordedAt = uint64(txid), e.RecordedAt.UTC()
		toAdmin := !admin.at.Less(e.GlobalPosition()) && !admin.skips[e.Position]
		toGAL := slices.Contains(galTypes, e.StreamType) && !gal.at.Less(e.GlobalPosition()) && !gal.skips[e.Position]
		if !toAdmin && !toGAL {
			continue
		}
		// data is reused by the next Scan: the upcast copies it, or Decode reads it before then.
		e.Data = data
		if e.Data, e.SchemaVersion, err = f.reg.Upcast(e.Type, e.SchemaVersion, e.Data); err != nil {
			return fmt.Errorf("readcheck: upcast %s at position %d: %w", e.Type, e.Position, err)
		}
		decoded, err := f.reg.Decode(e)
		if err != nil {
			return fmt.Errorf("readcheck: event at position %d: %w", e.Position, err)
		}
		ev, ok := decoded.(domain.Event)
		if !ok {
			return fmt.Errorf("readcheck: %s at position %d is not a domain event", e.Type, e.Position)
		}
		if toAdmin {
			f.events[postgres.AdminName]++
			f.admin(e, ev)
		}
		if toGAL {
			f.events[postgres.GALEntriesName]++
			f.galEntries(e, ev)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("readcheck: events: %w", err)
	}
	return nil
}

// admin folds an event of postgres.admin's stream types.
func (f *fold) admin(e eventstore.RecordedEvent, ev domain.Event) {
	switch e.StreamType {
	case domain.StreamTypeConfig:
		apply(f.config, "1", e, ev)
	case domain.StreamTypeCOS:
		o := apply(f.cos, strings.TrimPrefix(e.StreamID, "cos-"), e, ev)
		if _, ok := ev.(domain.COSCreated); ok {
			o.created = e.RecordedAt
		}
	case domain.StreamTypeDomain:
		name := strings.TrimPrefix(e.StreamID, "domain-")
		if _, ok := ev.(domain.DomainRemoved); ok {
			f.removeDomain(name, e)
			return
		}
		apply(f.domains, name, e, ev)
	case domain.StreamTypeAccount:
		apply(f.accounts, strings.TrimPrefix(e.StreamID, "account-"), e, ev)
	case domain.StreamTypeList:
		apply(f.lists, strings.TrimPrefix(e.StreamID, "list-"), e, ev)
	case domain.StreamTypeResource:
		apply(f.resources, strings.TrimPrefix(e.StreamID, "resource-"), e, ev)
	case domain.StreamTypeVirtualHost:
		dom, host, _ := strings.Cut(strings.TrimPrefix(e.StreamID, "vhost-"), "/")
		apply(f.vhosts, dom+keySep+host, e, ev)
	case domain.StreamTypeGAL:
		apply(f.gal, strings.TrimPrefix(e.StreamID, "gal-"), e, ev)
	}
}

// removeDomain: a removed domain leaves nothing of its own in the read models but, for each of
// its streams, the version it reached (the next life of a name goes on from there). Its GAL's
// row stays, as GAL streams have no tombstone: the GAL was deleted by an event of its own before.
func (f *fold) removeDomain(name string, e eventstore.RecordedEvent) {
	tomb := func(stream string, version int) { f.tombs[stream] = max(f.tombs[stream], version) }
	tomb(e.StreamID, e.Version)
	delete(f.domains, name)
	for key, o := range f.accounts {
		if o.domain == name {
			tomb("account-"+key, o.version)
			delete(f.accounts, key)
		}
	}
	for key, o := range f.lists {
		if o.domain == name {
			tomb("list-"+key, o.version)
			delete(f.lists, key)
		}
	}
	for key, o := range f.resources {
		if o.domain == name {
			tomb("resource-"+key, o.version)
			delete(f.resources, key)
		}
	}
	for key, o := range f.vhosts {
		if dom, host, _ := strings.Cut(key, keySep); dom == name {
			tomb("vhost-"+dom+"/"+host, o.version)
			delete(f.vhosts, key)
		}
	}
}

// galEntries folds an event of postgres.gal's stream types.
func (f *fold) galEntries(e eventstore.RecordedEvent, ev domain.Event) {
	switch e.StreamType {
	case domain.StreamTypeAccount:
		apply(f.galAccounts, e.StreamID, e, ev)
	case domain.StreamTypeList:
		apply(f.galLists, e.StreamID, e, ev)
	case domain.StreamTypeResource:
		apply(f.galResources, e.StreamID, e, ev)
	}
}

// value is a column's expected value in the form compare reads the table's in: nil for NULL.
type value = *string

func str(s string) value { return &s }

func optStr(s *string) value {
	if s == nil {
		return nil
	}
	return str(*s)
}

func num(n int) value      { return str(strconv.Itoa(n)) }
func boolean(b bool) value { return str(strconv.FormatBool(b)) }
func ts(t time.Time) value { return str(t.UTC().Round(time.Microsecond).Format(tsLayout)) }
func optTS(t *time.Time) value {
	if t == nil {
		return nil
	}
	return ts(*t)
}

// tsLayout matches tsSQL.
const tsLayout = "2006-01-02T15:04:05.000000"

func jsonValue(v any) value {
	b, err := json.Marshal(v)
	if err != nil {
		// The states are plain data; one that cannot be marshalled shows as a difference.
		return str(fmt.Sprintf("unmarshallable state: %v", err))
	}
	return str(string(b))
}

// createdAt is what a row of an object that records its creation time says: that time, or,
// for an object without one (deleted: its state is empty), the time of the event that last
// wrote the row.
func createdAt[S any](at time.Time, o *object[S]) time.Time {
	if at.IsZero() {
		return o.updated
	}
	return at
}

// tables are the expected rows of every checked table, sorted by key.
func (f *fold) tables() []table {
	var out []table
	add := func(t table) {
		slices.SortFunc(t.expected, func(a, b row) int { return strings.Compare(a.key, b.key) })
		out = append(out, t)
	}

	t := tableSpec("rm_config")
	for _, o := range f.config {
		t.expected = append(t.expected, row{"1", []value{num(o.version), jsonValue(o.state)}})
	}
	add(t)

	t = tableSpec("rm_cos")
	for name, o := range f.cos {
		created := o.created
		if created.IsZero() {
			created = o.made
		}
		t.expected = append(t.expected, row{name, []value{num(o.version), boolean(!o.state.Exists()), jsonValue(o.state),
			ts(created), ts(o.updated)}})
	}
	add(t)

	t = tableSpec("rm_domains")
	for name, o := range f.domains {
		d := o.state
		t.expected = append(t.expected, row{name, []value{str(d.UnicodeName), str(d.Description), str(d.Status),
			optStr(d.DefaultCOS), num(o.version), jsonValue(d), ts(o.made), ts(o.updated)}})
	}
	add(t)

	aliases := tableSpec("rm_aliases")
	alias := func(al domain.Address, target, kind string) {
		aliases.expected = append(aliases.expected, row{al.String(), []value{str(target), str(kind), str(al.Domain)}})
	}

	t = tableSpec("rm_accounts")
	for address, o := range f.accounts {
		a := o.state
		t.expected = append(t.expected, row{address, []value{str(o.domain), str(a.DisplayName), str(a.Status), optStr(a.COS),
			num(o.version), boolean(!a.Exists()), jsonValue(a), ts(createdAt(a.CreatedAt, o)), ts(o.updated)}})
		for _, al := range a.Aliases {
			alias(al, address, "account")
		}
	}
	add(t)

	t = tableSpec("rm_lists")
	members := tableSpec("rm_list_members")
	for address, o := range f.lists {
		l := o.state
		for _, m := range l.Members {
			members.expected = append(members.expected, row{address + keySep + m.String(), nil})
		}
		for _, al := range l.Aliases {
			alias(al, address, "list")
		}
		count := len(l.Members)
		l.Members = nil // the row's state is the list without its members (rm_list_members has them)
		t.expected = append(t.expected, row{address, []value{str(o.domain), str(l.DisplayName), boolean(l.Dynamic != nil),
			boolean(l.HideInGAL), num(count), num(o.version), boolean(!l.Exists()), jsonValue(l),
			ts(createdAt(l.CreatedAt, o)), ts(o.updated)}})
	}
	add(t)
	add(members)

	t = tableSpec("rm_resources")
	for address, o := range f.resources {
		r := o.state
		for _, al := range r.Aliases {
			alias(al, address, "resource")
		}
		t.expected = append(t.expected, row{address, []value{str(o.domain), str(r.DisplayName), str(r.Type),
			str(r.BookingPolicy), num(o.version), boolean(!r.Exists()), jsonValue(r), ts(createdAt(r.CreatedAt, o)),
			ts(o.updated)}})
	}
	add(t)
	add(aliases)

	t = tableSpec("rm_virtual_hosts")
	for key, o := range f.vhosts {
		v := o.state
		var source value
		var notAfter, due, nextAttempt, issuing *time.Time
		if c := v.Certificate; c != nil {
			source, notAfter = str(c.Source), &c.NotAfter
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
		t.expected = append(t.expected, row{key, []value{num(o.version), boolean(!v.Exists()), jsonValue(v), source,
			optTS(notAfter), optTS(due), optTS(nextAttempt), optTS(issuing), ts(createdAt(v.CreatedAt, o)), ts(o.updated)}})
	}
	add(t)

	t = tableSpec("rm_gal")
	for name, o := range f.gal {
		g := o.state
		var lastSync, changed *time.Time
		if g.LastSync != nil {
			lastSync = &g.LastSync.FinishedAt
		}
		if !g.SourceChangedAt.IsZero() {
			changed = &g.SourceChangedAt
		}
		t.expected = append(t.expected, row{name, []value{num(o.version), boolean(!g.Exists()), jsonValue(g),
			boolean(g.External != nil && g.ShowsExternal()), num(g.PollingIntervalSeconds), optTS(lastSync), optTS(changed),
			ts(createdAt(g.CreatedAt, o)), ts(o.updated)}})
	}
	add(t)

	t = tableSpec("rm_tombstones")
	for stream, version := range f.tombs {
		t.expected = append(t.expected, row{stream, []value{num(version)}})
	}
	add(t)

	entries, tokens := tableSpec("gal_entries"), tableSpec("gal_tokens")
	entry := func(dom, kind, address, displayName string, names ...string) {
		key := dom + keySep + address
		entries.expected = append(entries.expected, row{key, []value{str(displayName), str(kind), str("")}})
		for _, tok := range domain.GALTokens(address, displayName, names...) {
			tokens.expected = append(tokens.expected, row{key + keySep + strconv.Itoa(tok.Weight) + keySep + tok.Token,
				[]value{str(dom), str(address)}})
		}
	}
	for _, o := range f.galAccounts {
		if a := o.state; a.Exists() && a.Status != domain.StatusClosed {
			entry(o.domain, domain.GALKindAccount, a.Address.String(), a.DisplayName, nameAttributes(a.Attributes)...)
		}
	}
	for _, o := range f.galLists {
		if l := o.state; l.Exists() && !l.HideInGAL {
			entry(o.domain, domain.GALKindList, l.Address.String(), l.DisplayName)
		}
	}
	for _, o := range f.galResources {
		if r := o.state; r.Exists() {
			entry(o.domain, domain.GALKindResource, r.Address.String(), r.DisplayName)
		}
	}
	add(entries)
	add(tokens)
	return out
}

// nameAttributes are the values of an account's attributes that name a person (given name,
// surname, common name, in their LDAP and their form spellings): its GAL entry is also found by
// their words. The tokens are compared as a set, so the order is free.
func nameAttributes(attrs map[string]string) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(attrs)) {
		switch k {
		case "givenName", "sn", "cn", "first_name", "last_name":
			if v := attrs[k]; v != "" {
				out = append(out, v)
			}
		}
	}
	return out
}
