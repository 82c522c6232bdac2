package api

import (
	"net/http"
	"strings"

	"mailplane/commands"
	"mailplane/domain"
)

// The auditor role (API.md "Audit and operations"): an account with "auditor": true reads
// everything in its scope — every domain when auditor_domains is empty, else the domains listed
// there — and writes nothing. The rules, and where API.md is silent:
//   - One check for every route at once (auditorMayCall, called by serveAs): a request of an
//     auditor that is not a GET or HEAD is refused with 403 before any handler runs, so no
//     handler's own check can forget it and a new write route is covered without a change.
//   - The exceptions are what it does to its own login, recorded on its own stream and changing
//     nothing audited: ending one of its own sessions (DELETE
//     /api/v1/accounts/{itself}/sessions/{id}: logging out, or ending a session it believes
//     stolen) and enrolling, confirming or removing its own TOTP second factor (POST/DELETE
//     /api/v1/accounts/{itself}/totp, POST …/totp/confirm). An auditor may not change its own
//     password or display name: the global administrator who made it does.
//   - The reads: the domain checks (administers, and so requireDomainAdmin and
//     requireSelfOrAdmin) let an auditor through for the domains of its scope; out of scope it
//     gets the same 403 a domain admin gets for another domain. What belongs to no one domain
//     (global configuration, classes of service) is readable by every auditor, as by every
//     domain admin. What can name any domain's objects — projection status (a stop names its
//     stream) and jobs of no domain — needs an auditor of every domain (requireGlobalReader,
//     AuditsAll). A domain's deletion preview, which only a global admin could see, is shown to
//     the auditors of that domain too.
//   - Secrets stay redacted exactly as for administrators: no read of the API shows a
//     private key, a sealed password or a token to anyone.
//   - Only a global administrator grants or revokes the role or changes its scope, and the role
//     never goes with global_admin or domain_admin (400 naming auditor): separation of duties.
//     A domain admin may not change, delete or give aliases to an auditor's account, as for a
//     global admin's (resetting its password would let the domain admin read every domain).

// auditorMayCall reports whether an auditor may send r: reads, and what it does to its own
// login: ending its own sessions, enrolling or removing its own second factor (TOTP).
func auditorMayCall(p commands.Principal, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/api/v1/accounts/")
	if !ok {
		return false
	}
	raw, sub, _ := strings.Cut(rest, "/")
	if addr, err := domain.ParseAddress(raw); err != nil || addr != p.Address {
		return false
	}
	switch {
	case r.Method == http.MethodDelete && strings.HasPrefix(sub, "sessions/"):
		id := strings.TrimPrefix(sub, "sessions/")
		return id != "" && !strings.Contains(id, "/")
	case sub == "totp":
		return r.Method == http.MethodPost || r.Method == http.MethodDelete
	case sub == "totp/confirm":
		return r.Method == http.MethodPost
	}
	return false
}

// requireGlobalReader admits global administrators and the auditors of every domain.
func requireGlobalReader(p commands.Principal) error {
	if !p.GlobalAdmin && !p.AuditsAll() {
		return forbidden("only a global administrator or an auditor of every domain may see this")
	}
	return nil
}
