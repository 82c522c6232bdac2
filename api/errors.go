package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// Error is an error with an HTTP meaning. Handlers return it (or a domain/eventstore error that
// writeError maps); anything else is logged and answered as a generic 500.
type Error struct {
	Status int
	// Type is the stable problem type (a URI reference relative to /problems/).
	Type   string
	Detail string
	Fields []FieldError
	// RetryAfter, in seconds, is sent as the Retry-After header when set.
	RetryAfter int
	// Extra members added to the problem document.
	Extra map[string]any
	// Internal is logged, never shown.
	Internal error
}

// FieldError is one invalid input field.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

func (e *Error) Error() string {
	if e.Internal != nil {
		return fmt.Sprintf("%d %s: %s: %v", e.Status, e.Type, e.Detail, e.Internal)
	}
	return fmt.Sprintf("%d %s: %s", e.Status, e.Type, e.Detail)
}

func (e *Error) Unwrap() error { return e.Internal }

// problem is the RFC 9457 document.
type problem struct {
	Type   string       `json:"type"`
	Title  string       `json:"title"`
	Status int          `json:"status"`
	Detail string       `json:"detail,omitempty"`
	Errors []FieldError `json:"errors,omitempty"`
}

func errorf(status int, typ, format string, args ...any) *Error {
	return &Error{Status: status, Type: typ, Detail: fmt.Sprintf(format, args...)}
}

// writeProblem writes e as application/problem+json.
func writeProblem(w http.ResponseWriter, e *Error) {
	body := map[string]any{}
	b, _ := json.Marshal(problem{
		Type: "/problems/" + e.Type, Title: http.StatusText(e.Status), Status: e.Status,
		Detail: e.Detail, Errors: e.Fields,
	})
	_ = json.Unmarshal(b, &body)
	for k, v := range e.Extra {
		body[k] = v
	}
	// A handler may have set these for the success it was heading for (the object's Location,
	// its ETag); a problem describes no object.
	w.Header().Del("Location")
	w.Header().Del("ETag")
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", fmt.Sprint(e.RetryAfter))
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(e.Status)
	_ = json.NewEncoder(w).Encode(body)
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var e *Error
	if !errors.As(err, &e) {
		e = s.mapError(err)
	}
	if e.Status >= 500 {
		s.Logger.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		if e.Detail == "" {
			e.Detail = "internal error"
		}
	}
	writeProblem(w, e)
}
