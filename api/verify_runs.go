package api

import (
	"net/http"
	"strconv"

	"github.com/gorilla/mux"

	"mailplane/eventstore"
)

func (s *Server) routeVerifyRuns(r *mux.Router) {
	r.Handle("/verify-runs", s.handle(s.listVerifyRuns)).Methods(http.MethodGet)
}

// listVerifyRuns answers the latest outcomes of `mailplane verify` (kind chains) and `mailplane
// verify --read-models` (kind read_models), newest first: ?kind= narrows, ?limit= (1–100,
// default 20). Global administrators and auditors of every domain: a finding may name any
// domain's stream.
func (s *Server) listVerifyRuns(w http.ResponseWriter, r *http.Request) error {
	if err := requireGlobalReader(principal(r)); err != nil {
		return err
	}
	q := r.URL.Query()
	var fields []FieldError
	kind := q.Get("kind")
	switch kind {
	case "", eventstore.VerifyChains, eventstore.VerifyReadModels:
	default:
		fields = append(fields, FieldError{Field: "kind", Message: "must be chains or read_models"})
	}
	limit := 20
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			fields = append(fields, FieldError{Field: "limit", Message: "must be an integer from 1 to 100"})
		}
		limit = n
	}
	if len(fields) > 0 {
		return &Error{Status: http.StatusBadRequest, Type: "validation", Detail: "bad verify-runs query", Fields: fields}
	}
	runs, err := s.Store.VerifyRuns(r.Context(), kind, limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": runs})
	return nil
}
