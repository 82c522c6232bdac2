package api

import (
	"context"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"mailplane/commands"
	"mailplane/domain"
	"mailplane/projections/postgres"
)

// Who may do what with the GAL: its settings, resyncs and deletion are the domain's
// administrators' (and global admins'); searching it is also every account's of the domain,
// since the address book is what their mail clients complete addresses from. Anyone else: 403.
func (s *Server) routeGAL(r *mux.Router) {
	const gal = "/domains/{domain}/gal"
	r.Handle(gal, s.handle(s.getGAL)).Methods(http.MethodGet)
	r.Handle(gal, s.handle(s.putGAL)).Methods(http.MethodPut)
	r.Handle(gal, s.handle(s.deleteGAL)).Methods(http.MethodDelete)
	r.Handle(gal+"/resync", s.handle(s.resyncGAL)).Methods(http.MethodPost)
	r.Handle(gal+"/search", s.handle(s.searchGAL)).Methods(http.MethodGet)
}

// galJSON is a domain's GAL as the API shows it; the bind password never (has_bind_password
// says whether one is set).
type galJSON struct {
	Domain                          string         `json:"domain"`
	Account                         string         `json:"account"`
	Mode                            string         `json:"mode"`
	PollingIntervalSeconds          int            `json:"polling_interval_seconds"`
	EffectivePollingIntervalSeconds int            `json:"effective_polling_interval_seconds"`
	External                        *galSourceJSON `json:"external"`
	LastSync                        *galSyncJSON   `json:"last_sync"`
	LastSuccessAt                   *time.Time     `json:"last_success_at"`
	Version                         int            `json:"version"`
	CreatedAt                       time.Time      `json:"created_at"`
	UpdatedAt                       time.Time      `json:"updated_at"`
}

type galSourceJSON struct {
	LDAPURL         string `json:"ldap_url"`
	BindDN          string `json:"bind_dn"`
	HasBindPassword bool   `json:"has_bind_password"`
	SearchBase      string `json:"search_base"`
	SearchFilter    string `json:"search_filter"`
	StartTLS        bool   `json:"start_tls"`
	TimeoutSeconds  int    `json:"timeout_seconds"`
}

type galSyncJSON struct {
	Status     string    `json:"status"`
	Trigger    string    `json:"trigger"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
	DurationMS int64     `json:"duration_ms"`
	Added      int       `json:"added"`
	Changed    int       `json:"changed"`
	Removed    int       `json:"removed"`
	Total      int       `json:"total"`
	Pages      int       `json:"pages"`
	Error      *string   `json:"error"`
}

func renderGAL(row postgres.GALRow, global int) galJSON {
	g := row.GAL
	out := galJSON{Domain: g.Domain, Account: g.Account.String(), Mode: g.Mode, PollingIntervalSeconds: g.PollingIntervalSeconds,
		EffectivePollingIntervalSeconds: int(g.EffectivePollingInterval(global) / time.Second),
		Version:                         row.Version, CreatedAt: row.CreatedAt, UpdatedAt: row.UpdatedAt}
	if x := g.External; x != nil {
		out.External = &galSourceJSON{LDAPURL: x.LDAPURL, BindDN: x.BindDN, HasBindPassword: x.HasBindPassword,
			SearchBase: x.SearchBase, SearchFilter: x.SearchFilter, StartTLS: x.StartTLS, TimeoutSeconds: x.TimeoutSeconds}
	}
	if r := g.LastSync; r != nil {
		out.LastSync = &galSyncJSON{Status: r.Status, Trigger: r.Trigger, StartedAt: r.StartedAt, FinishedAt: r.FinishedAt,
			DurationMS: r.DurationMS, Added: r.Added, Changed: r.Changed, Removed: r.Removed, Total: r.Total, Pages: r.Pages}
		if r.Error != "" {
			out.LastSync.Error = ptrTo(r.Error)
		}
	}
	if r := g.LastSuccess; r != nil {
		out.LastSuccessAt = ptrTo(r.FinishedAt)
	}
	return out
}

// galPath reads {domain} and checks that the caller administers it.
func galPath(r *http.Request) (string, error) {
	name, err := domainName(r)
	if err != nil {
		return "", err
	}
	return name, requireDomainAdmin(principal(r), name)
}

func (s *Server) galView(ctx context.Context, name string) (any, int, error) {
	row, err := s.Reads.GAL(ctx, name)
	if err != nil {
		return nil, 0, err
	}
	cfg, _, err := s.Reads.GlobalConfig(ctx)
	if err != nil {
		return nil, 0, err
	}
	return renderGAL(row, cfg.GALPollingIntervalSeconds), row.Version, nil
}

func (s *Server) getGAL(w http.ResponseWriter, r *http.Request) error {
	name, err := galPath(r)
	if err != nil {
		return err
	}
	return s.readObject(w, r, domain.GALStreamID(name),
		func(ctx context.Context, t time.Time) (any, int, error) { return s.galAsOf(ctx, name, t) },
		func(ctx context.Context) (any, int, error) { return s.galView(ctx, name) })
}

// galAsOf renders the GAL as it stood at t, its effective polling interval resolved against the
// global configuration of that moment.
func (s *Server) galAsOf(ctx context.Context, name string, t time.Time) (any, int, error) {
	g, version, _, updated, err := pastObject[domain.GAL](ctx, s, domain.GALStreamID(name), "GAL of "+name, t)
	if err != nil {
		return nil, 0, err
	}
	cfg, _, _, _, err := pastState[domain.GlobalConfig](ctx, s, domain.GlobalConfigStreamID, t)
	if err != nil {
		return nil, 0, err
	}
	row := postgres.GALRow{Row: postgres.Row{Version: version, CreatedAt: g.CreatedAt, UpdatedAt: updated}, GAL: g}
	return renderGAL(row, cfg.WithDefaults().GALPollingIntervalSeconds), version, nil
}

// galRequest is a PUT of the GAL: the whole configuration. Omitting external.bind_password
// keeps the one set; "" clears it.
type galRequest struct {
	Account                string            `json:"account"`
	Mode                   string            `json:"mode"`
	PollingIntervalSeconds int               `json:"polling_interval_seconds"`
	External               *galSourceRequest `json:"external"`
}

type galSourceRequest struct {
	LDAPURL        string  `json:"ldap_url"`
	BindDN         string  `json:"bind_dn"`
	BindPassword   *string `json:"bind_password"`
	SearchBase     string  `json:"search_base"`
	SearchFilter   string  `json:"search_filter"`
	StartTLS       bool    `json:"start_tls"`
	TimeoutSeconds int     `json:"timeout_seconds"`
}

func (s *Server) putGAL(w http.ResponseWriter, r *http.Request) error {
	name, err := galPath(r)
	if err != nil {
		return err
	}
	body, err := readBody(r)
	if err != nil {
		return err
	}
	var in galRequest
	if err := decodeBytes(body, &in); err != nil {
		return err
	}
	req, err := s.commandRequest(r, body)
	if err != nil {
		return err
	}
	cmd := commands.GALInput{Account: in.Account, Mode: in.Mode, PollingIntervalSeconds: in.PollingIntervalSeconds}
	if x := in.External; x != nil {
		cmd.External = &commands.GALSourceInput{LDAPURL: x.LDAPURL, BindDN: x.BindDN, BindPassword: x.BindPassword,
			SearchBase: x.SearchBase, SearchFilter: x.SearchFilter, StartTLS: x.StartTLS, TimeoutSeconds: x.TimeoutSeconds}
	}
	// Created or replaced, the answer is 200: the API has one success status per operation.
	_, out, err := s.Commands.PutGAL(r.Context(), req, name, cmd)
	if err != nil {
		return err
	}
	return s.respond(w, r, req, out, http.StatusOK, func() (any, int, error) { return s.galView(r.Context(), name) })
}

func (s *Server) deleteGAL(w http.ResponseWriter, r *http.Request) error {
	name, err := galPath(r)
	if err != nil {
		return err
	}
	req, err := s.commandRequest(r, nil)
	if err != nil {
		return err
	}
	out, err := s.Commands.DeleteGAL(r.Context(), req, name)
	if err != nil {
		return err
	}
	return s.respond(w, r, req, out, http.StatusNoContent, nil)
}

// resyncGAL records the request and answers 202 with the resync's job.
func (s *Server) resyncGAL(w http.ResponseWriter, r *http.Request) error {
	name, err := galPath(r)
	if err != nil {
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
	out, err := s.Commands.RequestGALResync(r.Context(), req, name)
	if err != nil {
		return err
	}
	return s.respondJob(w, r, req, out)
}

// GAL search pages: autocomplete shows a few entries and is refined by typing, not paged far.
const (
	galSearchDefaultLimit = 20
	galSearchMaxLimit     = 100
	// galSearchMaxOffset is as deep as paging goes: past it, type more.
	galSearchMaxOffset = 1000
)

type galEntryJSON struct {
	Address     string `json:"address"`
	DisplayName string `json:"display_name"`
	Kind        string `json:"kind"`
}

// searchGAL answers the domain's address book for autocomplete. It reads the read model as it
// stands (no catch-up wait): a keystroke's answer is worth more now than exact.
func (s *Server) searchGAL(w http.ResponseWriter, r *http.Request) error {
	name, err := domainName(r)
	if err != nil {
		return err
	}
	p := principal(r)
	if !administers(p, name) && p.Address.Domain != name {
		return forbidden("you may search the address book of your own domain only")
	}
	q, err := galQuery(r)
	if err != nil {
		return err
	}
	limit := q.Limit
	q.Limit++
	found, err := s.Reads.GALSearch(r.Context(), name, q)
	if err != nil {
		return err
	}
	if len(found) == 0 {
		// Nothing found: say 404 if there is no such domain (one query on this path only, so
		// that a keystroke with matches costs one).
		if _, err := s.Reads.DomainSettings(r.Context(), name); err != nil {
			return err
		}
	}
	items := make([]galEntryJSON, 0, min(len(found), limit))
	var next *string
	for i, e := range found {
		if i == limit {
			if off := q.Offset + limit; off < galSearchMaxOffset {
				c := base64.RawURLEncoding.EncodeToString([]byte("o:" + strconv.Itoa(off)))
				next = &c
			}
			break
		}
		items = append(items, galEntryJSON{Address: e.Address, DisplayName: e.DisplayName, Kind: e.Kind})
	}
	writeJSON(w, http.StatusOK, listPage{Items: items, NextCursor: next})
	return nil
}

// galQuery reads ?q (required), ?limit and ?cursor of a GAL search.
func galQuery(r *http.Request) (postgres.GALQuery, error) {
	v := r.URL.Query()
	q := postgres.GALQuery{Q: v.Get("q"), Limit: galSearchDefaultLimit}
	var fields []FieldError
	switch {
	case strings.TrimSpace(q.Q) == "":
		fields = append(fields, FieldError{Field: "q", Message: "required: what the user typed"})
	case len(q.Q) > 256:
		fields = append(fields, FieldError{Field: "q", Message: "must be at most 256 characters"})
	}
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > galSearchMaxLimit {
			fields = append(fields, FieldError{Field: "limit", Message: "must be an integer from 1 to " + strconv.Itoa(galSearchMaxLimit)})
		}
		q.Limit = n
	}
	if c := v.Get("cursor"); c != "" {
		b, err := base64.RawURLEncoding.DecodeString(c)
		off, perr := strconv.Atoi(strings.TrimPrefix(string(b), "o:"))
		if err != nil || perr != nil || !strings.HasPrefix(string(b), "o:") || off < 0 || off > galSearchMaxOffset {
			fields = append(fields, FieldError{Field: "cursor", Message: "is not a cursor this API returned"})
		}
		q.Offset = off
	}
	if len(fields) > 0 {
		return q, &Error{Status: http.StatusBadRequest, Type: "validation", Detail: "the search has invalid parameters", Fields: fields}
	}
	return q, nil
}
