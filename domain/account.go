package domain

import (
	"fmt"
	"maps"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

var accountStatuses = []string{StatusActive, StatusLocked, StatusMaintenance, StatusClosed, StatusLockout, StatusPending}

// AccountStatuses returns the statuses an account can have (a copy: the API lists and checks them).
func AccountStatuses() []string { return slices.Clone(accountStatuses) }

// Inheritance sources, as shown beside effective values.
const (
	SourceAccount = "account"
	SourceDomain  = "domain"
	SourceGlobal  = "global"
)

// SourceCOS is the source of a value taken from the named COS.
func SourceCOS(name string) string { return "cos:" + name }

// Limits on account input.
const (
	maxAttributes        = 64
	maxAttributeValueLen = 1024
	maxSessionIDLength   = 128
	maxUserAgentLength   = 512
	maxActorLength       = 320
)

var attributeKeyRE = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_-]{0,63}$`)

// Account is a mailbox user.
type Account struct {
	Address     Address
	DisplayName string
	// HasPassword is false for accounts that cannot log in with a local
	// password yet (none set, or the domain authenticates externally).
	HasPassword bool
	// PasswordSecret is the encrypted password hash, kept in the state so
	// login can verify against the account stream alone.
	PasswordSecret string
	COS            *string // nil: the domain's default COS, else the global one
	Status         string
	MailQuotaBytes *int64 // nil: the COS's, else the global account quota
	// QuotaSource says where MailQuotaBytes came from: SourceAccount (set for
	// this account) or SourceDomain (copied from the domain's
	// account_quota_bytes at creation); "" when MailQuotaBytes is nil.
	QuotaSource string
	GlobalAdmin bool
	DomainAdmin bool
	// Auditor reads everything in its scope and changes nothing; AuditorDomains is that scope
	// (sorted A-labels; empty: every domain). Never together with GlobalAdmin or DomainAdmin.
	Auditor        bool
	AuditorDomains []string
	Attributes     map[string]string
	Aliases        []Address          // sorted by address
	Sessions       map[string]Session // open sessions by id
	CreatedAt      time.Time
	// TOTP is the second factor (see totp.go).
	TOTP AccountTOTP `json:",omitzero"`
}

// Session is an open login session, recorded for audit and so an
// administrator can end it.
type Session struct {
	ID        string
	IP        string
	UserAgent string
	StartedAt time.Time
}

// Exists reports whether the account exists (created and not deleted).
func (a Account) Exists() bool { return a.Address.Local != "" }

// HasAlias reports whether alias belongs to the account.
func (a Account) HasAlias(alias Address) bool {
	return slices.Contains(a.Aliases, alias)
}

// AcceptsLogin returns nil when the account may log in now, or
// ErrLoginRefused wrapped with the reason. d is the account's domain.
func (a Account) AcceptsLogin(d Domain) error {
	switch {
	case !a.Exists():
		return fmt.Errorf("no such account: %w", ErrLoginRefused)
	case !d.Exists() || d.Name != a.Address.Domain:
		return fmt.Errorf("domain %s does not exist: %w", a.Address.Domain, ErrLoginRefused)
	case a.Status != StatusActive:
		return fmt.Errorf("account %s is %s: %w", a.Address, a.Status, ErrLoginRefused)
	case !d.AcceptsLogins():
		return fmt.Errorf("domain %s is %s: %w", d.Name, d.Status, ErrLoginRefused)
	}
	return nil
}

// MailDelivery is what the MTA does with mail for the account, its domain's status included
// (the stricter of the two decides). Following Carbonio, a locked or locked-out account still
// receives mail (only its logins stop), one in maintenance has it queued, and a closed or
// pending one has it refused.
func (a Account) MailDelivery(d Domain) Delivery {
	own := DeliveryBounce
	switch {
	case !a.Exists():
	case a.Status == StatusActive, a.Status == StatusLocked, a.Status == StatusLockout:
		own = DeliveryAccept
	case a.Status == StatusMaintenance:
		own = DeliveryDefer
	}
	if d.Name != a.Address.Domain {
		return DeliveryBounce
	}
	return stricter(own, d.MailDelivery())
}

// stricter returns the delivery that lets less mail through.
func stricter(a, b Delivery) Delivery {
	rank := map[Delivery]int{DeliveryAccept: 0, DeliveryDefer: 1, DeliveryBounce: 2}
	if rank[b] > rank[a] {
		return b
	}
	return a
}

// AccountCommand is a command on an account.
type AccountCommand interface{ isAccountCommand() }

// CreateAccount creates an account, or re-creates a deleted one (its old
// aliases and sessions are gone). PasswordSecret is ciphertext made by the
// caller; "" creates an account without a password.
type CreateAccount struct {
	Address        Address
	DisplayName    string
	PasswordSecret string
	COS            *string
	Status         string // "" = active
	MailQuotaBytes *int64 // nil = the domain's account_quota_bytes if set, else inherit
	GlobalAdmin    bool
	DomainAdmin    bool
	Auditor        bool
	AuditorDomains []string // empty: every domain
	Attributes     map[string]string
	At             time.Time

	// Context filled by the caller.
	Domain       Domain // the account's domain
	COSExists    bool   // whether COS names an existing COS (ignored when nil)
	AccountCount int    // accounts in the domain now, for max_accounts
}

// UpdateAccount patches an account. Clear may name "cos" and
// "mail_quota_bytes". Attributes, when non-nil, replaces the whole map.
type UpdateAccount struct {
	DisplayName    *string
	COS            *string
	Status         *string
	MailQuotaBytes *int64
	GlobalAdmin    *bool
	DomainAdmin    *bool
	Auditor        *bool
	AuditorDomains *[]string // the whole new scope; &[]string{}: every domain
	Attributes     map[string]string
	Clear          []string

	// COSExists: whether the new COS exists; consulted only when it changes.
	COSExists bool
}

// SetPassword replaces the password; PasswordSecret is ciphertext.
type SetPassword struct {
	PasswordSecret string
}

// DeleteAccount deletes an account. Its address (and aliases) are free again.
type DeleteAccount struct{}

// AddAlias gives the account another address. Uniqueness across accounts,
// lists and resources is checked by the caller; this checks the account.
type AddAlias struct {
	Alias Address
}

// RemoveAlias takes an alias away.
type RemoveAlias struct {
	Alias Address
}

// StartSession records a successful login. The caller has verified the
// credentials and passes the account's domain.
type StartSession struct {
	SessionID string
	IP        string
	UserAgent string
	At        time.Time
	Domain    Domain
}

// EndSession ends an open session. By is the actor (the user on logout, an
// administrator, or "system" on expiry).
type EndSession struct {
	SessionID string
	By        string
	At        time.Time
}

func (CreateAccount) isAccountCommand() {}
func (UpdateAccount) isAccountCommand() {}
func (SetPassword) isAccountCommand()   {}
func (DeleteAccount) isAccountCommand() {}
func (AddAlias) isAccountCommand()      {}
func (RemoveAlias) isAccountCommand()   {}
func (StartSession) isAccountCommand()  {}
func (EndSession) isAccountCommand()    {}

// AccountCreated records a new account with all its settings.
type AccountCreated struct {
	Address        Address           `json:"address"`
	DisplayName    string            `json:"display_name,omitempty"`
	PasswordSecret string            `json:"password_secret,omitempty"`
	COS            *string           `json:"cos,omitempty"`
	Status         string            `json:"status"`
	MailQuotaBytes *int64            `json:"mail_quota_bytes,omitempty"`
	QuotaSource    string            `json:"quota_source,omitempty"` // "account" or "domain"
	GlobalAdmin    bool              `json:"global_admin"`
	DomainAdmin    bool              `json:"domain_admin"`
	Auditor        bool              `json:"auditor,omitempty"`
	AuditorDomains []string          `json:"auditor_domains,omitempty"`
	Attributes     map[string]string `json:"attributes,omitempty"`
	CreatedAt      time.Time         `json:"created_at"`
}

// AccountUpdated records changed settings. A mail_quota_bytes here is always
// the account's own (source "account"). Attributes is null when unchanged.
type AccountUpdated struct {
	Address        Address           `json:"address"`
	DisplayName    *string           `json:"display_name,omitempty"`
	COS            *string           `json:"cos,omitempty"`
	Status         *string           `json:"status,omitempty"`
	MailQuotaBytes *int64            `json:"mail_quota_bytes,omitempty"`
	GlobalAdmin    *bool             `json:"global_admin,omitempty"`
	DomainAdmin    *bool             `json:"domain_admin,omitempty"`
	Auditor        *bool             `json:"auditor,omitempty"`
	AuditorDomains *[]string         `json:"auditor_domains,omitempty"`
	Attributes     map[string]string `json:"attributes"`
	Cleared        []string          `json:"cleared,omitempty"`
}

// AccountPasswordChanged records a new (encrypted) password.
type AccountPasswordChanged struct {
	Address        Address `json:"address"`
	PasswordSecret string  `json:"password_secret"`
}

// AccountDeleted records the deletion of an account.
type AccountDeleted struct {
	Address Address `json:"address"`
}

// AliasAdded records a new alias of the account.
type AliasAdded struct {
	Address Address `json:"address"`
	Alias   Address `json:"alias"`
}

// AliasRemoved records the removal of an alias.
type AliasRemoved struct {
	Address Address `json:"address"`
	Alias   Address `json:"alias"`
}

// SessionStarted records a login.
type SessionStarted struct {
	Address   Address   `json:"address"`
	SessionID string    `json:"session_id"`
	IP        string    `json:"ip"`
	UserAgent string    `json:"user_agent,omitempty"`
	StartedAt time.Time `json:"started_at"`
}

// SessionEnded records a logout, an administrator ending a session, or expiry.
type SessionEnded struct {
	Address   Address   `json:"address"`
	SessionID string    `json:"session_id"`
	By        string    `json:"by,omitempty"`
	EndedAt   time.Time `json:"ended_at"`
}

// EventType implements Event.
func (AccountCreated) EventType() string { return "AccountCreated" }

// EventType implements Event.
func (AccountUpdated) EventType() string { return "AccountUpdated" }

// EventType implements Event.
func (AccountPasswordChanged) EventType() string { return "AccountPasswordChanged" }

// EventType implements Event.
func (AccountDeleted) EventType() string { return "AccountDeleted" }

// EventType implements Event.
func (AliasAdded) EventType() string { return "AliasAdded" }

// EventType implements Event.
func (AliasRemoved) EventType() string { return "AliasRemoved" }

// EventType implements Event.
func (SessionStarted) EventType() string { return "SessionStarted" }

// EventType implements Event.
func (SessionEnded) EventType() string { return "SessionEnded" }

var accountClearable = []string{"cos", "mail_quota_bytes"}

// Decide validates cmd against the account.
func (a Account) Decide(cmd AccountCommand) ([]Event, error) {
	switch c := cmd.(type) {
	case CreateAccount:
		return a.decideCreate(c)
	case UpdateAccount:
		return a.decideUpdate(c)
	case SetPassword:
		return a.decideSetPassword(c)
	case DeleteAccount:
		if !a.Exists() {
			return nil, fmt.Errorf("account: %w", ErrNotFound)
		}
		return []Event{AccountDeleted{Address: a.Address}}, nil
	case AddAlias:
		return a.decideAddAlias(c)
	case RemoveAlias:
		if !a.Exists() {
			return nil, fmt.Errorf("account: %w", ErrNotFound)
		}
		if !a.HasAlias(c.Alias) {
			return nil, fmt.Errorf("alias %s: %w", c.Alias, ErrNotFound)
		}
		return []Event{AliasRemoved{Address: a.Address, Alias: c.Alias}}, nil
	case StartSession:
		return a.decideStartSession(c)
	case EndSession:
		return a.decideEndSession(c)
	}
	return nil, fmt.Errorf("domain: unknown account command %T", cmd)
}

// decideCreate checks, in order: the domain exists (it is the parent in
// the URL, so 404 comes first), the input, the account is new, the domain
// takes new accounts, and max_accounts.
func (a Account) decideCreate(c CreateAccount) ([]Event, error) {
	d := c.Domain
	if !d.Exists() {
		return nil, fmt.Errorf("domain %s: %w", c.Address.Domain, ErrNotFound)
	}
	var fe fieldErrors
	if msg := checkAddress(c.Address); msg != "" {
		fe.add("address", msg)
	} else if c.Address.Domain != d.Name {
		fe.add("address", "must be in domain "+d.Name)
	}
	if msg := checkText(c.DisplayName, maxDisplayNameLength, false); msg != "" {
		fe.add("display_name", msg)
	}
	cos := checkOptCOS(&fe, "cos", c.COS, c.COSExists, nil)
	status := c.Status
	if status == "" {
		status = StatusActive
	}
	if !slices.Contains(accountStatuses, status) {
		fe.add("status", "must be one of active, locked, maintenance, closed, lockout, pending")
	}
	checkOptNonNegative(&fe, "mail_quota_bytes", c.MailQuotaBytes)
	checkAttributes(&fe, c.Attributes)
	auditorDomains := checkAuditor(&fe, c.Auditor, c.AuditorDomains, c.GlobalAdmin || c.DomainAdmin)
	if c.At.IsZero() {
		fe.add("at", "required")
	}
	if err := fe.err(); err != nil {
		return nil, err
	}
	if a.Exists() {
		return nil, fmt.Errorf("account %s: %w", c.Address, ErrAlreadyExists)
	}
	if !d.AcceptsNewAccounts() {
		return nil, fmt.Errorf("domain %s is %s: %w", d.Name, d.Condition(), ErrDomainUnavailable)
	}
	if d.Limits.MaxAccounts > 0 && c.AccountCount >= d.Limits.MaxAccounts {
		return nil, fmt.Errorf("domain %s allows %d accounts: %w", d.Name, d.Limits.MaxAccounts, ErrLimitReached)
	}

	ev := AccountCreated{
		Address:        c.Address,
		DisplayName:    c.DisplayName,
		PasswordSecret: c.PasswordSecret,
		COS:            cos,
		Status:         status,
		GlobalAdmin:    c.GlobalAdmin,
		DomainAdmin:    c.DomainAdmin,
		Auditor:        c.Auditor,
		AuditorDomains: auditorDomains,
		Attributes:     nonEmpty(c.Attributes),
		CreatedAt:      c.At.UTC(),
	}
	switch {
	case c.MailQuotaBytes != nil:
		ev.MailQuotaBytes, ev.QuotaSource = clonePtr(c.MailQuotaBytes), SourceAccount
	case d.Limits.AccountQuotaBytes != nil && *d.Limits.AccountQuotaBytes > 0:
		// The domain's mailbox limit is copied, not referenced: changing it
		// later affects new accounts only, as on the Carbonio page.
		ev.MailQuotaBytes, ev.QuotaSource = clonePtr(d.Limits.AccountQuotaBytes), SourceDomain
	}
	return []Event{ev}, nil
}

func (a Account) decideUpdate(c UpdateAccount) ([]Event, error) {
	if !a.Exists() {
		return nil, fmt.Errorf("account: %w", ErrNotFound)
	}
	var fe fieldErrors
	clear := clearList(c.Clear, accountClearable, &fe)
	if c.COS != nil && clear["cos"] {
		fe.add("cos", "cannot be both set and cleared")
	}
	if c.MailQuotaBytes != nil && clear["mail_quota_bytes"] {
		fe.add("mail_quota_bytes", "cannot be both set and cleared")
	}

	ev := AccountUpdated{Address: a.Address}
	changed := false
	if c.DisplayName != nil {
		if msg := checkText(*c.DisplayName, maxDisplayNameLength, false); msg != "" {
			fe.add("display_name", msg)
		} else if *c.DisplayName != a.DisplayName {
			ev.DisplayName, changed = clonePtr(c.DisplayName), true
		}
	}
	if cos := checkOptCOS(&fe, "cos", c.COS, c.COSExists, a.COS); cos != nil && !eqPtr(cos, a.COS) {
		ev.COS, changed = cos, true
	}
	if c.Status != nil {
		if !slices.Contains(accountStatuses, *c.Status) {
			fe.add("status", "must be one of active, locked, maintenance, closed, lockout, pending")
		} else if *c.Status != a.Status {
			ev.Status, changed = clonePtr(c.Status), true
		}
	}
	if c.MailQuotaBytes != nil {
		if msg := checkNonNegative(*c.MailQuotaBytes); msg != "" {
			fe.add("mail_quota_bytes", msg)
		} else if !eqPtr(c.MailQuotaBytes, a.MailQuotaBytes) || a.QuotaSource != SourceAccount {
			// Setting the value a domain default gave makes it the
			// account's own: it then survives as an explicit override.
			ev.MailQuotaBytes, changed = clonePtr(c.MailQuotaBytes), true
		}
	}
	if c.GlobalAdmin != nil && *c.GlobalAdmin != a.GlobalAdmin {
		ev.GlobalAdmin, changed = clonePtr(c.GlobalAdmin), true
	}
	if c.DomainAdmin != nil && *c.DomainAdmin != a.DomainAdmin {
		ev.DomainAdmin, changed = clonePtr(c.DomainAdmin), true
	}
	if c.Auditor != nil || c.AuditorDomains != nil {
		auditor, scope := a.Auditor, a.AuditorDomains
		if c.Auditor != nil {
			auditor = *c.Auditor
			if !auditor && c.AuditorDomains == nil {
				scope = nil // no longer an auditor: its scope goes with the role
			}
		}
		if c.AuditorDomains != nil {
			scope = *c.AuditorDomains
		}
		admin := deref(c.GlobalAdmin, a.GlobalAdmin) || deref(c.DomainAdmin, a.DomainAdmin)
		scope = checkAuditor(&fe, auditor, scope, admin)
		if auditor != a.Auditor {
			ev.Auditor, changed = &auditor, true
		}
		if !slices.Equal(scope, a.AuditorDomains) {
			if scope == nil {
				scope = []string{} // written as [], not null, which would read back as "unchanged"
			}
			ev.AuditorDomains, changed = &scope, true
		}
	} else if a.Auditor && (deref(c.GlobalAdmin, false) || deref(c.DomainAdmin, false)) {
		checkAuditor(&fe, true, a.AuditorDomains, true)
	}
	if c.Attributes != nil {
		checkAttributes(&fe, c.Attributes)
		if !maps.Equal(c.Attributes, a.Attributes) {
			ev.Attributes, changed = maps.Clone(c.Attributes), true
		}
	}
	if clear["cos"] && a.COS != nil {
		ev.Cleared, changed = append(ev.Cleared, "cos"), true
	}
	if clear["mail_quota_bytes"] && a.MailQuotaBytes != nil {
		ev.Cleared, changed = append(ev.Cleared, "mail_quota_bytes"), true
	}
	if err := fe.err(); err != nil {
		return nil, err
	}
	if !changed {
		return nil, nil
	}
	return []Event{ev}, nil
}

func (a Account) decideSetPassword(c SetPassword) ([]Event, error) {
	if !a.Exists() {
		return nil, fmt.Errorf("account: %w", ErrNotFound)
	}
	if c.PasswordSecret == "" {
		return nil, Invalid("password", "required")
	}
	if c.PasswordSecret == a.PasswordSecret {
		return nil, nil
	}
	return []Event{AccountPasswordChanged{Address: a.Address, PasswordSecret: c.PasswordSecret}}, nil
}

func (a Account) decideAddAlias(c AddAlias) ([]Event, error) {
	if !a.Exists() {
		return nil, fmt.Errorf("account: %w", ErrNotFound)
	}
	if msg := checkAddress(c.Alias); msg != "" {
		return nil, Invalid("alias", msg)
	}
	if c.Alias == a.Address {
		return nil, Invalid("alias", "is the account's own address")
	}
	if a.HasAlias(c.Alias) {
		return nil, fmt.Errorf("alias %s: %w", c.Alias, ErrAlreadyExists)
	}
	return []Event{AliasAdded{Address: a.Address, Alias: c.Alias}}, nil
}

func (a Account) decideStartSession(c StartSession) ([]Event, error) {
	if !a.Exists() {
		return nil, fmt.Errorf("account: %w", ErrNotFound)
	}
	var fe fieldErrors
	if msg := checkSessionID(c.SessionID); msg != "" {
		fe.add("session_id", msg)
	}
	ip, err := netip.ParseAddr(c.IP)
	if err != nil {
		fe.add("ip", "must be an IP address")
	}
	if c.At.IsZero() {
		fe.add("at", "required")
	}
	if err := fe.err(); err != nil {
		return nil, err
	}
	if err := a.AcceptsLogin(c.Domain); err != nil {
		return nil, err
	}
	if _, open := a.Sessions[c.SessionID]; open {
		return nil, fmt.Errorf("session %s: %w", c.SessionID, ErrAlreadyExists)
	}
	return []Event{SessionStarted{
		Address:   a.Address,
		SessionID: c.SessionID,
		IP:        ip.Unmap().String(),
		UserAgent: cleanUserAgent(c.UserAgent),
		StartedAt: c.At.UTC(),
	}}, nil
}

func (a Account) decideEndSession(c EndSession) ([]Event, error) {
	if !a.Exists() {
		return nil, fmt.Errorf("account: %w", ErrNotFound)
	}
	var fe fieldErrors
	if msg := checkText(c.By, maxActorLength, false); msg != "" {
		fe.add("by", msg)
	}
	if c.At.IsZero() {
		fe.add("at", "required")
	}
	if err := fe.err(); err != nil {
		return nil, err
	}
	if _, open := a.Sessions[c.SessionID]; !open {
		return nil, fmt.Errorf("session %s: %w", c.SessionID, ErrNotFound)
	}
	return []Event{SessionEnded{Address: a.Address, SessionID: c.SessionID, By: c.By, EndedAt: c.At.UTC()}}, nil
}

func checkSessionID(id string) string {
	if id == "" {
		return "required"
	}
	if len(id) > maxSessionIDLength {
		return fmt.Sprintf("must be at most %d bytes", maxSessionIDLength)
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] >= 0x7f {
			return "must be printable ASCII without spaces"
		}
	}
	return ""
}

// cleanUserAgent makes a client-controlled header safe to store rather than
// refusing it: a strange User-Agent must not make a valid login fail.
func cleanUserAgent(ua string) string {
	ua = strings.ToValidUTF8(ua, "\uFFFD")
	ua = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, ua)
	for len(ua) > maxUserAgentLength {
		_, size := utf8.DecodeLastRuneInString(ua)
		ua = ua[:len(ua)-size]
	}
	return ua
}

func checkAttributes(fe *fieldErrors, attrs map[string]string) {
	if len(attrs) > maxAttributes {
		fe.add("attributes", fmt.Sprintf("at most %d entries", maxAttributes))
	}
	for _, k := range slices.Sorted(maps.Keys(attrs)) {
		if !attributeKeyRE.MatchString(k) {
			fe.add("attributes."+k, "names must start with a letter and be at most 64 letters, digits, '_' or '-'")
			continue
		}
		if msg := checkText(attrs[k], maxAttributeValueLen, true); msg != "" {
			fe.add("attributes."+k, msg)
		}
	}
}

// Evolve applies one event; other events leave a unchanged.
func (a Account) Evolve(e Event) Account {
	switch ev := e.(type) {
	case AccountCreated:
		n := Account{
			Address:        ev.Address,
			DisplayName:    ev.DisplayName,
			HasPassword:    ev.PasswordSecret != "",
			PasswordSecret: ev.PasswordSecret,
			COS:            clonePtr(ev.COS),
			Status:         ev.Status,
			MailQuotaBytes: clonePtr(ev.MailQuotaBytes),
			GlobalAdmin:    ev.GlobalAdmin,
			DomainAdmin:    ev.DomainAdmin,
			Auditor:        ev.Auditor,
			AuditorDomains: slices.Clone(ev.AuditorDomains),
			Attributes:     maps.Clone(ev.Attributes),
			CreatedAt:      ev.CreatedAt,
		}
		if n.MailQuotaBytes != nil {
			n.QuotaSource = ev.QuotaSource
			if n.QuotaSource == "" {
				n.QuotaSource = SourceAccount
			}
		}
		return n
	case AccountUpdated:
		if ev.DisplayName != nil {
			a.DisplayName = *ev.DisplayName
		}
		if ev.COS != nil {
			a.COS = clonePtr(ev.COS)
		}
		if ev.Status != nil {
			a.Status = *ev.Status
		}
		if ev.MailQuotaBytes != nil {
			a.MailQuotaBytes, a.QuotaSource = clonePtr(ev.MailQuotaBytes), SourceAccount
		}
		if ev.GlobalAdmin != nil {
			a.GlobalAdmin = *ev.GlobalAdmin
		}
		if ev.DomainAdmin != nil {
			a.DomainAdmin = *ev.DomainAdmin
		}
		if ev.Auditor != nil {
			a.Auditor = *ev.Auditor
		}
		if ev.AuditorDomains != nil {
			a.AuditorDomains = slices.Clone(*ev.AuditorDomains)
		}
		if ev.Attributes != nil {
			a.Attributes = maps.Clone(ev.Attributes)
		}
		for _, name := range ev.Cleared {
			switch name {
			case "cos":
				a.COS = nil
			case "mail_quota_bytes":
				a.MailQuotaBytes, a.QuotaSource = nil, ""
			}
		}
		return a
	case AccountPasswordChanged:
		a.PasswordSecret, a.HasPassword = ev.PasswordSecret, ev.PasswordSecret != ""
		return a
	case AccountDeleted:
		return Account{}
	case AliasAdded:
		if a.HasAlias(ev.Alias) {
			return a
		}
		aliases := append(slices.Clone(a.Aliases), ev.Alias)
		slices.SortFunc(aliases, func(x, y Address) int { return strings.Compare(x.String(), y.String()) })
		a.Aliases = aliases
		return a
	case AliasRemoved:
		a.Aliases = slices.DeleteFunc(slices.Clone(a.Aliases), func(x Address) bool { return x == ev.Alias })
		return a
	case SessionStarted:
		sessions := maps.Clone(a.Sessions)
		if sessions == nil {
			sessions = map[string]Session{}
		}
		sessions[ev.SessionID] = Session{ID: ev.SessionID, IP: ev.IP, UserAgent: ev.UserAgent, StartedAt: ev.StartedAt}
		a.Sessions = sessions
		return a
	case SessionEnded:
		if _, ok := a.Sessions[ev.SessionID]; ok {
			sessions := maps.Clone(a.Sessions)
			delete(sessions, ev.SessionID)
			a.Sessions = sessions
		}
		return a
	}
	return a.evolveTOTP(e)
}

// maxAuditorDomains bounds an auditor's list of domains (an auditor of more has them all).
const maxAuditorDomains = 1000

// checkAuditor validates the auditor role and returns its scope normalised (A-labels, sorted,
// without duplicates; nil for every domain). The role is refused together with an admin role:
// whoever checks the changes must not be the one who makes them (separation of duties). The
// domains need not exist: a scope may name a domain removed since, whose history stays readable.
func checkAuditor(fe *fieldErrors, auditor bool, domains []string, admin bool) []string {
	if auditor && admin {
		fe.add("auditor", "cannot be combined with global_admin or domain_admin: an auditor only reads")
	}
	if !auditor {
		if len(domains) > 0 {
			fe.add("auditor_domains", "only an auditor has auditor_domains")
		}
		return nil
	}
	if len(domains) > maxAuditorDomains {
		fe.add("auditor_domains", fmt.Sprintf("at most %d domains (an empty list means every domain)", maxAuditorDomains))
		return nil
	}
	var out []string
	for _, d := range domains {
		ascii, _, err := NormalizeDomainName(d)
		if err != nil {
			fe.add("auditor_domains", fmt.Sprintf("%q is not a domain name", d))
			continue
		}
		out = append(out, ascii)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// deref is *p, or def when p is nil.
func deref[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}
