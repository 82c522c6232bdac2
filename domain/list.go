package domain

import (
	"fmt"
	"slices"
	"time"
)

// Subscription and unsubscription policies of a mailing list: requests are accepted, held for
// an owner's approval, or refused.
const (
	PolicyAccept   = "accept"
	PolicyApproval = "approval"
	PolicyReject   = "reject"
)

var listPolicies = []string{PolicyAccept, PolicyApproval, PolicyReject}

// Defaults: joining needs an owner's approval, leaving does not (a subscriber must always be
// able to leave).
const (
	DefaultSubscriptionPolicy   = PolicyApproval
	DefaultUnsubscriptionPolicy = PolicyAccept
)

// Limits on mailing lists.
const (
	// MaxListChange is how many addresses one command may add or remove at a time (and a new
	// list start with); the API answers 400 beyond it.
	MaxListChange    = 10000
	maxListOwners    = 1000
	maxListSenders   = 1000
	maxObjectAliases = 100
)

// MailingList is a distribution list: mail to its address (or an alias) goes to every member.
// A static list has explicit members (addresses inside or outside the platform); a dynamic one
// takes them from an LDAP query over the platform's accounts and has none of its own.
type MailingList struct {
	Address     Address
	DisplayName string
	Description string
	// Members, Owners, AllowedSenders and Aliases are sorted sets.
	Members []Address
	// Owners are accounts that may manage the list's members, owners and policies.
	Owners []Address
	// AllowedSenders may post to the list; empty: anyone.
	AllowedSenders       []Address
	SubscriptionPolicy   string
	UnsubscriptionPolicy string
	Aliases              []Address
	HideInGAL            bool
	// Dynamic is nil for a static list.
	Dynamic   *ListDynamic
	CreatedAt time.Time
}

// ListDynamic is a dynamic list's query: MemberURL in the stored form (MemberURL.String), and
// its parts, so that readers need not parse it again.
type ListDynamic struct {
	MemberURL string `json:"member_url"`
	Scope     string `json:"scope"`
	Filter    string `json:"filter"`
}

// Exists reports whether the list exists (created and not deleted).
func (l MailingList) Exists() bool { return l.Address.Local != "" }

// IsOwner reports whether a is one of the list's owners.
func (l MailingList) IsOwner(a Address) bool { return containsSorted(l.Owners, a) }

// HasMember reports whether a is an explicit member.
func (l MailingList) HasMember(a Address) bool { return containsSorted(l.Members, a) }

// answersTo reports whether mail to a reaches the list itself (its address or an alias).
func (l MailingList) answersTo(a Address) bool {
	return a == l.Address || containsSorted(l.Aliases, a)
}

// ListCommand is a command on a mailing list.
type ListCommand interface{ isListCommand() }

// DynamicInput is the dynamic part of CreateList and MakeListDynamic.
type DynamicInput struct {
	MemberURL string
	// FilterProblem is filled by the caller: what its LDAP client library said when compiling
	// the URL's filter ("" when it compiled). The package checks the filter with its own
	// parser too, but the directory runs the library's.
	FilterProblem string
}

// CreateList creates a list, or re-creates a deleted one (its old members, owners and aliases
// are gone). Addresses arrive as given, so that the decision reports every bad one.
type CreateList struct {
	Address              string
	DisplayName          string
	Description          string
	Members              []string
	Owners               []string
	AllowedSenders       []string
	SubscriptionPolicy   string // "" = DefaultSubscriptionPolicy
	UnsubscriptionPolicy string // "" = DefaultUnsubscriptionPolicy
	HideInGAL            bool
	Dynamic              *DynamicInput
	At                   time.Time

	// Context filled by the caller.
	Domain Domain // the domain the list is created in (the URL's)
	// Accounts holds the owners that are existing accounts.
	Accounts map[Address]bool
}

// UpdateList patches a list's settings. AllowedSenders, when non-nil, replaces the senders
// (empty: anyone may post).
type UpdateList struct {
	DisplayName          *string
	Description          *string
	AllowedSenders       []string
	SubscriptionPolicy   *string
	UnsubscriptionPolicy *string
	HideInGAL            *bool
}

// DeleteList deletes a list; its address and aliases are free again.
type DeleteList struct{}

// AddListMembers adds members to a static list. Addresses already members are skipped.
type AddListMembers struct{ Members []string }

// RemoveListMembers removes members. Addresses that are not members are skipped, unless
// Require is set (removing one named member): then that is ErrNotFound.
type RemoveListMembers struct {
	Members []string
	Require bool
}

// AddListOwners adds owners; each must be an account (Accounts, filled by the caller).
type AddListOwners struct {
	Owners   []string
	Accounts map[Address]bool
}

// RemoveListOwners removes owners, as RemoveListMembers does members.
type RemoveListOwners struct {
	Owners  []string
	Require bool
}

// AddListAliases gives the list more addresses. Domains holds the state of each alias's
// domain (filled by the caller); uniqueness across the platform is the caller's to check.
type AddListAliases struct {
	Aliases []string
	Domains map[string]Domain
}

// RemoveListAliases takes aliases away, as RemoveListMembers does members.
type RemoveListAliases struct {
	Aliases []string
	Require bool
}

// MakeListDynamic turns a list dynamic, or gives a dynamic list another query. A static list
// with members keeps them unless DropMembers: it is refused (ErrConflict) rather than emptied
// by surprise.
type MakeListDynamic struct {
	Dynamic     DynamicInput
	DropMembers bool
}

// MakeListStatic turns a dynamic list static, without members.
type MakeListStatic struct{}

func (CreateList) isListCommand()        {}
func (UpdateList) isListCommand()        {}
func (DeleteList) isListCommand()        {}
func (AddListMembers) isListCommand()    {}
func (RemoveListMembers) isListCommand() {}
func (AddListOwners) isListCommand()     {}
func (RemoveListOwners) isListCommand()  {}
func (AddListAliases) isListCommand()    {}
func (RemoveListAliases) isListCommand() {}
func (MakeListDynamic) isListCommand()   {}
func (MakeListStatic) isListCommand()    {}

// ListCreated records a new list with all its settings.
type ListCreated struct {
	Address              Address      `json:"address"`
	DisplayName          string       `json:"display_name,omitempty"`
	Description          string       `json:"description,omitempty"`
	Members              []Address    `json:"members,omitempty"`
	Owners               []Address    `json:"owners,omitempty"`
	AllowedSenders       []Address    `json:"allowed_senders,omitempty"`
	SubscriptionPolicy   string       `json:"subscription_policy"`
	UnsubscriptionPolicy string       `json:"unsubscription_policy"`
	HideInGAL            bool         `json:"hide_in_gal"`
	Dynamic              *ListDynamic `json:"dynamic,omitempty"`
	CreatedAt            time.Time    `json:"created_at"`
}

// ListUpdated records changed settings; AllowedSenders is null when unchanged.
type ListUpdated struct {
	Address              Address   `json:"address"`
	DisplayName          *string   `json:"display_name,omitempty"`
	Description          *string   `json:"description,omitempty"`
	AllowedSenders       []Address `json:"allowed_senders"`
	SubscriptionPolicy   *string   `json:"subscription_policy,omitempty"`
	UnsubscriptionPolicy *string   `json:"unsubscription_policy,omitempty"`
	HideInGAL            *bool     `json:"hide_in_gal,omitempty"`
}

// ListDeleted records the deletion of a list.
type ListDeleted struct {
	Address Address `json:"address"`
}

// ListMembersAdded records new members (sorted, none a member before): one event per request,
// however many.
type ListMembersAdded struct {
	Address Address   `json:"address"`
	Members []Address `json:"members"`
}

// ListMembersRemoved records members taken off (sorted, each a member before).
type ListMembersRemoved struct {
	Address Address   `json:"address"`
	Members []Address `json:"members"`
}

// ListOwnersAdded records new owners.
type ListOwnersAdded struct {
	Address Address   `json:"address"`
	Owners  []Address `json:"owners"`
}

// ListOwnersRemoved records owners taken off.
type ListOwnersRemoved struct {
	Address Address   `json:"address"`
	Owners  []Address `json:"owners"`
}

// ListAliasesAdded records new aliases of the list.
type ListAliasesAdded struct {
	Address Address   `json:"address"`
	Aliases []Address `json:"aliases"`
}

// ListAliasesRemoved records aliases taken away.
type ListAliasesRemoved struct {
	Address Address   `json:"address"`
	Aliases []Address `json:"aliases"`
}

// ListMadeDynamic records that a list takes its members from a query from now on (also a new
// query for a list that was dynamic already). DroppedMembers counts the explicit members a
// static list had, which are gone.
type ListMadeDynamic struct {
	Address        Address     `json:"address"`
	Dynamic        ListDynamic `json:"dynamic"`
	DroppedMembers int         `json:"dropped_members,omitempty"`
}

// ListMadeStatic records that a dynamic list is static now, without members.
type ListMadeStatic struct {
	Address Address `json:"address"`
}

// EventType implements Event.
func (ListCreated) EventType() string { return "ListCreated" }

// EventType implements Event.
func (ListUpdated) EventType() string { return "ListUpdated" }

// EventType implements Event.
func (ListDeleted) EventType() string { return "ListDeleted" }

// EventType implements Event.
func (ListMembersAdded) EventType() string { return "ListMembersAdded" }

// EventType implements Event.
func (ListMembersRemoved) EventType() string { return "ListMembersRemoved" }

// EventType implements Event.
func (ListOwnersAdded) EventType() string { return "ListOwnersAdded" }

// EventType implements Event.
func (ListOwnersRemoved) EventType() string { return "ListOwnersRemoved" }

// EventType implements Event.
func (ListAliasesAdded) EventType() string { return "ListAliasesAdded" }

// EventType implements Event.
func (ListAliasesRemoved) EventType() string { return "ListAliasesRemoved" }

// EventType implements Event.
func (ListMadeDynamic) EventType() string { return "ListMadeDynamic" }

// EventType implements Event.
func (ListMadeStatic) EventType() string { return "ListMadeStatic" }

// Decide validates cmd against the list.
func (l MailingList) Decide(cmd ListCommand) ([]Event, error) {
	if _, create := cmd.(CreateList); !create && !l.Exists() {
		return nil, fmt.Errorf("list: %w", ErrNotFound)
	}
	switch c := cmd.(type) {
	case CreateList:
		return l.decideCreate(c)
	case UpdateList:
		return l.decideUpdate(c)
	case DeleteList:
		return []Event{ListDeleted{Address: l.Address}}, nil
	case AddListMembers:
		return l.decideAddMembers(c)
	case RemoveListMembers:
		if l.Dynamic != nil {
			return nil, Invalid("members", "the list is dynamic: it has no members of its own to remove")
		}
		gone, err := l.removal("members", c.Members, c.Require, l.Members)
		if err != nil || len(gone) == 0 {
			return nil, err
		}
		return []Event{ListMembersRemoved{Address: l.Address, Members: gone}}, nil
	case AddListOwners:
		owners, err := l.decideAddOwners(c)
		if err != nil || len(owners) == 0 {
			return nil, err
		}
		return []Event{ListOwnersAdded{Address: l.Address, Owners: owners}}, nil
	case RemoveListOwners:
		gone, err := l.removal("owners", c.Owners, c.Require, l.Owners)
		if err != nil || len(gone) == 0 {
			return nil, err
		}
		return []Event{ListOwnersRemoved{Address: l.Address, Owners: gone}}, nil
	case AddListAliases:
		return l.decideAddAliases(c)
	case RemoveListAliases:
		gone, err := l.removal("aliases", c.Aliases, c.Require, l.Aliases)
		if err != nil || len(gone) == 0 {
			return nil, err
		}
		return []Event{ListAliasesRemoved{Address: l.Address, Aliases: gone}}, nil
	case MakeListDynamic:
		return l.decideMakeDynamic(c)
	case MakeListStatic:
		if l.Dynamic == nil {
			return nil, fmt.Errorf("list %s is not dynamic: %w", l.Address, ErrNotFound)
		}
		return []Event{ListMadeStatic{Address: l.Address}}, nil
	}
	return nil, fmt.Errorf("domain: unknown list command %T", cmd)
}

// decideCreate checks, in order: the domain exists (it is the parent in the URL, so 404 comes
// first), the input, the list is new, and the domain takes new objects (as for accounts).
func (l MailingList) decideCreate(c CreateList) ([]Event, error) {
	d := c.Domain
	if !d.Exists() {
		return nil, fmt.Errorf("domain: %w", ErrNotFound)
	}
	var fe fieldErrors
	var p addressParser
	addr := newObjectAddress(&fe, &p, c.Address, d)
	if msg := checkText(c.DisplayName, maxDisplayNameLength, false); msg != "" {
		fe.add("display_name", msg)
	}
	if msg := checkText(c.Description, maxDescriptionLength, true); msg != "" {
		fe.add("description", msg)
	}
	ev := ListCreated{Address: addr, DisplayName: c.DisplayName, Description: c.Description,
		HideInGAL: c.HideInGAL, CreatedAt: c.At.UTC()}
	members := addressList(&fe, &p, "members", c.Members, MaxListChange)
	if c.Dynamic != nil && len(c.Members) > 0 {
		fe.add("members", "a dynamic list takes its members from dynamic.member_url and has none of its own")
	}
	for _, m := range members {
		if m == addr {
			fe.add(fmt.Sprintf("members[%d]", indexOf(&p, c.Members, m)), "is the list's own address")
		}
	}
	ev.Members = nonEmptySlice(members)
	ev.Owners = nonEmptySlice(checkOwners(&fe, &p, "owners", c.Owners, c.Accounts, nil))
	ev.AllowedSenders = nonEmptySlice(addressList(&fe, &p, "allowed_senders", c.AllowedSenders, maxListSenders))
	ev.SubscriptionPolicy = checkPolicy(&fe, "subscription_policy", c.SubscriptionPolicy, DefaultSubscriptionPolicy)
	ev.UnsubscriptionPolicy = checkPolicy(&fe, "unsubscription_policy", c.UnsubscriptionPolicy, DefaultUnsubscriptionPolicy)
	if c.Dynamic != nil {
		ev.Dynamic = checkDynamic(&fe, *c.Dynamic)
	}
	if c.At.IsZero() {
		fe.add("at", "required")
	}
	if err := admitNewObject(&fe, l.Exists(), "list", addr, d); err != nil {
		return nil, err
	}
	return []Event{ev}, nil
}

func (l MailingList) decideUpdate(c UpdateList) ([]Event, error) {
	var fe fieldErrors
	ev := ListUpdated{Address: l.Address}
	changed := false
	if c.DisplayName != nil {
		if msg := checkText(*c.DisplayName, maxDisplayNameLength, false); msg != "" {
			fe.add("display_name", msg)
		} else if *c.DisplayName != l.DisplayName {
			ev.DisplayName, changed = clonePtr(c.DisplayName), true
		}
	}
	if c.Description != nil {
		if msg := checkText(*c.Description, maxDescriptionLength, true); msg != "" {
			fe.add("description", msg)
		} else if *c.Description != l.Description {
			ev.Description, changed = clonePtr(c.Description), true
		}
	}
	if c.AllowedSenders != nil {
		var p addressParser
		senders := addressList(&fe, &p, "allowed_senders", c.AllowedSenders, maxListSenders)
		if !slices.Equal(senders, l.AllowedSenders) {
			ev.AllowedSenders, changed = senders, true
		}
	}
	for _, f := range []struct {
		field string
		v     *string
		cur   string
		dst   **string
	}{
		{"subscription_policy", c.SubscriptionPolicy, l.SubscriptionPolicy, &ev.SubscriptionPolicy},
		{"unsubscription_policy", c.UnsubscriptionPolicy, l.UnsubscriptionPolicy, &ev.UnsubscriptionPolicy},
	} {
		if f.v == nil {
			continue
		}
		if !slices.Contains(listPolicies, *f.v) {
			fe.add(f.field, "must be one of accept, approval, reject")
		} else if *f.v != f.cur {
			*f.dst, changed = clonePtr(f.v), true
		}
	}
	if c.HideInGAL != nil && *c.HideInGAL != l.HideInGAL {
		ev.HideInGAL, changed = clonePtr(c.HideInGAL), true
	}
	if err := fe.err(); err != nil {
		return nil, err
	}
	if !changed {
		return nil, nil
	}
	return []Event{ev}, nil
}

func (l MailingList) decideAddMembers(c AddListMembers) ([]Event, error) {
	var fe fieldErrors
	var p addressParser
	if l.Dynamic != nil {
		return nil, Invalid("members", "the list is dynamic: it takes its members from its member_url and has none of its own")
	}
	if len(c.Members) == 0 {
		return nil, Invalid("members", "required: at least one address")
	}
	members := addressList(&fe, &p, "members", c.Members, MaxListChange)
	added := make([]Address, 0, len(members))
	for _, m := range members {
		switch {
		case l.answersTo(m):
			fe.add(fmt.Sprintf("members[%d]", indexOf(&p, c.Members, m)), "is an address of the list itself")
		case !l.HasMember(m):
			added = append(added, m)
		}
	}
	if err := fe.err(); err != nil {
		return nil, err
	}
	if len(added) == 0 {
		return nil, nil
	}
	return []Event{ListMembersAdded{Address: l.Address, Members: added}}, nil
}

// removal decides which of the given addresses leave the set cur (members, owners, aliases).
func (l MailingList) removal(field string, in []string, require bool, cur []Address) ([]Address, error) {
	var fe fieldErrors
	var p addressParser
	if len(in) == 0 {
		return nil, Invalid(field, "required: at least one address")
	}
	given := addressList(&fe, &p, field, in, MaxListChange)
	if err := fe.err(); err != nil {
		return nil, err
	}
	gone := make([]Address, 0, len(given))
	for _, a := range given {
		if containsSorted(cur, a) {
			gone = append(gone, a)
		} else if require {
			return nil, fmt.Errorf("%s of list %s: %s: %w", field, l.Address, a, ErrNotFound)
		}
	}
	return gone, nil
}

func (l MailingList) decideAddOwners(c AddListOwners) ([]Address, error) {
	var fe fieldErrors
	var p addressParser
	if len(c.Owners) == 0 {
		return nil, Invalid("owners", "required: at least one address")
	}
	owners := checkOwners(&fe, &p, "owners", c.Owners, c.Accounts, l.Owners)
	if err := fe.err(); err != nil {
		return nil, err
	}
	return subtractSorted(owners, l.Owners), nil
}

// checkOwners parses owners, who must be accounts of the platform (they log in to manage the
// list), and bounds how many a list has with the current ones.
func checkOwners(fe *fieldErrors, p *addressParser, field string, in []string, accounts map[Address]bool, cur []Address) []Address {
	owners := addressList(fe, p, field, in, maxListOwners)
	reported := 0
	for _, o := range owners {
		if !accounts[o] {
			if reported++; reported <= maxReportedPerField {
				fe.add(fmt.Sprintf("%s[%d]", field, indexOf(p, in, o)), "no account "+o.String()+": owners are accounts of the platform")
			}
		}
	}
	if n := len(mergeSorted(cur, owners)); n > maxListOwners {
		fe.add(field, fmt.Sprintf("a list has at most %d owners (this would make %d)", maxListOwners, n))
	}
	return owners
}

func (l MailingList) decideAddAliases(c AddListAliases) ([]Event, error) {
	var fe fieldErrors
	var p addressParser
	if len(c.Aliases) == 0 {
		return nil, Invalid("aliases", "required: at least one address")
	}
	aliases := addressList(&fe, &p, "aliases", c.Aliases, maxObjectAliases)
	added := make([]Address, 0, len(aliases))
	var unavailable error
	for _, a := range aliases {
		field := fmt.Sprintf("aliases[%d]", indexOf(&p, c.Aliases, a))
		d := c.Domains[a.Domain]
		switch {
		case a == l.Address:
			fe.add(field, "is the list's own address")
		case l.HasMember(a):
			fe.add(field, "is a member of the list: mail to it would come back to the list")
		case containsSorted(l.Aliases, a):
		case !d.Exists():
			fe.add(field, "domain "+a.Domain+" does not exist")
		case !d.AcceptsNewAccounts() && unavailable == nil:
			unavailable = fmt.Errorf("domain %s of alias %s is %s: %w", d.Name, a, d.Condition(), ErrDomainUnavailable)
		default:
			added = append(added, a)
		}
	}
	if n := len(mergeSorted(l.Aliases, added)); n > maxObjectAliases {
		fe.add("aliases", fmt.Sprintf("a list has at most %d aliases (this would make %d)", maxObjectAliases, n))
	}
	if err := fe.err(); err != nil {
		return nil, err
	}
	if unavailable != nil {
		return nil, unavailable
	}
	if len(added) == 0 {
		return nil, nil
	}
	return []Event{ListAliasesAdded{Address: l.Address, Aliases: added}}, nil
}

func (l MailingList) decideMakeDynamic(c MakeListDynamic) ([]Event, error) {
	var fe fieldErrors
	dyn := checkDynamic(&fe, c.Dynamic)
	if err := fe.err(); err != nil {
		return nil, err
	}
	if l.Dynamic != nil && *l.Dynamic == *dyn {
		return nil, nil
	}
	if len(l.Members) > 0 && !c.DropMembers {
		return nil, fmt.Errorf("list %s has %d members: remove them first, or ask to drop them (drop_members): %w",
			l.Address, len(l.Members), ErrConflict)
	}
	return []Event{ListMadeDynamic{Address: l.Address, Dynamic: *dyn, DroppedMembers: len(l.Members)}}, nil
}

func checkDynamic(fe *fieldErrors, in DynamicInput) *ListDynamic {
	m, err := ParseMemberURL(in.MemberURL)
	if err != nil {
		fe.addErr("dynamic.member_url", err)
		return nil
	}
	if in.FilterProblem != "" {
		fe.add("dynamic.member_url", "filter "+m.Filter+": "+in.FilterProblem)
		return nil
	}
	return &ListDynamic{MemberURL: m.String(), Scope: m.Scope, Filter: m.Filter}
}

func checkPolicy(fe *fieldErrors, field, v, def string) string {
	if v == "" {
		return def
	}
	if !slices.Contains(listPolicies, v) {
		fe.add(field, "must be one of accept, approval, reject")
	}
	return v
}

// nonEmptySlice keeps events free of empty lists (omitted), so that they round-trip as nil.
func nonEmptySlice(as []Address) []Address {
	if len(as) == 0 {
		return nil
	}
	return as
}

// Evolve applies one event; other events leave l unchanged.
func (l MailingList) Evolve(e Event) MailingList {
	switch ev := e.(type) {
	case ListCreated:
		n := MailingList{
			Address:              ev.Address,
			DisplayName:          ev.DisplayName,
			Description:          ev.Description,
			Members:              sortedSet(slices.Clone(ev.Members)),
			Owners:               sortedSet(slices.Clone(ev.Owners)),
			AllowedSenders:       sortedSet(slices.Clone(ev.AllowedSenders)),
			SubscriptionPolicy:   ev.SubscriptionPolicy,
			UnsubscriptionPolicy: ev.UnsubscriptionPolicy,
			HideInGAL:            ev.HideInGAL,
			CreatedAt:            ev.CreatedAt,
		}
		if ev.Dynamic != nil {
			d := *ev.Dynamic
			n.Dynamic = &d
		}
		return n
	case ListUpdated:
		if ev.DisplayName != nil {
			l.DisplayName = *ev.DisplayName
		}
		if ev.Description != nil {
			l.Description = *ev.Description
		}
		if ev.AllowedSenders != nil {
			l.AllowedSenders = sortedSet(slices.Clone(ev.AllowedSenders))
		}
		if ev.SubscriptionPolicy != nil {
			l.SubscriptionPolicy = *ev.SubscriptionPolicy
		}
		if ev.UnsubscriptionPolicy != nil {
			l.UnsubscriptionPolicy = *ev.UnsubscriptionPolicy
		}
		if ev.HideInGAL != nil {
			l.HideInGAL = *ev.HideInGAL
		}
		return l
	case ListDeleted:
		return MailingList{}
	case ListMembersAdded:
		l.Members = mergeSorted(l.Members, sortedSet(slices.Clone(ev.Members)))
		return l
	case ListMembersRemoved:
		l.Members = subtractSorted(l.Members, sortedSet(slices.Clone(ev.Members)))
		return l
	case ListOwnersAdded:
		l.Owners = mergeSorted(l.Owners, sortedSet(slices.Clone(ev.Owners)))
		return l
	case ListOwnersRemoved:
		l.Owners = subtractSorted(l.Owners, sortedSet(slices.Clone(ev.Owners)))
		return l
	case ListAliasesAdded:
		l.Aliases = mergeSorted(l.Aliases, sortedSet(slices.Clone(ev.Aliases)))
		return l
	case ListAliasesRemoved:
		l.Aliases = subtractSorted(l.Aliases, sortedSet(slices.Clone(ev.Aliases)))
		return l
	case ListMadeDynamic:
		d := ev.Dynamic
		l.Dynamic, l.Members = &d, nil
		return l
	case ListMadeStatic:
		l.Dynamic, l.Members = nil, nil
		return l
	}
	return l
}

// EvolveAll is Evolve over events in order. It keeps the members in a set while it goes and
// sorts them once at the end: Evolve copies the whole sorted member list at every member
// change, so folding a list whose members came a few at a time would be quadratic in its size
// (found by the sustained load, whose lists grow by two members a request).
func (l MailingList) EvolveAll(events []Event) MailingList {
	var set map[Address]struct{} // nil while l.Members is current
	memberSet := func() map[Address]struct{} {
		if set == nil {
			set = make(map[Address]struct{}, len(l.Members))
			for _, m := range l.Members {
				set[m] = struct{}{}
			}
		}
		return set
	}
	flush := func() {
		if set == nil {
			return
		}
		l.Members = make([]Address, 0, len(set))
		for m := range set {
			l.Members = append(l.Members, m)
		}
		slices.SortFunc(l.Members, compareAddresses)
		set = nil
	}
	for _, ev := range events {
		switch ev := ev.(type) {
		case ListMembersAdded:
			s := memberSet()
			for _, m := range ev.Members {
				s[m] = struct{}{}
			}
		case ListMembersRemoved:
			s := memberSet()
			for _, m := range ev.Members {
				delete(s, m)
			}
		default:
			flush()
			l = l.Evolve(ev)
		}
	}
	flush()
	return l
}
