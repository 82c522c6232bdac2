package api

import (
	"net/http"

	"github.com/gorilla/mux"
)

func (s *Server) routeProjections(r *mux.Router) {
	r.Handle("/projections", s.handle(s.listProjections)).Methods(http.MethodGet)
	r.Handle("/projections/{name}/resume", s.handle(s.resumeProjection)).Methods(http.MethodPost)
}

// listProjections shows every projection: position, lag, state, the stop that holds it and its
// unresolved dead letters. Global administrators and auditors of every domain (a stop names its
// stream, which may be any domain's).
func (s *Server) listProjections(w http.ResponseWriter, r *http.Request) error {
	if err := requireGlobalReader(principal(r)); err != nil {
		return err
	}
	infos, err := s.Projections.Inspect(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, infos)
	return nil
}

// resumeRequest is the body of a resume: skip_position, when set, must be the position the
// projection stopped at, and that one event is then never handed to it.
type resumeRequest struct {
	SkipPosition *int64 `json:"skip_position"`
}

// resumeProjection clears a stopped projection's stop, recorded with the caller as the actor.
func (s *Server) resumeProjection(w http.ResponseWriter, r *http.Request) error {
	p := principal(r)
	if err := requireGlobalAdmin(p); err != nil {
		return err
	}
	var body resumeRequest
	if b, err := readBody(r); err != nil {
		return err
	} else if len(b) > 0 {
		if err := decodeBytes(b, &body); err != nil {
			return err
		}
	}
	info, err := s.Projections.Resume(r.Context(), mux.Vars(r)["name"], body.SkipPosition, "api:"+p.Address.String())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, info)
	return nil
}
