package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"mailplane/domain"
	"mailplane/projections/postgres"
)

func (s *Server) routeDomains(r *mux.Router) {
	r.Handle("/domains", s.handle(s.listDomains)).Methods(http.MethodGet)
	r.Handle("/domains", s.handle(s.createDomain)).Methods(http.MethodPost)
	r.Handle("/domains/{domain}", s.handle(s.getDomain)).Methods(http.MethodGet)
	r.Handle("/domains/{domain}", s.handle(s.patchDomain)).Methods(http.MethodPatch)
	r.Handle("/domains/{domain}", s.handle(s.deleteDomain)).Methods(http.MethodDelete)
	r.Handle("/domains/{domain}/close", s.handle(s.closeDomain)).Methods(http.MethodPost)
	r.Handle("/domains/{domain}/history", s.handle(s.domainHistory)).Methods(http.MethodGet)
	r.Handle("/domains/{domain}/history/export", s.handle(s.domainHistoryExport)).Methods(http.MethodGet)
	r.Handle("/domains/{domain}/deletion-preview", s.handle(s.deletionPreview)).Methods(http.MethodGet)
}

// domainAuthJSON is the auth member as the API reads and writes it. bind_password is only
// ever read; a domain shows has_bind_password instead.
type domainAuthJSON struct {
	Mechanism       string `json:"mechanism"`
	LDAPURL         string `json:"ldap_url,omitempty"`
	BindDN          string `json:"bind_dn,omitempty"`
	BindPassword    string `json:"bind_password,omitempty"`
	HasBindPassword bool   `json:"has_bind_password"`
	SearchBase      string `json:"search_base,omitempty"`
	SearchFilter    string `json:"search_filter,omitempty"`
}

type createDomainRequest struct {
	Name           string               `json:"name"`
	Description    string               `json:"description"`
	TimeZone       *string              `json:"time_zone"`
	PublicProtocol *string              `json:"public_protocol"`
	SpamRelayHost  *string              `json:"spam_relay_host"`
	DefaultCOS     *string              `json:"default_cos"`
	Status         string               `json:"status"`
	Auth           *createDomainAuth    `json:"auth"`
	Limits         *domain.DomainLimits `json:"limits"`
}

type createDomainAuth struct {
	Mechanism    string `json:"mechanism"`
	LDAPURL      string `json:"ldap_url"`
	BindDN       string `json:"bind_dn"`
	BindPassword string `json:"bind_password"`
	SearchBase   string `json:"search_base"`
	SearchFilter string `json:"search_filter"`
}

// domainJSON is a domain as the API shows it.
type domainJSON struct {
	Name           string              `json:"name"`
	UnicodeName    string              `json:"unicode_name"`
	Description    string              `json:"description"`
	TimeZone       *string             `json:"time_zone"`
	PublicProtocol *string             `json:"public_protocol"`
	SpamRelayHost  *string             `json:"spam_relay_host"`
	DefaultCOS     *string             `json:"default_cos"`
	Status         string              `json:"status"`
	Removing       bool                `json:"removing"`
	Auth           domainAuthJSON      `json:"auth"`
	Limits         domain.DomainLimits `json:"limits"`
	TOTPRequired   bool                `json:"totp_required"`
	Effective      map[string]any      `json:"effective"`
	Sources        map[string]string   `json:"sources"`
	Counts         postgres.Counts     `json:"counts"`
	Version        int                 `json:"version"`
	CreatedAt      time.Time           `json:"created_at"`
	UpdatedAt      time.Time           `json:"updated_at"`
}

func renderDomain(g domain.GlobalConfig, row postgres.DomainRow) domainJSON {
	d := row.Domain
	eff := domain.EffectiveDomain(g, d)
	return domainJSON{
		Name: d.Name, UnicodeName: d.UnicodeName, Description: d.Description, TimeZone: d.TimeZone,
		PublicProtocol: d.PublicProtocol, SpamRelayHost: d.SpamRelayHost, DefaultCOS: d.DefaultCOS, Status: d.Status,
		Removing: d.Removing,
		Auth: domainAuthJSON{Mechanism: d.Auth.Mechanism, LDAPURL: d.Auth.LDAPURL, BindDN: d.Auth.BindDN,
			HasBindPassword: d.Auth.HasBindPassword, SearchBase: d.Auth.SearchBase, SearchFilter: d.Auth.SearchFilter},
		Limits: d.Limits, TOTPRequired: d.TOTPRequired, Effective: eff.Values, Sources: eff.Sources, Counts: row.Counts,
		Version: row.Version, CreatedAt: row.CreatedAt, UpdatedAt: row.UpdatedAt,
	}
}

// domainName reads {domain} from the path in its ASCII form (Unicode names are accepted).
func domainName(r *http.Request) (string, error) {
	ascii, _, err := domain.NormalizeDomainName(mux.Vars(r)["domain"])
	if err != nil {
		return "", errorf(http.StatusNotFound, "not-found", "no domain %q", mux.Vars(r)["domain"])
	}
	return ascii, nil
}

func (s *Server) domainView(ctx context.Context, name string) (any, int, error) {
	g, _, err := s.Reads.GlobalConfig(ctx)
	if err != nil {
		return nil, 0, err
	}
	row, err := s.Reads.Domain(ctx, name)
	if err != nil {
		return nil, 0, err
	}
	return renderDomain(g, row), row.Version, nil
}

func (s *Server) listDomains(w http.ResponseWriter, r *http.Request) error {
	p := principal(r)
	q, err := page(r)
	if err != nil {
		return err
	}
	if err := checkStatusFilter(q, domain.DomainStatuses()); err != nil {
		return err
	}
	// Everyone's list is the one query, narrowed to the domains the caller may see: a limited
	// auditor its listed domains, a domain admin the one it administers.
	var only []string
	switch {
	case p.GlobalAdmin || p.AuditsAll():
	case p.Auditor:
		only = p.AuditorDomains
	case p.DomainAdmin:
		only = []string{p.Address.Domain}
	default:
		return forbidden("only administrators may list domains")
	}
	if err := s.catchUp(r, ""); err != nil {
		return err
	}
	g, _, err := s.Reads.GlobalConfig(r.Context())
	if err != nil {
		return err
	}
	limit := q.Limit
	q.Limit++
	rows, err := s.Reads.ListDomains(r.Context(), q, only)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, pageOf(rows, limit, func(d postgres.DomainRow) string { return d.Domain.Name },
		func(d postgres.DomainRow) domainJSON { return renderDomain(g, d) }))
	return nil
}

func (s *Server) getDomain(w http.ResponseWriter, r *http.Request) error {
	name, err := domainName(r)
	if err != nil {
		return err
	}
	if err := requireDomainAdmin(principal(r), name); err != nil {
		return err
	}
	// Its counts depend on every stream in it: see everything committed before this request.
	return s.readObject(w, r, "",
		func(ctx context.Context, t time.Time) (any, int, error) { return s.domainAsOf(ctx, name, t) },
		func(ctx context.Context) (any, int, error) { return s.domainView(ctx, name) })
}

func (s *Server) createDomain(w http.ResponseWriter, r *http.Request) error {
	if err := requireGlobalAdmin(principal(r)); err != nil {
		return err
	}
	body, err := readBody(r)
	if err != nil {
		return err
	}
	var in createDomainRequest
	if err := decodeBytes(body, &in); err != nil {
		return err
	}
	req, err := s.commandRequest(r, body)
	if err != nil {
		return err
	}
	cmd := domain.CreateDomain{Name: in.Name, Description: in.Description, TimeZone: in.TimeZone,
		PublicProtocol: in.PublicProtocol, SpamRelayHost: in.SpamRelayHost, DefaultCOS: in.DefaultCOS, Status: in.Status}
	var bindPassword string
	if in.Auth != nil {
		cmd.Auth = domain.AuthSettings{Mechanism: in.Auth.Mechanism, LDAPURL: in.Auth.LDAPURL, BindDN: in.Auth.BindDN,
			SearchBase: in.Auth.SearchBase, SearchFilter: in.Auth.SearchFilter}
		bindPassword = in.Auth.BindPassword
	}
	if in.Limits != nil {
		cmd.Limits = *in.Limits
	}
	name, out, err := s.Commands.CreateDomain(r.Context(), req, cmd, bindPassword)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/domains/"+name)
	return s.respond(w, r, req, out, http.StatusCreated, func() (any, int, error) { return s.domainView(r.Context(), name) })
}

// domainPatchFields are the members a domain's PATCH may have.
var domainPatchFields = []string{"description", "time_zone", "public_protocol", "spam_relay_host", "default_cos",
	"status", "auth", "limits", "totp_required"}

func (s *Server) patchDomain(w http.ResponseWriter, r *http.Request) error {
	name, err := domainName(r)
	if err != nil {
		return err
	}
	p := principal(r)
	if err := requireDomainAdmin(p, name); err != nil {
		return err
	}
	body, doc, err := readPatch(r, domainPatchFields...)
	if err != nil {
		return err
	}
	// A domain admin runs its domain; its status and authentication are the provider's.
	if !p.GlobalAdmin && (doc.has("status") || doc.has("auth") || doc.has("totp_required")) {
		return forbidden("only a global administrator may change a domain's status, authentication or TOTP requirement")
	}
	cmd := domain.UpdateDomain{
		Description:    patchValue[string](&doc, "description"),
		TimeZone:       patchField[string](&doc, "time_zone"),
		PublicProtocol: patchField[string](&doc, "public_protocol"),
		SpamRelayHost:  patchField[string](&doc, "spam_relay_host"),
		DefaultCOS:     patchField[string](&doc, "default_cos"),
		Status:         patchValue[string](&doc, "status"),
		TOTPRequired:   patchValue[bool](&doc, "totp_required"),
	}
	var bindPassword *string
	if auth, ok := doc.sub("auth", "mechanism", "ldap_url", "bind_dn", "bind_password", "search_base", "search_filter"); ok && auth != nil {
		cmd.Auth = &domain.AuthPatch{
			Mechanism:    patchValue[string](auth, "mechanism"),
			LDAPURL:      patchValue[string](auth, "ldap_url"),
			BindDN:       patchValue[string](auth, "bind_dn"),
			SearchBase:   patchValue[string](auth, "search_base"),
			SearchFilter: patchValue[string](auth, "search_filter"),
		}
		bindPassword = patchValue[string](auth, "bind_password")
	}
	if limits, ok := doc.sub("limits", "domain_quota_bytes", "account_quota_bytes", "warn_percent", "warn_recipient", "max_accounts"); ok && limits != nil {
		cmd.Limits = &domain.LimitsPatch{
			DomainQuotaBytes:  patchField[int64](limits, "domain_quota_bytes"),
			AccountQuotaBytes: patchField[int64](limits, "account_quota_bytes"),
			WarnPercent:       patchField[int](limits, "warn_percent"),
			WarnRecipient:     patchValue[string](limits, "warn_recipient"),
			MaxAccounts:       patchValue[int](limits, "max_accounts"),
		}
	}
	cmd.Clear = doc.clearedNames()
	req, err := s.commandRequest(r, body)
	if err != nil {
		return err
	}
	req.Invalid = doc.fieldErrors()
	out, err := s.Commands.UpdateDomain(r.Context(), req, name, cmd, bindPassword)
	if err != nil {
		return err
	}
	return s.respond(w, r, req, out, http.StatusOK, func() (any, int, error) { return s.domainView(r.Context(), name) })
}

func (s *Server) closeDomain(w http.ResponseWriter, r *http.Request) error {
	name, err := domainName(r)
	if err != nil {
		return err
	}
	if err := requireGlobalAdmin(principal(r)); err != nil {
		return err
	}
	body, err := readBody(r)
	if err != nil {
		return err
	}
	req, err := s.commandRequest(r, body)
	if err != nil {
		return err
	}
	out, err := s.Commands.CloseDomain(r.Context(), req, name)
	if err != nil {
		return err
	}
	return s.respond(w, r, req, out, http.StatusOK, func() (any, int, error) { return s.domainView(r.Context(), name) })
}

// deletionPreviewJSON is what removing a domain would take (API.md "deletion-preview").
type deletionPreviewJSON struct {
	Domain string `json:"domain"`
	postgres.DomainObjects
	// GALAccount is the domain's GALSync account (null when it has none).
	GALAccount *string `json:"gal_account"`
	// Removing says whether a removal is already under way.
	Removing   bool    `json:"removing"`
	NextCursor *string `json:"next_cursor"`
}

var previewKinds = []string{postgres.KindAccounts, postgres.KindLists, postgres.KindResources, postgres.KindAliases,
	postgres.KindVirtualHosts, postgres.KindCertificates}

// deletionPreview lists every object that removing the domain would take, with the count of
// each kind. It pages like every list (limit, cursor), every kind at once: a page holds up to
// limit of each, and next_cursor, until every kind is exhausted, continues each where it
// stopped (kinds already complete come back empty).
func (s *Server) deletionPreview(w http.ResponseWriter, r *http.Request) error {
	name, err := domainName(r)
	if err != nil {
		return err
	}
	if p := principal(r); !p.GlobalAdmin && !p.Audits(name) {
		return forbidden("only a global administrator or an auditor of the domain may see what its removal would take")
	}
	q, err := page(r)
	if err != nil {
		return err
	}
	var after map[string]string
	if q.After != "" {
		if err := json.Unmarshal([]byte(q.After), &after); err != nil {
			return &Error{Status: http.StatusBadRequest, Type: "validation", Detail: "bad cursor",
				Fields: []FieldError{{Field: "cursor", Message: "is not a cursor this API returned"}}}
		}
	}
	if err := s.catchUp(r, ""); err != nil {
		return err
	}
	d, err := s.Reads.DomainSettings(r.Context(), name)
	if err != nil {
		return err
	}
	objects, err := s.Reads.DomainObjects(r.Context(), name, q.Limit, after)
	if err != nil {
		return err
	}
	out := deletionPreviewJSON{Domain: name, DomainObjects: objects, Removing: d.Removing}
	switch g, err := s.Reads.GAL(r.Context(), name); {
	case err == nil:
		account := g.GAL.Account.String()
		out.GALAccount = &account
	case !errors.Is(err, domain.ErrNotFound):
		return err
	}
	if len(objects.After) > 0 {
		next := map[string]string{}
		for _, k := range previewKinds {
			next[k] = objects.After[k] // "": that kind is complete
		}
		b, _ := json.Marshal(next)
		c := base64.RawURLEncoding.EncodeToString(b)
		out.NextCursor = &c
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// deleteDomain starts removing a domain: 202 with the remove_domain job, which deletes every
// object (one event each), then the domain, and destroys its data key. Asked again while the
// removal runs, it answers with the same job.
func (s *Server) deleteDomain(w http.ResponseWriter, r *http.Request) error {
	name, err := domainName(r)
	if err != nil {
		return err
	}
	p := principal(r)
	if err := requireGlobalAdmin(p); err != nil {
		return err
	}
	if p.Address.Domain == name {
		// The request would remove the very account that makes it, and lock its caller out.
		return errorf(http.StatusConflict, "own-domain", "%s is your own account's domain: remove it as another global administrator", name)
	}
	body, err := readBody(r)
	if err != nil {
		return err
	}
	req, err := s.commandRequest(r, body)
	if err != nil {
		return err
	}
	out, err := s.Commands.StartDomainRemoval(r.Context(), req, name)
	if err != nil {
		return err
	}
	return s.respondJob(w, r, req, out)
}
