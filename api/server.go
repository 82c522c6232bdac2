// Package api is mailplane's admin HTTP API (../shared/API.md): routing, request validation,
// authentication, problem+json errors and the OpenAPI document. Writes go through
// commands/; reads come from the Postgres read models (projections/postgres).
package api

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"mailplane/commands"
	"mailplane/eventstore"
	"mailplane/projections"
	"mailplane/projections/postgres"
	"mailplane/workers"
)

// The defaults of Config's timeouts.
const (
	DefaultRequestTimeout        = 30 * time.Second
	DefaultReadYourWritesTimeout = 5 * time.Second
)

// Config tunes the server.
type Config struct {
	// RequestTimeout bounds every request (default 30s).
	RequestTimeout time.Duration
	// ReadYourWritesTimeout bounds the wait for projections after a write (default 5s).
	ReadYourWritesTimeout time.Duration
	// MaxBodyBytes bounds request bodies (default 1 MiB).
	MaxBodyBytes int64
	// MaxUsageBodyBytes bounds POST /api/v1/usage (default 4 MiB): 10,000 reports of ordinary
	// addresses take some 600 KB, of the longest ones allowed 3.4 MB.
	MaxUsageBodyBytes int64
}

// Deps are the server's collaborators.
type Deps struct {
	Logger    *slog.Logger
	Readiness Readiness
	Metrics   *prometheus.Registry
	Commands  *commands.Service
	Reads     *postgres.ReadModel
	Store     *eventstore.Postgres
	// Waiter waits for the read models a response is built from.
	Waiter *projections.Waiter
	// Projections answers the operators' projection endpoints.
	Projections projections.Operator
	// Members runs dynamic lists' queries against the directory; nil answers their members
	// with 501.
	Members MemberSource
	// Anchors signs history exports' end lines with the anchor key; nil leaves them unsigned.
	Anchors *eventstore.Anchors
	// Jobs reads the jobs that requests start (GET /api/v1/jobs/{id}).
	Jobs interface {
		Lookup(ctx context.Context, id int64) (workers.Job, error)
	}
	// RiverUI is River UI (workers.UI); nil leaves /riverui out.
	RiverUI http.Handler
	// Now is the clock certificate statuses are judged by (default time.Now).
	Now func() time.Time
}

// Server serves the API.
type Server struct {
	Deps
	cfg    Config
	router *mux.Router
}

// NewServer builds the routes.
func NewServer(deps Deps, cfg Config) *Server {
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.ReadYourWritesTimeout <= 0 {
		cfg.ReadYourWritesTimeout = DefaultReadYourWritesTimeout
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	if cfg.MaxUsageBodyBytes <= 0 {
		cfg.MaxUsageBodyBytes = 4 << 20
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	s := &Server{Deps: deps, cfg: cfg}
	r := mux.NewRouter()
	// No cleaning redirects: mux would answer /lists/..%2F..%2Fdomains%2Fd with a 301 to
	// /domains/d, which a client following redirects with its method and token would then
	// DELETE. Dot segments are refused instead (Handler's guardPath).
	r.SkipClean(true)
	s.problems(r)
	r.Use(s.recoverer, s.limits, s.requireJSON)
	r.HandleFunc("/healthz", s.healthz).Methods(http.MethodGet)
	r.HandleFunc("/readyz", s.readyz).Methods(http.MethodGet)
	if deps.Metrics != nil {
		r.Handle("/metrics", promhttp.HandlerFor(deps.Metrics, promhttp.HandlerOpts{})).Methods(http.MethodGet)
	}

	s.routeRiverUI(r)

	v1 := r.PathPrefix("/api/v1").Subrouter()
	v1.HandleFunc("/openapi.json", s.openapi).Methods(http.MethodGet)
	v1.Handle("/auth/login", s.handle(s.login)).Methods(http.MethodPost)

	authed := v1.NewRoute().Subrouter()
	authed.Use(s.authenticate, s.totpGate)
	s.problems(authed)
	s.routeConfig(authed)
	s.routeCOS(authed)
	s.routeDomains(authed)
	s.routeAccounts(authed)
	s.routeSessions(authed)
	s.routeTOTP(authed)
	s.routeLists(authed)
	s.routeResources(authed)
	s.routeProjections(authed)
	s.routeVerifyRuns(authed)
	s.routeJobs(authed)
	s.routeVirtualHosts(authed)
	s.routeDKIM(authed)
	s.routeImports(authed)
	s.routeGAL(authed)
	s.routeUsage(authed)
	s.routeAPITokens(authed)
	s.router = r
	return s
}

// problems answers unknown paths and methods with problem+json. gorilla/mux does not fall back
// to a parent's handlers, so the innermost catch-all subrouter needs them too; and since mux
// reports a wrong method as "not found" when a path has one route per method, the not-found
// handler itself checks whether another method would have matched (405 with Allow).
func (s *Server) problems(r *mux.Router) {
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var allow []string
		for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
			probe := req.Clone(req.Context())
			probe.Method = m
			var match mux.RouteMatch
			if m != req.Method && s.router.Match(probe, &match) && match.MatchErr == nil {
				allow = append(allow, m)
			}
		}
		if len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			writeProblem(w, errorf(http.StatusMethodNotAllowed, "method-not-allowed", "%s is not allowed on %s", req.Method, req.URL.Path))
			return
		}
		writeProblem(w, errorf(http.StatusNotFound, "not-found", "no such endpoint: %s", req.URL.Path))
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		writeProblem(w, errorf(http.StatusMethodNotAllowed, "method-not-allowed", "%s is not allowed on %s", req.Method, req.URL.Path))
	})
}

func (s *Server) now() time.Time { return s.Deps.Now() }

// Handler returns the HTTP handler.
func (s *Server) Handler() http.Handler { return guardPath(s.router) }

// guardPath answers 404 to a path with . or .. segments, spelt out or percent-encoded
// (%2e%2e, or ..%2F inside a name): no object is named so, and such a path only ever tries to
// reach another one than it seems to name.
func guardPath(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, seg := range strings.Split(r.URL.Path, "/") {
			if seg == "." || seg == ".." {
				setRequestID(w, r)
				writeProblem(w, errorf(http.StatusNotFound, "not-found", "no object is named with . or .. segments (%q)", r.URL.EscapedPath()))
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// Router exposes the routes (the OpenAPI test walks them).
func (s *Server) Router() *mux.Router { return s.router }
