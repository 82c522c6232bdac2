package api

import (
	"net/http"
	"time"
)

type loginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

type loginResponse struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
	SessionID string    `json:"session_id"`
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
	token, sess, out, err := s.Commands.Login(r.Context(), in.Email, in.Password, sourceIP(r), r.UserAgent())
	if err != nil {
		return err
	}
	if err := s.waitFor(r, out.Position); err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, loginResponse{Token: token, ExpiresAt: sess.ExpiresAt, SessionID: sess.ID})
	return nil
}
