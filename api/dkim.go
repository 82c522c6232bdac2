package api

import (
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"mailplane/commands"
	"mailplane/domain"
)

func (s *Server) routeDKIM(r *mux.Router) {
	const p = "/domains/{domain}/dkim"
	r.Handle(p, s.handle(s.getDKIM)).Methods(http.MethodGet)
	r.Handle(p, s.handle(s.addDKIMKey)).Methods(http.MethodPost)
	r.Handle(p+"/rotate", s.handle(s.rotateDKIMKey)).Methods(http.MethodPost)
	r.Handle(p+"/{selector}", s.handle(s.removeDKIMKey)).Methods(http.MethodDelete)
}

// dkimJSON is a domain's DKIM keys as the API shows them: never a private key.
type dkimJSON struct {
	Domain string `json:"domain"`
	// Selector is the active key's, null when the domain signs with none.
	Selector *string       `json:"selector"`
	Keys     []dkimKeyJSON `json:"keys"`
	Version  int           `json:"version"`
}

type dkimKeyJSON struct {
	Selector   string         `json:"selector"`
	Algorithm  string         `json:"algorithm"`
	State      string         `json:"state"`
	Published  bool           `json:"published"`
	DNS        dkimRecordJSON `json:"dns"`
	CreatedAt  time.Time      `json:"created_at"`
	RetireAt   *time.Time     `json:"retire_at"`
	RetiredAt  *time.Time     `json:"retired_at"`
	ReplacedBy *string        `json:"replaced_by"`
}

// dkimRecordJSON is the TXT record to publish. Strings is the value cut into the at most
// 255-byte character-strings one TXT record is made of (RFC 1035 §3.3.14), for the DNS
// providers and zone files that want them apart; verifiers join them back.
type dkimRecordJSON struct {
	Name    string   `json:"name"`
	Type    string   `json:"type"`
	Value   string   `json:"value"`
	Strings []string `json:"strings"`
}

func txtStrings(v string) []string {
	var out []string
	for len(v) > 255 {
		out = append(out, v[:255])
		v = v[255:]
	}
	return append(out, v)
}

func renderDKIM(d domain.DKIMKeys, version int) dkimJSON {
	out := dkimJSON{Domain: d.Domain, Keys: []dkimKeyJSON{}, Version: version}
	for _, k := range d.Keys {
		j := dkimKeyJSON{Selector: k.Selector, Algorithm: k.Algorithm, State: k.State, Published: k.Published(),
			DNS:       dkimRecordJSON{Name: k.RecordName(d.Domain), Type: "TXT", Value: k.RecordValue(), Strings: txtStrings(k.RecordValue())},
			CreatedAt: k.CreatedAt, RetireAt: k.RetireAt, RetiredAt: k.RetiredAt}
		if k.ReplacedBy != "" {
			j.ReplacedBy = ptrTo(k.ReplacedBy)
		}
		if k.State == domain.DKIMActive {
			out.Selector = ptrTo(k.Selector)
		}
		out.Keys = append(out.Keys, j)
	}
	return out
}

// dkimDomain reads {domain} and checks that the caller administers it.
func dkimDomain(r *http.Request) (string, error) {
	name, err := domainName(r)
	if err != nil {
		return "", err
	}
	if err := requireDomainAdmin(principal(r), name); err != nil {
		return "", err
	}
	return name, nil
}

func (s *Server) dkimView(r *http.Request, name string) func() (any, int, error) {
	return func() (any, int, error) {
		d, version, err := s.Commands.DKIMKeys(r.Context(), name)
		if err != nil {
			return nil, 0, err
		}
		return renderDKIM(d, version), version, nil
	}
}

func (s *Server) getDKIM(w http.ResponseWriter, r *http.Request) error {
	name, err := dkimDomain(r)
	if err != nil {
		return err
	}
	// Read from the stream itself: the keys are shown as the last write left them.
	v, version, err := s.dkimView(r, name)()
	if err != nil {
		return err
	}
	w.Header().Set("ETag", etag(version))
	writeJSON(w, http.StatusOK, v)
	return nil
}

// dkimKeyRequest asks for a new key; grace_period_seconds only on rotation.
type dkimKeyRequest struct {
	Selector           string `json:"selector"`
	Algorithm          string `json:"algorithm"`
	GracePeriodSeconds *int64 `json:"grace_period_seconds,omitempty"`
}

func (s *Server) dkimWrite(w http.ResponseWriter, r *http.Request, rotate bool) error {
	name, err := dkimDomain(r)
	if err != nil {
		return err
	}
	body, err := readBody(r)
	if err != nil {
		return err
	}
	var in dkimKeyRequest
	if err := decodeBytes(body, &in); err != nil {
		return err
	}
	req, err := s.commandRequest(r, body)
	if err != nil {
		return err
	}
	kr := commands.DKIMKeyRequest{Selector: in.Selector, Algorithm: in.Algorithm}
	var out commands.Outcome
	if rotate {
		if in.GracePeriodSeconds != nil {
			if *in.GracePeriodSeconds <= 0 {
				// 0 would mean "the default" below; say so instead of guessing.
				req.Invalid = append(req.Invalid, domain.FieldError{Field: "grace_period_seconds", Message: "must be positive"})
			} else {
				kr.Grace = time.Duration(min(*in.GracePeriodSeconds, int64(domain.MaxDKIMGrace/time.Second)+1)) * time.Second
			}
		}
		out, err = s.Commands.RotateDKIMKey(r.Context(), req, name, kr)
	} else {
		if in.GracePeriodSeconds != nil {
			req.Invalid = append(req.Invalid, domain.FieldError{Field: "grace_period_seconds", Message: "only a rotation has a grace period"})
		}
		out, err = s.Commands.AddDKIMKey(r.Context(), req, name, kr)
	}
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/domains/"+name+"/dkim")
	return s.respondNow(w, r, req, out, http.StatusCreated, s.dkimView(r, name))
}

func (s *Server) addDKIMKey(w http.ResponseWriter, r *http.Request) error {
	return s.dkimWrite(w, r, false)
}
func (s *Server) rotateDKIMKey(w http.ResponseWriter, r *http.Request) error {
	return s.dkimWrite(w, r, true)
}

func (s *Server) removeDKIMKey(w http.ResponseWriter, r *http.Request) error {
	name, err := dkimDomain(r)
	if err != nil {
		return err
	}
	req, err := s.commandRequest(r, nil)
	if err != nil {
		return err
	}
	out, err := s.Commands.RemoveDKIMKey(r.Context(), req, name, mux.Vars(r)["selector"])
	if err != nil {
		return err
	}
	return s.respondNow(w, r, req, out, http.StatusNoContent, nil)
}
