package api

import (
	"net/http"
	"time"

	"mailplane/commands"
)

type loginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	// TOTPCode or RecoveryCode is the second factor of an account that has one.
	TOTPCode     string `json:"totp_code,omitempty"`
	RecoveryCode string `json:"recovery_code,omitempty"`
}

type loginResponse struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
	SessionID string    `json:"session_id"`
	// TOTPEnrolmentRequired: the account must have a second factor and has none; the session
	// may only enrol and confirm one (POST /api/v1/accounts/{address}/totp).
	TOTPEnrolmentRequired bool `json:"totp_enrolment_required,omitempty"`
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) error {
	var in loginRequest
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	var fields []FieldError
	if in.Email == "" {
		fields = append(fields, FieldError{Field: "email", Message: "is required"})
	}
	if in.Password == "" {
		fields = append(fields, FieldError{Field: "password", Message: "is required"})
	}
	if len(fields) > 0 {
		return &Error{Status: http.StatusBadRequest, Type: "validation", Detail: "email and password are required", Fields: fields}
	}
	token, sess, out, err := s.Commands.LoginWithFactor(r.Context(), in.Email, in.Password,
		commands.SecondFactor{Code: in.TOTPCode, RecoveryCode: in.RecoveryCode}, sourceIP(r), r.UserAgent())
	if err != nil {
		return err
	}
	if err := s.waitFor(r, out.Position); err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	setSessionCookie(w, r, token, sess.ExpiresAt)
	writeJSON(w, http.StatusOK, loginResponse{Token: token, ExpiresAt: sess.ExpiresAt, SessionID: sess.ID,
		TOTPEnrolmentRequired: sess.TOTPEnrolmentRequired})
	return nil
}
