package api

import (
	"net/http"
	"strconv"

	"github.com/gorilla/mux"

	"mailplane/commands"
)

func (s *Server) routeJobs(r *mux.Router) {
	r.Handle("/jobs/{id}", s.handle(s.getJob)).Methods(http.MethodGet)
}

// getJob follows a job a 202 answered with. Global administrators see every job, a domain's
// administrators its domain's, and whoever asked for a job sees it too.
func (s *Server) getJob(w http.ResponseWriter, r *http.Request) error {
	id, err := strconv.ParseInt(mux.Vars(r)["id"], 10, 64)
	if err != nil || id <= 0 {
		return errorf(http.StatusNotFound, "not-found", "no job %q", mux.Vars(r)["id"])
	}
	job, err := s.Jobs.Lookup(r.Context(), id)
	if err != nil {
		return err
	}
	p := principal(r)
	if !p.GlobalAdmin && !p.AuditsAll() && p.Address.String() != job.RequestedBy && (job.Domain == "" || requireDomainAdmin(p, job.Domain) != nil) {
		return forbidden("this job is neither yours nor in a domain you administer")
	}
	writeJSON(w, http.StatusOK, job)
	return nil
}

// respondJob answers a write that started a job: 202 with the job (API.md "Long work"), and
// the job's path in Location. A replay answers what the first request was answered, Location
// included (finish keeps it with the response).
func (s *Server) respondJob(w http.ResponseWriter, r *http.Request, req commands.Request, out commands.Outcome) error {
	if !out.Replayed {
		w.Header().Set("Location", "/api/v1/jobs/"+strconv.FormatInt(out.JobID, 10))
	}
	return s.respondNow(w, r, req, out, http.StatusAccepted, func() (any, int, error) {
		job, err := s.Jobs.Lookup(r.Context(), out.JobID)
		if err != nil {
			return nil, 0, err
		}
		return map[string]any{"job": job}, 0, nil
	})
}
