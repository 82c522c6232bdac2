package api

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/gorilla/mux"

	"mailplane/commands"
	"mailplane/domain"
	"mailplane/projections/postgres"
)

// Resources are their domain's administrators' (and global administrators') to read and
// change; nobody logs in as one.
func (s *Server) routeResources(r *mux.Router) {
	r.Handle("/domains/{domain}/resources", s.handle(s.listResources)).Methods(http.MethodGet)
	r.Handle("/domains/{domain}/resources", s.handle(s.createResource)).Methods(http.MethodPost)
	r.Handle("/resources/{address}", s.handle(s.getResource)).Methods(http.MethodGet)
	r.Handle("/resources/{address}/history", s.handle(s.objectHistory("resource", domain.ResourceStreamID))).Methods(http.MethodGet)
	r.Handle("/resources/{address}", s.handle(s.patchResource)).Methods(http.MethodPatch)
	r.Handle("/resources/{address}", s.handle(s.deleteResource)).Methods(http.MethodDelete)
	r.Handle("/resources/{address}/aliases", s.handle(s.addResourceAlias)).Methods(http.MethodPost)
	r.Handle("/resources/{address}/aliases/{alias}", s.handle(s.removeResourceAlias)).Methods(http.MethodDelete)
}

// resourceJSON is a resource as the API shows it.
type resourceJSON struct {
	Address         string    `json:"address"`
	UnicodeAddress  string    `json:"unicode_address"`
	LocalPart       string    `json:"local_part"`
	Domain          string    `json:"domain"`
	DisplayName     string    `json:"display_name"`
	Type            string    `json:"type"`
	Capacity        int       `json:"capacity"`
	Location        string    `json:"location"`
	BookingPolicy   string    `json:"booking_policy"`
	MaxConflicts    int       `json:"max_conflicts"`
	NotifyAddresses []string  `json:"notify_addresses"`
	Aliases         []string  `json:"aliases"`
	Version         int       `json:"version"`
	CreatedAt       time.Time `json:"created_at"`
	UpdatedAt       time.Time `json:"updated_at"`
}

func renderResource(row postgres.ResourceRow) resourceJSON {
	x := row.Resource
	return resourceJSON{
		Address: x.Address.String(), UnicodeAddress: unicodeAddress(x.Address), LocalPart: x.Address.Local,
		Domain: x.Address.Domain, DisplayName: x.DisplayName, Type: x.Type, Capacity: x.Capacity, Location: x.Location,
		BookingPolicy: x.BookingPolicy, MaxConflicts: x.MaxConflicts, NotifyAddresses: addressStrings(x.NotifyAddresses),
		Aliases: addressStrings(x.Aliases), Version: row.Version, CreatedAt: row.CreatedAt, UpdatedAt: row.UpdatedAt,
	}
}

func resourcePath(a domain.Address) string { return "/api/v1/resources/" + url.PathEscape(a.String()) }

// administeredResource reads the resource's address from the path and checks that the caller
// administers its domain: an address that cannot be one is 404 before anyone is told 403.
func administeredResource(r *http.Request) (domain.Address, error) {
	addr, err := pathObject(r, "address", "resource")
	if err != nil {
		return domain.Address{}, err
	}
	if err := requireDomainAdmin(principal(r), addr.Domain); err != nil {
		return domain.Address{}, err
	}
	return addr, nil
}

func (s *Server) resourceView(ctx context.Context, addr domain.Address) (any, int, error) {
	row, err := s.Reads.Resource(ctx, addr.String())
	if err != nil {
		return nil, 0, err
	}
	return renderResource(row), row.Version, nil
}

// writtenResource renders a resource as the command left it (see writtenList).
func (s *Server) writtenResource(r *http.Request, out commands.Outcome, addr domain.Address) func() (any, int, error) {
	return func() (any, int, error) {
		v := out.Resource
		if v == nil {
			if err := s.catchUp(r, domain.ResourceStreamID(addr)); err != nil {
				return nil, 0, err
			}
			return s.resourceView(r.Context(), addr)
		}
		current := func() (postgres.Row, error) {
			cur, err := s.Reads.Resource(r.Context(), addr.String())
			return cur.Row, err
		}
		row := postgres.ResourceRow{Resource: v.Resource, Row: writtenRow(out, v.Version, v.Resource.CreatedAt, current)}
		return renderResource(row), v.Version, nil
	}
}

func (s *Server) listResources(w http.ResponseWriter, r *http.Request) error {
	rows, limit, err := domainListing(s, r, s.Reads.ListResources)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, pageOf(rows, limit, func(x postgres.ResourceRow) string { return x.Resource.Address.String() },
		renderResource))
	return nil
}

// resourceFields are the members of a new resource and of a PATCH. signature is read only to be
// refused by the command: a resource has none.
var resourceFields = []string{"address", "display_name", "type", "capacity", "location", "booking_policy",
	"max_conflicts", "notify_addresses", "signature"}

// signatureGiven records a signature member, whatever its value, for the command to refuse.
func signatureGiven(doc *patchDoc) *string {
	if doc.has("signature") {
		return new(string)
	}
	return nil
}

func (s *Server) createResource(w http.ResponseWriter, r *http.Request) error {
	name, err := domainName(r)
	if err != nil {
		return err
	}
	if err := requireDomainAdmin(principal(r), name); err != nil {
		return err
	}
	body, doc, err := readPatch(r, resourceFields...)
	if err != nil {
		return err
	}
	cmd := domain.CreateResource{
		Address:         deref(patchValue[string](&doc, "address")),
		DisplayName:     deref(patchValue[string](&doc, "display_name")),
		Type:            deref(patchValue[string](&doc, "type")),
		Capacity:        patchField[int](&doc, "capacity"),
		Location:        deref(patchValue[string](&doc, "location")),
		BookingPolicy:   deref(patchValue[string](&doc, "booking_policy")),
		MaxConflicts:    patchField[int](&doc, "max_conflicts"),
		NotifyAddresses: deref(patchField[[]string](&doc, "notify_addresses")),
		Signature:       signatureGiven(&doc),
	}
	req, err := s.commandRequest(r, body)
	if err != nil {
		return err
	}
	// Fields of the wrong type are reported with whatever else the command finds wrong.
	req.Invalid = doc.fieldErrors()
	out, err := s.Commands.CreateResource(r.Context(), req, name, cmd)
	if err != nil {
		return err
	}
	addr, err := domain.ParseAddress(cmd.Address) // valid: the command took it
	if err != nil {
		return err
	}
	w.Header().Set("Location", resourcePath(addr))
	return s.respondNow(w, r, req, out, http.StatusCreated, s.writtenResource(r, out, addr))
}

func (s *Server) getResource(w http.ResponseWriter, r *http.Request) error {
	addr, err := administeredResource(r)
	if err != nil {
		return err
	}
	return s.readObject(w, r, domain.ResourceStreamID(addr),
		func(ctx context.Context, t time.Time) (any, int, error) { return s.resourceAsOf(ctx, addr, t) },
		func(ctx context.Context) (any, int, error) { return s.resourceView(ctx, addr) })
}

// resourceAsOf renders a resource as it stood at t.
func (s *Server) resourceAsOf(ctx context.Context, addr domain.Address, t time.Time) (any, int, error) {
	x, version, _, updated, err := pastObject[domain.Resource](ctx, s, domain.ResourceStreamID(addr), "resource "+addr.String(), t)
	if err != nil {
		return nil, 0, err
	}
	row := postgres.ResourceRow{Resource: x, Row: postgres.Row{Version: version, CreatedAt: x.CreatedAt, UpdatedAt: updated}}
	return renderResource(row), version, nil
}

// patchResource changes a resource (JSON merge patch): null on display_name or location empties
// it, on capacity or max_conflicts is 0, on notify_addresses removes them all; type and
// booking_policy cannot be null.
func (s *Server) patchResource(w http.ResponseWriter, r *http.Request) error {
	addr, err := administeredResource(r)
	if err != nil {
		return err
	}
	body, doc, err := readPatch(r, resourceFields...)
	if err != nil {
		return err
	}
	if doc.has("address") {
		*doc.errs = append(*doc.errs, FieldError{Field: "address", Message: "a resource's address cannot change; create another resource"})
	}
	cmd := domain.UpdateResource{
		DisplayName:   patchValue[string](&doc, "display_name"),
		Type:          patchValue[string](&doc, "type"),
		Capacity:      patchValue[int](&doc, "capacity"),
		Location:      patchValue[string](&doc, "location"),
		BookingPolicy: patchValue[string](&doc, "booking_policy"),
		MaxConflicts:  patchValue[int](&doc, "max_conflicts"),
		Signature:     signatureGiven(&doc),
	}
	cmd.NotifyAddresses = patchSet(&doc, "notify_addresses")
	req, err := s.commandRequest(r, body)
	if err != nil {
		return err
	}
	// Fields of the wrong type are reported with whatever else the command finds wrong.
	req.Invalid = doc.fieldErrors()
	out, err := s.Commands.UpdateResource(r.Context(), req, addr, cmd)
	if err != nil {
		return err
	}
	return s.respondNow(w, r, req, out, http.StatusOK, s.writtenResource(r, out, addr))
}

func (s *Server) deleteResource(w http.ResponseWriter, r *http.Request) error {
	addr, err := administeredResource(r)
	if err != nil {
		return err
	}
	req, err := s.commandRequest(r, nil)
	if err != nil {
		return err
	}
	out, err := s.Commands.DeleteResource(r.Context(), req, addr)
	if err != nil {
		return err
	}
	return s.respondNow(w, r, req, out, http.StatusNoContent, nil)
}

// addResourceAlias gives a resource another address {"alias"}, in a domain the caller
// administers too; it answers the resource.
func (s *Server) addResourceAlias(w http.ResponseWriter, r *http.Request) error {
	addr, err := administeredResource(r)
	if err != nil {
		return err
	}
	p := principal(r)
	body, doc, err := readPatch(r, "alias")
	if err != nil {
		return err
	}
	alias := deref(patchValue[string](&doc, "alias"))
	if a, err := domain.ParseAddress(alias); err == nil {
		if err := requireDomainAdmin(p, a.Domain); err != nil {
			return err
		}
	}
	req, err := s.commandRequest(r, body)
	if err != nil {
		return err
	}
	req.Invalid = doc.fieldErrors()
	out, err := s.Commands.AddResourceAlias(r.Context(), req, addr, alias)
	if err != nil {
		return err
	}
	a, err := domain.ParseAddress(alias) // valid: the command took it
	if err != nil {
		return err
	}
	w.Header().Set("Location", resourcePath(addr)+"/aliases/"+url.PathEscape(a.String()))
	return s.respondNow(w, r, req, out, http.StatusCreated, s.writtenResource(r, out, addr))
}

// removeResourceAlias takes an alias away; administering the resource's domain is enough.
func (s *Server) removeResourceAlias(w http.ResponseWriter, r *http.Request) error {
	addr, err := administeredResource(r)
	if err != nil {
		return err
	}
	alias, err := pathObject(r, "alias", "alias")
	if err != nil {
		return err
	}
	req, err := s.commandRequest(r, nil)
	if err != nil {
		return err
	}
	out, err := s.Commands.RemoveResourceAlias(r.Context(), req, addr, alias)
	if err != nil {
		return err
	}
	return s.respondNow(w, r, req, out, http.StatusNoContent, nil)
}
