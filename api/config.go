package api

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/gorilla/mux"

	"mailplane/commands"
	"mailplane/domain"
)

func (s *Server) routeConfig(r *mux.Router) {
	r.Handle("/config", s.handle(s.getConfig)).Methods(http.MethodGet)
	r.Handle("/config", s.handle(s.patchConfig)).Methods(http.MethodPatch)
}

// configFields are the members of the global configuration a PATCH may send.
var configFields = []string{"time_zone", "public_protocol", "spam_relay_host", "default_cos",
	"account_quota_bytes", "domain_quota_bytes", "warn_percent",
	"gal_polling_interval_seconds", "session_lifetime_seconds", "password_min_length", "totp_required"}

// configJSON is the global configuration as the API shows it: every setting with its value in
// force (the built-in default until someone sets it).
type configJSON struct {
	TimeZone                  string `json:"time_zone"`
	PublicProtocol            string `json:"public_protocol"`
	SpamRelayHost             string `json:"spam_relay_host"`
	DefaultCOS                string `json:"default_cos"`
	AccountQuotaBytes         int64  `json:"account_quota_bytes"`
	DomainQuotaBytes          int64  `json:"domain_quota_bytes"`
	WarnPercent               int    `json:"warn_percent"`
	GALPollingIntervalSeconds int    `json:"gal_polling_interval_seconds"`
	SessionLifetimeSeconds    int    `json:"session_lifetime_seconds"`
	PasswordMinLength         int    `json:"password_min_length"`
	TOTPRequired              bool   `json:"totp_required"`
	// Version is 0 while the configuration was never changed.
	Version int `json:"version"`
}

func renderConfig(g domain.GlobalConfig, version int) configJSON {
	g = g.WithDefaults()
	return configJSON{
		TimeZone: g.TimeZone, PublicProtocol: g.PublicProtocol, SpamRelayHost: g.SpamRelayHost,
		DefaultCOS: g.DefaultCOS, AccountQuotaBytes: g.AccountQuotaBytes, DomainQuotaBytes: g.DomainQuotaBytes,
		WarnPercent: g.WarnPercent, GALPollingIntervalSeconds: g.GALPollingIntervalSeconds,
		SessionLifetimeSeconds: g.SessionLifetimeSeconds, PasswordMinLength: g.PasswordMinLength,
		TOTPRequired: g.TOTPRequired,
		Version:      version,
	}
}

func (s *Server) configView(ctx context.Context) (any, int, error) {
	g, version, err := s.Reads.GlobalConfig(ctx)
	if err != nil {
		return nil, 0, err
	}
	return renderConfig(g, version), version, nil
}

// requireAdmin admits global and domain administrators. Domain admins may read the global
// defaults and the classes of service: their domains inherit them and their accounts use them.
// Auditors read them too, for the same reason.
func requireAdmin(p commands.Principal) error {
	if !p.GlobalAdmin && !p.DomainAdmin && !p.Auditor {
		return forbidden("only administrators may do this")
	}
	return nil
}

func (s *Server) getConfig(w http.ResponseWriter, r *http.Request) error {
	if err := requireAdmin(principal(r)); err != nil {
		return err
	}
	v, version, err := s.configView(r.Context())
	if err != nil {
		return err
	}
	w.Header().Set("ETag", etag(version))
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (s *Server) patchConfig(w http.ResponseWriter, r *http.Request) error {
	if err := requireGlobalAdmin(principal(r)); err != nil {
		return err
	}
	body, doc, err := readPatch(r, configFields...)
	if err != nil {
		return err
	}
	cmd := domain.UpdateGlobalConfig{
		TimeZone:                  patchField[string](&doc, "time_zone"),
		PublicProtocol:            patchField[string](&doc, "public_protocol"),
		SpamRelayHost:             patchField[string](&doc, "spam_relay_host"),
		DefaultCOS:                patchField[string](&doc, "default_cos"),
		AccountQuotaBytes:         patchField[int64](&doc, "account_quota_bytes"),
		DomainQuotaBytes:          patchField[int64](&doc, "domain_quota_bytes"),
		WarnPercent:               patchField[int](&doc, "warn_percent"),
		GALPollingIntervalSeconds: patchField[int](&doc, "gal_polling_interval_seconds"),
		SessionLifetimeSeconds:    patchField[int](&doc, "session_lifetime_seconds"),
		PasswordMinLength:         patchField[int](&doc, "password_min_length"),
		TOTPRequired:              patchField[bool](&doc, "totp_required"),
	}
	// Null resets a setting to its built-in default (nothing sits above the global level).
	// default_cos is reset by naming the built-in default COS instead of clearing it, so the
	// command checks that this COS exists: it only looks the COS up when the name is given.
	for _, name := range doc.clearedNames() {
		if name == "default_cos" {
			def := domain.DefaultCOSName
			cmd.DefaultCOS = &def
			continue
		}
		cmd.Clear = append(cmd.Clear, name)
	}
	r, expectUnset, err := configIfMatch(r)
	if err != nil {
		return err
	}
	req, err := s.commandRequest(r, body)
	if err != nil {
		return err
	}
	// Fields of the wrong type are reported with whatever else the command finds wrong.
	req.Invalid = doc.fieldErrors()
	if expectUnset {
		// If-Match: "0" is the ETag of a configuration never changed. The command service
		// takes 0 as "no precondition", so check it here against the stream itself.
		_, version, err := commands.Load[domain.GlobalConfig](r.Context(), s.Commands, domain.GlobalConfigStreamID)
		if err != nil {
			return err
		}
		if version != 0 {
			return fmt.Errorf("%w: the configuration is at version %d, not 0", commands.ErrPreconditionFailed, version)
		}
	}
	out, err := s.Commands.UpdateGlobalConfig(r.Context(), req, cmd)
	if err != nil {
		return err
	}
	return s.respond(w, r, req, out, http.StatusOK, func() (any, int, error) {
		v, version, err := s.configView(r.Context())
		if err == nil && version == 0 {
			// respond sets the ETag of versions from 1 on; a configuration never changed
			// (this PATCH changed nothing) has ETag "0", as GET answers.
			w.Header().Set("ETag", etag(0))
		}
		return v, version, err
	})
}

// configIfMatch takes If-Match: "0" off the request and reports it; other values are left to
// commandRequest.
func configIfMatch(r *http.Request) (*http.Request, bool, error) {
	h := strings.TrimSpace(r.Header.Get("If-Match"))
	if strings.Trim(strings.TrimPrefix(h, "W/"), `"`) != "0" {
		return r, false, nil
	}
	r = r.Clone(r.Context())
	r.Header.Del("If-Match")
	return r, true, nil
}
