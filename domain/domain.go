package domain

import (
	"fmt"
	"slices"
)

// Statuses. Domains use active, maintenance, locked, closed and suspended;
// accounts use active, locked, maintenance, closed, lockout and pending.
const (
	StatusActive      = "active"
	StatusMaintenance = "maintenance"
	StatusLocked      = "locked"
	StatusClosed      = "closed"
	StatusSuspended   = "suspended"
	StatusLockout     = "lockout"
	StatusPending     = "pending"
)

var domainStatuses = []string{StatusActive, StatusMaintenance, StatusLocked, StatusClosed, StatusSuspended}

// DomainStatuses returns the statuses a domain can have (a copy: the API lists and checks them).
func DomainStatuses() []string { return slices.Clone(domainStatuses) }

// Authentication mechanisms of a domain.
const (
	AuthInternal = "internal"
	AuthLDAP     = "ldap"
	AuthAD       = "ad"
)

// Domain is a mail domain. Optional settings are pointers: nil inherits the
// global configuration (see EffectiveDomain).
type Domain struct {
	Name           string // A-labels; the stored and addressing form
	UnicodeName    string // for display
	Description    string
	TimeZone       *string
	PublicProtocol *string
	SpamRelayHost  *string // set to "" = no relay, whatever the global one is
	DefaultCOS     *string
	Status         string
	Auth           DomainAuth
	Limits         DomainLimits
	// Removing is set once a removal started (DomainRemovalStarted): nothing new may be
	// created in the domain and nothing in it changes, except by the removal itself.
	Removing bool `json:",omitempty"`
	// TOTPRequired: the domain's administrators must log in with a second factor (totp.go).
	TOTPRequired bool `json:",omitempty"`
}

// DomainAuth is how a domain's users authenticate. The bind password is kept
// only sealed (BindPasswordSecret, ciphertext made by the caller, as an
// account's password is), so that login can read it from the state.
type DomainAuth struct {
	Mechanism          string
	LDAPURL            string
	BindDN             string
	HasBindPassword    bool
	BindPasswordSecret string
	SearchBase         string
	SearchFilter       string
}

// External reports whether the domain's users authenticate against an
// external directory (LDAP or Active Directory) rather than local passwords.
func (a DomainAuth) External() bool {
	return a.Mechanism == AuthLDAP || a.Mechanism == AuthAD
}

// AuthSettings is the auth part of CreateDomain and DomainCreated.
// BindPasswordSecret is ciphertext made by the caller.
type AuthSettings struct {
	Mechanism          string `json:"mechanism"`
	LDAPURL            string `json:"ldap_url,omitempty"`
	BindDN             string `json:"bind_dn,omitempty"`
	BindPasswordSecret string `json:"bind_password_secret,omitempty"`
	SearchBase         string `json:"search_base,omitempty"`
	SearchFilter       string `json:"search_filter,omitempty"`
}

// AuthPatch changes auth settings in UpdateDomain and DomainUpdated; nil
// fields are unchanged. An empty BindPasswordSecret removes the password.
type AuthPatch struct {
	Mechanism          *string `json:"mechanism,omitempty"`
	LDAPURL            *string `json:"ldap_url,omitempty"`
	BindDN             *string `json:"bind_dn,omitempty"`
	BindPasswordSecret *string `json:"bind_password_secret,omitempty"`
	SearchBase         *string `json:"search_base,omitempty"`
	SearchFilter       *string `json:"search_filter,omitempty"`
}

// DomainLimits are a domain's mailbox limits (0 = no limit). The quota and
// warning settings inherit the global ones when nil; MaxAccounts and
// WarnRecipient have no global counterpart.
type DomainLimits struct {
	DomainQuotaBytes  *int64 `json:"domain_quota_bytes,omitempty"`
	AccountQuotaBytes *int64 `json:"account_quota_bytes,omitempty"`
	WarnPercent       *int   `json:"warn_percent,omitempty"`
	WarnRecipient     string `json:"warn_recipient,omitempty"`
	MaxAccounts       int    `json:"max_accounts,omitempty"`
}

// LimitsPatch changes limits in UpdateDomain and DomainUpdated; nil fields
// are unchanged. An empty WarnRecipient removes it.
type LimitsPatch struct {
	DomainQuotaBytes  *int64  `json:"domain_quota_bytes,omitempty"`
	AccountQuotaBytes *int64  `json:"account_quota_bytes,omitempty"`
	WarnPercent       *int    `json:"warn_percent,omitempty"`
	WarnRecipient     *string `json:"warn_recipient,omitempty"`
	MaxAccounts       *int    `json:"max_accounts,omitempty"`
}

// Exists reports whether the domain has been created.
func (d Domain) Exists() bool { return d.Name != "" }

// AcceptsLogins follows Carbonio's domain statuses: users log in only while
// the domain is active. Maintenance, locked, suspended and closed all keep
// users out (they differ in what happens to mail, see MailDelivery).
func (d Domain) AcceptsLogins() bool {
	return d.Exists() && d.Status == StatusActive
}

// AcceptsNewAccounts: an administrator may still create accounts while a
// domain is locked or in maintenance (that is what a migration does), but not
// once it is closed (being wound down) or suspended (frozen).
func (d Domain) AcceptsNewAccounts() bool {
	return d.Exists() && !d.Removing && (d.Status == StatusActive || d.Status == StatusMaintenance || d.Status == StatusLocked)
}

// AcceptsChanges is false while the domain is suspended: as in Carbonio, its
// accounts, lists and aliases are then frozen. Only the domain itself may
// still be changed (to lift the suspension). Account commands other than
// CreateAccount and StartSession do not carry the domain, so the caller
// checks this before them (see CheckAcceptsChanges); the domain-removal job
// deliberately skips it.
func (d Domain) AcceptsChanges() bool {
	return d.Exists() && !d.Removing && d.Status != StatusSuspended
}

// Condition says why a domain refuses something: "being removed", or its status.
func (d Domain) Condition() string {
	if d.Removing {
		return "being removed"
	}
	return d.Status
}

// CheckAcceptsChanges returns nil, or ErrDomainUnavailable (ErrNotFound if
// the domain does not exist) with the reason.
func (d Domain) CheckAcceptsChanges() error {
	if !d.Exists() {
		return fmt.Errorf("domain: %w", ErrNotFound)
	}
	if !d.AcceptsChanges() {
		return fmt.Errorf("domain %s is %s: %w", d.Name, d.Condition(), ErrDomainUnavailable)
	}
	return nil
}

// Delivery is what the MTA does with mail for a domain.
type Delivery string

// Delivery modes.
const (
	DeliveryAccept Delivery = "accept"
	DeliveryDefer  Delivery = "defer"  // queued at the MTA until the status changes
	DeliveryBounce Delivery = "bounce" // refused
)

// MailDelivery follows Carbonio: locked domains still receive mail,
// maintenance and suspended ones have it queued, closed ones bounce it.
func (d Domain) MailDelivery() Delivery {
	switch {
	case !d.Exists():
		return DeliveryBounce
	case d.Status == StatusActive, d.Status == StatusLocked:
		return DeliveryAccept
	case d.Status == StatusMaintenance, d.Status == StatusSuspended:
		return DeliveryDefer
	}
	return DeliveryBounce
}

// DomainCommand is a command on a domain.
type DomainCommand interface{ isDomainCommand() }

// CreateDomain creates a domain. Name may be Unicode or A-labels in any
// case; the caller loads DomainStreamID of its NormalizeDomainName form.
// Status "" means active, Auth.Mechanism "" means internal.
type CreateDomain struct {
	Name           string
	Description    string
	TimeZone       *string
	PublicProtocol *string
	SpamRelayHost  *string
	DefaultCOS     *string
	Status         string
	Auth           AuthSettings
	Limits         DomainLimits

	// COSExists is filled by the caller: whether DefaultCOS names an
	// existing COS. Ignored when DefaultCOS is nil.
	COSExists bool
}

// UpdateDomain patches a domain, status included. Clear may name time_zone,
// public_protocol, spam_relay_host, default_cos, limits.domain_quota_bytes,
// limits.account_quota_bytes and limits.warn_percent.
type UpdateDomain struct {
	Description    *string
	TimeZone       *string
	PublicProtocol *string
	SpamRelayHost  *string
	DefaultCOS     *string
	Status         *string
	Auth           *AuthPatch
	Limits         *LimitsPatch
	TOTPRequired   *bool
	Clear          []string

	// COSExists: whether the new DefaultCOS exists; consulted only when it changes.
	COSExists bool
}

// CloseDomain closes a domain: its objects stay, logins and delivery stop.
type CloseDomain struct{}

// StartDomainRemoval begins removing a domain and everything in it. Starting a removal that
// is already under way decides nothing (the caller answers with the job it has).
type StartDomainRemoval struct{}

// FinishDomainRemoval records the end of a removal, once every object of the domain is gone
// (Remaining is what the caller still found in it: it must be 0).
type FinishDomainRemoval struct {
	Remaining int
}

func (CreateDomain) isDomainCommand()        {}
func (UpdateDomain) isDomainCommand()        {}
func (CloseDomain) isDomainCommand()         {}
func (StartDomainRemoval) isDomainCommand()  {}
func (FinishDomainRemoval) isDomainCommand() {}

// DomainCreated records a new domain with all its settings.
type DomainCreated struct {
	Name           string       `json:"name"`
	UnicodeName    string       `json:"unicode_name"`
	Description    string       `json:"description,omitempty"`
	TimeZone       *string      `json:"time_zone,omitempty"`
	PublicProtocol *string      `json:"public_protocol,omitempty"`
	SpamRelayHost  *string      `json:"spam_relay_host,omitempty"`
	DefaultCOS     *string      `json:"default_cos,omitempty"`
	Status         string       `json:"status"`
	Auth           AuthSettings `json:"auth"`
	Limits         DomainLimits `json:"limits"`
}

// DomainUpdated records changed settings; Cleared lists settings reset to
// inherit the global configuration.
type DomainUpdated struct {
	Name           string       `json:"name"`
	Description    *string      `json:"description,omitempty"`
	TimeZone       *string      `json:"time_zone,omitempty"`
	PublicProtocol *string      `json:"public_protocol,omitempty"`
	SpamRelayHost  *string      `json:"spam_relay_host,omitempty"`
	DefaultCOS     *string      `json:"default_cos,omitempty"`
	Status         *string      `json:"status,omitempty"`
	Auth           *AuthPatch   `json:"auth,omitempty"`
	Limits         *LimitsPatch `json:"limits,omitempty"`
	TOTPRequired   *bool        `json:"totp_required,omitempty"`
	Cleared        []string     `json:"cleared,omitempty"`
}

// DomainClosed records that a domain was closed.
type DomainClosed struct {
	Name string `json:"name"`
}

// DomainRemovalStarted records that the domain is being removed: from here on nothing new is
// created in it, and the removal job deletes its objects one event each.
type DomainRemovalStarted struct {
	Name string `json:"name"`
}

// DomainRemoved is the domain's last event: its objects are gone, and its data key is
// destroyed in the same transaction (crypto-shredding). The name may be created again.
type DomainRemoved struct {
	Name string `json:"name"`
}

// EventType implements Event.
func (DomainRemovalStarted) EventType() string { return "DomainRemovalStarted" }

// EventType implements Event.
func (DomainRemoved) EventType() string { return "DomainRemoved" }

// EventType implements Event.
func (DomainCreated) EventType() string { return "DomainCreated" }

// EventType implements Event.
func (DomainUpdated) EventType() string { return "DomainUpdated" }

// EventType implements Event.
func (DomainClosed) EventType() string { return "DomainClosed" }

var domainClearable = []string{
	"time_zone", "public_protocol", "spam_relay_host", "default_cos",
	"limits.domain_quota_bytes", "limits.account_quota_bytes", "limits.warn_percent",
}

// Decide validates cmd against the domain.
func (d Domain) Decide(cmd DomainCommand) ([]Event, error) {
	switch c := cmd.(type) {
	case CreateDomain:
		return d.decideCreate(c)
	case UpdateDomain:
		return d.decideUpdate(c)
	case CloseDomain:
		if !d.Exists() {
			return nil, fmt.Errorf("domain: %w", ErrNotFound)
		}
		if d.Removing {
			return nil, fmt.Errorf("domain %s is being removed: %w", d.Name, ErrDomainUnavailable)
		}
		if d.Status == StatusClosed {
			return nil, nil
		}
		return []Event{DomainClosed{Name: d.Name}}, nil
	case StartDomainRemoval:
		if !d.Exists() {
			return nil, fmt.Errorf("domain: %w", ErrNotFound)
		}
		if d.Removing {
			return nil, nil
		}
		return []Event{DomainRemovalStarted{Name: d.Name}}, nil
	case FinishDomainRemoval:
		if !d.Exists() {
			return nil, fmt.Errorf("domain: %w", ErrNotFound)
		}
		if !d.Removing {
			return nil, fmt.Errorf("domain %s: no removal under way: %w", d.Name, ErrConflict)
		}
		if c.Remaining > 0 {
			return nil, fmt.Errorf("domain %s still has %d objects: %w", d.Name, c.Remaining, ErrConflict)
		}
		return []Event{DomainRemoved{Name: d.Name}}, nil
	}
	return nil, fmt.Errorf("domain: unknown domain command %T", cmd)
}

func (d Domain) decideCreate(c CreateDomain) ([]Event, error) {
	var fe fieldErrors
	ascii, uni, err := NormalizeDomainName(c.Name)
	if err != nil {
		fe.addErr("name", err)
	}
	if msg := checkText(c.Description, maxDescriptionLength, true); msg != "" {
		fe.add("description", msg)
	}
	ev := DomainCreated{Name: ascii, UnicodeName: uni, Description: c.Description}
	ev.TimeZone = checkOptTimeZone(&fe, c.TimeZone)
	ev.PublicProtocol = checkOptProtocol(&fe, c.PublicProtocol)
	ev.SpamRelayHost = checkOptRelay(&fe, c.SpamRelayHost)
	ev.DefaultCOS = checkOptCOS(&fe, "default_cos", c.DefaultCOS, c.COSExists, nil)

	ev.Status = c.Status
	if ev.Status == "" {
		ev.Status = StatusActive
	}
	if !slices.Contains(domainStatuses, ev.Status) {
		fe.add("status", "must be one of active, maintenance, locked, closed, suspended")
	}

	ev.Auth = c.Auth
	if ev.Auth.Mechanism == "" {
		ev.Auth.Mechanism = AuthInternal
	}
	checkAuth(&fe, DomainAuth{
		Mechanism:    ev.Auth.Mechanism,
		LDAPURL:      ev.Auth.LDAPURL,
		BindDN:       ev.Auth.BindDN,
		SearchBase:   ev.Auth.SearchBase,
		SearchFilter: ev.Auth.SearchFilter,
	})

	ev.Limits = DomainLimits{
		DomainQuotaBytes:  clonePtr(c.Limits.DomainQuotaBytes),
		AccountQuotaBytes: clonePtr(c.Limits.AccountQuotaBytes),
		WarnPercent:       clonePtr(c.Limits.WarnPercent),
		MaxAccounts:       c.Limits.MaxAccounts,
	}
	checkOptNonNegative(&fe, "limits.domain_quota_bytes", c.Limits.DomainQuotaBytes)
	checkOptNonNegative(&fe, "limits.account_quota_bytes", c.Limits.AccountQuotaBytes)
	if c.Limits.WarnPercent != nil {
		if msg := checkPercent(*c.Limits.WarnPercent); msg != "" {
			fe.add("limits.warn_percent", msg)
		}
	}
	if msg := checkNonNegative(c.Limits.MaxAccounts); msg != "" {
		fe.add("limits.max_accounts", msg)
	}
	ev.Limits.WarnRecipient = checkWarnRecipient(&fe, c.Limits.WarnRecipient)

	if err := fe.err(); err != nil {
		return nil, err
	}
	if d.Exists() {
		return nil, fmt.Errorf("domain %s: %w", ascii, ErrAlreadyExists)
	}
	return []Event{ev}, nil
}

func (d Domain) decideUpdate(c UpdateDomain) ([]Event, error) {
	if !d.Exists() {
		return nil, fmt.Errorf("domain: %w", ErrNotFound)
	}
	if d.Removing {
		// Reopening or reconfiguring a domain half removed would leave it with half its objects.
		return nil, fmt.Errorf("domain %s is being removed: %w", d.Name, ErrDomainUnavailable)
	}
	var fe fieldErrors
	clear := clearList(c.Clear, domainClearable, &fe)
	l := c.Limits
	if l == nil {
		l = &LimitsPatch{}
	}
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"time_zone", c.TimeZone != nil},
		{"public_protocol", c.PublicProtocol != nil},
		{"spam_relay_host", c.SpamRelayHost != nil},
		{"default_cos", c.DefaultCOS != nil},
		{"limits.domain_quota_bytes", l.DomainQuotaBytes != nil},
		{"limits.account_quota_bytes", l.AccountQuotaBytes != nil},
		{"limits.warn_percent", l.WarnPercent != nil},
	} {
		if f.set && clear[f.name] {
			fe.add(f.name, "cannot be both set and cleared")
		}
	}

	ev := DomainUpdated{Name: d.Name}
	changed := false
	setStr := func(dst **string, v *string, cur *string) {
		if v != nil && !eqPtr(v, cur) {
			*dst, changed = clonePtr(v), true
		}
	}

	if c.Description != nil {
		if msg := checkText(*c.Description, maxDescriptionLength, true); msg != "" {
			fe.add("description", msg)
		} else if *c.Description != d.Description {
			ev.Description, changed = clonePtr(c.Description), true
		}
	}
	setStr(&ev.TimeZone, checkOptTimeZone(&fe, c.TimeZone), d.TimeZone)
	setStr(&ev.PublicProtocol, checkOptProtocol(&fe, c.PublicProtocol), d.PublicProtocol)
	setStr(&ev.SpamRelayHost, checkOptRelay(&fe, c.SpamRelayHost), d.SpamRelayHost)
	setStr(&ev.DefaultCOS, checkOptCOS(&fe, "default_cos", c.DefaultCOS, c.COSExists, d.DefaultCOS), d.DefaultCOS)
	if c.Status != nil {
		if !slices.Contains(domainStatuses, *c.Status) {
			fe.add("status", "must be one of active, maintenance, locked, closed, suspended")
		} else if *c.Status != d.Status {
			ev.Status, changed = clonePtr(c.Status), true
		}
	}

	if a := c.Auth; a != nil {
		next := d.Auth
		var p AuthPatch
		pchanged := false
		upd := func(dst *string, v *string, out **string) {
			if v != nil && *v != *dst {
				*dst, *out, pchanged = *v, clonePtr(v), true
			}
		}
		upd(&next.Mechanism, a.Mechanism, &p.Mechanism)
		upd(&next.LDAPURL, a.LDAPURL, &p.LDAPURL)
		upd(&next.BindDN, a.BindDN, &p.BindDN)
		upd(&next.SearchBase, a.SearchBase, &p.SearchBase)
		upd(&next.SearchFilter, a.SearchFilter, &p.SearchFilter)
		// Secrets cannot be compared (the state keeps none, and each
		// encryption differs), so setting one is always a change.
		if s := a.BindPasswordSecret; s != nil && (*s != "" || d.Auth.HasBindPassword) {
			p.BindPasswordSecret, pchanged = clonePtr(s), true
		}
		checkAuth(&fe, next)
		if pchanged {
			ev.Auth, changed = &p, true
		}
	}

	var lp LimitsPatch
	lchanged := false
	if l.DomainQuotaBytes != nil {
		checkOptNonNegative(&fe, "limits.domain_quota_bytes", l.DomainQuotaBytes)
		if !eqPtr(l.DomainQuotaBytes, d.Limits.DomainQuotaBytes) {
			lp.DomainQuotaBytes, lchanged = clonePtr(l.DomainQuotaBytes), true
		}
	}
	if l.AccountQuotaBytes != nil {
		checkOptNonNegative(&fe, "limits.account_quota_bytes", l.AccountQuotaBytes)
		if !eqPtr(l.AccountQuotaBytes, d.Limits.AccountQuotaBytes) {
			lp.AccountQuotaBytes, lchanged = clonePtr(l.AccountQuotaBytes), true
		}
	}
	if l.WarnPercent != nil {
		if msg := checkPercent(*l.WarnPercent); msg != "" {
			fe.add("limits.warn_percent", msg)
		} else if !eqPtr(l.WarnPercent, d.Limits.WarnPercent) {
			lp.WarnPercent, lchanged = clonePtr(l.WarnPercent), true
		}
	}
	if l.WarnRecipient != nil {
		if v := checkWarnRecipient(&fe, *l.WarnRecipient); v != d.Limits.WarnRecipient {
			lp.WarnRecipient, lchanged = &v, true
		}
	}
	if l.MaxAccounts != nil {
		if msg := checkNonNegative(*l.MaxAccounts); msg != "" {
			fe.add("limits.max_accounts", msg)
		} else if *l.MaxAccounts != d.Limits.MaxAccounts {
			lp.MaxAccounts, lchanged = clonePtr(l.MaxAccounts), true
		}
	}
	if lchanged {
		ev.Limits, changed = &lp, true
	}
	if c.TOTPRequired != nil && *c.TOTPRequired != d.TOTPRequired {
		ev.TOTPRequired, changed = clonePtr(c.TOTPRequired), true
	}

	current := map[string]bool{
		"time_zone":                  d.TimeZone != nil,
		"public_protocol":            d.PublicProtocol != nil,
		"spam_relay_host":            d.SpamRelayHost != nil,
		"default_cos":                d.DefaultCOS != nil,
		"limits.domain_quota_bytes":  d.Limits.DomainQuotaBytes != nil,
		"limits.account_quota_bytes": d.Limits.AccountQuotaBytes != nil,
		"limits.warn_percent":        d.Limits.WarnPercent != nil,
	}
	for _, name := range sortedKeys(clear) {
		if current[name] {
			ev.Cleared, changed = append(ev.Cleared, name), true
		}
	}

	if err := fe.err(); err != nil {
		return nil, err
	}
	if !changed {
		return nil, nil
	}
	return []Event{ev}, nil
}

// The checkOpt helpers validate an optional setting and return its
// normalised value (nil when absent or invalid; the error is in fe).

func checkOptTimeZone(fe *fieldErrors, v *string) *string {
	if v == nil {
		return nil
	}
	if msg := checkTimeZone(*v); msg != "" {
		fe.add("time_zone", msg)
		return nil
	}
	return clonePtr(v)
}

func checkOptProtocol(fe *fieldErrors, v *string) *string {
	if v == nil {
		return nil
	}
	if msg := checkProtocol(*v); msg != "" {
		fe.add("public_protocol", msg)
		return nil
	}
	return clonePtr(v)
}

func checkOptRelay(fe *fieldErrors, v *string) *string {
	if v == nil {
		return nil
	}
	n, msg := normalizeHostPort(*v)
	if msg != "" {
		fe.add("spam_relay_host", msg)
		return nil
	}
	return &n
}

// checkOptCOS checks a COS reference. Only a new reference needs the COS to
// exist: keeping the current one (cur) must not fail because the caller
// skipped the lookup, or because that COS was deleted meanwhile.
func checkOptCOS(fe *fieldErrors, field string, v *string, exists bool, cur *string) *string {
	if v == nil {
		return nil
	}
	n, err := NormalizeCOSName(*v)
	if err != nil {
		fe.addErr(field, err)
		return nil
	}
	if !exists && (cur == nil || *cur != n) {
		fe.add(field, fmt.Sprintf("COS %q does not exist", n))
		return nil
	}
	return &n
}

func checkOptNonNegative(fe *fieldErrors, field string, v *int64) {
	if v != nil {
		if msg := checkNonNegative(*v); msg != "" {
			fe.add(field, msg)
		}
	}
}

func checkWarnRecipient(fe *fieldErrors, s string) string {
	if s == "" {
		return ""
	}
	a, err := ParseAddress(s)
	if err != nil {
		fe.addErr("limits.warn_recipient", err)
		return ""
	}
	return a.String()
}

func checkAuth(fe *fieldErrors, a DomainAuth) {
	switch a.Mechanism {
	case AuthInternal, AuthLDAP, AuthAD:
	default:
		fe.add("auth.mechanism", `must be "internal", "ldap" or "ad"`)
	}
	if a.LDAPURL != "" {
		if msg := checkLDAPURL(a.LDAPURL); msg != "" {
			fe.add("auth.ldap_url", msg)
		}
	} else if a.Mechanism == AuthLDAP || a.Mechanism == AuthAD {
		fe.add("auth.ldap_url", "required when the mechanism is "+a.Mechanism)
	}
	if a.BindDN != "" {
		if msg := checkDN(a.BindDN); msg != "" {
			fe.add("auth.bind_dn", msg)
		}
	}
	if a.SearchBase != "" {
		if msg := checkDN(a.SearchBase); msg != "" {
			fe.add("auth.search_base", msg)
		}
	}
	if a.SearchFilter != "" {
		if msg := checkLDAPFilter(a.SearchFilter); msg != "" {
			fe.add("auth.search_filter", msg)
		}
	}
}

// Evolve applies one event; other events leave d unchanged.
func (d Domain) Evolve(e Event) Domain {
	switch ev := e.(type) {
	case DomainCreated:
		return Domain{
			Name:           ev.Name,
			UnicodeName:    ev.UnicodeName,
			Description:    ev.Description,
			TimeZone:       clonePtr(ev.TimeZone),
			PublicProtocol: clonePtr(ev.PublicProtocol),
			SpamRelayHost:  clonePtr(ev.SpamRelayHost),
			DefaultCOS:     clonePtr(ev.DefaultCOS),
			Status:         ev.Status,
			Auth: DomainAuth{
				Mechanism:          ev.Auth.Mechanism,
				LDAPURL:            ev.Auth.LDAPURL,
				BindDN:             ev.Auth.BindDN,
				HasBindPassword:    ev.Auth.BindPasswordSecret != "",
				BindPasswordSecret: ev.Auth.BindPasswordSecret,
				SearchBase:         ev.Auth.SearchBase,
				SearchFilter:       ev.Auth.SearchFilter,
			},
			Limits: DomainLimits{
				DomainQuotaBytes:  clonePtr(ev.Limits.DomainQuotaBytes),
				AccountQuotaBytes: clonePtr(ev.Limits.AccountQuotaBytes),
				WarnPercent:       clonePtr(ev.Limits.WarnPercent),
				WarnRecipient:     ev.Limits.WarnRecipient,
				MaxAccounts:       ev.Limits.MaxAccounts,
			},
		}
	case DomainUpdated:
		if ev.TOTPRequired != nil {
			d.TOTPRequired = *ev.TOTPRequired
		}
		if ev.Description != nil {
			d.Description = *ev.Description
		}
		if ev.TimeZone != nil {
			d.TimeZone = clonePtr(ev.TimeZone)
		}
		if ev.PublicProtocol != nil {
			d.PublicProtocol = clonePtr(ev.PublicProtocol)
		}
		if ev.SpamRelayHost != nil {
			d.SpamRelayHost = clonePtr(ev.SpamRelayHost)
		}
		if ev.DefaultCOS != nil {
			d.DefaultCOS = clonePtr(ev.DefaultCOS)
		}
		if ev.Status != nil {
			d.Status = *ev.Status
		}
		if a := ev.Auth; a != nil {
			d.Auth.Mechanism = orDefault(a.Mechanism, d.Auth.Mechanism)
			d.Auth.LDAPURL = orDefault(a.LDAPURL, d.Auth.LDAPURL)
			d.Auth.BindDN = orDefault(a.BindDN, d.Auth.BindDN)
			d.Auth.SearchBase = orDefault(a.SearchBase, d.Auth.SearchBase)
			d.Auth.SearchFilter = orDefault(a.SearchFilter, d.Auth.SearchFilter)
			if a.BindPasswordSecret != nil {
				d.Auth.HasBindPassword = *a.BindPasswordSecret != ""
				d.Auth.BindPasswordSecret = *a.BindPasswordSecret
			}
		}
		if l := ev.Limits; l != nil {
			if l.DomainQuotaBytes != nil {
				d.Limits.DomainQuotaBytes = clonePtr(l.DomainQuotaBytes)
			}
			if l.AccountQuotaBytes != nil {
				d.Limits.AccountQuotaBytes = clonePtr(l.AccountQuotaBytes)
			}
			if l.WarnPercent != nil {
				d.Limits.WarnPercent = clonePtr(l.WarnPercent)
			}
			d.Limits.WarnRecipient = orDefault(l.WarnRecipient, d.Limits.WarnRecipient)
			d.Limits.MaxAccounts = orDefault(l.MaxAccounts, d.Limits.MaxAccounts)
		}
		for _, name := range ev.Cleared {
			switch name {
			case "time_zone":
				d.TimeZone = nil
			case "public_protocol":
				d.PublicProtocol = nil
			case "spam_relay_host":
				d.SpamRelayHost = nil
			case "default_cos":
				d.DefaultCOS = nil
			case "limits.domain_quota_bytes":
				d.Limits.DomainQuotaBytes = nil
			case "limits.account_quota_bytes":
				d.Limits.AccountQuotaBytes = nil
			case "limits.warn_percent":
				d.Limits.WarnPercent = nil
			}
		}
		return d
	case DomainClosed:
		d.Status = StatusClosed
		return d
	case DomainRemovalStarted:
		d.Removing = true
		return d
	case DomainRemoved:
		// Gone: the name is free, and a DomainCreated later in this stream starts afresh.
		return Domain{}
	}
	return d
}
