package web

import (
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// riverUI is where the API serves River UI (api/riverui.go's operatorPages).
const riverUI = "/riverui/"

type operationsPage struct {
	Projections []obj
	// Jobs are the most recent jobs, newest first, as the jobs API shows each one.
	Jobs []obj
	// JobsNote says why Jobs is empty when the list could not be read.
	JobsNote string
	// Verify holds the latest run of each kind of `mailplane verify` (chains, then read
	// models), as GET /api/v1/verify-runs answers them; a kind never run is left out.
	Verify []obj
}

func (c *call) operations() error { return c.operationsRender(nil) }

func (c *call) operationsRender(pr *Problem) error {
	res, err := c.api(http.MethodGet, "/api/v1/projections", nil)
	if err != nil {
		return err
	}
	if !res.ok() {
		// A domain administrator (projections are global administrators' and auditors').
		return &apiError{path: "/api/v1/projections", pr: res.problem()}
	}
	v := c.view("Operations")
	v.Global = true
	var page operationsPage
	if err := res.decode(&page.Projections); err != nil {
		return err
	}
	if page.Jobs, page.JobsNote, err = c.recentJobs(25); err != nil {
		return err
	}
	for _, kind := range []string{"chains", "read_models"} {
		var runs list
		if err := c.get("/api/v1/verify-runs?kind="+kind+"&limit=1", &runs); err != nil {
			return err
		}
		page.Verify = append(page.Verify, runs.Items...)
	}
	v.Data = page
	status := http.StatusOK
	if pr != nil {
		v.setProblem(pr)
		status = pr.Status
	}
	return c.render(status, "operations", v)
}

// riverStates are River's job states, in the order the list shows them when ages tie.
var riverStates = []string{"running", "retryable", "available", "scheduled", "pending", "completed", "discarded", "cancelled"}

// recentJobs lists the newest jobs. The admin API has no jobs listing (only GET /jobs/{id}), so
// the ids come from River UI's JSON API, which the API serves to global administrators under
// /riverui (one state per request), and each job is then read through the jobs API for its
// state and progress as mailplane names them. Without River UI, note says so.
func (c *call) recentJobs(n int) ([]obj, string, error) {
	type riverJob struct {
		ID int64 `json:"id"`
	}
	var all []riverJob
	for _, st := range riverStates {
		res, err := c.api(http.MethodGet, riverUI+"api/jobs?"+url.Values{"state": {st}, "limit": {strconv.Itoa(n)}}.Encode(), nil)
		if err != nil {
			return nil, "", err
		}
		if !res.ok() {
			pr := res.problem()
			return nil, fmt.Sprintf("The job list is read from River UI, which answered %d %s.", pr.Status, pr.Detail), nil
		}
		var l struct {
			Data []riverJob `json:"data"`
		}
		if err := res.decode(&l); err != nil {
			return nil, "", err
		}
		all = append(all, l.Data...)
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].ID > all[j].ID })
	if len(all) > n {
		all = all[:n]
	}
	out := make([]obj, 0, len(all))
	for _, j := range all {
		res, err := c.api(http.MethodGet, "/api/v1/jobs/"+strconv.FormatInt(j.ID, 10), nil)
		if err != nil {
			return nil, "", err
		}
		if !res.ok() {
			continue // cleaned away since River listed it
		}
		var job obj
		if err := res.decode(&job); err != nil {
			return nil, "", err
		}
		out = append(out, job)
	}
	return out, "", nil
}

func (c *call) resume() error {
	var body obj = obj{"skip_position": nil}
	if s := strings.TrimSpace(c.r.PostFormValue("skip_position")); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return c.operationsRender(localProblem(map[string]string{"skip_position": "is not a whole number"}))
		}
		body["skip_position"] = n
	}
	res, err := c.api(http.MethodPost, "/api/v1/projections/"+url.PathEscape(c.r.PostFormValue("name"))+"/resume", body)
	if err != nil {
		return err
	}
	if !res.ok() {
		return c.operationsRender(res.problem())
	}
	return c.redirect("/operations", "resumed")
}
