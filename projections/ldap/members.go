package ldap

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	goldap "github.com/go-ldap/ldap/v3"

	"mailplane/domain"
	"mailplane/projections/postgres"
)

// ErrUnavailable means the directory could not be asked.
var ErrUnavailable = errors.New("ldap: the directory is unavailable")

// Members finds the members of dynamic lists by running their queries against the directory,
// exactly as Postfix does when it follows their memberURL: the API's
// GET /api/v1/lists/{address}/members.
type Members struct {
	cfg Config
}

// NewMembers returns the member finder over the directory the projection writes.
func NewMembers(cfg Config) *Members { return &Members{cfg: cfg} }

// DynamicMembers returns the addresses the list's query finds, by address, after q.After and
// containing q.Q when set, at most q.Limit of them.
func (m *Members) DynamicMembers(ctx context.Context, list domain.MailingList, q postgres.ListQuery) ([]string, error) {
	if list.Dynamic == nil {
		return nil, fmt.Errorf("ldap: %s is not a dynamic list", list.Address)
	}
	dir, err := Dial(ctx, m.cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	defer dir.Close()
	scope := goldap.ScopeWholeSubtree
	if list.Dynamic.Scope == domain.ScopeOne {
		scope = goldap.ScopeSingleLevel
	}
	var found []string
	needle := strings.ToLower(q.Q)
	err = dir.pagedSearch(m.cfg.DIT.OU(OUAccounts), scope, []string{"mail"}, func(e *goldap.Entry) {
		addr := strings.ToLower(e.GetAttributeValue("mail"))
		if addr > q.After && (needle == "" || strings.Contains(addr, needle)) {
			found = append(found, addr)
		}
	}, dynamicFilter(*list.Dynamic))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	slices.Sort(found)
	return found[:min(len(found), q.Limit)], nil
}
