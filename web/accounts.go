package web

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

var accountCreateFields = []field{{"local_part", text}, {"display_name", text}, {"password", text}, {"cos", nullText},
	{"status", text}, {"mail_quota_bytes", nullInt}, {"domain_admin", check}}

type accountsPage struct {
	Items []obj
	COS   []string
	Next  string
}

func (c *call) accounts() error { return c.accountsRender(nil, nil, http.StatusOK) }

func (c *call) accountsRender(pr *Problem, form map[string]string, status int) error {
	v, _, err := c.domainView("Accounts", "accounts")
	if err != nil {
		return err
	}
	q := url.Values{"limit": {"100"}}
	if c.r.Method == http.MethodGet {
		for _, k := range []string{"q", "status", "cursor"} {
			if s := c.r.URL.Query().Get(k); s != "" {
				q.Set(k, s)
			}
		}
	}
	var l list
	if err := c.get(dpath(c)+"/accounts?"+q.Encode(), &l); err != nil {
		return err
	}
	page := accountsPage{Items: l.Items, COS: c.cosNames()}
	if l.NextCursor != nil {
		q.Set("cursor", *l.NextCursor)
		page.Next = "?" + q.Encode()
	}
	v.Data = page
	if form == nil {
		form = map[string]string{"q": q.Get("q"), "status_filter": q.Get("status")}
	}
	v.Form = form
	if pr != nil {
		v.setProblem(pr)
	}
	return c.render(status, "accounts", v)
}

func (c *call) createAccount() error {
	body, bad := c.body(accountCreateFields, true)
	if len(bad) > 0 {
		return c.accountsRender(localProblem(bad), c.formValues(), http.StatusBadRequest)
	}
	res, err := c.api(http.MethodPost, dpath(c)+"/accounts", body)
	if err != nil {
		return err
	}
	if !res.ok() {
		return c.accountsRender(res.problem(), c.formValues(), res.Status)
	}
	var a obj
	if err := res.decode(&a); err != nil {
		return err
	}
	addr := fmt.Sprint(a["address"])
	if alias := strings.TrimSpace(c.r.PostFormValue("alias")); alias != "" {
		res, err := c.api(http.MethodPost, "/api/v1/accounts/"+url.PathEscape(addr)+"/aliases", obj{"alias": alias})
		if err != nil {
			return err
		}
		if !res.ok() {
			// The account exists; its page says why the alias was refused, beside the alias field.
			return c.accountRender(addr, res.problem(), map[string]string{"alias": alias}, "The account has been created, but its alias was refused.")
		}
	}
	return c.redirect("/accounts/"+url.PathEscape(addr), "created")
}

type accountPage struct {
	Account  obj
	Sessions []obj
	COS      []string
	Rows     []effectiveRow
}

type effectiveRow struct {
	Name, Value, Source string
}

func (c *call) account() error { return c.accountRender(c.r.PathValue("a"), nil, nil, "") }

func apath(addr string) string { return "/api/v1/accounts/" + url.PathEscape(addr) }

func (c *call) accountRender(addr string, pr *Problem, form map[string]string, flash string) error {
	var a obj
	if err := c.get(apath(addr), &a); err != nil {
		return err
	}
	var sess list
	if err := c.get(apath(addr)+"/sessions", &sess); err != nil {
		return err
	}
	v := c.view("Account " + fmt.Sprint(a["address"]))
	if flash != "" {
		v.Flash = flash
	}
	v.Domain, v.Tab = fmt.Sprint(a["domain"]), "accounts"
	page := accountPage{Account: a, Sessions: sess.Items, COS: c.cosNames()}
	eff, _ := a["effective"].(obj)
	src, _ := a["sources"].(obj)
	for _, k := range sortedKeys(eff) {
		val := eff[k]
		s := funcs["str"].(func(any) string)(val)
		if strings.HasSuffix(k, "_bytes") {
			s = limitBytes(val)
		}
		if m, ok := val.(obj); ok {
			var parts []string
			for _, mk := range sortedKeys(m) {
				parts = append(parts, mk+"="+fmt.Sprint(m[mk]))
			}
			s = strings.Join(parts, ", ")
		}
		page.Rows = append(page.Rows, effectiveRow{Name: k, Value: s, Source: fmt.Sprint(orDash(src[k]))})
	}
	v.Data = page
	if form == nil {
		form = map[string]string{}
		for _, k := range []string{"display_name", "cos", "status", "mail_quota_bytes"} {
			if a[k] != nil {
				form[k] = funcs["str"].(func(any) string)(a[k])
			}
		}
		if a["domain_admin"] == true {
			form["domain_admin"] = "on"
		}
	}
	v.Form = form
	status := http.StatusOK
	if pr != nil {
		v.setProblem(pr)
		status = pr.Status
	}
	return c.render(status, "account", v)
}

func orDash(v any) any {
	if v == nil {
		return "—"
	}
	return v
}

func (c *call) saveAccount() error {
	addr := c.r.PathValue("a")
	body, bad := c.body([]field{{"display_name", text}, {"cos", nullText}, {"status", text}, {"mail_quota_bytes", nullInt}, {"domain_admin", check}}, false)
	if len(bad) > 0 {
		return c.accountRender(addr, localProblem(bad), c.formValues(), "")
	}
	res, err := c.api(http.MethodPatch, apath(addr), body)
	if err != nil {
		return err
	}
	if !res.ok() {
		return c.accountRender(addr, res.problem(), c.formValues(), "")
	}
	return c.redirect("/accounts/"+url.PathEscape(addr), "saved")
}

func (c *call) addAlias() error {
	addr := c.r.PathValue("a")
	res, err := c.api(http.MethodPost, apath(addr)+"/aliases", obj{"alias": strings.TrimSpace(c.r.PostFormValue("alias"))})
	if err != nil {
		return err
	}
	if !res.ok() {
		return c.accountRender(addr, res.problem(), map[string]string{"alias": c.r.PostFormValue("alias")}, "")
	}
	return c.redirect("/accounts/"+url.PathEscape(addr), "alias-added")
}

func (c *call) removeAlias() error {
	addr := c.r.PathValue("a")
	res, err := c.api(http.MethodDelete, apath(addr)+"/aliases/"+url.PathEscape(c.r.PostFormValue("alias")), nil)
	if err != nil {
		return err
	}
	if !res.ok() {
		return c.accountRender(addr, res.problem(), nil, "")
	}
	return c.redirect("/accounts/"+url.PathEscape(addr), "alias-removed")
}

func (c *call) endSession() error {
	addr := c.r.PathValue("a")
	res, err := c.api(http.MethodDelete, apath(addr)+"/sessions/"+url.PathEscape(c.r.PostFormValue("id")), nil)
	if err != nil {
		return err
	}
	if !res.ok() {
		return c.accountRender(addr, res.problem(), nil, "")
	}
	return c.redirect("/accounts/"+url.PathEscape(addr), "session-ended")
}
