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
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
		defer cancel()
		id := r.Header.Get("X-Request-Id")
		if id == "" || len(id) > 128 {
			b := make([]byte, 8)
			_, _ = rand.Read(b)
			id = hex.EncodeToString(b)
		}
		w.Header().Set("X-Request-Id", id)
		ctx = context.WithValue(ctx, requestIDKey, id)
		r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// authenticate requires a valid bearer token.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || token == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="mailplane"`)
			writeProblem(w, errorf(http.StatusUnauthorized, "unauthenticated", "a bearer token is required: POST /api/v1/auth/login"))
			return
		}
		p, err := s.Commands.Authenticate(r.Context(), strings.TrimSpace(token))
		var stale *commands.StaleError
		if errors.As(err, &stale) {
			// The account or its domain just changed: decide on its new state, not the old one.
			if err = s.waitFor(r, stale.Position); err == nil {
				p, err = s.Commands.Authenticate(r.Context(), strings.TrimSpace(token))
			}
		}
		if err != nil {
			if errors.Is(err, commands.ErrUnauthenticated) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="mailplane", error="invalid_token"`)
			}
			s.writeError(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey, p)))
	})
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
