package web

import (
	"fmt"
	"net/http"
	"net/url"
)

func (c *call) domains() error {
	q := url.Values{}
	for _, k := range []string{"q", "status", "cursor"} {
		if v := c.r.URL.Query().Get(k); v != "" {
			q.Set(k, v)
		}
	}
	q.Set("limit", "100")
	var l list
	res, err := c.api(http.MethodGet, "/api/v1/domains?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	v := c.view("Domains")
	v.Form = map[string]string{"q": c.r.URL.Query().Get("q"), "status": c.r.URL.Query().Get("status")}
	if !res.ok() {
		v.setProblem(res.problem())
	} else if err := res.decode(&l); err != nil {
		return err
	}
	if l.NextCursor != nil {
		q.Set("cursor", *l.NextCursor)
		v.Form["next"] = "/domains?" + q.Encode()
	}
	v.Data = l.Items
	v.Global = c.global()
	return c.render(http.StatusOK, "domains", v)
}

// global asks the API whether the administrator is a global one (only they read projections).
func (c *call) global() bool {
	res, err := c.api(http.MethodGet, "/api/v1/projections", nil)
	return err == nil && res.ok()
}

var domainFields = []field{{"name", text}, {"description", text}, {"time_zone", nullText}, {"public_protocol", nullText},
	{"spam_relay_host", nullText}, {"default_cos", nullText}, {"status", text}}

func (c *call) cosNames() []string {
	var l list
	if c.get("/api/v1/cos?limit=500", &l) != nil {
		return nil
	}
	var out []string
	for _, it := range l.Items {
		out = append(out, fmt.Sprint(it["name"]))
	}
	return out
}

type domainForm struct {
	COS     []string
	Current obj
}

func (c *call) newDomain() error {
	v := c.view("Create a domain")
	v.Data = domainForm{COS: c.cosNames()}
	return c.render(http.StatusOK, "domain_new", v)
}

func (c *call) createDomain() error {
	body, bad := c.body(domainFields, true)
	v := c.view("Create a domain")
	v.Data = domainForm{COS: c.cosNames()}
	v.Form = c.formValues()
	if len(bad) > 0 {
		v.setProblem(localProblem(bad))
		return c.render(http.StatusBadRequest, "domain_new", v)
	}
	res, err := c.api(http.MethodPost, "/api/v1/domains", body)
	if err != nil {
		return err
	}
	if !res.ok() {
		v.setProblem(res.problem())
		return c.render(res.Status, "domain_new", v)
	}
	var d obj
	if err := res.decode(&d); err != nil {
		return err
	}
	return c.redirect("/domains/"+url.PathEscape(fmt.Sprint(d["name"])), "created")
}

func (c *call) domainView(title, tab string) (*View, obj, error) {
	var d obj
	if err := c.get(dpath(c), &d); err != nil {
		return nil, nil, err
	}
	v := c.view(title + " — " + fmt.Sprint(d["name"]))
	v.Domain, v.Tab = fmt.Sprint(d["name"]), tab
	return v, d, nil
}

func (c *call) general() error {
	v, d, err := c.domainView("General", "general")
	if err != nil {
		return err
	}
	v.Data = domainForm{COS: c.cosNames(), Current: d}
	v.Form = domainFormValues(d)
	return c.render(http.StatusOK, "domain_general", v)
}

func domainFormValues(d obj) map[string]string {
	f := map[string]string{}
	for _, k := range []string{"description", "time_zone", "public_protocol", "spam_relay_host", "default_cos", "status"} {
		if d[k] != nil {
			f[k] = fmt.Sprint(d[k])
		}
	}
	f["status_was"] = f["status"]
	return f
}

func (c *call) saveGeneral() error {
	fields := []field{{"description", text}, {"time_zone", nullText}, {"public_protocol", nullText}, {"spam_relay_host", nullText}, {"default_cos", nullText}}
	// Status is sent only when changed: a domain administrator may save the rest, not the status.
	if c.r.PostFormValue("status") != c.r.PostFormValue("status_was") {
		fields = append(fields, field{"status", text})
	}
	body, bad := c.body(fields, false)
	var res response
	var err error
	if len(bad) == 0 {
		if res, err = c.api(http.MethodPatch, dpath(c), body); err != nil {
			return err
		}
		if res.ok() {
			return c.redirect("/domains/"+url.PathEscape(c.r.PathValue("d")), "saved")
		}
	}
	v, d, err := c.domainView("General", "general")
	if err != nil {
		return err
	}
	v.Data = domainForm{COS: c.cosNames(), Current: d}
	v.Form = c.formValues()
	if len(bad) > 0 {
		v.setProblem(localProblem(bad))
		return c.render(http.StatusBadRequest, "domain_general", v)
	}
	v.setProblem(res.problem())
	return c.render(res.Status, "domain_general", v)
}
