package api

import (
	"context"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"mailplane/commands"
	"mailplane/domain"
	"mailplane/projections/postgres"
)

func (s *Server) routeVirtualHosts(r *mux.Router) {
	const vh = "/domains/{domain}/virtual-hosts"
	r.Handle(vh, s.handle(s.listVirtualHosts)).Methods(http.MethodGet)
	r.Handle(vh, s.handle(s.addVirtualHost)).Methods(http.MethodPost)
	r.Handle(vh+"/{host}", s.handle(s.getVirtualHost)).Methods(http.MethodGet)
	r.Handle(vh+"/{host}", s.handle(s.removeVirtualHost)).Methods(http.MethodDelete)
	r.Handle(vh+"/{host}/certificate", s.handle(s.getCertificate)).Methods(http.MethodGet)
	r.Handle(vh+"/{host}/certificate", s.handle(s.installCertificate)).Methods(http.MethodPut)
	r.Handle(vh+"/{host}/certificate", s.handle(s.removeCertificate)).Methods(http.MethodDelete)
	r.Handle(vh+"/{host}/certificate/verify", s.handle(s.verifyCertificate)).Methods(http.MethodPost)
	r.Handle(vh+"/{host}/certificate/download", s.handle(s.downloadCertificate)).Methods(http.MethodGet)
	r.Handle(vh+"/{host}/certificate/acme", s.handle(s.requestACMECertificate)).Methods(http.MethodPost)
}

// virtualHostJSON is a virtual host as the API shows it.
type virtualHostJSON struct {
	Host        string          `json:"host"`
	UnicodeHost string          `json:"unicode_host"`
	Domain      string          `json:"domain"`
	Certificate certificateJSON `json:"certificate"`
	Version     int             `json:"version"`
	CreatedAt   time.Time       `json:"created_at"`
	UpdatedAt   time.Time       `json:"updated_at"`
}

// certificateJSON is a virtual host's certificate status. The certificate's own members are
// null when none is installed.
type certificateJSON struct {
	Host   string  `json:"host"`
	Status string  `json:"status"`
	Source *string `json:"source"`
	*certificateInfoJSON
	InstalledAt *time.Time `json:"installed_at"`
	// RenewalDueAt is when an ACME certificate renews (null for custom ones).
	RenewalDueAt         *time.Time    `json:"renewal_due_at"`
	RenewalFailures      int           `json:"renewal_failures"`
	NextRenewalAttemptAt *time.Time    `json:"next_renewal_attempt_at"`
	Issuance             *issuanceJSON `json:"issuance"`
	LastFailure          *failureJSON  `json:"last_failure"`
	FailuresLastHour     int           `json:"failures_last_hour"`
	RetryAfter           int           `json:"retry_after"`
	Version              int           `json:"version"`
}

type certificateInfoJSON struct {
	Subject     *string    `json:"subject"`
	Issuer      *string    `json:"issuer"`
	SANs        []string   `json:"sans"`
	Serial      *string    `json:"serial"`
	Fingerprint *string    `json:"fingerprint_sha256"`
	KeyType     *string    `json:"key_type"`
	NotBefore   *time.Time `json:"not_before"`
	NotAfter    *time.Time `json:"not_after"`
	ChainLength *int       `json:"chain_length"`
	ChainRoot   *string    `json:"chain_root"`
}

type issuanceJSON struct {
	State       string    `json:"state"`
	RequestID   string    `json:"request_id"`
	Chain       string    `json:"chain"`
	Renewal     bool      `json:"renewal"`
	RequestedAt time.Time `json:"requested_at"`
	RequestedBy string    `json:"requested_by"`
}

type failureJSON struct {
	At      time.Time `json:"at"`
	Renewal bool      `json:"renewal"`
	Errors  []string  `json:"errors"`
}

// Certificate statuses.
const (
	certNone       = "none"
	certValid      = "valid"
	certRenewalDue = "renewal_due"
	certExpired    = "expired"
)

func ptrTo[T any](v T) *T { return &v }

func renderCertificate(v domain.VirtualHost, version int, now time.Time) certificateJSON {
	out := certificateJSON{Host: v.Host, Status: certNone, Version: version,
		certificateInfoJSON: &certificateInfoJSON{}}
	if c := v.Certificate; c != nil {
		out.Source = ptrTo(c.Source)
		out.certificateInfoJSON = &certificateInfoJSON{Subject: ptrTo(c.Subject), Issuer: ptrTo(c.Issuer), SANs: c.SANs,
			Serial: ptrTo(c.Serial), Fingerprint: ptrTo(c.Fingerprint), KeyType: ptrTo(c.KeyType),
			NotBefore: ptrTo(c.NotBefore), NotAfter: ptrTo(c.NotAfter), ChainLength: ptrTo(c.ChainLength), ChainRoot: ptrTo(c.ChainRoot)}
		out.InstalledAt = ptrTo(c.InstalledAt)
		out.Status = certValid
		if c.Source == domain.SourceACME {
			out.RenewalDueAt = ptrTo(c.RenewalDue())
			if !now.Before(c.RenewalDue()) {
				out.Status = certRenewalDue
			}
		}
		if now.After(c.NotAfter) {
			out.Status = certExpired
		}
		out.RenewalFailures = v.Renewal.Failures
		if !v.Renewal.NextAttemptAt.IsZero() {
			out.NextRenewalAttemptAt = ptrTo(v.Renewal.NextAttemptAt)
		}
	}
	if i := v.Issuance; i != nil {
		out.Issuance = &issuanceJSON{State: "pending", RequestID: i.RequestID, Chain: i.Chain, Renewal: i.Renewal,
			RequestedAt: i.RequestedAt, RequestedBy: i.RequestedBy}
	}
	if f := v.LastFailure; f != nil {
		out.LastFailure = &failureJSON{At: f.At, Renewal: f.Renewal, Errors: f.Errors}
	}
	out.FailuresLastHour = v.FailuresSince(now.Add(-domain.IssuanceFailureWindow))
	if wait := v.RetryAfter(now); wait > 0 {
		out.RetryAfter = int((wait + time.Second - 1) / time.Second)
	}
	return out
}

func renderVirtualHost(row postgres.VirtualHostRow, now time.Time) virtualHostJSON {
	v := row.VirtualHost
	return virtualHostJSON{Host: v.Host, UnicodeHost: v.UnicodeHost, Domain: v.Domain,
		Certificate: renderCertificate(v, row.Version, now), Version: row.Version, CreatedAt: row.CreatedAt, UpdatedAt: row.UpdatedAt}
}

// hostName reads {host} from the path in its stored form (Unicode accepted).
func hostName(r *http.Request) (string, error) {
	h, err := commands.NormalizeHost(mux.Vars(r)["host"])
	if err != nil {
		return "", errorf(http.StatusNotFound, "not-found", "no virtual host %q", mux.Vars(r)["host"])
	}
	return h, nil
}

// virtualHostPath reads {domain} and {host} and checks that the caller administers the domain.
func virtualHostPath(r *http.Request) (string, string, error) {
	name, err := domainName(r)
	if err != nil {
		return "", "", err
	}
	if err := requireDomainAdmin(principal(r), name); err != nil {
		return "", "", err
	}
	host, err := hostName(r)
	if err != nil {
		return "", "", err
	}
	return name, host, nil
}

func (s *Server) virtualHostView(ctx context.Context, domainName, host string) (any, int, error) {
	row, err := s.Reads.VirtualHost(ctx, domainName, host)
	if err != nil {
		return nil, 0, err
	}
	return renderVirtualHost(row, s.now()), row.Version, nil
}

// virtualHostAsOf folds a virtual host's stream up to t. Its certificate's status is then judged
// at t too: as_of shows what an administrator would have seen then.
func (s *Server) virtualHostAsOf(ctx context.Context, domainName, host string, t time.Time) (postgres.VirtualHostRow, error) {
	v, version, _, updated, err := pastObject[domain.VirtualHost](ctx, s, domain.VirtualHostStreamID(domainName, host),
		"virtual host "+host+" of "+domainName, t)
	if err != nil {
		return postgres.VirtualHostRow{}, err
	}
	return postgres.VirtualHostRow{Row: postgres.Row{Version: version, CreatedAt: v.CreatedAt, UpdatedAt: updated}, VirtualHost: v}, nil
}

func (s *Server) certificateView(ctx context.Context, domainName, host string) (any, int, error) {
	row, err := s.Reads.VirtualHost(ctx, domainName, host)
	if err != nil {
		return nil, 0, err
	}
	return renderCertificate(row.VirtualHost, row.Version, s.now()), row.Version, nil
}

func (s *Server) listVirtualHosts(w http.ResponseWriter, r *http.Request) error {
	rows, limit, err := domainListing(s, r, s.Reads.ListVirtualHosts)
	if err != nil {
		return err
	}
	now := s.now()
	writeJSON(w, http.StatusOK, pageOf(rows, limit, func(v postgres.VirtualHostRow) string { return v.VirtualHost.Host },
		func(v postgres.VirtualHostRow) virtualHostJSON { return renderVirtualHost(v, now) }))
	return nil
}

type virtualHostRequest struct {
	Host string `json:"host"`
}

func (s *Server) addVirtualHost(w http.ResponseWriter, r *http.Request) error {
	name, err := domainName(r)
	if err != nil {
		return err
	}
	if err := requireDomainAdmin(principal(r), name); err != nil {
		return err
	}
	body, err := readBody(r)
	if err != nil {
		return err
	}
	var in virtualHostRequest
	if err := decodeBytes(body, &in); err != nil {
		return err
	}
	req, err := s.commandRequest(r, body)
	if err != nil {
		return err
	}
	host, out, err := s.Commands.AddVirtualHost(r.Context(), req, name, in.Host)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/domains/"+name+"/virtual-hosts/"+host)
	return s.respond(w, r, req, out, http.StatusCreated, func() (any, int, error) { return s.virtualHostView(r.Context(), name, host) })
}

func (s *Server) getVirtualHost(w http.ResponseWriter, r *http.Request) error {
	name, host, err := virtualHostPath(r)
	if err != nil {
		return err
	}
	return s.readObject(w, r, domain.VirtualHostStreamID(name, host),
		func(ctx context.Context, t time.Time) (any, int, error) {
			row, err := s.virtualHostAsOf(ctx, name, host, t)
			if err != nil {
				return nil, 0, err
			}
			return renderVirtualHost(row, t), row.Version, nil
		},
		func(ctx context.Context) (any, int, error) { return s.virtualHostView(ctx, name, host) })
}

func (s *Server) removeVirtualHost(w http.ResponseWriter, r *http.Request) error {
	name, host, err := virtualHostPath(r)
	if err != nil {
		return err
	}
	req, err := s.commandRequest(r, nil)
	if err != nil {
		return err
	}
	out, err := s.Commands.RemoveVirtualHost(r.Context(), req, name, host)
	if err != nil {
		return err
	}
	return s.respond(w, r, req, out, http.StatusNoContent, nil)
}
