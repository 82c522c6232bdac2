package domain

import (
	"fmt"
	"slices"
	"time"
)

// Resource types.
const (
	ResourceLocation  = "location"
	ResourceEquipment = "equipment"
)

var resourceTypes = []string{ResourceLocation, ResourceEquipment}

// Booking policies: how a resource answers an invitation.
const (
	BookingAutoAccept           = "auto_accept"
	BookingAutoAcceptUnlessBusy = "auto_accept_unless_busy"
	BookingManual               = "manual"
	BookingAutoDecline          = "auto_decline"
	// DefaultBookingPolicy accepts what fits in the calendar, as rooms usually do.
	DefaultBookingPolicy = BookingAutoAcceptUnlessBusy
)

// Limits on resources.
const (
	maxResourceNotifyAddresses = 100
	maxResourceConflicts       = 1000
	maxResourceCapacity        = 1000000
	maxResourceLocationLength  = 256
)

// ResourceSignatureRefused is what a signature given to a resource is answered with.
const ResourceSignatureRefused = "resources have no signature"

var bookingPolicies = []string{BookingAutoAccept, BookingAutoAcceptUnlessBusy, BookingManual, BookingAutoDecline}

// Resource is a bookable thing with an address: a meeting room or a projector. Mail to it is
// an invitation that its booking policy answers; notify addresses hear of its bookings. Unlike
// an account it has no password, no signature and nobody logs in as it.
type Resource struct {
	Address         Address
	DisplayName     string
	Type            string
	Capacity        int // people it holds; 0: not said
	Location        string
	BookingPolicy   string
	MaxConflicts    int       // conflicting instances of a recurring booking it still accepts
	NotifyAddresses []Address // sorted
	Aliases         []Address // sorted
	CreatedAt       time.Time
}

// Exists reports whether the resource exists (created and not deleted).
func (r Resource) Exists() bool { return r.Address.Local != "" }

// HasAlias reports whether alias belongs to the resource.
func (r Resource) HasAlias(alias Address) bool { return containsSorted(r.Aliases, alias) }

// ResourceCommand is a command on a resource.
type ResourceCommand interface{ isResourceCommand() }

// CreateResource creates a resource, or re-creates a deleted one. Signature is there to be
// refused: a client that sends one learns why instead of seeing it dropped.
type CreateResource struct {
	Address         string
	DisplayName     string
	Type            string
	Capacity        *int
	Location        string
	BookingPolicy   string // "" = DefaultBookingPolicy
	MaxConflicts    *int
	NotifyAddresses []string
	Signature       *string
	At              time.Time

	// Domain is filled by the caller: the domain of the URL.
	Domain Domain
}

// UpdateResource patches a resource. NotifyAddresses, when non-nil, replaces them.
type UpdateResource struct {
	DisplayName     *string
	Type            *string
	Capacity        *int
	Location        *string
	BookingPolicy   *string
	MaxConflicts    *int
	NotifyAddresses []string
	Signature       *string
}

// DeleteResource deletes a resource; its address and aliases are free again.
type DeleteResource struct{}

// AddResourceAlias gives the resource another address. AliasDomain is the alias's domain
// (filled by the caller); uniqueness across the platform is the caller's to check.
type AddResourceAlias struct {
	Alias       string
	AliasDomain Domain
}

// RemoveResourceAlias takes an alias away.
type RemoveResourceAlias struct{ Alias Address }

func (CreateResource) isResourceCommand()      {}
func (UpdateResource) isResourceCommand()      {}
func (DeleteResource) isResourceCommand()      {}
func (AddResourceAlias) isResourceCommand()    {}
func (RemoveResourceAlias) isResourceCommand() {}

// ResourceCreated records a new resource with all its settings.
type ResourceCreated struct {
	Address         Address   `json:"address"`
	DisplayName     string    `json:"display_name,omitempty"`
	Type            string    `json:"type"`
	Capacity        int       `json:"capacity,omitempty"`
	Location        string    `json:"location,omitempty"`
	BookingPolicy   string    `json:"booking_policy"`
	MaxConflicts    int       `json:"max_conflicts,omitempty"`
	NotifyAddresses []Address `json:"notify_addresses,omitempty"`
	CreatedAt       time.Time `json:"created_at"`
}

// ResourceUpdated records changed settings; NotifyAddresses is null when unchanged.
type ResourceUpdated struct {
	Address         Address   `json:"address"`
	DisplayName     *string   `json:"display_name,omitempty"`
	Type            *string   `json:"type,omitempty"`
	Capacity        *int      `json:"capacity,omitempty"`
	Location        *string   `json:"location,omitempty"`
	BookingPolicy   *string   `json:"booking_policy,omitempty"`
	MaxConflicts    *int      `json:"max_conflicts,omitempty"`
	NotifyAddresses []Address `json:"notify_addresses"`
}

// ResourceDeleted records the deletion of a resource.
type ResourceDeleted struct {
	Address Address `json:"address"`
}

// ResourceAliasAdded records a new alias of the resource.
type ResourceAliasAdded struct {
	Address Address `json:"address"`
	Alias   Address `json:"alias"`
}

// ResourceAliasRemoved records the removal of an alias.
type ResourceAliasRemoved struct {
	Address Address `json:"address"`
	Alias   Address `json:"alias"`
}

// EventType implements Event.
func (ResourceCreated) EventType() string { return "ResourceCreated" }

// EventType implements Event.
func (ResourceUpdated) EventType() string { return "ResourceUpdated" }

// EventType implements Event.
func (ResourceDeleted) EventType() string { return "ResourceDeleted" }

// EventType implements Event.
func (ResourceAliasAdded) EventType() string { return "ResourceAliasAdded" }

// EventType implements Event.
func (ResourceAliasRemoved) EventType() string { return "ResourceAliasRemoved" }

// Decide validates cmd against the resource.
func (r Resource) Decide(cmd ResourceCommand) ([]Event, error) {
	if _, create := cmd.(CreateResource); !create && !r.Exists() {
		return nil, fmt.Errorf("resource: %w", ErrNotFound)
	}
	switch c := cmd.(type) {
	case CreateResource:
		return r.decideCreate(c)
	case UpdateResource:
		return r.decideUpdate(c)
	case DeleteResource:
		return []Event{ResourceDeleted{Address: r.Address}}, nil
	case AddResourceAlias:
		return r.decideAddAlias(c)
	case RemoveResourceAlias:
		if !r.HasAlias(c.Alias) {
			return nil, fmt.Errorf("alias %s: %w", c.Alias, ErrNotFound)
		}
		return []Event{ResourceAliasRemoved{Address: r.Address, Alias: c.Alias}}, nil
	}
	return nil, fmt.Errorf("domain: unknown resource command %T", cmd)
}

// decideCreate checks as CreateList does: the domain, the input, that the resource is new,
// and that the domain takes new objects.
func (r Resource) decideCreate(c CreateResource) ([]Event, error) {
	d := c.Domain
	if !d.Exists() {
		return nil, fmt.Errorf("domain: %w", ErrNotFound)
	}
	var fe fieldErrors
	var p addressParser
	addr := newObjectAddress(&fe, &p, c.Address, d)
	ev := ResourceCreated{Address: addr, DisplayName: c.DisplayName, Type: c.Type, Location: c.Location,
		BookingPolicy: c.BookingPolicy, CreatedAt: c.At.UTC()}
	if msg := checkText(c.DisplayName, maxDisplayNameLength, false); msg != "" {
		fe.add("display_name", msg)
	}
	if c.Type == "" {
		fe.add("type", "required: location or equipment")
	} else if !slices.Contains(resourceTypes, c.Type) {
		fe.add("type", "must be location or equipment")
	}
	if c.Capacity != nil {
		ev.Capacity = checkBounded(&fe, "capacity", *c.Capacity, maxResourceCapacity)
	}
	if msg := checkText(c.Location, maxResourceLocationLength, false); msg != "" {
		fe.add("location", msg)
	}
	if ev.BookingPolicy == "" {
		ev.BookingPolicy = DefaultBookingPolicy
	} else if !slices.Contains(bookingPolicies, ev.BookingPolicy) {
		fe.add("booking_policy", "must be one of auto_accept, auto_accept_unless_busy, manual, auto_decline")
	}
	if c.MaxConflicts != nil {
		ev.MaxConflicts = checkBounded(&fe, "max_conflicts", *c.MaxConflicts, maxResourceConflicts)
	}
	ev.NotifyAddresses = nonEmptySlice(addressList(&fe, &p, "notify_addresses", c.NotifyAddresses, maxResourceNotifyAddresses))
	if c.Signature != nil {
		fe.add("signature", ResourceSignatureRefused)
	}
	if c.At.IsZero() {
		fe.add("at", "required")
	}
	if err := admitNewObject(&fe, r.Exists(), "resource", addr, d); err != nil {
		return nil, err
	}
	return []Event{ev}, nil
}

func (r Resource) decideUpdate(c UpdateResource) ([]Event, error) {
	var fe fieldErrors
	ev := ResourceUpdated{Address: r.Address}
	changed := false
	setText := func(field string, v *string, max int, cur string, dst **string) {
		if v == nil {
			return
		}
		if msg := checkText(*v, max, false); msg != "" {
			fe.add(field, msg)
		} else if *v != cur {
			*dst, changed = clonePtr(v), true
		}
	}
	setText("display_name", c.DisplayName, maxDisplayNameLength, r.DisplayName, &ev.DisplayName)
	setText("location", c.Location, maxResourceLocationLength, r.Location, &ev.Location)
	setEnum := func(field string, v *string, allowed []string, msg, cur string, dst **string) {
		if v == nil {
			return
		}
		if !slices.Contains(allowed, *v) {
			fe.add(field, msg)
		} else if *v != cur {
			*dst, changed = clonePtr(v), true
		}
	}
	setEnum("type", c.Type, resourceTypes, "must be location or equipment", r.Type, &ev.Type)
	setEnum("booking_policy", c.BookingPolicy, bookingPolicies,
		"must be one of auto_accept, auto_accept_unless_busy, manual, auto_decline", r.BookingPolicy, &ev.BookingPolicy)
	setInt := func(field string, v *int, max, cur int, dst **int) {
		if v == nil {
			return
		}
		if n := checkBounded(&fe, field, *v, max); n == *v && n != cur {
			*dst, changed = clonePtr(v), true
		}
	}
	setInt("capacity", c.Capacity, maxResourceCapacity, r.Capacity, &ev.Capacity)
	setInt("max_conflicts", c.MaxConflicts, maxResourceConflicts, r.MaxConflicts, &ev.MaxConflicts)
	if c.NotifyAddresses != nil {
		var p addressParser
		n := addressList(&fe, &p, "notify_addresses", c.NotifyAddresses, maxResourceNotifyAddresses)
		if !slices.Equal(n, r.NotifyAddresses) {
			ev.NotifyAddresses, changed = n, true
		}
	}
	if c.Signature != nil {
		fe.add("signature", ResourceSignatureRefused)
	}
	if err := fe.err(); err != nil {
		return nil, err
	}
	if !changed {
		return nil, nil
	}
	return []Event{ev}, nil
}

func (r Resource) decideAddAlias(c AddResourceAlias) ([]Event, error) {
	var p addressParser
	alias, msg := p.parse(c.Alias)
	switch {
	case c.Alias == "":
		return nil, Invalid("alias", "required")
	case msg != "":
		return nil, Invalid("alias", msg)
	case alias == r.Address:
		return nil, Invalid("alias", "is the resource's own address")
	case r.HasAlias(alias):
		return nil, fmt.Errorf("alias %s: %w", alias, ErrAlreadyExists)
	case !c.AliasDomain.Exists() || c.AliasDomain.Name != alias.Domain:
		return nil, Invalid("alias", "domain "+alias.Domain+" does not exist")
	case !c.AliasDomain.AcceptsNewAccounts():
		return nil, fmt.Errorf("domain %s of alias %s is %s: %w", alias.Domain, alias, c.AliasDomain.Condition(), ErrDomainUnavailable)
	case len(r.Aliases) >= maxObjectAliases:
		return nil, Invalid("alias", fmt.Sprintf("a resource has at most %d aliases", maxObjectAliases))
	}
	return []Event{ResourceAliasAdded{Address: r.Address, Alias: alias}}, nil
}

// checkBounded checks 0 <= v <= max and returns v (0 when it is out of bounds).
func checkBounded(fe *fieldErrors, field string, v, max int) int {
	if v < 0 || v > max {
		fe.add(field, fmt.Sprintf("must be between 0 and %d", max))
		return 0
	}
	return v
}

// Evolve applies one event; other events leave r unchanged.
func (r Resource) Evolve(e Event) Resource {
	switch ev := e.(type) {
	case ResourceCreated:
		return Resource{
			Address:         ev.Address,
			DisplayName:     ev.DisplayName,
			Type:            ev.Type,
			Capacity:        ev.Capacity,
			Location:        ev.Location,
			BookingPolicy:   ev.BookingPolicy,
			MaxConflicts:    ev.MaxConflicts,
			NotifyAddresses: sortedSet(slices.Clone(ev.NotifyAddresses)),
			CreatedAt:       ev.CreatedAt,
		}
	case ResourceUpdated:
		if ev.DisplayName != nil {
			r.DisplayName = *ev.DisplayName
		}
		if ev.Type != nil {
			r.Type = *ev.Type
		}
		if ev.Capacity != nil {
			r.Capacity = *ev.Capacity
		}
		if ev.Location != nil {
			r.Location = *ev.Location
		}
		if ev.BookingPolicy != nil {
			r.BookingPolicy = *ev.BookingPolicy
		}
		if ev.MaxConflicts != nil {
			r.MaxConflicts = *ev.MaxConflicts
		}
		if ev.NotifyAddresses != nil {
			r.NotifyAddresses = sortedSet(slices.Clone(ev.NotifyAddresses))
		}
		return r
	case ResourceDeleted:
		return Resource{}
	case ResourceAliasAdded:
		if !r.HasAlias(ev.Alias) {
			r.Aliases = mergeSorted(r.Aliases, []Address{ev.Alias})
		}
		return r
	case ResourceAliasRemoved:
		r.Aliases = subtractSorted(r.Aliases, []Address{ev.Alias})
		return r
	}
	return r
}
