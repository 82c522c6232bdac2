package api

import (
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"mailplane/commands"
	"mailplane/domain"
)

// API tokens (issue 11): credentials for an account's scripts. A token acts as the account
// that made it, with its roles as they are at each request, narrowed by the token's scope:
// the domains it may touch and, per object kind (the tag of the route in apiRoutes), read or
// write. The scope is enforced here for every route at once (tokenMayCall, called by serveAs),
// and once more wherever a handler asks whether the caller administers a domain (administers
// consults InTokenScope), which catches the domains a body names (an alias elsewhere).

// tagAPITokens: the API tokens themselves; no API token may call these routes.
const tagAPITokens = "api-tokens"

func (s *Server) routeAPITokens(r *mux.Router) {
	r.Handle("/api-tokens", s.handle(s.createAPIToken)).Methods(http.MethodPost)
	r.Handle("/api-tokens", s.handle(s.listAPITokens)).Methods(http.MethodGet)
	r.Handle("/api-tokens/{id}", s.handle(s.revokeAPIToken)).Methods(http.MethodDelete)
}

// routeKinds maps "METHOD path-template" to the route's tag, the object kind a scope names.
var routeKinds = func() map[string]string {
	m := make(map[string]string, len(apiRoutes))
	for _, rt := range apiRoutes {
		m[rt.Method+" "+rt.Path] = rt.Tag
	}
	return m
}()

// domainVars are the path parameters that name a domain or an address in one. {member} and
// {owner} are not: a list's member may be anywhere, and naming one touches only the list.
var domainVars = []string{"domain", "address", "alias"}

// tokenMayCall decides whether an API token's scope lets it make this request: a read (GET,
// HEAD) or a write (any other method) of the route's kind, on the domains its path names. A
// route bound to no domain (the global configuration, COS, the domain list, jobs, projections)
// is for a token of all domains only, and only while its owner is a global administrator. The
// token and second-factor routes are for people: a token cannot make, list or revoke tokens,
// nor enrol or disable TOTP. A route
// missing from apiRoutes (River UI) is refused too.
func tokenMayCall(p commands.Principal, r *http.Request) *Error {
	scope := p.APIToken.Scope
	method := r.Method
	if method == http.MethodHead {
		method = http.MethodGet
	}
	var tmpl string
	if route := mux.CurrentRoute(r); route != nil {
		tmpl, _ = route.GetPathTemplate()
	}
	kind, ok := routeKinds[method+" "+tmpl]
	switch {
	case !ok:
		return forbidden("an API token cannot call %s %s", r.Method, r.URL.Path)
	case kind == tagAPITokens || kind == tagAuth:
		// Credentials are for people: a token that could mint tokens or reset a second factor
		// would outlive its own revocation.
		return forbidden("an API token cannot manage API tokens or second factors: log in")
	}
	write := method != http.MethodGet
	if !scope.Allows(kind, write) {
		what := "read"
		if write {
			what = "change"
		}
		return forbidden("this API token may not %s %s", what, kind)
	}
	vars := mux.Vars(r)
	bound := false
	for _, name := range domainVars {
		raw, ok := vars[name]
		if !ok {
			continue
		}
		bound = true
		d := raw
		if name != "domain" {
			a, err := domain.ParseAddress(raw)
			if err != nil {
				// The handlers parse it alike and would answer 404; refuse before them, since
				// which domain it names cannot be told.
				return forbidden("this API token may not touch %q: no address", raw)
			}
			d = a.Domain
		}
		ascii, _, err := domain.NormalizeDomainName(d)
		if err != nil {
			return forbidden("this API token may not touch %q: no domain", raw)
		}
		if !scope.AllowsDomain(ascii) {
			return forbidden("this API token may not touch the domain %s", ascii)
		}
	}
	if !bound && !(scope.AllDomains && p.GlobalAdmin) {
		return forbidden("only an API token of all domains, of a global administrator, may call %s %s", r.Method, tmpl)
	}
	return nil
}

type apiTokenRequest struct {
	Name      string            `json:"name"`
	ExpiresAt *time.Time        `json:"expires_at"`
	Domains   []string          `json:"domains"`
	Access    map[string]string `json:"access"`
}

type apiTokenJSON struct {
	ID         string            `json:"id"`
	Token      string            `json:"token,omitempty"`
	Name       string            `json:"name"`
	Account    string            `json:"account"`
	Domains    []string          `json:"domains"`
	AllDomains bool              `json:"all_domains"`
	Access     map[string]string `json:"access"`
	CreatedAt  time.Time         `json:"created_at"`
	ExpiresAt  time.Time         `json:"expires_at"`
	LastUsedAt *time.Time        `json:"last_used_at"`
}

func renderAPIToken(t commands.APIToken) apiTokenJSON {
	domains := t.Scope.Domains
	if domains == nil {
		domains = []string{}
	}
	return apiTokenJSON{ID: t.ID, Token: t.Token, Name: t.Name, Account: t.Account, Domains: domains,
		AllDomains: t.Scope.AllDomains, Access: t.Scope.Access, CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt,
		LastUsedAt: t.LastUsedAt}
}

// createAPIToken makes a token for the caller. Its scope may not be wider than the caller's
// rights: a global administrator may give it any domains (none: all), anyone else only their
// own domain (none: that one); 403 otherwise. An Idempotency-Key is not honoured, as for
// service tokens: replaying the answer would mean keeping the token.
func (s *Server) createAPIToken(w http.ResponseWriter, r *http.Request) error {
	p := principal(r)
	if p.IsService() || p.IsAPIToken() {
		// tokenMayCall refuses an API token already; this keeps it so if that check moves.
		return forbidden("only a login can make API tokens")
	}
	var in apiTokenRequest
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	req, err := s.commandRequest(r, nil)
	if err != nil {
		return err
	}
	req.Meta.IdempotencyKey, req.Meta.RequestHash = "", nil
	scope, err := domain.NormalizeAPITokenScope(in.Domains, in.Access, p.Address, p.GlobalAdmin)
	if err != nil {
		return err
	}
	if !p.GlobalAdmin {
		for _, d := range scope.Domains {
			if d != p.Address.Domain {
				return forbidden("a token may not reach further than you: you may only give it your own domain %s", p.Address.Domain)
			}
		}
	}
	var expires time.Time
	if in.ExpiresAt != nil {
		expires = *in.ExpiresAt
	}
	t, _, err := s.Commands.CreateAPIToken(r.Context(), req, p.Address, in.Name, scope, expires)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Location", "/api/v1/api-tokens/"+t.ID)
	writeJSON(w, http.StatusCreated, renderAPIToken(t))
	return nil
}

// listAPITokens answers the usable tokens of the caller, or (?account=) of an account an
// administrator administers, newest first. An account has few: not paginated.
func (s *Server) listAPITokens(w http.ResponseWriter, r *http.Request) error {
	p := principal(r)
	if p.IsService() {
		return forbidden("a service token has no API tokens")
	}
	addr := p.Address
	if raw := r.URL.Query().Get("account"); raw != "" {
		a, err := domain.ParseAddress(raw)
		if err != nil {
			return &Error{Status: http.StatusBadRequest, Type: "validation", Detail: "account must be an address",
				Fields: []FieldError{{Field: "account", Message: "must be an address"}}}
		}
		if err := requireSelfOrAdmin(p, a); err != nil {
			return forbidden("you may only list your own API tokens, or those of accounts you administer")
		}
		addr = a
	}
	tokens, err := s.Commands.APITokens(r.Context(), addr)
	if err != nil {
		return err
	}
	items := make([]apiTokenJSON, len(tokens))
	for i, t := range tokens {
		items[i] = renderAPIToken(t)
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, listPage{Items: items})
	return nil
}

// revokeAPIToken ends a token at once: its owner, or an administrator of its owner's domain.
// 404 for an unknown or revoked id, and for one the caller may not see.
func (s *Server) revokeAPIToken(w http.ResponseWriter, r *http.Request) error {
	p := principal(r)
	id := mux.Vars(r)["id"]
	t, err := s.Commands.LookupAPIToken(r.Context(), id)
	if err != nil {
		return err
	}
	owner, err := domain.ParseAddress(t.Account)
	if err != nil || p.IsService() || requireSelfOrAdmin(p, owner) != nil {
		return errorf(http.StatusNotFound, "not-found", "no API token %q", id)
	}
	req, err := s.commandRequest(r, nil)
	if err != nil {
		return err
	}
	if _, err := s.Commands.RevokeAPIToken(r.Context(), req, t); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// apiTokenKindsList is the list of kinds for the document.
var apiTokenKindsList = `"*", ` + `"` + strings.Join(domain.APITokenKinds, `", "`) + `"`

// apiTokenSchemas are the API tokens' schemas.
func apiTokenSchemas() oaSchema {
	access := oaMap(oaEnum("", domain.AccessRead, domain.AccessWrite),
		"Object kind ("+apiTokenKindsList+") to read or write; \"*\" for every kind not named")
	token := func(withSecret bool) oaSchema {
		required := []string{"id", "name", "account", "domains", "all_domains", "access", "created_at", "expires_at", "last_used_at"}
		props := oaSchema{
			"id":           oaString("Revoke with DELETE /api/v1/api-tokens/{id}"),
			"name":         oaString(""),
			"account":      oaString("The account the token acts as: the one that made it"),
			"domains":      oaArray(oaString("A-label form")),
			"all_domains":  oaBool("Every domain, and the routes bound to none"),
			"access":       access,
			"created_at":   oaDateTime(""),
			"expires_at":   oaDateTime(""),
			"last_used_at": oaNullable(oaDateTime("Last request with the token, to the minute; null: never used")),
		}
		if withSecret {
			required = append(required, "token")
			props["token"] = oaString("Bearer token (mpa_...), shown once")
		}
		return oaObject(required, props)
	}
	return oaSchema{
		"APITokenCreate": oaClosed([]string{"name", "expires_at", "access"}, oaSchema{
			"name":       oaString("What the token is for; 1-128 bytes"),
			"expires_at": oaDateTime("In the future, at most 366 days away"),
			"domains":    oaArray(oaString("A domain the token may touch; none: all (global administrators) or your own")),
			"access":     access,
		}),
		"APIToken": token(true),
		"APITokenPage": oaObject([]string{"items", "next_cursor"}, oaSchema{
			"items":       oaArray(token(false)),
			"next_cursor": oaNullable(oaString("Always null: not paginated")),
		}),
	}
}
