package domain

import (
	"fmt"
	"strings"
	"time"
)

// GAL modes (API.md "GAL"): which entries the domain's address book shows.
const (
	GALInternal = "internal" // the domain's own accounts, lists and resources
	GALExternal = "external" // the entries a resync copied from an external directory
	GALBoth     = "both"
)

// GAL sync outcomes as last_sync shows them.
const (
	GALSyncSucceeded = "succeeded"
	GALSyncFailed    = "failed"
)

// Limits of the external source's settings.
const (
	// DefaultGALTimeoutSeconds bounds each exchange with the external directory.
	DefaultGALTimeoutSeconds = 10
	maxGALTimeoutSeconds     = 300
	// DefaultGALSearchFilter selects the people of the external directory.
	DefaultGALSearchFilter = "(mail=*)"
	// maxGALPollingIntervalSeconds is a week: a GAL older than that is no address book.
	maxGALPollingIntervalSeconds = 7 * 24 * 3600
)

// GALAccountLocalPart is the GALSync account's local part when PUT names none.
const GALAccountLocalPart = "galsync"

// GAL is a domain's Global Address List and the GALSync account that keeps it (Carbonio's
// "GALSync account"). Its stream is GALStreamID(domain); its address is claimed like an
// account's.
type GAL struct {
	Domain  string
	Account Address
	Mode    string
	// PollingIntervalSeconds is how often external entries are resynced; 0 takes the global
	// configuration's gal_polling_interval_seconds.
	PollingIntervalSeconds int
	// External is the directory external entries come from; nil when none is configured.
	External  *GALSource
	CreatedAt time.Time
	UpdatedAt time.Time
	// SourceChangedAt is when the external source was last set or changed (not counting its
	// password, which the read models' copy of the state does not hold): a resync that ended
	// before it read another source, so the schedule resyncs at once.
	SourceChangedAt time.Time
	// LastSync is the latest resync's outcome; LastSuccess the latest that succeeded.
	LastSync    *GALSyncResult
	LastSuccess *GALSyncResult
}

// GALSource is an external LDAP directory the GAL copies entries from. The bind password is
// kept only sealed, and never in the read models' copy of the state (json "-").
type GALSource struct {
	LDAPURL            string
	BindDN             string
	BindPasswordSecret string `json:"-"`
	HasBindPassword    bool
	SearchBase         string
	SearchFilter       string
	// StartTLS upgrades an ldap:// connection before binding (ldaps:// is TLS from the start).
	StartTLS       bool
	TimeoutSeconds int
}

// GALSyncResult is what one resync did.
type GALSyncResult struct {
	Status     string
	StartedAt  time.Time
	FinishedAt time.Time
	DurationMS int64
	Added      int
	Changed    int
	Removed    int
	// Total is how many external entries the GAL holds afterwards.
	Total int
	// Pages is how many pages of the directory's paged search were read.
	Pages int
	// Error says why a failed resync failed; its entries stayed as they were.
	Error   string
	Trigger string
}

// Exists reports whether the domain has a GALSync account.
func (g GAL) Exists() bool { return !g.Account.IsZero() }

// ShowsInternal and ShowsExternal say which entries the mode shows (the SQL function
// gal_search, migration 00011, decides the same in the database).
func (g GAL) ShowsInternal() bool { return !g.Exists() || g.Mode != GALExternal }

// ShowsExternal reports whether the mode shows the external directory's entries.
func (g GAL) ShowsExternal() bool { return g.Exists() && g.Mode != GALInternal }

// EffectivePollingInterval is how often the GAL resyncs, given the global configuration's
// interval (0 there: never on a schedule).
func (g GAL) EffectivePollingInterval(global int) time.Duration {
	s := g.PollingIntervalSeconds
	if s == 0 {
		s = global
	}
	return time.Duration(s) * time.Second
}

// GALCommand is a command on a domain's GAL.
type GALCommand interface{ isGALCommand() }

// GALSettings are what PUT sets: the whole configuration (PUT replaces it).
type GALSettings struct {
	// Account is the GALSync account's address ("" keeps the current one, or makes
	// galsync@domain).
	Account                string
	Mode                   string
	PollingIntervalSeconds int
	External               *GALSourceSettings
}

// GALSourceSettings is the external source as PUT gives it. A nil BindPasswordSecret keeps
// the password already set; "" clears it.
type GALSourceSettings struct {
	LDAPURL            string
	BindDN             string
	BindPasswordSecret *string
	SearchBase         string
	SearchFilter       string
	StartTLS           bool
	TimeoutSeconds     int
}

// PutGAL creates the GAL when it is missing, or replaces its settings. The caller checks that
// the domain exists and accepts changes, and claims the account's address.
type PutGAL struct {
	Domain   string
	Settings GALSettings
	At       time.Time
}

// DeleteGAL removes the GALSync account and the external entries it copied.
type DeleteGAL struct{}

// RequestGALResync asks for a resync now (POST …/gal/resync); a job carries it out.
type RequestGALResync struct {
	RequestID string
	At        time.Time
	By        string
}

// RecordGALSync records a resync's outcome. The caller has compared what the directory holds
// with the stored entries (Added/Changed/Removed, Total); Error set means the source failed
// and nothing changed.
type RecordGALSync struct {
	Result GALSyncResult
}

func (PutGAL) isGALCommand()           {}
func (DeleteGAL) isGALCommand()        {}
func (RequestGALResync) isGALCommand() {}
func (RecordGALSync) isGALCommand()    {}

// GALSourceData is an external source as events carry it; the bind password only sealed.
type GALSourceData struct {
	LDAPURL            string `json:"ldap_url"`
	BindDN             string `json:"bind_dn"`
	BindPasswordSecret string `json:"bind_password_secret,omitempty"`
	SearchBase         string `json:"search_base"`
	SearchFilter       string `json:"search_filter"`
	StartTLS           bool   `json:"start_tls"`
	TimeoutSeconds     int    `json:"timeout_seconds"`
}

// GALConfigured records a GAL created (Created) or its settings replaced: every setting, so
// that one event says what the GAL became.
type GALConfigured struct {
	Domain                 string         `json:"domain"`
	Created                bool           `json:"created"`
	Account                Address        `json:"account"`
	PreviousAccount        *Address       `json:"previous_account,omitempty"`
	Mode                   string         `json:"mode"`
	PollingIntervalSeconds int            `json:"polling_interval_seconds"`
	External               *GALSourceData `json:"external,omitempty"`
	At                     time.Time      `json:"at"`
}

// GALDeleted records that the GALSync account was removed, with its external entries.
type GALDeleted struct {
	Domain  string  `json:"domain"`
	Account Address `json:"account"`
}

// GALResyncRequested records an administrator's request for a resync now.
type GALResyncRequested struct {
	Domain    string    `json:"domain"`
	RequestID string    `json:"request_id"`
	By        string    `json:"by"`
	At        time.Time `json:"at"`
}

// GALSynced records a resync's outcome: succeeded with what it changed, or failed with why
// (its entries then stayed as they were).
type GALSynced struct {
	Domain     string    `json:"domain"`
	Status     string    `json:"status"`
	Trigger    string    `json:"trigger"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
	DurationMS int64     `json:"duration_ms"`
	Added      int       `json:"added"`
	Changed    int       `json:"changed"`
	Removed    int       `json:"removed"`
	Total      int       `json:"total"`
	Pages      int       `json:"pages"`
	Error      string    `json:"error,omitempty"`
}

// EventType implements Event.
func (GALConfigured) EventType() string { return "GALConfigured" }

// EventType implements Event.
func (GALDeleted) EventType() string { return "GALDeleted" }

// EventType implements Event.
func (GALResyncRequested) EventType() string { return "GALResyncRequested" }

// EventType implements Event.
func (GALSynced) EventType() string { return "GALSynced" }

// Decide validates cmd against the GAL.
func (g GAL) Decide(cmd GALCommand) ([]Event, error) {
	if _, ok := cmd.(PutGAL); !ok && !g.Exists() {
		return nil, fmt.Errorf("GAL: %w", ErrNotFound)
	}
	switch c := cmd.(type) {
	case PutGAL:
		return g.decidePut(c)
	case DeleteGAL:
		return []Event{GALDeleted{Domain: g.Domain, Account: g.Account}}, nil
	case RequestGALResync:
		if g.External == nil {
			return nil, Invalid("external", "the GAL has no external source to resync from")
		}
		return []Event{GALResyncRequested{Domain: g.Domain, RequestID: c.RequestID, By: c.By, At: c.At}}, nil
	case RecordGALSync:
		r := c.Result
		return []Event{GALSynced{Domain: g.Domain, Status: r.Status, Trigger: r.Trigger, StartedAt: r.StartedAt,
			FinishedAt: r.FinishedAt, DurationMS: r.DurationMS, Added: r.Added, Changed: r.Changed, Removed: r.Removed,
			Total: r.Total, Pages: r.Pages, Error: r.Error}}, nil
	}
	return nil, fmt.Errorf("GAL: unknown command %T", cmd)
}

// resolveAccount returns the GALSync account's address PUT names (or keeps, or makes), or
// a ValidationError on "account". It must be an address of the GAL's own domain.
func (g GAL) resolveAccount(domainName, account string) (Address, error) {
	if strings.TrimSpace(account) == "" {
		if g.Exists() {
			return g.Account, nil
		}
		return Address{Local: GALAccountLocalPart, Domain: domainName}, nil
	}
	a, err := ParseAddress(account)
	if err != nil {
		return Address{}, Invalid("account", firstMessage(err))
	}
	if a.Domain != domainName {
		return Address{}, Invalid("account", "must be an address of the domain "+domainName)
	}
	return a, nil
}

func (g GAL) decidePut(c PutGAL) ([]Event, error) {
	var fe fieldErrors
	s := c.Settings
	account, err := g.resolveAccount(c.Domain, s.Account)
	if err != nil {
		fe.addErr("account", err)
	}
	switch s.Mode {
	case GALInternal, GALExternal, GALBoth:
	case "":
		fe.add("mode", "required")
	default:
		fe.add("mode", `must be "internal", "external" or "both"`)
	}
	if p := s.PollingIntervalSeconds; p != 0 && (p < minGALPollingIntervalSeconds || p > maxGALPollingIntervalSeconds) {
		fe.add("polling_interval_seconds", fmt.Sprintf("must be 0 (the global setting) or from %d to %d",
			minGALPollingIntervalSeconds, maxGALPollingIntervalSeconds))
	}
	var ext *GALSourceData
	if x := s.External; x != nil {
		ext = &GALSourceData{LDAPURL: x.LDAPURL, BindDN: x.BindDN, SearchBase: x.SearchBase,
			SearchFilter: x.SearchFilter, StartTLS: x.StartTLS, TimeoutSeconds: x.TimeoutSeconds}
		checkGALSource(&fe, ext)
		switch {
		case x.BindPasswordSecret != nil:
			ext.BindPasswordSecret = *x.BindPasswordSecret
		case g.External != nil:
			ext.BindPasswordSecret = g.External.BindPasswordSecret
		}
		if ext.BindPasswordSecret != "" && ext.BindDN == "" {
			fe.add("external.bind_dn", "required with a bind password")
		}
	} else if s.Mode == GALExternal || s.Mode == GALBoth {
		fe.add("external", "required when the mode is "+s.Mode)
	}
	if err := fe.err(); err != nil {
		return nil, err
	}
	ev := GALConfigured{Domain: c.Domain, Created: !g.Exists(), Account: account, Mode: s.Mode,
		PollingIntervalSeconds: s.PollingIntervalSeconds, External: ext, At: c.At}
	if g.Exists() {
		if g.Account != account {
			prev := g.Account
			ev.PreviousAccount = &prev
		}
		if g.Account == account && g.Mode == s.Mode && g.PollingIntervalSeconds == s.PollingIntervalSeconds &&
			sameSource(g.External, ext) {
			return nil, nil // nothing changes: a PUT repeated appends nothing
		}
	}
	return []Event{ev}, nil
}

func checkGALSource(fe *fieldErrors, x *GALSourceData) {
	if x.LDAPURL == "" {
		fe.add("external.ldap_url", "required")
	} else if msg := checkLDAPURL(x.LDAPURL); msg != "" {
		fe.add("external.ldap_url", msg)
	} else if x.StartTLS && strings.HasPrefix(strings.ToLower(x.LDAPURL), "ldaps:") {
		fe.add("external.start_tls", "not with ldaps:// (TLS from the start)")
	}
	if x.BindDN != "" {
		if msg := checkDN(x.BindDN); msg != "" {
			fe.add("external.bind_dn", msg)
		}
	}
	if x.SearchBase == "" {
		fe.add("external.search_base", "required")
	} else if msg := checkDN(x.SearchBase); msg != "" {
		fe.add("external.search_base", msg)
	}
	if x.SearchFilter == "" {
		x.SearchFilter = DefaultGALSearchFilter
	} else if msg := checkLDAPFilter(x.SearchFilter); msg != "" {
		fe.add("external.search_filter", msg)
	}
	switch t := x.TimeoutSeconds; {
	case t == 0:
		x.TimeoutSeconds = DefaultGALTimeoutSeconds
	case t < 1 || t > maxGALTimeoutSeconds:
		fe.add("external.timeout_seconds", fmt.Sprintf("must be from 1 to %d", maxGALTimeoutSeconds))
	}
}

// sameLocation reports whether a source reads the same entries: all but the password.
func sameLocation(cur *GALSource, next *GALSourceData) bool {
	if cur == nil || next == nil {
		return cur == nil && next == nil
	}
	return cur.LDAPURL == next.LDAPURL && cur.BindDN == next.BindDN && cur.SearchBase == next.SearchBase &&
		cur.SearchFilter == next.SearchFilter && cur.StartTLS == next.StartTLS
}

func sameSource(cur *GALSource, next *GALSourceData) bool {
	if cur == nil || next == nil {
		return cur == nil && next == nil
	}
	return cur.LDAPURL == next.LDAPURL && cur.BindDN == next.BindDN && cur.BindPasswordSecret == next.BindPasswordSecret &&
		cur.SearchBase == next.SearchBase && cur.SearchFilter == next.SearchFilter && cur.StartTLS == next.StartTLS &&
		cur.TimeoutSeconds == next.TimeoutSeconds
}

// Evolve applies one event; other events leave g unchanged.
func (g GAL) Evolve(e Event) GAL {
	switch ev := e.(type) {
	case GALConfigured:
		if ev.Created {
			g = GAL{Domain: ev.Domain, CreatedAt: ev.At}
		}
		if ev.External != nil && (ev.Created || !sameLocation(g.External, ev.External)) {
			g.SourceChangedAt = ev.At
		}
		g.Account, g.Mode, g.PollingIntervalSeconds, g.UpdatedAt = ev.Account, ev.Mode, ev.PollingIntervalSeconds, ev.At
		g.External = nil
		if x := ev.External; x != nil {
			g.External = &GALSource{LDAPURL: x.LDAPURL, BindDN: x.BindDN, BindPasswordSecret: x.BindPasswordSecret,
				HasBindPassword: x.BindPasswordSecret != "", SearchBase: x.SearchBase, SearchFilter: x.SearchFilter,
				StartTLS: x.StartTLS, TimeoutSeconds: x.TimeoutSeconds}
		}
	case GALDeleted:
		return GAL{}
	case GALSynced:
		r := &GALSyncResult{Status: ev.Status, Trigger: ev.Trigger, StartedAt: ev.StartedAt, FinishedAt: ev.FinishedAt,
			DurationMS: ev.DurationMS, Added: ev.Added, Changed: ev.Changed, Removed: ev.Removed, Total: ev.Total,
			Pages: ev.Pages, Error: ev.Error}
		g.LastSync = r
		if ev.Status == GALSyncSucceeded {
			g.LastSuccess = r
		}
	}
	return g
}
