package api

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// Readiness reports whether the process can serve: Postgres reachable, migrations applied,
// projections not too far behind. A nil error means ready; the map carries per-check detail.
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
	status, code := "ready", http.StatusOK
	if err != nil {
		status, code = "not ready: "+err.Error(), http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{"status": status, "checks": checks})
}
