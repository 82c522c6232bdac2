package api

import (
	"net/http"

	"github.com/gorilla/mux"

	"mailplane/commands"
	"mailplane/domain"
)

// A TOTP second factor (RFC 6238) of an account. Any account may enrol one for itself; it is
// required of administrators where the domain's or the global totp_required says so. Enrolling
// answers the secret once (otpauth URI, base32 secret, ten recovery codes) and stays pending
// until a code confirms it; from then on the account's logins need a code or a recovery code.
// A global administrator may remove it (a lost phone); the owner too, with a current code,
// unless it is required of them. A domain administrator may not remove another's.
func (s *Server) routeTOTP(r *mux.Router) {
	r.Handle("/accounts/{address}/totp", s.handle(s.getTOTP)).Methods(http.MethodGet)
	r.Handle("/accounts/{address}/totp", s.handle(s.enrolTOTP)).Methods(http.MethodPost)
	r.Handle("/accounts/{address}/totp/confirm", s.handle(s.confirmTOTP)).Methods(http.MethodPost)
	r.Handle("/accounts/{address}/totp", s.handle(s.disableTOTP)).Methods(http.MethodDelete)
}

type totpEnrolmentJSON struct {
	OTPAuthURI    string   `json:"otpauth_uri"`
	Secret        string   `json:"secret"`
	RecoveryCodes []string `json:"recovery_codes"`
}

type totpCodeRequest struct {
	Code string `json:"code"`
}

func (s *Server) getTOTP(w http.ResponseWriter, r *http.Request) error {
	addr, err := pathAddress(r, "address")
	if err != nil {
		return err
	}
	if err := requireSelfOrAdmin(principal(r), addr); err != nil {
		return err
	}
	st, err := s.Commands.TOTP(r.Context(), addr)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, st)
	return nil
}

// requireSelf admits the account itself only: a second factor is enrolled on one's own device.
func requireSelf(p commands.Principal, addr domain.Address) error {
	if p.IsService() || p.Address != addr {
		return forbidden("only %s may enrol its own second factor", addr)
	}
	return nil
}

func (s *Server) enrolTOTP(w http.ResponseWriter, r *http.Request) error {
	addr, err := pathAddress(r, "address")
	if err != nil {
		return err
	}
	if err := requireSelf(principal(r), addr); err != nil {
		return err
	}
	req, err := s.commandRequest(r, nil)
	if err != nil {
		return err
	}
	// The answer holds the secret, which is stored nowhere in clear: a repeat cannot be answered
	// with it, so Idempotency-Key is not honoured here (a repeat enrols again, replacing the
	// pending secret).
	req.Meta.IdempotencyKey, req.Meta.RequestHash = "", nil
	enr, _, err := s.Commands.EnrolTOTP(r.Context(), req, addr)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Location", "/api/v1/accounts/"+addr.String()+"/totp")
	writeJSON(w, http.StatusCreated, totpEnrolmentJSON{OTPAuthURI: enr.URI, Secret: enr.Secret, RecoveryCodes: enr.RecoveryCodes})
	return nil
}

func (s *Server) confirmTOTP(w http.ResponseWriter, r *http.Request) error {
	addr, err := pathAddress(r, "address")
	if err != nil {
		return err
	}
	if err := requireSelf(principal(r), addr); err != nil {
		return err
	}
	body, err := readBody(r)
	if err != nil {
		return err
	}
	var in totpCodeRequest
	if err := decodeBytes(body, &in); err != nil {
		return err
	}
	if in.Code == "" {
		return &Error{Status: http.StatusBadRequest, Type: "validation", Detail: "code is required",
			Fields: []FieldError{{Field: "code", Message: "is required"}}}
	}
	req, err := s.commandRequest(r, body)
	if err != nil {
		return err
	}
	out, err := s.Commands.ConfirmTOTP(r.Context(), req, addr, in.Code)
	if err != nil {
		return err
	}
	return s.respondNow(w, r, req, out, http.StatusOK, func() (any, int, error) {
		st, err := s.Commands.TOTP(r.Context(), addr)
		return st, 0, err
	})
}

func (s *Server) disableTOTP(w http.ResponseWriter, r *http.Request) error {
	addr, err := pathAddress(r, "address")
	if err != nil {
		return err
	}
	p := principal(r)
	byOwner := !p.GlobalAdmin
	if byOwner && (p.IsService() || p.Address != addr) {
		return forbidden("only a global administrator may remove another account's second factor")
	}
	var in totpCodeRequest
	var body []byte
	if hasBody(r) {
		if body, err = readBody(r); err != nil {
			return err
		}
		if err := decodeBytes(body, &in); err != nil {
			return err
		}
	}
	req, err := s.commandRequest(r, body)
	if err != nil {
		return err
	}
	out, err := s.Commands.DisableTOTP(r.Context(), req, addr, byOwner, in.Code)
	if err != nil {
		return err
	}
	return s.respondNow(w, r, req, out, http.StatusNoContent, nil)
}

// totpGate lets a session that must first enrol a second factor (its account is required to
// have one and has none) reach only the enrolment, its confirmation and its own logout; every
// other route answers 403 totp-enrolment-required. Tokens that are no login session pass. The
// restriction comes with the principal (Authenticate reads it with the session): no query here.
func (s *Server) totpGate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := principal(r); !p.MustEnrolTOTP || enrolmentRoute(r, p) {
			next.ServeHTTP(w, r)
			return
		}
		s.writeError(w, r, commands.ErrTOTPEnrolmentRequired)
	})
}

// enrolmentRoute reports whether r is one a session that must enrol may still call.
func enrolmentRoute(r *http.Request, p commands.Principal) bool {
	route := mux.CurrentRoute(r)
	if route == nil {
		return false
	}
	tpl, err := route.GetPathTemplate()
	if err != nil || mux.Vars(r)["address"] == "" {
		return false
	}
	addr, err := domain.ParseAddress(mux.Vars(r)["address"])
	if err != nil || addr != p.Address {
		return false
	}
	switch tpl {
	case "/api/v1/accounts/{address}/totp", "/api/v1/accounts/{address}/totp/confirm":
		return r.Method != http.MethodDelete
	case "/api/v1/accounts/{address}/sessions/{id}":
		return r.Method == http.MethodDelete && mux.Vars(r)["id"] == p.SessionID
	}
	return false
}
