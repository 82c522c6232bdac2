package api

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/mux"
)

// sessionCookie carries the login token for pages a browser opens by URL (River UI), which
// cannot send an Authorization header. It is scoped to those pages' paths, HttpOnly and
// SameSite=Strict; the API itself takes bearer tokens only, so a cookie can never make an API
// call on its own.
const sessionCookie = "mailplane_session"

// operatorPages are the paths sessionCookie is sent to.
const operatorPages = "/riverui"

// setSessionCookie hands the browser that logged in the token for the operator pages.
func setSessionCookie(w http.ResponseWriter, r *http.Request, token string, expires time.Time) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: token, Path: operatorPages, Expires: expires,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
}

// routeRiverUI mounts River UI, for global administrators only: it shows every domain's jobs
// and its API can cancel, retry and delete them.
func (s *Server) routeRiverUI(r *mux.Router) {
	if s.RiverUI == nil {
		return
	}
	// Named, and without Methods: River UI's own router answers every method and path below.
	r.PathPrefix(operatorPages).Name("riverui").Handler(s.authenticateOperatorPage(s.handle(func(w http.ResponseWriter, r *http.Request) error {
		if err := requireGlobalAdmin(principal(r)); err != nil {
			return err
		}
		s.RiverUI.ServeHTTP(w, r)
		return nil
	})))
}

// authenticateOperatorPage takes the token from the Authorization header or from
// sessionCookie. A change sent with the cookie must come from a page of this origin
// (Sec-Fetch-Site, or Origin where a browser sends no Sec-Fetch-Site): SameSite=Strict already
// keeps the cookie off other sites' requests, and this holds for browsers that ignore it.
func (s *Server) authenticateOperatorPage(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && strings.TrimSpace(token) != "" {
			s.serveAs(w, r, strings.TrimSpace(token), next)
			return
		}
		c, err := r.Cookie(sessionCookie)
		if err != nil || c.Value == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="mailplane"`)
			writeProblem(w, errorf(http.StatusUnauthorized, "unauthenticated",
				"log in first (POST /api/v1/auth/login sets the %s cookie for %s), or send a bearer token", sessionCookie, operatorPages))
			return
		}
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
		default:
			if !sameOrigin(r) {
				writeProblem(w, forbidden("a change sent with the session cookie must come from a page of this origin"))
				return
			}
		}
		s.serveAs(w, r, c.Value, next)
	})
}

func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		return site == "same-origin"
	}
	o, err := url.Parse(r.Header.Get("Origin"))
	return err == nil && o.Host != "" && o.Host == r.Host
}
