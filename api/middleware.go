package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"strings"

	"mailplane/commands"
)

type ctxKey int

const (
	principalKey ctxKey = iota
	requestIDKey
)

// handlerFunc is a handler that returns its error; handle writes it.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

func (s *Server) handle(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	})
}

// recoverer turns a panic into a 500 instead of a dropped connection.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.Logger.Error("panic in handler", "method", r.Method, "path", r.URL.Path, "panic", v)
				writeProblem(w, &Error{Status: http.StatusInternalServerError, Type: "internal", Detail: "internal error"})
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// limits applies the request timeout and body limit, and gives the request an id.
func (s *Server) limits(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		timeout := s.cfg.RequestTimeout
		if isImportUpload(r) {
			// A file of 100,000 rows takes some seconds to read, validate and store.
			timeout = max(timeout, ImportTimeout)
		}
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		id := setRequestID(w, r)
		ctx = context.WithValue(ctx, requestIDKey, id)
		limit := s.cfg.MaxBodyBytes
		if isImportUpload(r) {
			limit = max(limit, MaxImportBytes)
		}
		if r.URL.Path == usagePath {
			limit = max(limit, s.cfg.MaxUsageBodyBytes)
		}
		if r.Body == nil {
			// net/http's server never hands a nil Body over, but an in-process caller (the web
			// panel) may: the handlers read it as empty.
			r.Body = http.NoBody
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// setRequestID gives the response the request's X-Request-Id (a new one when it has none or
// an overlong one) and returns it.
func setRequestID(w http.ResponseWriter, r *http.Request) string {
	id := r.Header.Get("X-Request-Id")
	if id == "" || len(id) > 128 {
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		id = hex.EncodeToString(b)
	}
	w.Header().Set("X-Request-Id", id)
	return id
}

// authenticate requires a valid bearer token.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || strings.TrimSpace(token) == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="mailplane"`)
			writeProblem(w, errorf(http.StatusUnauthorized, "unauthenticated", "a bearer token is required: POST /api/v1/auth/login"))
			return
		}
		s.serveAs(w, r, strings.TrimSpace(token), next)
	})
}

// serveAs serves r as the principal token names, or answers why it cannot.
func (s *Server) serveAs(w http.ResponseWriter, r *http.Request, token string, next http.Handler) {
	p, err := s.Commands.Authenticate(r.Context(), token)
	var stale *commands.StaleError
	if errors.As(err, &stale) {
		// The account or its domain just changed: decide on its new state, not the old one.
		if err = s.waitBefore(r, stale.Position); err == nil {
			p, err = s.Commands.Authenticate(r.Context(), token)
		}
	}
	if err != nil {
		if errors.Is(err, commands.ErrUnauthenticated) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="mailplane", error="invalid_token"`)
		}
		s.writeError(w, r, err)
		return
	}
	// Checked here, for every route at once, so that no handler's own check can forget it.
	if p.IsService() && !serviceMayCall(p.Role, r) {
		writeProblem(w, forbidden("a service token with role %s may only report usage (POST %s)", p.Role, usagePath))
		return
	}
	if p.IsAPIToken() {
		// An API token's scope, for every route at once (api_tokens.go).
		if err := tokenMayCall(p, r); err != nil {
			writeProblem(w, err)
			return
		}
	}
	// An auditor reads and writes nothing, for every route at once (auditor.go).
	if p.Auditor && !auditorMayCall(p, r) {
		writeProblem(w, forbidden("an auditor may only read (and end its own sessions or set up its own second factor)"))
		return
	}
	next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey, p)))
}

func principal(r *http.Request) commands.Principal {
	p, _ := r.Context().Value(principalKey).(commands.Principal)
	return p
}

func requestID(r *http.Request) string {
	id, _ := r.Context().Value(requestIDKey).(string)
	return id
}

func sourceIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
