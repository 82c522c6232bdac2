package api

import (
	"context"
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

// Who may do what with mailing lists (API.md Conventions, and where it is silent):
//   - Global admins and the domain admins of the list's domain: everything.
//   - An owner of a list (an account named in its owners) who administers nothing there reads
//     the list and its members, and manages its members, its owners and its policies:
//     display_name, description, allowed_senders, subscription_policy, unsubscription_policy.
//     Nothing else: not hide_in_gal (what the whole domain's address book shows is the
//     administrators'), not its aliases (addresses are the administrators' to hand out), not its
//     dynamic mode (a directory query over the domain's accounts), not deleting it, and not
//     listing the domain's lists.
//   - Anyone else: 403, whether the list exists or not, so that its existence is not told.
func (s *Server) routeLists(r *mux.Router) {
	r.Handle("/domains/{domain}/lists", s.handle(s.listLists)).Methods(http.MethodGet)
	r.Handle("/domains/{domain}/lists", s.handle(s.createList)).Methods(http.MethodPost)
	r.Handle("/lists/{address}", s.handle(s.getList)).Methods(http.MethodGet)
	r.Handle("/lists/{address}", s.handle(s.patchList)).Methods(http.MethodPatch)
	r.Handle("/lists/{address}", s.handle(s.deleteList)).Methods(http.MethodDelete)
	r.Handle("/lists/{address}/members", s.handle(s.listMembers)).Methods(http.MethodGet)
	r.Handle("/lists/{address}/history", s.handle(s.objectHistory("list", domain.ListStreamID))).Methods(http.MethodGet)
	r.Handle("/lists/{address}/members", s.handle(s.changeList(listMembers, false))).Methods(http.MethodPost)
	r.Handle("/lists/{address}/members", s.handle(s.changeList(listMembers, true))).Methods(http.MethodDelete)
	r.Handle("/lists/{address}/members/{member}", s.handle(s.removeOne(listMembers))).Methods(http.MethodDelete)
	r.Handle("/lists/{address}/owners", s.handle(s.changeList(listOwners, false))).Methods(http.MethodPost)
	r.Handle("/lists/{address}/owners", s.handle(s.changeList(listOwners, true))).Methods(http.MethodDelete)
	r.Handle("/lists/{address}/owners/{owner}", s.handle(s.removeOne(listOwners))).Methods(http.MethodDelete)
	r.Handle("/lists/{address}/aliases", s.handle(s.changeList(listAliases, false))).Methods(http.MethodPost)
	r.Handle("/lists/{address}/aliases", s.handle(s.changeList(listAliases, true))).Methods(http.MethodDelete)
	r.Handle("/lists/{address}/aliases/{alias}", s.handle(s.removeOne(listAliases))).Methods(http.MethodDelete)
	r.Handle("/lists/{address}/dynamic", s.handle(s.makeListDynamic)).Methods(http.MethodPut)
	r.Handle("/lists/{address}/dynamic", s.handle(s.makeListStatic)).Methods(http.MethodDelete)
}

// MemberSource finds the members of dynamic lists by running their queries against the
// directory. Without one, a dynamic list's members answer 501.
type MemberSource interface {
	// DynamicMembers returns the addresses the list's query finds, ordered by address, after
	// q.After and containing q.Q (case-insensitive) when set, at most q.Limit of them. The
	// handler asks for one more than it shows, to know whether there is a next page.
	DynamicMembers(ctx context.Context, list domain.MailingList, q postgres.ListQuery) ([]string, error)
}

// listJSON is a mailing list as the API shows it. Its members are paged at .../members;
// member_count says how many a static list has (null for a dynamic one: the directory knows).
type listJSON struct {
	Address              string       `json:"address"`
	UnicodeAddress       string       `json:"unicode_address"`
	LocalPart            string       `json:"local_part"`
	Domain               string       `json:"domain"`
	DisplayName          string       `json:"display_name"`
	Description          string       `json:"description"`
	Owners               []string     `json:"owners"`
	AllowedSenders       []string     `json:"allowed_senders"`
	SubscriptionPolicy   string       `json:"subscription_policy"`
	UnsubscriptionPolicy string       `json:"unsubscription_policy"`
	Aliases              []string     `json:"aliases"`
	HideInGAL            bool         `json:"hide_in_gal"`
	Dynamic              *dynamicJSON `json:"dynamic"`
	MemberCount          *int         `json:"member_count"`
	Version              int          `json:"version"`
	CreatedAt            time.Time    `json:"created_at"`
	UpdatedAt            time.Time    `json:"updated_at"`
}

type dynamicJSON struct {
	MemberURL string `json:"member_url"`
	Scope     string `json:"scope"`
	Filter    string `json:"filter"`
}

func renderList(row postgres.ListRow) listJSON {
	l := row.List
	out := listJSON{
		Address: l.Address.String(), UnicodeAddress: unicodeAddress(l.Address), LocalPart: l.Address.Local,
		Domain: l.Address.Domain, DisplayName: l.DisplayName, Description: l.Description,
		Owners: addressStrings(l.Owners), AllowedSenders: addressStrings(l.AllowedSenders),
		SubscriptionPolicy: l.SubscriptionPolicy, UnsubscriptionPolicy: l.UnsubscriptionPolicy,
		Aliases: addressStrings(l.Aliases), HideInGAL: l.HideInGAL,
		Version: row.Version, CreatedAt: row.CreatedAt, UpdatedAt: row.UpdatedAt,
	}
	if l.Dynamic != nil {
		out.Dynamic = &dynamicJSON{MemberURL: l.Dynamic.MemberURL, Scope: l.Dynamic.Scope, Filter: l.Dynamic.Filter}
	} else {
		n := row.MemberCount
		out.MemberCount = &n
	}
	return out
}

func addressStrings(as []domain.Address) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.String()
	}
	return out
}

func unicodeAddress(a domain.Address) string {
	if _, u, err := domain.NormalizeDomainName(a.Domain); err == nil {
		return a.Local + "@" + u
	}
	return a.String()
}

// pathObject reads an address from the path; one that cannot be an address names nothing.
func pathObject(r *http.Request, name, what string) (domain.Address, error) {
	raw := mux.Vars(r)[name]
	a, err := domain.ParseAddress(raw)
	if err != nil {
		return domain.Address{}, errorf(http.StatusNotFound, "not-found", "no %s %q", what, raw)
	}
	return a, nil
}

func listPath(a domain.Address) string { return "/api/v1/lists/" + url.PathEscape(a.String()) }

func (s *Server) listView(ctx context.Context, addr domain.Address) (any, int, error) {
	row, err := s.Reads.List(ctx, addr.String())
	if err != nil {
		return nil, 0, err
	}
	return renderList(row), row.Version, nil
}

// writtenList renders a list as the command that changed it left it; a replayed request (which
// returns no list) reads the read model instead.
func (s *Server) writtenList(r *http.Request, out commands.Outcome, addr domain.Address) func() (any, int, error) {
	return func() (any, int, error) {
		v := out.List
		if v == nil {
			if err := s.catchUp(r, domain.ListStreamID(addr)); err != nil {
				return nil, 0, err
			}
			return s.listView(r.Context(), addr)
		}
		current := func() (postgres.Row, error) {
			cur, err := s.Reads.List(r.Context(), addr.String())
			return cur.Row, err
		}
		row := postgres.ListRow{List: v.List, MemberCount: len(v.List.Members),
			Row: writtenRow(out, v.Version, v.List.CreatedAt, current)}
		return renderList(row), v.Version, nil
	}
}

// listRole is how a caller may act on a list.
type listRole int

const (
	listOwner listRole = iota + 1
	listAdmin
)

// roleOn says whether p acts on the list as an administrator of its domain or as one of its
// owners; anyone else gets 403, whether the list exists or not.
func (s *Server) roleOn(r *http.Request, p commands.Principal, addr domain.Address) (listRole, error) {
	if administers(p, addr.Domain) {
		return listAdmin, nil
	}
	if err := s.catchUp(r, domain.ListStreamID(addr)); err != nil {
		return 0, err
	}
	row, err := s.Reads.List(r.Context(), addr.String())
	switch {
	case err == nil && row.List.IsOwner(p.Address):
		return listOwner, nil
	case err != nil && !errors.Is(err, domain.ErrNotFound):
		return 0, err
	}
	return 0, forbidden("you neither administer the domain %s nor own the list %s", addr.Domain, addr)
}

// administeredList reads the list's address from the path and checks that the caller
// administers its domain; an owner is told that it may not do what (e.g. "delete the list").
func (s *Server) administeredList(r *http.Request, what string) (domain.Address, error) {
	addr, err := pathObject(r, "address", "list")
	if err != nil {
		return domain.Address{}, err
	}
	if role, err := s.roleOn(r, principal(r), addr); err != nil {
		return domain.Address{}, err
	} else if role != listAdmin {
		return domain.Address{}, forbidden("an owner may not %s; ask an administrator of %s", what, addr.Domain)
	}
	return addr, nil
}

func (s *Server) listLists(w http.ResponseWriter, r *http.Request) error {
	rows, limit, err := domainListing(s, r, s.Reads.ListLists)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, pageOf(rows, limit, func(l postgres.ListRow) string { return l.List.Address.String() }, renderList))
	return nil
}

// listCreateFields are the members of a new list.
var listCreateFields = []string{"address", "display_name", "description", "members", "owners", "allowed_senders",
	"subscription_policy", "unsubscription_policy", "hide_in_gal", "dynamic"}

// createList creates a list. Its body is read member by member, so that every mistyped member
// is reported; the values themselves are the command's to check, all at once.
func (s *Server) createList(w http.ResponseWriter, r *http.Request) error {
	name, err := domainName(r)
	if err != nil {
		return err
	}
	if err := requireDomainAdmin(principal(r), name); err != nil {
		return err
	}
	body, doc, err := readPatch(r, listCreateFields...)
	if err != nil {
		return err
	}
	cmd := domain.CreateList{
		Address:              deref(patchValue[string](&doc, "address")),
		DisplayName:          deref(patchValue[string](&doc, "display_name")),
		Description:          deref(patchValue[string](&doc, "description")),
		Members:              deref(patchField[[]string](&doc, "members")),
		Owners:               deref(patchField[[]string](&doc, "owners")),
		AllowedSenders:       deref(patchField[[]string](&doc, "allowed_senders")),
		SubscriptionPolicy:   deref(patchValue[string](&doc, "subscription_policy")),
		UnsubscriptionPolicy: deref(patchValue[string](&doc, "unsubscription_policy")),
		HideInGAL:            deref(patchValue[bool](&doc, "hide_in_gal")),
	}
	if dyn, ok := doc.sub("dynamic", "member_url"); ok && dyn != nil {
		cmd.Dynamic = &domain.DynamicInput{MemberURL: deref(patchValue[string](dyn, "member_url"))}
	}
	req, err := s.commandRequest(r, body)
	if err != nil {
		return err
	}
	// Fields of the wrong type are reported with whatever else the command finds wrong.
	req.Invalid = doc.fieldErrors()
	out, err := s.Commands.CreateList(r.Context(), req, name, cmd)
	if err != nil {
		return err
	}
	addr, err := domain.ParseAddress(cmd.Address) // valid: the command took it
	if err != nil {
		return err
	}
	w.Header().Set("Location", listPath(addr))
	return s.respondNow(w, r, req, out, http.StatusCreated, s.writtenList(r, out, addr))
}

func (s *Server) getList(w http.ResponseWriter, r *http.Request) error {
	addr, err := pathObject(r, "address", "list")
	if err != nil {
		return err
	}
	if _, err := s.roleOn(r, principal(r), addr); err != nil {
		return err
	}
	return s.readObject(w, r, domain.ListStreamID(addr),
		func(ctx context.Context, t time.Time) (any, int, error) { return s.listAsOf(ctx, addr, t) },
		func(ctx context.Context) (any, int, error) { return s.listView(ctx, addr) })
}

// listAsOf renders a list as it stood at t.
func (s *Server) listAsOf(ctx context.Context, addr domain.Address, t time.Time) (any, int, error) {
	l, version, _, updated, err := pastObject[domain.MailingList](ctx, s, domain.ListStreamID(addr), "list "+addr.String(), t)
	if err != nil {
		return nil, 0, err
	}
	row := postgres.ListRow{List: l, MemberCount: len(l.Members),
		Row: postgres.Row{Version: version, CreatedAt: l.CreatedAt, UpdatedAt: updated}}
	return renderList(row), version, nil
}

// Members of a PATCH: what anyone who may change the list sends, what only administrators
// send, and what has an endpoint of its own.
var (
	listOwnerPatchFields = []string{"display_name", "description", "allowed_senders", "subscription_policy", "unsubscription_policy"}
	listPatchFields      = append(slices.Clone(listOwnerPatchFields), "hide_in_gal")
	listMovedFields      = map[string]string{
		"members": "use POST or DELETE .../members",
		"owners":  "use POST or DELETE .../owners",
		"aliases": "use POST or DELETE .../aliases",
		"dynamic": "use PUT or DELETE .../dynamic",
		"address": "a list's address cannot change; create another list",
	}
)

// patchList changes a list's settings (JSON merge patch). null on a policy resets it to its
// default (subscription approval, unsubscription accept), on allowed_senders lets anyone post,
// on display_name or description empties it, on hide_in_gal is false.
func (s *Server) patchList(w http.ResponseWriter, r *http.Request) error {
	addr, err := pathObject(r, "address", "list")
	if err != nil {
		return err
	}
	p := principal(r)
	role, err := s.roleOn(r, p, addr)
	if err != nil {
		return err
	}
	allowed := append(slices.Clone(listPatchFields), "members", "owners", "aliases", "dynamic", "address")
	body, doc, err := readPatch(r, allowed...)
	if err != nil {
		return err
	}
	// Members with endpoints of their own are refused, with whatever else is wrong.
	for _, f := range slices.Sorted(maps.Keys(listMovedFields)) {
		if doc.has(f) {
			*doc.errs = append(*doc.errs, FieldError{Field: f, Message: listMovedFields[f]})
		}
	}
	if role != listAdmin {
		for _, f := range listPatchFields {
			if doc.has(f) && !slices.Contains(listOwnerPatchFields, f) {
				return forbidden("an owner may change the list's display_name, description, allowed_senders and policies, not %s", f)
			}
		}
	}
	cmd := domain.UpdateList{
		DisplayName:          patchValue[string](&doc, "display_name"),
		Description:          patchValue[string](&doc, "description"),
		SubscriptionPolicy:   policyPatch(&doc, "subscription_policy", domain.DefaultSubscriptionPolicy),
		UnsubscriptionPolicy: policyPatch(&doc, "unsubscription_policy", domain.DefaultUnsubscriptionPolicy),
		HideInGAL:            patchValue[bool](&doc, "hide_in_gal"),
	}
	cmd.AllowedSenders = patchSet(&doc, "allowed_senders") // null: anyone may post
	req, err := s.commandRequest(r, body)
	if err != nil {
		return err
	}
	// Fields of the wrong type are reported with whatever else the command finds wrong.
	req.Invalid = doc.fieldErrors()
	out, err := s.Commands.UpdateList(r.Context(), req, addr, cmd)
	if err != nil {
		return err
	}
	return s.respondNow(w, r, req, out, http.StatusOK, s.writtenList(r, out, addr))
}

// policyPatch reads a policy member; null resets it to def.
func policyPatch(doc *patchDoc, name, def string) *string {
	if raw, ok := doc.fields[name]; ok && string(raw) == "null" {
		return &def
	}
	return patchField[string](doc, name)
}

func (s *Server) deleteList(w http.ResponseWriter, r *http.Request) error {
	addr, err := s.administeredList(r, "delete the list")
	if err != nil {
		return err
	}
	req, err := s.commandRequest(r, nil)
	if err != nil {
		return err
	}
	out, err := s.Commands.DeleteList(r.Context(), req, addr)
	if err != nil {
		return err
	}
	return s.respondNow(w, r, req, out, http.StatusNoContent, nil)
}

// memberJSON is one member of a list.
type memberJSON struct {
	Address string `json:"address"`
}

// listMembers pages a list's members by address: a static list's from the read model, a
// dynamic one's from its query, run against the directory (MemberSource).
func (s *Server) listMembers(w http.ResponseWriter, r *http.Request) error {
	addr, err := pathObject(r, "address", "list")
	if err != nil {
		return err
	}
	if _, err := s.roleOn(r, principal(r), addr); err != nil {
		return err
	}
	q, err := page(r)
	if err != nil {
		return err
	}
	if err := s.catchUp(r, domain.ListStreamID(addr)); err != nil {
		return err
	}
	row, err := s.Reads.List(r.Context(), addr.String())
	if err != nil {
		return err
	}
	limit := q.Limit
	q.Limit++
	var members []string
	if row.List.Dynamic != nil {
		if s.Members == nil {
			return errorf(http.StatusNotImplemented, "not-implemented-yet",
				"%s is a dynamic list (%s): its members come from the directory, which this server cannot query yet",
				addr, row.List.Dynamic.MemberURL)
		}
		members, err = s.Members.DynamicMembers(r.Context(), row.List, q)
	} else {
		members, err = s.Reads.ListMembers(r.Context(), addr.String(), q)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, pageOf(members, limit, func(m string) string { return m },
		func(m string) memberJSON { return memberJSON{Address: m} }))
	return nil
}

// listSet is one of the address sets of a list that are changed in bulk.
type listSet struct {
	member string // the body's member and the set's name
	one    string // the path parameter of the one-address form
	// ownersMay: owners change it, not only administrators.
	ownersMay bool
	add       func(s *commands.Service, ctx context.Context, req commands.Request, addr domain.Address, in []string) (commands.Outcome, error)
	remove    func(s *commands.Service, ctx context.Context, req commands.Request, addr domain.Address, in []string, require bool) (commands.Outcome, error)
}

var (
	listMembers = listSet{member: "members", one: "member", ownersMay: true,
		add: (*commands.Service).AddListMembers, remove: (*commands.Service).RemoveListMembers}
	listOwners = listSet{member: "owners", one: "owner", ownersMay: true,
		add: (*commands.Service).AddListOwners, remove: (*commands.Service).RemoveListOwners}
	listAliases = listSet{member: "aliases", one: "alias",
		add: (*commands.Service).AddListAliases, remove: (*commands.Service).RemoveListAliases}
)

// mayChangeSet checks the caller's role for a change of one of the list's sets; aliases also
// need the caller to administer each alias's domain (unparseable ones are the command's to
// report).
func (s *Server) mayChangeSet(r *http.Request, set listSet, addr domain.Address, in []string, adding bool) error {
	p := principal(r)
	role, err := s.roleOn(r, p, addr)
	if err != nil {
		return err
	}
	if role != listAdmin && !set.ownersMay {
		return forbidden("an owner may not change the list's %s; ask an administrator of %s", set.member, addr.Domain)
	}
	if set.member == "aliases" && adding {
		for _, a := range domain.ParseAddresses(in) {
			if err := requireDomainAdmin(p, a.Domain); err != nil {
				return err
			}
		}
	}
	return nil
}

// changeList adds addresses to (POST) or removes them from (DELETE) a set of the list:
// {"members": [...]} (or owners, aliases), at most domain.MaxListChange of them, recorded as
// one event. Addresses already in (when adding) or not in (when removing) are passed over.
// It answers the list.
func (s *Server) changeList(set listSet, removing bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		addr, err := pathObject(r, "address", "list")
		if err != nil {
			return err
		}
		body, doc, err := readPatch(r, set.member)
		if err != nil {
			return err
		}
		in := patchField[[]string](&doc, set.member)
		if in == nil && doc.err() == nil {
			*doc.errs = append(*doc.errs, FieldError{Field: set.member, Message: "required: an array of addresses"})
		}
		if err := s.mayChangeSet(r, set, addr, deref(in), !removing); err != nil {
			return err
		}
		req, err := s.commandRequest(r, body)
		if err != nil {
			return err
		}
		// A missing or mistyped set is reported as the command would report the rest.
		req.Invalid = doc.fieldErrors()
		var out commands.Outcome
		if removing {
			out, err = set.remove(s.Commands, r.Context(), req, addr, deref(in), false)
		} else {
			out, err = set.add(s.Commands, r.Context(), req, addr, deref(in))
		}
		if err != nil {
			return err
		}
		return s.respondNow(w, r, req, out, http.StatusOK, s.writtenList(r, out, addr))
	}
}

// removeOne removes the one address named in the path from a set of the list: 404 when it is
// not in it. It answers the list.
func (s *Server) removeOne(set listSet) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		addr, err := pathObject(r, "address", "list")
		if err != nil {
			return err
		}
		one := mux.Vars(r)[set.one]
		if err := s.mayChangeSet(r, set, addr, nil, false); err != nil {
			return err
		}
		if _, err := domain.ParseAddress(one); err != nil {
			return errorf(http.StatusNotFound, "not-found", "%q is not among the %s of list %s", one, set.member, addr)
		}
		req, err := s.commandRequest(r, nil)
		if err != nil {
			return err
		}
		out, err := set.remove(s.Commands, r.Context(), req, addr, []string{one}, true)
		if err != nil {
			return err
		}
		return s.respondNow(w, r, req, out, http.StatusOK, s.writtenList(r, out, addr))
	}
}

// makeListDynamic turns a list dynamic, or gives a dynamic list another query:
// {"member_url": "ldap:///??sub?(filter)", "drop_members": false}. A static list with members
// answers 409 unless drop_members is true. Administrators only.
func (s *Server) makeListDynamic(w http.ResponseWriter, r *http.Request) error {
	addr, err := s.administeredList(r, "change the list's dynamic mode")
	if err != nil {
		return err
	}
	body, doc, err := readPatch(r, "member_url", "drop_members")
	if err != nil {
		return err
	}
	memberURL := deref(patchValue[string](&doc, "member_url"))
	drop := deref(patchValue[bool](&doc, "drop_members"))
	req, err := s.commandRequest(r, body)
	if err != nil {
		return err
	}
	// Fields of the wrong type are reported with whatever else the command finds wrong.
	req.Invalid = doc.fieldErrors()
	out, err := s.Commands.MakeListDynamic(r.Context(), req, addr, memberURL, drop)
	if err != nil {
		return err
	}
	return s.respondNow(w, r, req, out, http.StatusOK, s.writtenList(r, out, addr))
}

// makeListStatic turns a dynamic list static, without members (404 when it is not dynamic).
func (s *Server) makeListStatic(w http.ResponseWriter, r *http.Request) error {
	addr, err := s.administeredList(r, "change the list's dynamic mode")
	if err != nil {
		return err
	}
	req, err := s.commandRequest(r, nil)
	if err != nil {
		return err
	}
	out, err := s.Commands.MakeListStatic(r.Context(), req, addr)
	if err != nil {
		return err
	}
	return s.respondNow(w, r, req, out, http.StatusOK, s.writtenList(r, out, addr))
}
