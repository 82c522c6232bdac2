package ldap

import (
	"errors"
	"fmt"
	"maps"
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
	dit      DIT
	reg      *eventstore.Registry
	global   domain.GlobalConfig
	cos      map[string]domain.COS
	domains  map[string]domain.Domain
	accounts map[string]domain.Account
	// byDomain indexes the accounts of each domain, for changes of the domain.
	byDomain map[string]map[string]struct{}
	versions map[string]int
	// written maps a DN to the fingerprint of the entry the directory holds.
	written map[string]uint64
}

// NewModel returns an empty model (position 0).
func NewModel(dit DIT, reg *eventstore.Registry) *Model {
	return &Model{dit: dit, reg: reg, cos: map[string]domain.COS{}, domains: map[string]domain.Domain{},
		accounts: map[string]domain.Account{}, byDomain: map[string]map[string]struct{}{},
		versions: map[string]int{}, written: map[string]uint64{}}
}

// StreamTypes are the streams the directory is computed from.
var StreamTypes = []string{domain.StreamTypeConfig, domain.StreamTypeCOS, domain.StreamTypeDomain, domain.StreamTypeAccount}

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
	accounts    map[string]struct{}
}

// Begin starts a batch.
func (m *Model) Begin() *Batch {
	return &Batch{m: m, touched: touched{domains: map[string]struct{}{}, accounts: map[string]struct{}{}}}
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
		if a.Exists() {
			b.index(a.Address.Domain, addr)
		}
		b.touched.accounts[addr] = struct{}{}
	}
	return nil
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

func (b *Batch) index(dom, addr string) {
	m := b.m
	set := m.byDomain[dom]
	if set == nil {
		set = map[string]struct{}{}
		m.byDomain[dom] = set
	}
	if _, ok := set[addr]; !ok {
		set[addr] = struct{}{}
		b.undo = append(b.undo, func() { delete(set, addr) })
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
// the directory holds the entry now (a modify rather than an add).
type Change struct {
	DN      string
	New     *Entry
	Existed bool
	kind    kind
}

// Changes returns what the batch's events change in the directory: every entry they touched
// whose content differs from what the directory holds, in DN order (deletes of accounts before
// the deletion of their domain, adds of domains before their accounts: see Less).
func (b *Batch) Changes() []Change {
	m := b.m
	var out []Change
	consider := func(dn string, want *Entry, k kind) {
		old, existed := m.written[dn]
		switch {
		case want == nil && !existed:
		case want == nil:
			out = append(out, Change{DN: dn, Existed: true, kind: k})
		case !existed || want.fingerprint() != old:
			out = append(out, Change{DN: dn, New: want, Existed: existed, kind: k})
		}
	}
	for name := range b.touched.domains {
		consider(m.dit.Domain(name), m.domainEntry(name), domainKind)
	}
	accounts := b.touched.accounts
	if b.touched.allAccounts {
		accounts = make(map[string]struct{}, len(m.accounts))
		for addr := range m.accounts {
			accounts[addr] = struct{}{}
		}
	} else {
		for name := range b.touched.domains {
			for addr := range m.byDomain[name] {
				accounts[addr] = struct{}{}
			}
		}
	}
	for addr := range accounts {
		consider(m.dit.Account(addr), m.accountEntry(addr), accountKind)
	}
	slices.SortFunc(out, func(x, y Change) int { return changeOrder(x) - changeOrder(y) })
	return out
}

// changeOrder puts domains that come before accounts (adds) first and domains that go after
// them last, and keeps the rest stable by DN.
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
			b.m.written[c.DN] = c.New.fingerprint()
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
	for addr := range m.accounts {
		if e := m.accountEntry(addr); e != nil {
			out = append(out, *e)
		}
	}
	slices.SortFunc(out, func(a, b Entry) int { return strings.Compare(a.DN, b.DN) })
	return out
}

// Settle records that the directory holds exactly Entries() (after a rebuild, or when the
// projection starts from a checkpoint the model was folded up to).
func (m *Model) Settle() {
	m.written = map[string]uint64{}
	for _, e := range m.Entries() {
		m.written[e.DN] = e.fingerprint()
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

// accountsOf returns the addresses of a domain's accounts (for tests and rebuild summaries).
func (m *Model) accountsOf(dom string) []string {
	return slices.Sorted(maps.Keys(m.byDomain[dom]))
}
