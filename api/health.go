package api

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// Readiness reports whether the process can serve: Postgres reachable, migrations applied,
// projections running, without unresolved dead letters and not too far behind. A nil error means
// ready; the map carries per-check detail. Not ready is answered 503 with a problem document
// whose detail is the error's text.
type Readiness func(ctx context.Context) (map[string]string, error)

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	checks, err := s.Readiness(ctx)
	if checks == nil {
		checks = map[string]string{} // the document promises an object: a check that has none is still one
	}
	if err != nil {
		// The detail names what is wrong (a stopped projection, by name and position); the
		// checks carry the rest.
		writeProblem(w, &Error{Status: http.StatusServiceUnavailable, Type: "not-ready",
			Detail: "not ready: " + err.Error(), Extra: map[string]any{"checks": checks}})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(map[string]any{"status": "ready", "checks": checks})
}
