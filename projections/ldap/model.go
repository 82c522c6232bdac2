package ldap

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"mailplane/domain"
	"mailplane/eventstore"
	"mailplane/projections"
)

// Model is the directory as the events say it must be: the aggregates its entries are computed
// from, folded from position 0, and a fingerprint of each entry as last computed — which is what
// the directory holds at the projection's checkpoint, since entries and checkpoint are written
// in one directory transaction. Entries are computed with the domain package's rules, so an
// entry's quota, status and login are exactly what the API shows as effective.
type Model struct {
	dit       DIT
	reg       *eventstore.Registry
	global    domain.GlobalConfig
	cos       map[string]domain.COS
	domains   map[string]domain.Domain
	accounts  map[string]domain.Account
	lists     map[string]domain.MailingList
	resources map[string]domain.Resource
	// byDomain indexes the objects of each domain, for changes of the domain.
	byDomain map[string]map[object]struct{}
	versions map[string]int
	// written maps a DN to what the directory holds there.
	written map[string]written
}

// object names an account, list or resource.
type object struct {
	kind    string // a stream type
	address string
}

// written is what the model remembers of an entry it wrote: a digest of its content, and its
// object classes, which a modify cannot change (the entry is then deleted and added again).
type written struct {
	fp      uint64
	classes string
}

// NewModel returns an empty model (position 0).
func NewModel(dit DIT, reg *eventstore.Registry) *Model {
	return &Model{dit: dit, reg: reg, cos: map[string]domain.COS{}, domains: map[string]domain.Domain{},
		accounts: map[string]domain.Account{}, lists: map[string]domain.MailingList{}, resources: map[string]domain.Resource{},
		byDomain: map[string]map[object]struct{}{}, versions: map[string]int{}, written: map[string]written{}}
}

// StreamTypes are the streams the directory is computed from.
var StreamTypes = []string{domain.StreamTypeConfig, domain.StreamTypeCOS, domain.StreamTypeDomain, domain.StreamTypeAccount,
	domain.StreamTypeList, domain.StreamTypeResource}

// Batch is a set of events applied to the model but not yet written to the directory. It
// remembers what the events replaced, so that a write that failed can be taken back.
type Batch struct {
	m       *Model
	touched touched
	undo    []func()
	// Events counts the events applied.
	Events int
}

// touched is what a batch's events may have changed.
type touched struct {
	allAccounts bool
	domains     map[string]struct{}
	objects     map[object]struct{}
}

// Begin starts a batch.
func (m *Model) Begin() *Batch {
	return &Batch{m: m, touched: touched{domains: map[string]struct{}{}, objects: map[object]struct{}{}}}
}

// Apply folds one event into the model. An event at or below the version the model holds of its
// stream is a redelivery and changes nothing; one further ahead means lost order
// (projections.ErrOutOfOrder).
func (b *Batch) Apply(e eventstore.RecordedEvent) error {
	m := b.m
	last := m.versions[e.StreamID]
	switch {
	case e.Version <= last:
		return nil
	case e.Version != last+1:
		return fmt.Errorf("%w: ldap: %s is at version %d, got version %d", projections.ErrOutOfOrder, e.StreamID, last, e.Version)
	}
	decoded, err := m.reg.Decode(e)
	if err != nil {
		if errors.Is(err, eventstore.ErrUnknownEvent) {
			return fmt.Errorf("%w: ldap: %w", projections.ErrUnknownMeaning, err)
		}
		return err
	}
	ev, ok := decoded.(domain.Event)
	if !ok {
		return fmt.Errorf("%w: ldap: %s is not a domain event", projections.ErrUnknownMeaning, e.Type)
	}
	remember(b, m.versions, e.StreamID)
	m.versions[e.StreamID] = e.Version
	b.Events++
	switch e.StreamType {
	case domain.StreamTypeConfig:
		old := m.global
		b.undo = append(b.undo, func() { m.global = old })
		m.global = m.global.Evolve(ev)
		b.touched.allAccounts = true
	case domain.StreamTypeCOS:
		name := strings.TrimPrefix(e.StreamID, domain.COSStreamID(""))
		remember(b, m.cos, name)
		m.cos[name] = m.cos[name].Evolve(ev)
		b.touched.allAccounts = true
	case domain.StreamTypeDomain:
		name := strings.TrimPrefix(e.StreamID, domain.DomainStreamID(""))
		remember(b, m.domains, name)
		m.domains[name] = m.domains[name].Evolve(ev)
		b.touched.domains[name] = struct{}{}
	case domain.StreamTypeAccount:
		addr := strings.TrimPrefix(e.StreamID, "account-") // see domain.AccountStreamID
		remember(b, m.accounts, addr)
		a := m.accounts[addr].Evolve(ev)
		m.accounts[addr] = a
		b.touch(object{e.StreamType, addr}, a.Exists(), a.Address.Domain)
	case domain.StreamTypeList:
		addr := strings.TrimPrefix(e.StreamID, "list-") // see domain.ListStreamID
		remember(b, m.lists, addr)
		l := m.lists[addr].Evolve(ev)
		m.lists[addr] = l
		b.touch(object{e.StreamType, addr}, l.Exists(), l.Address.Domain)
	case domain.StreamTypeResource:
		addr := strings.TrimPrefix(e.StreamID, "resource-") // see domain.ResourceStreamID
		remember(b, m.resources, addr)
		r := m.resources[addr].Evolve(ev)
		m.resources[addr] = r
		b.touch(object{e.StreamType, addr}, r.Exists(), r.Address.Domain)
	}
	return nil
}

// touch marks an object changed, and indexes it under its domain while it exists.
func (b *Batch) touch(o object, exists bool, dom string) {
	if exists {
		b.index(dom, o)
	}
	b.touched.objects[o] = struct{}{}
}

// remember saves a map key's value before the batch changes it.
func remember[V any](b *Batch, m map[string]V, key string) {
	old, had := m[key]
	b.undo = append(b.undo, func() {
		if had {
			m[key] = old
		} else {
			delete(m, key)
		}
	})
}

func (b *Batch) index(dom string, o object) {
	m := b.m
	set := m.byDomain[dom]
	if set == nil {
		set = map[object]struct{}{}
		m.byDomain[dom] = set
	}
	if _, ok := set[o]; !ok {
		set[o] = struct{}{}
		b.undo = append(b.undo, func() { delete(set, o) })
	}
}

// Rollback takes the batch's events back out of the model.
func (b *Batch) Rollback() {
	for i := len(b.undo) - 1; i >= 0; i-- {
		b.undo[i]()
	}
	b.undo = nil
}

// Change is one entry the directory must change: New is nil for a delete; Existed says whether
// the directory holds the entry now (a modify rather than an add); Reclass says that it holds it
// with other object classes, so that it is deleted first and then added (a modify cannot change
// a structural class: a list turned dynamic).
type Change struct {
	DN      string
	New     *Entry
	Existed bool
	Reclass bool
	kind    kind
}

// Changes returns what the batch's events change in the directory: every entry they touched
// whose content differs from what the directory holds; adds of domains come before the other
// changes and deletes of domains after them.
func (b *Batch) Changes() []Change {
	m := b.m
	var out []Change
	consider := func(dn string, want *Entry, k kind) {
		old, existed := m.written[dn]
		switch {
		case want == nil && !existed:
		case want == nil:
			out = append(out, Change{DN: dn, Existed: true, kind: k})
		case !existed || want.fingerprint() != old.fp:
			out = append(out, Change{DN: dn, New: want, Existed: existed, Reclass: existed && want.classKey() != old.classes, kind: k})
		}
	}
	for name := range b.touched.domains {
		consider(m.dit.Domain(name), m.domainEntry(name), domainKind)
	}
	objects := b.touched.objects
	for name := range b.touched.domains {
		for o := range m.byDomain[name] {
			objects[o] = struct{}{}
		}
	}
	if b.touched.allAccounts {
		for addr := range m.accounts {
			objects[object{domain.StreamTypeAccount, addr}] = struct{}{}
		}
	}
	for o := range objects {
		e, k := m.entryOf(o)
		consider(m.dnOf(o), e, k)
	}
	slices.SortFunc(out, func(x, y Change) int {
		if d := changeOrder(x) - changeOrder(y); d != 0 {
			return d
		}
		return strings.Compare(x.DN, y.DN)
	})
	return out
}

// dnOf and entryOf name and compute an object's entry (nil when it does not exist).
func (m *Model) dnOf(o object) string {
	switch o.kind {
	case domain.StreamTypeList:
		return m.dit.List(o.address)
	case domain.StreamTypeResource:
		return m.dit.Resource(o.address)
	}
	return m.dit.Account(o.address)
}

func (m *Model) entryOf(o object) (*Entry, kind) {
	switch o.kind {
	case domain.StreamTypeList:
		e := m.listEntry(o.address)
		if e != nil && m.lists[o.address].Dynamic != nil {
			return e, dynamicListKind
		}
		return e, staticListKind
	case domain.StreamTypeResource:
		return m.resourceEntry(o.address), resourceKind
	}
	return m.accountEntry(o.address), accountKind
}

// changeOrder puts domains that come before accounts (adds) first and domains that go after
// them last.
func changeOrder(c Change) int {
	switch {
	case c.kind.classes[0] == domainKind.classes[0] && c.New != nil:
		return 0
	case c.kind.classes[0] == domainKind.classes[0]:
		return 2
	}
	return 1
}

// Commit records that the directory now holds the batch's changes.
func (b *Batch) Commit(changes []Change) {
	for _, c := range changes {
		if c.New == nil {
			delete(b.m.written, c.DN)
		} else {
			b.m.written[c.DN] = written{fp: c.New.fingerprint(), classes: c.New.classKey()}
		}
	}
	b.undo = nil
}

// Entries returns every entry the events call for, sorted by DN: what a rebuild makes the
// directory hold.
func (m *Model) Entries() []Entry {
	var out []Entry
	for name := range m.domains {
		if e := m.domainEntry(name); e != nil {
			out = append(out, *e)
		}
	}
	for _, objs := range m.byDomain {
		for o := range objs {
			if e, _ := m.entryOf(o); e != nil {
				out = append(out, *e)
			}
		}
	}
	slices.SortFunc(out, func(a, b Entry) int { return strings.Compare(a.DN, b.DN) })
	return slices.CompactFunc(out, func(a, b Entry) bool { return a.DN == b.DN })
}

// Settle records that the directory holds exactly Entries() (after a rebuild, or when the
// projection starts from a checkpoint the model was folded up to).
func (m *Model) Settle() {
	m.written = map[string]written{}
	for _, e := range m.Entries() {
		m.written[e.DN] = written{fp: e.fingerprint(), classes: e.classKey()}
	}
}

func (m *Model) domainEntry(name string) *Entry {
	d := m.domains[name]
	if !d.Exists() {
		return nil
	}
	e := &Entry{DN: m.dit.Domain(name), Classes: domainKind.classes}
	e.set("dc", name)
	e.set("associatedDomain", name)
	e.set("mailplaneDomain", name)
	e.set("mailplaneStatus", d.Status)
	e.set("mailplaneDelivery", string(d.MailDelivery()))
	return e
}

func (m *Model) accountEntry(addr string) *Entry {
	a := m.accounts[addr]
	if !a.Exists() {
		return nil
	}
	d := m.domains[a.Address.Domain]
	cosName, _ := domain.EffectiveCOSName(m.global, d, a)
	var cos *domain.COS
	if c, ok := m.cos[cosName]; ok && c.Exists() {
		cos = &c
	}
	eff := domain.EffectiveAccount(m.global, d, cos, a)
	quota, _ := eff.Values["mail_quota_bytes"].(int64)
	login := a.AcceptsLogin(d) == nil

	e := &Entry{DN: m.dit.Account(addr), Classes: accountKind.classes}
	name := a.DisplayName
	if strings.TrimSpace(name) == "" {
		name = addr
	}
	e.set("mail", addr)
	e.set("uid", addr)
	e.set("cn", name)
	e.set("sn", name)
	e.set("displayName", a.DisplayName)
	aliases := make([]string, len(a.Aliases))
	for i, al := range a.Aliases {
		aliases[i] = al.String()
	}
	e.set("mailLocalAddress", aliases...)
	e.set("mailplaneDomain", a.Address.Domain)
	e.set("mailplaneStatus", a.Status)
	e.set("mailplaneCOS", cosName)
	e.set("mailplaneQuota", strconv.FormatInt(quota, 10))
	e.set("mailplaneLogin", strings.ToUpper(strconv.FormatBool(login)))
	e.set("mailplaneDelivery", string(a.MailDelivery(d)))
	// The password is there only while the account may log in: a bind then fails for a closed
	// or locked account (or domain) even before anything checks mailplaneLogin.
	if login && a.HasPassword && a.PasswordSecret != "" {
		e.Secret = a.PasswordSecret
	}
	return e
}

func (m *Model) listEntry(addr string) *Entry {
	l := m.lists[addr]
	if !l.Exists() {
		return nil
	}
	d := m.domains[l.Address.Domain]
	k := staticListKind
	if l.Dynamic != nil {
		k = dynamicListKind
	}
	e := &Entry{DN: m.dit.List(addr), Classes: k.classes}
	e.set("mail", addr)
	e.set("cn", addr)
	local := []string{addr}
	for _, a := range l.Aliases {
		local = append(local, a.String())
	}
	e.set("mailLocalAddress", local...)
	if l.Dynamic != nil {
		e.set("memberURL", m.memberURL(*l.Dynamic))
	} else {
		members := make([]string, len(l.Members))
		for i, a := range l.Members {
			members[i] = a.String()
		}
		e.set("rfc822MailMember", members...)
	}
	e.set("displayName", l.DisplayName)
	e.set("description", l.Description)
	e.set("mailplaneDomain", l.Address.Domain)
	e.set("mailplaneHideInGAL", strings.ToUpper(strconv.FormatBool(l.HideInGAL)))
	e.set("mailplaneDelivery", string(deliveryIn(d, l.Address.Domain)))
	return e
}

// memberURL is what Postfix follows for a dynamic list: the list's query (already restricted to
// a filter and a scope, no host, no base) run below the accounts, returning their mail, and
// narrowed to the accounts that are active and receive mail — closed, locked and removed ones
// drop out of the list as their entries change.
func (m *Model) memberURL(d domain.ListDynamic) string {
	scope := "sub"
	if d.Scope == domain.ScopeOne {
		scope = "one"
	}
	return "ldap:///" + escapeURLPart(m.dit.OU(OUAccounts)) + "?mail?" + scope + "?" + escapeURLPart(dynamicFilter(d))
}

// dynamicFilter is a dynamic list's query as the directory runs it: its own filter, among the
// accounts that are active and receive mail.
func dynamicFilter(d domain.ListDynamic) string {
	return "(&(objectClass=mailplaneAccount)(mailplaneStatus=active)(mailplaneDelivery=accept)" + d.Filter + ")"
}

// escapeURLPart percent-encodes what RFC 4516 reserves in a DN or filter of an LDAP URL.
func escapeURLPart(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '?' || c == '%' || c == '#' || c == ' ' || c < 0x20 || c >= 0x7f:
			fmt.Fprintf(&b, "%%%02X", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func (m *Model) resourceEntry(addr string) *Entry {
	r := m.resources[addr]
	if !r.Exists() {
		return nil
	}
	d := m.domains[r.Address.Domain]
	e := &Entry{DN: m.dit.Resource(addr), Classes: resourceKind.classes}
	name := r.DisplayName
	if strings.TrimSpace(name) == "" {
		name = addr
	}
	e.set("mail", addr)
	e.set("uid", addr)
	e.set("cn", name)
	e.set("sn", name)
	e.set("displayName", r.DisplayName)
	aliases := make([]string, len(r.Aliases))
	for i, a := range r.Aliases {
		aliases[i] = a.String()
	}
	e.set("mailLocalAddress", aliases...)
	e.set("l", r.Location)
	e.set("mailplaneDomain", r.Address.Domain)
	e.set("mailplaneKind", r.Type)
	if r.Capacity > 0 {
		e.set("mailplaneCapacity", strconv.Itoa(r.Capacity))
	}
	e.set("mailplaneBookingPolicy", r.BookingPolicy)
	e.set("mailplaneMaxConflicts", strconv.Itoa(r.MaxConflicts))
	notify := make([]string, len(r.NotifyAddresses))
	for i, a := range r.NotifyAddresses {
		notify[i] = a.String()
	}
	e.set("mailplaneNotify", notify...)
	e.set("mailplaneDelivery", string(deliveryIn(d, r.Address.Domain)))
	return e
}

// deliveryIn is what the MTA does with mail for a list or resource of the domain: the domain's
// own (they have no status of their own).
func deliveryIn(d domain.Domain, dom string) domain.Delivery {
	if d.Name != dom {
		return domain.DeliveryBounce
	}
	return d.MailDelivery()
}
