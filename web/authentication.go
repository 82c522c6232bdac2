package web

import (
	"net/http"
	"net/url"
)

// authFields are the domain's authentication settings: how its accounts' passwords are checked
// (mailplane itself, or an LDAP / Active Directory bind) and whether they need a second factor.
// Only a global administrator may change them (the API refuses a domain administrator).
var authFields = []field{{"auth.mechanism", text}, {"auth.ldap_url", text}, {"auth.bind_dn", text},
	{"auth.bind_password", secret}, {"auth.search_base", text}, {"auth.search_filter", text}, {"totp_required", check}}

type authPage struct {
	Domain obj
	// ReadOnly: the administrator is not a global one, so the form is shown disabled.
	ReadOnly bool
}

func (c *call) authentication() error { return c.authRender(nil, nil) }

func (c *call) authRender(pr *Problem, form map[string]string) error {
	v, d, err := c.domainView("Authentication", "auth")
	if err != nil {
		return err
	}
	v.Global = c.global()
	v.Data = authPage{Domain: d, ReadOnly: !v.Global}
	if form == nil {
		str := funcs["str"].(func(any) string)
		form = map[string]string{}
		if a, ok := d["auth"].(obj); ok {
			for _, k := range []string{"mechanism", "ldap_url", "bind_dn", "search_base", "search_filter"} {
				form["auth."+k] = str(a[k])
			}
		}
		if d["totp_required"] == true {
			form["totp_required"] = "on"
		}
	}
	v.Form = form
	status := http.StatusOK
	if pr != nil {
		v.setProblem(pr)
		status = pr.Status
	}
	return c.render(status, "authentication", v)
}

func (c *call) saveAuthentication() error {
	body, bad := c.body(authFields, false)
	if len(bad) > 0 {
		return c.authRender(localProblem(bad), c.formValues())
	}
	res, err := c.api(http.MethodPatch, dpath(c), body)
	if err != nil {
		return err
	}
	if !res.ok() {
		return c.authRender(res.problem(), c.formValues())
	}
	return c.redirect("/domains/"+url.PathEscape(c.r.PathValue("d"))+"/authentication", "saved")
}
