package api

import (
	"net/http"

	"mailplane/commands"
	"mailplane/domain"
)

// Roles (API.md Conventions): a global admin may do everything; a domain admin only within
// its own domain; an ordinary account may only read itself and its own sessions.

func forbidden(format string, args ...any) *Error {
	return errorf(http.StatusForbidden, "forbidden", format, args...)
}

func requireGlobalAdmin(p commands.Principal) error {
	if !p.GlobalAdmin {
		return forbidden("only a global administrator may do this")
	}
	return nil
}

// administers reports whether p may manage objects of the domain (for an API token: also
// within its scope). An auditor passes it for the domains of its scope (see auditor.go):
// serveAs has already refused every request of an auditor that is not a read, so for an
// auditor this only answers "may p see this domain?".
func administers(p commands.Principal, domainName string) bool {
	return p.InTokenScope(domainName) &&
		(p.GlobalAdmin || (p.DomainAdmin && p.Address.Domain == domainName) || p.Audits(domainName))
}

func requireDomainAdmin(p commands.Principal, domainName string) error {
	if !administers(p, domainName) {
		return forbidden("you do not administer the domain %s", domainName)
	}
	return nil
}

// requireSelfOrAdmin lets an account act on itself, and admins on their domain's accounts.
func requireSelfOrAdmin(p commands.Principal, addr domain.Address) error {
	if p.Address == addr || administers(p, addr.Domain) {
		return nil
	}
	return forbidden("you may only see your own account")
}
