package api

import (
	"encoding/base64"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"mailplane/domain"
)

// Mailbox limits (API.md): the mail store reports usage with a service token of role
// mailstore; administrators read it against the effective limits; global administrators make
// and revoke the service tokens.
func (s *Server) routeUsage(r *mux.Router) {
	r.Handle("/usage", s.handle(s.reportUsage)).Methods(http.MethodPost)
	r.Handle("/domains/{domain}/quota", s.handle(s.domainQuota)).Methods(http.MethodGet)
	r.Handle("/service-tokens", s.handle(s.createServiceToken)).Methods(http.MethodPost)
	r.Handle("/service-tokens/{id}", s.handle(s.revokeServiceToken)).Methods(http.MethodDelete)
}

// usagePath is the one endpoint a service token may call.
const usagePath = "/api/v1/usage"

// serviceMayCall says whether a service token of the role may make the request: a mailstore
// token reports usage and does nothing else.
func serviceMayCall(role string, r *http.Request) bool {
	return role == domain.RoleMailstore && r.Method == http.MethodPost && r.URL.Path == usagePath
}

type usageReportJSON struct {
	Address   string `json:"address"`
	UsedBytes int64  `json:"used_bytes"`
}

type usageRequest struct {
	Reports []usageReportJSON `json:"reports"`
}

type usageResponse struct {
	Stored   int      `json:"stored"`
	Unknown  []string `json:"unknown"`
	Warnings int      `json:"warnings"`
}

// reportUsage stores a batch of usage reports. Reports of addresses that are no account are
// skipped and listed in unknown (the rest of the batch is stored: an account deleted since the
// mail store last looked must not hold back everyone else's usage). warnings counts the warning
// lines the batch crossed.
func (s *Server) reportUsage(w http.ResponseWriter, r *http.Request) error {
	if p := principal(r); p.Role != domain.RoleMailstore {
		return forbidden("only a service token with role mailstore reports usage (POST /api/v1/service-tokens)")
	}
	var in usageRequest
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	raw := make([]domain.RawUsageReport, len(in.Reports))
	for i, x := range in.Reports {
		raw[i] = domain.RawUsageReport{Address: x.Address, UsedBytes: x.UsedBytes}
	}
	// Accounts are read from the read models: let them hold every event of the reported
	// accounts committed before this request, so that an account created a moment ago is not
	// reported unknown. Only those accounts' streams, not every stream: the mail store's
	// reports need not wait for other accounts' changes. Limits need no wait: a limit changed
	// meanwhile is judged again by the projection when it applies the change (quotaLock).
	if err := s.catchUpStreams(r, usageStreams(raw)); err != nil {
		return err
	}
	out, err := s.Commands.ReportUsage(r.Context(), raw)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, usageResponse{Stored: out.Stored, Unknown: out.Unknown, Warnings: out.Warnings})
	return nil
}

// usageStreams are the account streams of the reports' addresses; none for a batch that does not
// parse (ReportUsage refuses it).
func usageStreams(raw []domain.RawUsageReport) []string {
	reports, err := domain.ParseUsageReports(raw)
	if err != nil {
		return nil
	}
	ids := make([]string, len(reports))
	for i, x := range reports {
		ids[i] = domain.AccountStreamID(x.Address)
	}
	return ids
}

type domainQuotaJSON struct {
	Name          string     `json:"name"`
	UsedBytes     int64      `json:"used_bytes"`
	LimitBytes    int64      `json:"limit_bytes"`
	Percent       *float64   `json:"percent"`
	WarnPercent   int        `json:"warn_percent"`
	WarnRecipient *string    `json:"warn_recipient"`
	ReportedAt    *time.Time `json:"reported_at"`
}

type accountQuotaJSON struct {
	Address     string     `json:"address"`
	UsedBytes   int64      `json:"used_bytes"`
	LimitBytes  int64      `json:"limit_bytes"`
	Percent     *float64   `json:"percent"`
	WarnPercent int        `json:"warn_percent"`
	ReportedAt  *time.Time `json:"reported_at"`
}

type quotaResponse struct {
	Domain     domainQuotaJSON    `json:"domain"`
	Items      []accountQuotaJSON `json:"items"`
	NextCursor *string            `json:"next_cursor"`
}

// domainQuota answers the domain's limit and total usage, and a page of its accounts with
// their usage and effective limits, highest percent first. An account never reported shows 0
// bytes and no reported_at; one without a limit has percent null and comes last.
func (s *Server) domainQuota(w http.ResponseWriter, r *http.Request) error {
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
	if err := s.catchUp(r, ""); err != nil {
		return err
	}
	ctx := r.Context()
	d, err := s.Reads.DomainSettings(ctx, name)
	if err != nil {
		return err
	}
	g, _, err := s.Reads.GlobalConfig(ctx)
	if err != nil {
		return err
	}
	rows, err := s.Reads.QuotaAccounts(ctx, g, name, q.Limit+1, q.After)
	if err != nil {
		return err
	}
	usage, err := s.Reads.DomainUsage(ctx, name)
	if err != nil {
		return err
	}
	eff := domain.EffectiveDomain(g, d)
	dq := domainQuotaJSON{Name: name, UsedBytes: usage.UsedBytes, LimitBytes: eff.Values["domain_quota_bytes"].(int64),
		WarnPercent: eff.Values["warn_percent"].(int), ReportedAt: usage.ReportedAt}
	if dq.LimitBytes > 0 {
		p := float64(int64(float64(dq.UsedBytes)*10000/float64(dq.LimitBytes)+0.5)) / 100
		dq.Percent = &p
	}
	if rcpt := d.Limits.WarnRecipient; rcpt != "" {
		dq.WarnRecipient = &rcpt
	}
	out := quotaResponse{Domain: dq, Items: make([]accountQuotaJSON, 0, min(len(rows), q.Limit))}
	for i, a := range rows {
		if i == q.Limit {
			c := base64.RawURLEncoding.EncodeToString([]byte(rows[i-1].QuotaCursor()))
			out.NextCursor = &c
			break
		}
		out.Items = append(out.Items, accountQuotaJSON{Address: a.Address, UsedBytes: a.UsedBytes, LimitBytes: a.LimitBytes,
			Percent: a.Percent, WarnPercent: a.WarnPercent, ReportedAt: a.ReportedAt})
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, out)
	return nil
}

type serviceTokenRequest struct {
	Name string `json:"name"`
	Role string `json:"role"`
}

type serviceTokenJSON struct {
	ID        string    `json:"id"`
	Token     string    `json:"token"`
	Name      string    `json:"name"`
	Role      string    `json:"role"`
	CreatedAt time.Time `json:"created_at"`
}

// createServiceToken makes a service token (global administrators). The token is in this
// answer only. An Idempotency-Key is not honoured here: replaying the answer would mean
// keeping the token; a retried request makes a second token, and the first can be revoked.
func (s *Server) createServiceToken(w http.ResponseWriter, r *http.Request) error {
	if err := requireGlobalAdmin(principal(r)); err != nil {
		return err
	}
	var in serviceTokenRequest
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	req, err := s.commandRequest(r, nil)
	if err != nil {
		return err
	}
	req.Meta.IdempotencyKey, req.Meta.RequestHash = "", nil
	t, _, err := s.Commands.CreateServiceToken(r.Context(), req, in.Name, in.Role)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Location", "/api/v1/service-tokens/"+t.ID)
	writeJSON(w, http.StatusCreated, serviceTokenJSON{ID: t.ID, Token: t.Token, Name: t.Name, Role: t.Role, CreatedAt: t.CreatedAt})
	return nil
}

// revokeServiceToken ends a service token at once (global administrators); 404 for an unknown
// id, 204 again for one already revoked.
func (s *Server) revokeServiceToken(w http.ResponseWriter, r *http.Request) error {
	if err := requireGlobalAdmin(principal(r)); err != nil {
		return err
	}
	req, err := s.commandRequest(r, nil)
	if err != nil {
		return err
	}
	if _, err := s.Commands.RevokeServiceToken(r.Context(), req, mux.Vars(r)["id"]); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
