package commands

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"

	"mailplane/domain"
)

// ErrDirectoryUnavailable means a domain's external directory could not be asked (unreachable,
// refused the reader's bind, or answered oddly): a login then fails without counting against
// the user.
var ErrDirectoryUnavailable = errors.New("the domain's directory could not check the password")

// directoryTimeout bounds each exchange with an external directory.
const directoryTimeout = 5 * time.Second

// checkInDirectory verifies a password the way mail servers do against LDAP and Active
// Directory: bind as the domain's reader (or anonymously), find the user's one entry with the
// search filter, then bind as that entry with the password.
func (s *Service) checkInDirectory(ctx context.Context, d domain.Domain, addr domain.Address, password string) (bool, error) {
	if password == "" {
		return false, nil // an LDAP bind with an empty password is an anonymous bind: it "succeeds"
	}
	conn, err := ldap.DialURL(d.Auth.LDAPURL, ldap.DialWithDialer(&net.Dialer{Timeout: directoryTimeout}))
	if err != nil {
		return false, fmt.Errorf("%w: %v", ErrDirectoryUnavailable, err)
	}
	defer conn.Close()
	conn.SetTimeout(directoryTimeout)
	if d.Auth.BindDN != "" {
		pw := ""
		if d.Auth.BindPasswordSecret != "" {
			plain, err := s.keys.Open(ctx, d.Auth.BindPasswordSecret)
			if err != nil {
				return false, fmt.Errorf("%w: bind password: %v", ErrDirectoryUnavailable, err)
			}
			pw = string(plain)
		}
		if err := conn.Bind(d.Auth.BindDN, pw); err != nil {
			return false, fmt.Errorf("%w: reader bind as %s: %v", ErrDirectoryUnavailable, d.Auth.BindDN, err)
		}
	}
	res, err := conn.Search(ldap.NewSearchRequest(d.Auth.SearchBase, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
		2, int(directoryTimeout.Seconds()), false, userFilter(d.Auth, addr), []string{"1.1"}, nil))
	if err != nil {
		return false, fmt.Errorf("%w: search: %v", ErrDirectoryUnavailable, err)
	}
	if len(res.Entries) != 1 {
		return false, nil // no such user there, or not one: refuse rather than guess
	}
	err = conn.Bind(res.Entries[0].DN, password)
	if ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("%w: user bind: %v", ErrDirectoryUnavailable, err)
	}
	return true, nil
}

// userFilter fills the domain's search filter for an address: %s the whole address, %u its
// local part, %d its domain, each escaped so that an address cannot change the filter. Without
// a filter, LDAP looks the address up in mail and Active Directory in userPrincipalName.
func userFilter(a domain.DomainAuth, addr domain.Address) string {
	f := a.SearchFilter
	if f == "" {
		f = "(mail=%s)"
		if a.Mechanism == domain.AuthAD {
			f = "(userPrincipalName=%s)"
		}
	}
	return strings.NewReplacer(
		"%s", ldap.EscapeFilter(addr.String()),
		"%u", ldap.EscapeFilter(addr.Local),
		"%d", ldap.EscapeFilter(addr.Domain),
	).Replace(f)
}
