package api

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/gorilla/mux"

	"mailplane/commands"
	"mailplane/domain"
	"mailplane/projections/postgres"
)

// Who may do what with accounts (API.md Conventions, and where it is silent):
//   - A global admin may do everything.
//   - A domain admin manages the accounts of its own domain: create (domain_admin included, never
//     global_admin), read, change, delete, aliases, sessions. A global admin's account is the
//     provider's: a domain admin may read it but not change it, delete it, give it aliases or end
//     its sessions, even when it lives in the domain admin's domain (otherwise resetting its
//     password would make the domain admin a global admin).
//   - An ordinary account reads itself and its sessions, ends its own sessions (logging out
//     elsewhere), and may change its own display_name and password, nothing else: its status,
//     quota, COS, roles, attributes and aliases are its administrators' to set, and a
//     password_hash is only for migrations. The bearer token is what proves it is itself.
func (s *Server) routeAccounts(r *mux.Router) {
	r.Handle("/domains/{domain}/accounts", s.handle(s.listAccounts)).Methods(http.MethodGet)
	r.Handle("/domains/{domain}/accounts", s.handle(s.createAccount)).Methods(http.MethodPost)
	r.Handle("/accounts/{address}", s.handle(s.getAccount)).Methods(http.MethodGet)
	r.Handle("/accounts/{address}", s.handle(s.patchAccount)).Methods(http.MethodPatch)
	r.Handle("/accounts/{address}", s.handle(s.deleteAccount)).Methods(http.MethodDelete)
	r.Handle("/accounts/{address}/aliases", s.handle(s.addAlias)).Methods(http.MethodPost)
	r.Handle("/accounts/{address}/history", s.handle(s.objectHistory("account", domain.AccountStreamID))).Methods(http.MethodGet)
	r.Handle("/accounts/{address}/aliases/{alias}", s.handle(s.removeAlias)).Methods(http.MethodDelete)
}

// accountJSON is an account as the API shows it. Neither the password nor its hash is ever
// shown, not even sealed: has_password says whether there is one.
type accountJSON struct {
	Address        string            `json:"address"`
	UnicodeAddress string            `json:"unicode_address"`
	LocalPart      string            `json:"local_part"`
	Domain         string            `json:"domain"`
	DisplayName    string            `json:"display_name"`
	COS            *string           `json:"cos"`
	Status         string            `json:"status"`
	MailQuotaBytes *int64            `json:"mail_quota_bytes"`
	GlobalAdmin    bool              `json:"global_admin"`
	DomainAdmin    bool              `json:"domain_admin"`
	Auditor        bool              `json:"auditor"`
	AuditorDomains []string          `json:"auditor_domains"`
	Attributes     map[string]string `json:"attributes"`
	Aliases        []string          `json:"aliases"`
	HasPassword    bool              `json:"has_password"`
	Effective      map[string]any    `json:"effective"`
	Sources        map[string]string `json:"sources"`
	Version        int               `json:"version"`
	CreatedAt      time.Time         `json:"created_at"`
	UpdatedAt      time.Time         `json:"updated_at"`
}

// accountScope is what an account's effective values are resolved against.
type accountScope struct {
	global domain.GlobalConfig
	domain domain.Domain
	// cos holds the classes of service by name; a missing one resolves as nil.
	cos map[string]domain.COS
}

func (sc accountScope) render(row postgres.AccountRow) accountJSON {
	a := row.Account
	var cos *domain.COS
	if name, _ := domain.EffectiveCOSName(sc.global, sc.domain, a); name != "" {
		if c, ok := sc.cos[name]; ok {
			cos = &c
		}
	}
	eff := domain.EffectiveAccount(sc.global, sc.domain, cos, a)
	aliases := make([]string, len(a.Aliases))
	for i, al := range a.Aliases {
		aliases[i] = al.String()
	}
	attrs := a.Attributes
	if attrs == nil {
		attrs = map[string]string{}
	}
	auditorDomains := a.AuditorDomains
	if auditorDomains == nil {
		auditorDomains = []string{}
	}
	unicodeAddr := a.Address.String()
	if _, u, err := domain.NormalizeDomainName(a.Address.Domain); err == nil {
		unicodeAddr = a.Address.Local + "@" + u
	}
	return accountJSON{
		Address: a.Address.String(), UnicodeAddress: unicodeAddr, LocalPart: a.Address.Local, Domain: a.Address.Domain,
		DisplayName: a.DisplayName, COS: a.COS, Status: a.Status, MailQuotaBytes: a.MailQuotaBytes,
		GlobalAdmin: a.GlobalAdmin, DomainAdmin: a.DomainAdmin, Auditor: a.Auditor, AuditorDomains: auditorDomains,
		Attributes: attrs, Aliases: aliases,
		HasPassword: a.HasPassword, Effective: eff.Values, Sources: eff.Sources,
		Version: row.Version, CreatedAt: row.CreatedAt, UpdatedAt: row.UpdatedAt,
	}
}

// scope reads the global configuration and the domain; cosNames are the classes of service to
// load (all of them when nil).
func (s *Server) scope(ctx context.Context, domainName string, cosNames ...string) (accountScope, error) {
	g, _, err := s.Reads.GlobalConfig(ctx)
	if err != nil {
		return accountScope{}, err
	}
	d, err := s.Reads.DomainSettings(ctx, domainName)
	if err != nil {
		return accountScope{}, err
	}
	sc := accountScope{global: g, domain: d, cos: map[string]domain.COS{}}
	if cosNames == nil {
		sc.cos, err = s.Reads.AllCOS(ctx)
		return sc, err
	}
	for _, name := range cosNames {
		c, err := s.Reads.COS(ctx, name)
		if errors.Is(err, domain.ErrNotFound) {
			continue // deleted, or the global default never created: its settings fall through
		}
		if err != nil {
			return accountScope{}, err
		}
		sc.cos[name] = c.COS
	}
	return sc, nil
}

func (s *Server) accountView(ctx context.Context, addr domain.Address) (any, int, error) {
	row, err := s.Reads.Account(ctx, addr.String())
	if err != nil {
		return nil, 0, err
	}
	sc, err := s.scope(ctx, addr.Domain, []string{}...) // the one COS it uses is read below
	if err != nil {
		return nil, 0, err
	}
	name, _ := domain.EffectiveCOSName(sc.global, sc.domain, row.Account)
	c, err := s.Reads.COS(ctx, name)
	switch {
	case err == nil:
		sc.cos[name] = c.COS
	case !errors.Is(err, domain.ErrNotFound):
		return nil, 0, err
	}
	return sc.render(row), row.Version, nil
}

// pathAddress reads an address from the path; one that cannot be an address names nothing.
func pathAddress(r *http.Request, name string) (domain.Address, error) {
	raw := mux.Vars(r)[name]
	a, err := domain.ParseAddress(raw)
	if err != nil {
		return domain.Address{}, errorf(http.StatusNotFound, "not-found", "no account %q", raw)
	}
	return a, nil
}

func accountPath(a domain.Address) string { return "/api/v1/accounts/" + url.PathEscape(a.String()) }

// mayChange refuses changes to a global admin's account by anyone but a global admin (or the
// account itself, within what it may change about itself). It answers 404 for a missing account.
func (s *Server) mayChange(r *http.Request, p commands.Principal, addr domain.Address) error {
	if err := s.catchUp(r, domain.AccountStreamID(addr)); err != nil {
		return err
	}
	row, err := s.Reads.Account(r.Context(), addr.String())
	if err != nil {
		return err
	}
	if row.Account.GlobalAdmin && !p.GlobalAdmin && p.Address != addr {
		return forbidden("only a global administrator may change the account of a global administrator")
	}
	if row.Account.Auditor && !p.GlobalAdmin && p.Address != addr {
		// Resetting its password would let a domain admin read every domain the auditor reads.
		return forbidden("only a global administrator may change the account of an auditor")
	}
	return nil
}

// written renders an account as the command that changed it left it, without waiting for the
// read model; a replayed request (which returns no account) reads the read model instead.
func (s *Server) written(r *http.Request, out commands.Outcome, addr domain.Address) func() (any, int, error) {
	return func() (any, int, error) {
		v := out.Account
		if v == nil {
			if err := s.catchUp(r, domain.AccountStreamID(addr)); err != nil {
				return nil, 0, err
			}
			return s.accountView(r.Context(), addr)
		}
		sc := accountScope{global: v.Global, domain: v.Domain, cos: map[string]domain.COS{}}
		if v.COS != nil {
			sc.cos[v.COS.Name] = *v.COS
		}
		current := func() (postgres.Row, error) {
			cur, err := s.Reads.Account(r.Context(), addr.String())
			return cur.Row, err
		}
		row := postgres.AccountRow{Account: v.Account, Row: writtenRow(out, v.Version, v.Account.CreatedAt, current)}
		return sc.render(row), v.Version, nil
	}
}

func (s *Server) getAccount(w http.ResponseWriter, r *http.Request) error {
	addr, err := pathAddress(r, "address")
	if err != nil {
		return err
	}
	if err := requireSelfOrAdmin(principal(r), addr); err != nil {
		return err
	}
	return s.readObject(w, r, domain.AccountStreamID(addr),
		func(ctx context.Context, t time.Time) (any, int, error) { return s.accountAsOf(ctx, addr, t) },
		func(ctx context.Context) (any, int, error) { return s.accountView(ctx, addr) })
}

func (s *Server) listAccounts(w http.ResponseWriter, r *http.Request) error {
	name, err := domainName(r)
	if err != nil {
		return err
	}
	if err := requireDomainAdmin(principal(r), name); err != nil {
		return err
	}
	q, err := page(r)
	if err != nil {
		return err
	}
	if err := checkStatusFilter(q, domain.AccountStatuses()); err != nil {
		return err
	}
	if err := s.catchUp(r, ""); err != nil {
		return err
	}
	sc, err := s.scope(r.Context(), name)
	if err != nil {
		return err
	}
	limit := q.Limit
	q.Limit++
	rows, err := s.Reads.ListAccounts(r.Context(), name, q)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, pageOf(rows, limit, func(a postgres.AccountRow) string { return a.Account.Address.String() },
		sc.render))
	return nil
}

// accountFields are the members a new account may have.
var accountFields = []string{"address", "local_part", "display_name", "password", "password_hash", "cos", "status",
	"mail_quota_bytes", "global_admin", "domain_admin", "auditor", "auditor_domains", "attributes"}

func (s *Server) createAccount(w http.ResponseWriter, r *http.Request) error {
	name, err := domainName(r)
	if err != nil {
		return err
	}
	p := principal(r)
	if err := requireDomainAdmin(p, name); err != nil {
		return err
	}
	// Read member by member, so that every mistyped member is reported, not just the first.
	body, doc, err := readPatch(r, accountFields...)
	if err != nil {
		return err
	}
	cmd := domain.CreateAccount{
		COS:            patchField[string](&doc, "cos"),
		MailQuotaBytes: patchField[int64](&doc, "mail_quota_bytes"),
		Attributes:     deref(patchField[map[string]string](&doc, "attributes")),
		DisplayName:    deref(patchValue[string](&doc, "display_name")),
		Status:         deref(patchValue[string](&doc, "status")),
		GlobalAdmin:    deref(patchValue[bool](&doc, "global_admin")),
		DomainAdmin:    deref(patchValue[bool](&doc, "domain_admin")),
		Auditor:        deref(patchValue[bool](&doc, "auditor")),
		AuditorDomains: deref(patchValue[[]string](&doc, "auditor_domains")),
	}
	cred := commands.Credentials{
		Password:     patchField[string](&doc, "password"),
		PasswordHash: patchField[string](&doc, "password_hash"),
	}
	if cmd.GlobalAdmin && !p.GlobalAdmin {
		return forbidden("only a global administrator may create a global administrator")
	}
	if (doc.has("auditor") || doc.has("auditor_domains")) && !p.GlobalAdmin {
		return forbidden("only a global administrator may create an auditor")
	}
	req, err := s.commandRequest(r, body)
	if err != nil {
		return err
	}
	addr, out, err := s.Commands.CreateAccountRequest(r.Context(), req, commands.NewAccount{
		Domain: name, Address: deref(patchValue[string](&doc, "address")), LocalPart: deref(patchValue[string](&doc, "local_part")),
		Account: cmd, Credentials: cred, Invalid: doc.fieldErrors(),
	})
	if err != nil {
		return err
	}
	w.Header().Set("Location", accountPath(addr))
	return s.respondNow(w, r, req, out, http.StatusCreated, s.written(r, out, addr))
}

func firstFieldMessage(err error) string {
	var ve domain.ValidationError
	if errors.As(err, &ve) && len(ve.Errors) > 0 {
		return ve.Errors[0].Message
	}
	return err.Error()
}

func deref[T any](p *T) T {
	if p == nil {
		var z T
		return z
	}
	return *p
}

// accountPatchFields are the members a PATCH may carry; selfPatchFields those an ordinary
// account may change on itself.
var (
	accountPatchFields = []string{"display_name", "cos", "status", "mail_quota_bytes", "global_admin", "domain_admin",
		"auditor", "auditor_domains", "attributes", "password", "password_hash"}
	selfPatchFields = []string{"display_name", "password"}
)

// patchAccount changes an account (JSON merge patch). Members:
//   - display_name: null → "".
//   - cos, mail_quota_bytes: null → inherit again (the COS of the domain / the COS's quota).
//   - status, global_admin, domain_admin: values; null → "" (refused) / false.
//   - attributes: merged (RFC 7396): {"k": "v"} sets k, {"k": null} removes k, others stay;
//     "attributes": null removes them all.
//   - password or password_hash (not both, never null): a new password. It is recorded in the
//     same transaction as the other changes, after them: the whole PATCH succeeds or nothing
//     changes, its bad fields are reported together, and If-Match is checked once. The minimum
//     length is that of the COS the account has after the PATCH. Other sessions stay open.
func (s *Server) patchAccount(w http.ResponseWriter, r *http.Request) error {
	addr, err := pathAddress(r, "address")
	if err != nil {
		return err
	}
	p := principal(r)
	if err := requireSelfOrAdmin(p, addr); err != nil {
		return err
	}
	body, doc, err := readPatch(r, accountPatchFields...)
	if err != nil {
		return err
	}
	if !administers(p, addr.Domain) {
		for _, f := range accountPatchFields {
			if doc.has(f) && !slices.Contains(selfPatchFields, f) {
				return forbidden("an account may change only its own display_name and password, not %s", f)
			}
		}
	}
	if doc.has("global_admin") && !p.GlobalAdmin {
		return forbidden("only a global administrator may grant or revoke global_admin")
	}
	if (doc.has("auditor") || doc.has("auditor_domains")) && !p.GlobalAdmin {
		return forbidden("only a global administrator may grant, revoke or scope the auditor role")
	}
	if err := s.mayChange(r, p, addr); err != nil {
		return err
	}
	patch := commands.AccountPatch{Update: domain.UpdateAccount{
		DisplayName:    patchValue[string](&doc, "display_name"),
		COS:            patchField[string](&doc, "cos"),
		Status:         patchValue[string](&doc, "status"),
		MailQuotaBytes: patchField[int64](&doc, "mail_quota_bytes"),
		GlobalAdmin:    patchValue[bool](&doc, "global_admin"),
		DomainAdmin:    patchValue[bool](&doc, "domain_admin"),
		Auditor:        patchValue[bool](&doc, "auditor"),
		AuditorDomains: patchValue[[]string](&doc, "auditor_domains"),
	}}
	patch.Update.Attributes, patch.Attributes = attributesPatch(&doc)
	for _, f := range []string{"password", "password_hash"} {
		if raw, ok := doc.fields[f]; ok && string(raw) == "null" {
			*doc.errs = append(*doc.errs, FieldError{Field: f, Message: "cannot be removed; set another, or lock the account"})
		}
	}
	patch.Credentials = commands.Credentials{
		Password:     patchField[string](&doc, "password"),
		PasswordHash: patchField[string](&doc, "password_hash"),
	}
	for _, c := range doc.clearedNames() {
		if c == "cos" || c == "mail_quota_bytes" {
			patch.Update.Clear = append(patch.Update.Clear, c)
		}
	}
	req, err := s.commandRequest(r, body)
	if err != nil {
		return err
	}
	req.Invalid = doc.fieldErrors()
	out, err := s.Commands.PatchAccount(r.Context(), req, addr, patch)
	if err != nil {
		return err
	}
	return s.respondNow(w, r, req, out, http.StatusOK, s.written(r, out, addr))
}

// attributesPatch reads the attributes member: whole is the empty map when attributes is null
// (remove them all); otherwise members holds each attribute's new value, nil to remove it.
func attributesPatch(doc *patchDoc) (whole map[string]string, members map[string]*string) {
	raw, ok := doc.fields["attributes"]
	if !ok {
		return nil, nil
	}
	if string(raw) == "null" {
		return map[string]string{}, nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		*doc.errs = append(*doc.errs, FieldError{Field: "attributes", Message: "must be an object of strings"})
		return nil, nil
	}
	members = make(map[string]*string, len(fields))
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		if string(fields[k]) == "null" {
			members[k] = nil
			continue
		}
		v := new(string)
		if err := json.Unmarshal(fields[k], v); err != nil {
			*doc.errs = append(*doc.errs, FieldError{Field: "attributes." + k, Message: "must be a string or null"})
			continue
		}
		members[k] = v
	}
	return nil, members
}

func (s *Server) deleteAccount(w http.ResponseWriter, r *http.Request) error {
	addr, err := pathAddress(r, "address")
	if err != nil {
		return err
	}
	p := principal(r)
	if err := requireDomainAdmin(p, addr.Domain); err != nil {
		return err
	}
	if err := s.mayChange(r, p, addr); err != nil {
		return err
	}
	req, err := s.commandRequest(r, nil)
	if err != nil {
		return err
	}
	out, err := s.Commands.DeleteAccount(r.Context(), req, addr)
	if err != nil {
		return err
	}
	return s.respondNow(w, r, req, out, http.StatusNoContent, nil)
}

type aliasRequest struct {
	Alias string `json:"alias"`
}

// addAlias gives an account another address. The caller must administer both the account's
// domain and the alias's; the alias's domain must exist (else 400 on alias).
func (s *Server) addAlias(w http.ResponseWriter, r *http.Request) error {
	addr, err := pathAddress(r, "address")
	if err != nil {
		return err
	}
	p := principal(r)
	if err := requireDomainAdmin(p, addr.Domain); err != nil {
		return err
	}
	body, err := readBody(r)
	if err != nil {
		return err
	}
	var in aliasRequest
	if err := decodeBytes(body, &in); err != nil {
		return err
	}
	invalid := func(msg string) error {
		return &Error{Status: http.StatusBadRequest, Type: "validation", Detail: "the request has invalid fields",
			Fields: []FieldError{{Field: "alias", Message: msg}}}
	}
	if in.Alias == "" {
		return invalid("required")
	}
	alias, err := domain.ParseAddress(in.Alias)
	if err != nil {
		return invalid(firstFieldMessage(err))
	}
	if err := requireDomainAdmin(p, alias.Domain); err != nil {
		return err
	}
	if err := s.mayChange(r, p, addr); err != nil {
		return err
	}
	if _, err := s.Reads.DomainSettings(r.Context(), alias.Domain); errors.Is(err, domain.ErrNotFound) {
		return invalid("domain " + alias.Domain + " does not exist")
	} else if err != nil {
		return err
	}
	req, err := s.commandRequest(r, body)
	if err != nil {
		return err
	}
	out, err := s.Commands.AddAlias(r.Context(), req, addr, alias)
	if err != nil {
		return err
	}
	w.Header().Set("Location", accountPath(addr)+"/aliases/"+url.PathEscape(alias.String()))
	return s.respondNow(w, r, req, out, http.StatusCreated, s.written(r, out, addr))
}

// removeAlias takes an alias away; administering the account's domain is enough, wherever the
// alias lives.
func (s *Server) removeAlias(w http.ResponseWriter, r *http.Request) error {
	addr, err := pathAddress(r, "address")
	if err != nil {
		return err
	}
	p := principal(r)
	if err := requireDomainAdmin(p, addr.Domain); err != nil {
		return err
	}
	alias, err := domain.ParseAddress(mux.Vars(r)["alias"])
	if err != nil {
		return errorf(http.StatusNotFound, "not-found", "no alias %q", mux.Vars(r)["alias"])
	}
	if err := s.mayChange(r, p, addr); err != nil {
		return err
	}
	req, err := s.commandRequest(r, nil)
	if err != nil {
		return err
	}
	out, err := s.Commands.RemoveAlias(r.Context(), req, addr, alias)
	if err != nil {
		return err
	}
	return s.respondNow(w, r, req, out, http.StatusNoContent, nil)
}
