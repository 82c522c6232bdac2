package web

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"mailplane/workers"
)

type deletePage struct {
	Preview obj
	Kinds   []string
}

func (c *call) deletePage() error { return c.deleteRender(nil) }

func (c *call) deleteRender(pr *Problem) error {
	v, _, err := c.domainView("Delete domain", "delete")
	if err != nil {
		return err
	}
	var pv obj
	if err := c.get(dpath(c)+"/deletion-preview?limit=500", &pv); err != nil {
		return err
	}
	v.Data = deletePage{Preview: pv, Kinds: []string{"accounts", "aliases", "lists", "resources", "virtual_hosts", "certificates"}}
	status := http.StatusOK
	if pr != nil {
		v.setProblem(pr)
		status = pr.Status
	}
	return c.render(status, "delete", v)
}

func (c *call) deleteDomain() error {
	d := c.r.PathValue("d")
	switch c.r.PostFormValue("choice") {
	case "close":
		res, err := c.api(http.MethodPost, dpath(c)+"/close", nil)
		if err != nil {
			return err
		}
		if !res.ok() {
			return c.deleteRender(res.problem())
		}
		return c.redirect("/domains/"+url.PathEscape(d), "closed")
	case "remove":
		if !strings.EqualFold(strings.TrimSpace(c.r.PostFormValue("confirm")), d) {
			return c.deleteRender(localProblem(map[string]string{"confirm": "type the domain's name to remove it and all its objects"}))
		}
		res, err := c.api(http.MethodDelete, dpath(c), nil)
		if err != nil {
			return err
		}
		if !res.ok() {
			return c.deleteRender(res.problem())
		}
		return c.followJob(res)
	default:
		return c.deleteRender(localProblem(map[string]string{"choice": "choose to close the domain or to remove it"}))
	}
}

// ---- jobs

// followJob shows the progress page of the job a 202 answered with (domain removal, GAL
// resync, certificate issuance); the page links back to the domain of the path.
func (c *call) followJob(res response) error {
	var out struct {
		Job struct {
			ID int64 `json:"id"`
		} `json:"job"`
	}
	if err := res.decode(&out); err != nil {
		return err
	}
	return c.redirect(fmt.Sprintf("/jobs/%d?domain=%s", out.Job.ID, url.QueryEscape(c.r.PathValue("d"))), "")
}

type jobPage struct {
	Job     obj
	Done    bool
	Percent float64
}

func (c *call) job() error {
	var j obj
	if err := c.get("/api/v1/jobs/"+url.PathEscape(c.r.PathValue("id")), &j); err != nil {
		return err
	}
	v := c.view(fmt.Sprintf("Job %v", j["id"]))
	state := fmt.Sprint(j["state"])
	page := jobPage{Job: j, Done: state == workers.JobSucceeded || state == workers.JobFailed || state == workers.JobCancelled}
	if pg, ok := j["progress"].(obj); ok {
		done, _ := pg["done"].(float64)
		total, _ := pg["total"].(float64)
		if total > 0 {
			page.Percent = 100 * done / total
		}
	}
	v.Data = page
	v.Form = map[string]string{"domain": c.r.URL.Query().Get("domain")}
	return c.render(http.StatusOK, "job", v)
}
