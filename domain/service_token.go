package domain

import (
	"fmt"
	"strings"
	"time"
)

// Service token roles. A service token is a credential for a program rather than a person: it
// belongs to no account, and its role says the one thing it may do.
const (
	// RoleMailstore reports mailbox usage (POST /api/v1/usage) and nothing else.
	RoleMailstore = "mailstore"
)

var serviceTokenRoles = []string{RoleMailstore}

const maxServiceTokenName = 128

// ServiceToken is a service credential. Its secret is never in an event: the token is shown
// once and stored only hashed (service_tokens), so the stream records who made it, for what
// and when, and who revoked it.
type ServiceToken struct {
	ID        string
	Name      string
	Role      string
	CreatedBy string
	CreatedAt time.Time
	Revoked   bool
}

// Exists reports whether the token was created.
func (t ServiceToken) Exists() bool { return t.ID != "" }

// CreateServiceToken makes a token; ID is chosen by the caller (random), By is the global
// administrator asking.
type CreateServiceToken struct {
	ID   string
	Name string
	Role string
	By   string
	At   time.Time
}

// RevokeServiceToken ends a token: it stops working at the next request.
type RevokeServiceToken struct {
	By string
	At time.Time
}

// ServiceTokenCreated records a new service token (without its secret).
type ServiceTokenCreated struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Role      string    `json:"role"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
}

// ServiceTokenRevoked records the revocation of a service token.
type ServiceTokenRevoked struct {
	ID        string    `json:"id"`
	RevokedBy string    `json:"revoked_by"`
	RevokedAt time.Time `json:"revoked_at"`
}

// EventType implements Event.
func (ServiceTokenCreated) EventType() string { return "ServiceTokenCreated" }

// EventType implements Event.
func (ServiceTokenRevoked) EventType() string { return "ServiceTokenRevoked" }

// DecideCreate checks a new token.
func (t ServiceToken) DecideCreate(c CreateServiceToken) ([]Event, error) {
	var fe fieldErrors
	name := strings.TrimSpace(c.Name)
	if name == "" {
		fe.add("name", "is required")
	} else if msg := checkText(name, maxServiceTokenName, false); msg != "" {
		fe.add("name", msg)
	}
	switch {
	case c.Role == "":
		fe.add("role", "is required")
	case !containsString(serviceTokenRoles, c.Role):
		fe.add("role", `must be "mailstore"`)
	}
	if err := fe.err(); err != nil {
		return nil, err
	}
	if t.Exists() {
		return nil, fmt.Errorf("service token %s: %w", c.ID, ErrAlreadyExists)
	}
	return []Event{ServiceTokenCreated{ID: c.ID, Name: name, Role: c.Role, CreatedBy: c.By, CreatedAt: c.At.UTC()}}, nil
}

// DecideRevoke revokes the token; revoking it again changes nothing.
func (t ServiceToken) DecideRevoke(c RevokeServiceToken) ([]Event, error) {
	if !t.Exists() {
		return nil, fmt.Errorf("service token: %w", ErrNotFound)
	}
	if t.Revoked {
		return nil, nil
	}
	return []Event{ServiceTokenRevoked{ID: t.ID, RevokedBy: c.By, RevokedAt: c.At.UTC()}}, nil
}

// Evolve applies one event.
func (t ServiceToken) Evolve(e Event) ServiceToken {
	switch ev := e.(type) {
	case ServiceTokenCreated:
		return ServiceToken{ID: ev.ID, Name: ev.Name, Role: ev.Role, CreatedBy: ev.CreatedBy, CreatedAt: ev.CreatedAt}
	case ServiceTokenRevoked:
		t.Revoked = true
	}
	return t
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
