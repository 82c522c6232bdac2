package api

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/gorilla/mux"

	"mailplane/commands"
	"mailplane/domain"
	"mailplane/projections/postgres"
)

func (s *Server) routeCOS(r *mux.Router) {
	r.Handle("/cos", s.handle(s.listCOS)).Methods(http.MethodGet)
	r.Handle("/cos", s.handle(s.createCOS)).Methods(http.MethodPost)
	r.Handle("/cos/{name}", s.handle(s.getCOS)).Methods(http.MethodGet)
	r.Handle("/cos/{name}", s.handle(s.patchCOS)).Methods(http.MethodPatch)
	r.Handle("/cos/{name}", s.handle(s.deleteCOS)).Methods(http.MethodDelete)
}

// cosFields are the members of a COS a client sends.
var cosFields = []string{"name", "description", "mail_quota_bytes", "quota_warn_percent", "features",
	"password_min_length", "session_lifetime_seconds"}

// cosEffectiveKeys are the settings a COS gives its accounts; the COS shows each with the
// value in force and where it comes from (the COS itself, or the global configuration).
var cosEffectiveKeys = []string{"mail_quota_bytes", "quota_warn_percent", "features", "password_min_length",
	"session_lifetime_seconds"}

// cosJSON is a class of service as the API shows it. Unset settings are null: the accounts
// that use the COS inherit them (effective shows the value they get).
type cosJSON struct {
	Name                   string            `json:"name"`
	Description            string            `json:"description"`
	MailQuotaBytes         *int64            `json:"mail_quota_bytes"`
	QuotaWarnPercent       *int              `json:"quota_warn_percent"`
	Features               map[string]bool   `json:"features"`
	PasswordMinLength      *int              `json:"password_min_length"`
	SessionLifetimeSeconds *int              `json:"session_lifetime_seconds"`
	Effective              map[string]any    `json:"effective"`
	Sources                map[string]string `json:"sources"`
	Version                int               `json:"version"`
	UpdatedAt              time.Time         `json:"updated_at"`
}

func renderCOS(g domain.GlobalConfig, row postgres.COSRow) cosJSON {
	c := row.COS
	features := maps.Clone(c.Features)
	if features == nil {
		features = map[string]bool{}
	}
	// What an account of this COS gets, before any domain or account of its own overrides.
	name := c.Name
	eff := domain.EffectiveAccount(g, domain.Domain{}, &c, domain.Account{COS: &name})
	out := cosJSON{Name: c.Name, Description: c.Description, MailQuotaBytes: c.MailQuotaBytes,
		QuotaWarnPercent: c.QuotaWarnPercent, Features: features, PasswordMinLength: c.PasswordMinLength,
		SessionLifetimeSeconds: c.SessionLifetimeSeconds, Effective: map[string]any{}, Sources: map[string]string{},
		Version: row.Version, UpdatedAt: row.UpdatedAt}
	for _, k := range cosEffectiveKeys {
		out.Effective[k], out.Sources[k] = eff.Values[k], eff.Sources[k]
	}
	return out
}

// cosName reads {name} from the path; a name that cannot exist is not found.
func cosName(r *http.Request) (string, error) {
	name, err := domain.NormalizeCOSName(mux.Vars(r)["name"])
	if err != nil {
		return "", errorf(http.StatusNotFound, "not-found", "no class of service %q", mux.Vars(r)["name"])
	}
	return name, nil
}

func (s *Server) cosView(ctx context.Context, name string) (any, int, error) {
	g, _, err := s.Reads.GlobalConfig(ctx)
	if err != nil {
		return nil, 0, err
	}
	row, err := s.Reads.COS(ctx, name)
	if err != nil {
		return nil, 0, err
	}
	return renderCOS(g, row), row.Version, nil
}

func (s *Server) listCOS(w http.ResponseWriter, r *http.Request) error {
	if err := requireAdmin(principal(r)); err != nil {
		return err
	}
	q, err := page(r)
	if err != nil {
		return err
	}
	g, _, err := s.Reads.GlobalConfig(r.Context())
	if err != nil {
		return err
	}
	limit := q.Limit
	q.Limit++
	rows, err := s.Reads.ListCOS(r.Context(), q)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, pageOf(rows, limit, func(c postgres.COSRow) string { return c.COS.Name },
		func(c postgres.COSRow) cosJSON { return renderCOS(g, c) }))
	return nil
}

func (s *Server) getCOS(w http.ResponseWriter, r *http.Request) error {
	if err := requireAdmin(principal(r)); err != nil {
		return err
	}
	name, err := cosName(r)
	if err != nil {
		return err
	}
	v, version, err := s.cosView(r.Context(), name)
	if err != nil {
		return err
	}
	w.Header().Set("ETag", etag(version))
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (s *Server) createCOS(w http.ResponseWriter, r *http.Request) error {
	if err := requireGlobalAdmin(principal(r)); err != nil {
		return err
	}
	// Read member by member, so that every mistyped member is reported, not just the first.
	body, doc, err := readPatch(r, cosFields...)
	if err != nil {
		return err
	}
	cmd := domain.CreateCOS{
		MailQuotaBytes:         patchField[int64](&doc, "mail_quota_bytes"),
		QuotaWarnPercent:       patchField[int](&doc, "quota_warn_percent"),
		PasswordMinLength:      patchField[int](&doc, "password_min_length"),
		SessionLifetimeSeconds: patchField[int](&doc, "session_lifetime_seconds"),
	}
	if v := patchValue[string](&doc, "name"); v != nil {
		cmd.Name = *v
	}
	if v := patchValue[string](&doc, "description"); v != nil {
		cmd.Description = *v
	}
	features, _ := featurePatch(&doc)
	for k, v := range features {
		if v == nil {
			*doc.errs = append(*doc.errs, FieldError{Field: "features." + k, Message: "must be true or false"})
			continue
		}
		if cmd.Features == nil {
			cmd.Features = map[string]bool{}
		}
		cmd.Features[k] = *v
	}
	req, err := s.commandRequest(r, body)
	if err != nil {
		return err
	}
	req.Invalid = doc.fieldErrors()
	name, out, err := s.Commands.CreateCOS(r.Context(), req, cmd)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/cos/"+name)
	return s.respond(w, r, req, out, http.StatusCreated, func() (any, int, error) { return s.cosView(r.Context(), name) })
}

// featurePatch reads the features member: each feature as a boolean, or nil for a null (in a
// PATCH, a feature sent as null is removed). whole is true when features itself is null.
func featurePatch(doc *patchDoc) (features map[string]*bool, whole bool) {
	raw, ok := doc.fields["features"]
	if !ok {
		return nil, false
	}
	if string(raw) == "null" {
		return nil, true
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil {
		*doc.errs = append(*doc.errs, FieldError{Field: "features", Message: "must be an object of booleans"})
		return nil, false
	}
	features = make(map[string]*bool, len(members))
	for _, k := range slices.Sorted(maps.Keys(members)) {
		if string(members[k]) == "null" {
			features[k] = nil
			continue
		}
		v := new(bool)
		if err := json.Unmarshal(members[k], v); err != nil {
			*doc.errs = append(*doc.errs, FieldError{Field: "features." + k, Message: "must be true or false"})
			continue
		}
		features[k] = v
	}
	return features, false
}

// maxMergeAttempts bounds how often a PATCH that merges features starts over after a
// concurrent change.
const maxMergeAttempts = 10

func sameCOSName(given, name string) bool {
	n, err := domain.NormalizeCOSName(given)
	return err == nil && n == name
}

func (s *Server) patchCOS(w http.ResponseWriter, r *http.Request) error {
	if err := requireGlobalAdmin(principal(r)); err != nil {
		return err
	}
	name, err := cosName(r)
	if err != nil {
		return err
	}
	body, doc, err := readPatch(r, cosFields...)
	if err != nil {
		return err
	}
	if doc.has("name") {
		// The name is the COS's identity (accounts and domains refer to it): it may be
		// repeated, not changed.
		raw := doc.fields["name"]
		v := patchField[string](&doc, "name") // a wrong type is reported by patchField
		if string(raw) == "null" || v != nil && !sameCOSName(*v, name) {
			*doc.errs = append(*doc.errs, FieldError{Field: "name", Message: "a class of service cannot be renamed; create a new one"})
		}
	}
	cmd := domain.UpdateCOS{
		Description:            patchValue[string](&doc, "description"),
		MailQuotaBytes:         patchField[int64](&doc, "mail_quota_bytes"),
		QuotaWarnPercent:       patchField[int](&doc, "quota_warn_percent"),
		PasswordMinLength:      patchField[int](&doc, "password_min_length"),
		SessionLifetimeSeconds: patchField[int](&doc, "session_lifetime_seconds"),
	}
	features, resetFeatures := featurePatch(&doc)
	for _, c := range doc.clearedNames() {
		if c != "name" {
			cmd.Clear = append(cmd.Clear, c)
		}
	}
	if resetFeatures {
		cmd.Features = map[string]bool{}
	}
	for attempt := 1; ; attempt++ {
		req, err := s.commandRequest(r, body)
		if err != nil {
			return err
		}
		req.Invalid = doc.fieldErrors()
		pinned := false
		if features != nil {
			// features is merged into the current map (RFC 7396): read it from the stream and
			// send the result pinned to that version, so a concurrent change is never lost.
			cur, version, err := commands.Load[domain.COS](r.Context(), s.Commands, domain.COSStreamID(name))
			if err != nil {
				return err
			}
			if !cur.Exists() {
				return errorf(http.StatusNotFound, "not-found", "no class of service %q", name)
			}
			if req.IfMatch > 0 && req.IfMatch != version {
				return commands.ErrPreconditionFailed
			}
			merged := maps.Clone(cur.Features)
			if merged == nil {
				merged = map[string]bool{}
			}
			for k, v := range features {
				if v == nil {
					delete(merged, k)
				} else {
					merged[k] = *v
				}
			}
			cmd.Features = merged
			pinned = req.IfMatch == 0
			req.IfMatch = version
		}
		out, err := s.Commands.UpdateCOS(r.Context(), req, name, cmd)
		if pinned && errors.Is(err, commands.ErrPreconditionFailed) {
			if attempt < maxMergeAttempts {
				continue // someone else changed it meanwhile: merge again on the new state
			}
			return &Error{Status: http.StatusConflict, Type: "conflict", Detail: "the class of service kept changing concurrently; try again", Internal: err}
		}
		if err != nil {
			return err
		}
		return s.respond(w, r, req, out, http.StatusOK, func() (any, int, error) { return s.cosView(r.Context(), name) })
	}
}

func (s *Server) deleteCOS(w http.ResponseWriter, r *http.Request) error {
	if err := requireGlobalAdmin(principal(r)); err != nil {
		return err
	}
	name, err := cosName(r)
	if err != nil {
		return err
	}
	req, err := s.commandRequest(r, nil)
	if err != nil {
		return err
	}
	out, err := s.Commands.DeleteCOS(r.Context(), req, name)
	if err != nil {
		return err
	}
	return s.respond(w, r, req, out, http.StatusNoContent, nil)
}
