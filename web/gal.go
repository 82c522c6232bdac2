package web

import (
	"fmt"
	"net/http"
	"net/url"
)

// galFields are the GAL's settings as the form names them (the API's PUT body, dotted).
var galFields = []field{{"account", text}, {"mode", text}, {"polling_interval_seconds", integer},
	{"external.ldap_url", text}, {"external.bind_dn", text}, {"external.bind_password", secret},
	{"external.search_base", text}, {"external.search_filter", text}, {"external.start_tls", check},
	{"external.timeout_seconds", integer}}

type galPage struct {
	// GAL is the API's document, nil when the domain has none yet (the form then creates it).
	GAL obj
}

func galPath(c *call) string { return dpath(c) + "/gal" }

func (c *call) gal() error { return c.galRender(nil, nil) }

func (c *call) galRender(pr *Problem, form map[string]string) error {
	v, _, err := c.domainView("GAL", "gal")
	if err != nil {
		return err
	}
	var page galPage
	res, err := c.api(http.MethodGet, galPath(c), nil)
	if err != nil {
		return err
	}
	switch {
	case res.ok():
		if err := res.decode(&page.GAL); err != nil {
			return err
		}
	case res.Status != http.StatusNotFound:
		return &apiError{path: galPath(c), pr: res.problem()}
	}
	v.Data = page
	if form == nil {
		form = galFormValues(page.GAL, v.Domain)
	}
	v.Form = form
	status := http.StatusOK
	if pr != nil {
		v.setProblem(pr)
		status = pr.Status
	}
	return c.render(status, "gal", v)
}

// galFormValues fills the form from the GAL, or proposes galsync@ and internal for a new one.
func galFormValues(g obj, domainName string) map[string]string {
	str := funcs["str"].(func(any) string)
	if g == nil {
		return map[string]string{"account": "galsync@" + domainName, "mode": "internal"}
	}
	f := map[string]string{"account": str(g["account"]), "mode": str(g["mode"]), "polling_interval_seconds": str(g["polling_interval_seconds"])}
	if x, ok := g["external"].(obj); ok {
		for _, k := range []string{"ldap_url", "bind_dn", "search_base", "search_filter", "timeout_seconds"} {
			f["external."+k] = str(x[k])
		}
		if x["start_tls"] == true {
			f["external.start_tls"] = "on"
		}
	}
	return f
}

// saveGAL PUTs the whole configuration. The external source is sent when the mode reads it or
// its URL is filled: an internal GAL without a URL has none (the API then drops the one it had,
// with its password and the entries it gave).
func (c *call) saveGAL() error {
	body, bad := c.body(galFields, false)
	if len(bad) > 0 {
		return c.galRender(localProblem(bad), c.formValues())
	}
	if ext := body["external"].(obj); body["mode"] == "internal" && ext["ldap_url"] == "" {
		delete(body, "external")
	}
	res, err := c.api(http.MethodPut, galPath(c), body)
	if err != nil {
		return err
	}
	if !res.ok() {
		return c.galRender(res.problem(), c.formValues())
	}
	return c.redirect("/domains/"+url.PathEscape(c.r.PathValue("d"))+"/gal", "saved")
}

func (c *call) removeGAL() error {
	res, err := c.api(http.MethodDelete, galPath(c), nil)
	if err != nil {
		return err
	}
	if !res.ok() {
		return c.galRender(res.problem(), nil)
	}
	return c.redirect("/domains/"+url.PathEscape(c.r.PathValue("d"))+"/gal", "gal-removed")
}

// resyncGAL asks for a resync now (RE-SYNC) and shows its job.
func (c *call) resyncGAL() error {
	res, err := c.api(http.MethodPost, galPath(c)+"/resync", nil)
	if err != nil {
		return err
	}
	if !res.ok() {
		return c.galRender(res.problem(), nil)
	}
	return c.followJob(res)
}

// seconds shows a duration given in seconds or milliseconds (ms true) the way people read it.
func seconds(v any, ms bool) string {
	f, ok := v.(float64)
	if !ok {
		return "—"
	}
	if ms {
		if f < 1000 {
			return fmt.Sprintf("%.0f ms", f)
		}
		f /= 1000
	}
	switch {
	case f < 120:
		return trimFloat(f) + " s"
	case f < 7200:
		return fmt.Sprintf("%s min", trimFloat(float64(int64(f/6))/10))
	default:
		return fmt.Sprintf("%s h", trimFloat(float64(int64(f/360))/10))
	}
}
