package domain

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"
)

// API tokens are credentials for an account's scripts. A token acts as the account that made
// it, with that account's rights as they are at each request, narrowed by its scope: the
// domains it may touch and, per object kind, read or write access. The secret is never in an
// event: it is shown once and stored only hashed (api_tokens), so the token's stream records
// who made it, with what scope, until when, and who revoked it.

// StreamTypeAPIToken: an account's API token. Its stream belongs to the account's domain
// (apitoken-<domain>/<id>), so the domain's history and export hold it.
const StreamTypeAPIToken = "api_token"

// APITokenStreamID is the stream of an API token of an account of the domain (A-label form).
// Its shape (kind-, the domain, a slash) is one StreamInDomain recognises.
func APITokenStreamID(domainName, id string) string { return "apitoken-" + domainName + "/" + id }

// MaxAPITokenLifetime bounds expires_at: a script's credential must be renewed at least
// yearly, so a forgotten one does not work for ever.
const MaxAPITokenLifetime = 366 * 24 * time.Hour

// Access levels of an API token's scope, per object kind.
const (
	AccessRead  = "read"
	AccessWrite = "write"
)

// APITokenAllKinds is the access key that stands for every object kind not named on its own.
const APITokenAllKinds = "*"

// APITokenKinds are the object kinds a scope may name: the API's tags (api/openapi.go) that
// tokens may reach. api's tests check that every tag of a route a token can call is here.
var APITokenKinds = []string{"config", "cos", "domains", "accounts", "sessions", "lists", "resources",
	"virtual-hosts", "dkim", "gal", "usage", "operations"}

const maxAPITokenName = 128

// maxAPITokenDomains bounds a scope's domain list; a script needing more uses all domains.
const maxAPITokenDomains = 100

// APITokenScope is what a token may touch. AllDomains (only a global administrator's token)
// covers every domain and the routes bound to none; otherwise Domains lists them. Access maps
// object kinds (APITokenKinds, or APITokenAllKinds) to AccessRead or AccessWrite; a kind not in
// it, when "*" is not either, is out of reach.
type APITokenScope struct {
	Domains    []string          `json:"domains"`
	AllDomains bool              `json:"all_domains"`
	Access     map[string]string `json:"access"`
}

// AllowsDomain reports whether the scope covers the domain (A-label form).
func (s APITokenScope) AllowsDomain(name string) bool {
	return s.AllDomains || slices.Contains(s.Domains, name)
}

// Allows reports whether the scope lets a request of the kind read (write false) or write.
func (s APITokenScope) Allows(kind string, write bool) bool {
	level, ok := s.Access[kind]
	if !ok {
		level, ok = s.Access[APITokenAllKinds]
	}
	if !ok {
		return false
	}
	return !write || level == AccessWrite
}

// NormalizeAPITokenScope checks a requested scope and puts it in its stored form: domain names
// as A-labels, sorted and once each. An empty domain list means every domain (for a global
// administrator) or the owner's own domain (for anyone else; global says which).
func NormalizeAPITokenScope(domains []string, access map[string]string, owner Address, global bool) (APITokenScope, error) {
	var fe fieldErrors
	s := APITokenScope{Access: map[string]string{}}
	if len(domains) > maxAPITokenDomains {
		fe.add("domains", fmt.Sprintf("must list at most %d domains (or none: all)", maxAPITokenDomains))
	}
	for i, d := range domains {
		ascii, _, err := NormalizeDomainName(d)
		if err != nil {
			fe.addErr(fmt.Sprintf("domains[%d]", i), err)
			continue
		}
		if !slices.Contains(s.Domains, ascii) {
			s.Domains = append(s.Domains, ascii)
		}
	}
	sort.Strings(s.Domains)
	if len(domains) == 0 {
		if global {
			s.AllDomains = true
		} else {
			s.Domains = []string{owner.Domain}
		}
	}
	if s.Domains == nil {
		s.Domains = []string{}
	}
	if len(access) == 0 {
		fe.add("access", `is required: object kinds ("*" for all) to "read" or "write"`)
	}
	keys := slices.Sorted(maps.Keys(access))
	for _, k := range keys {
		v := access[k]
		if k != APITokenAllKinds && !slices.Contains(APITokenKinds, k) {
			fe.add("access."+k, `is no object kind: use "*" or one of `+strings.Join(APITokenKinds, ", "))
			continue
		}
		if v != AccessRead && v != AccessWrite {
			fe.add("access."+k, `must be "read" or "write"`)
			continue
		}
		s.Access[k] = v
	}
	if err := fe.err(); err != nil {
		return APITokenScope{}, err
	}
	return s, nil
}

// APIToken is an account's API token.
type APIToken struct {
	ID        string
	Name      string
	Account   string
	Scope     APITokenScope
	ExpiresAt time.Time
	CreatedAt time.Time
	Revoked   bool
}

// Exists reports whether the token was created.
func (t APIToken) Exists() bool { return t.ID != "" }

// CreateAPIToken makes a token for Owner, who asks for it; ID is chosen by the caller (random).
// Scope comes from NormalizeAPITokenScope, checked against the owner's rights by the caller.
type CreateAPIToken struct {
	ID        string
	Name      string
	Owner     Address
	Scope     APITokenScope
	ExpiresAt time.Time
	At        time.Time
}

// RevokeAPIToken ends a token: it is refused from the next request on.
type RevokeAPIToken struct {
	By string
	At time.Time
}

// APITokenCreated records a new API token (without its secret).
type APITokenCreated struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Account    string            `json:"account"`
	Domains    []string          `json:"domains"`
	AllDomains bool              `json:"all_domains"`
	Access     map[string]string `json:"access"`
	ExpiresAt  time.Time         `json:"expires_at"`
	CreatedAt  time.Time         `json:"created_at"`
}

// APITokenRevoked records the revocation of an API token.
type APITokenRevoked struct {
	ID        string    `json:"id"`
	RevokedBy string    `json:"revoked_by"`
	RevokedAt time.Time `json:"revoked_at"`
}

// EventType implements Event.
func (APITokenCreated) EventType() string { return "APITokenCreated" }

// EventType implements Event.
func (APITokenRevoked) EventType() string { return "APITokenRevoked" }

// DecideCreate checks a new token: a name, and an expiry in the future and at most
// MaxAPITokenLifetime away.
func (t APIToken) DecideCreate(c CreateAPIToken) ([]Event, error) {
	var fe fieldErrors
	name := strings.TrimSpace(c.Name)
	if name == "" {
		fe.add("name", "is required")
	} else if msg := checkText(name, maxAPITokenName, false); msg != "" {
		fe.add("name", msg)
	}
	switch {
	case c.ExpiresAt.IsZero():
		fe.add("expires_at", "is required (RFC 3339)")
	case !c.ExpiresAt.After(c.At):
		fe.add("expires_at", "must be in the future")
	case c.ExpiresAt.Sub(c.At) > MaxAPITokenLifetime:
		fe.add("expires_at", "must be at most 366 days away")
	}
	if len(c.Scope.Access) == 0 {
		fe.add("access", "is required")
	}
	if err := fe.err(); err != nil {
		return nil, err
	}
	if t.Exists() {
		return nil, fmt.Errorf("api token %s: %w", c.ID, ErrAlreadyExists)
	}
	return []Event{APITokenCreated{ID: c.ID, Name: name, Account: c.Owner.String(), Domains: slices.Clone(c.Scope.Domains),
		AllDomains: c.Scope.AllDomains, Access: maps.Clone(c.Scope.Access),
		ExpiresAt: c.ExpiresAt.UTC(), CreatedAt: c.At.UTC()}}, nil
}

// DecideRevoke revokes the token; revoking it again changes nothing.
func (t APIToken) DecideRevoke(c RevokeAPIToken) ([]Event, error) {
	if !t.Exists() {
		return nil, fmt.Errorf("api token: %w", ErrNotFound)
	}
	if t.Revoked {
		return nil, nil
	}
	return []Event{APITokenRevoked{ID: t.ID, RevokedBy: c.By, RevokedAt: c.At.UTC()}}, nil
}

// Evolve applies one event.
func (t APIToken) Evolve(e Event) APIToken {
	switch ev := e.(type) {
	case APITokenCreated:
		return APIToken{ID: ev.ID, Name: ev.Name, Account: ev.Account, ExpiresAt: ev.ExpiresAt, CreatedAt: ev.CreatedAt,
			Scope: APITokenScope{Domains: ev.Domains, AllDomains: ev.AllDomains, Access: ev.Access}}
	case APITokenRevoked:
		t.Revoked = true
	}
	return t
}
