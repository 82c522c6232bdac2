package web

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// Resources: things and places booked by mail (a meeting room, a projector), with their booking
// policy. They have no signature and nobody logs in as one.

func rpath(addr string) string { return "/api/v1/resources/" + url.PathEscape(addr) }

func resourcePageURL(addr string) string { return "/resources/" + url.PathEscape(addr) }

// resourceFields are the settings the create and edit forms share.
var resourceFields = []field{{"display_name", text}, {"type", text}, {"capacity", count}, {"location", text},
	{"booking_policy", text}, {"max_conflicts", count}, {"notify_addresses", lines}}

// resourceForm is what the create and edit forms offer.
type resourceForm struct {
	Types, Policies []string
	Items           []obj
	Next            string
	Resource        obj
}

var resourceChoices = resourceForm{Types: []string{"location", "equipment"},
	Policies: []string{"auto_accept", "auto_accept_unless_busy", "manual", "auto_decline"}}

func (c *call) resources() error { return c.resourcesRender(nil, nil) }

func (c *call) resourcesRender(pr *Problem, form map[string]string) error {
	v, _, err := c.domainView("Resources", "resources")
	if err != nil {
		return err
	}
	items, next, q, err := c.pageOf(dpath(c)+"/resources", "q")
	if err != nil {
		return err
	}
	page := resourceChoices
	page.Items, page.Next = items, next
	v.Data = page
	if form == nil {
		form = map[string]string{"type": "location", "booking_policy": "auto_accept_unless_busy"}
	}
	form["q"] = q.Get("q")
	v.Form = form
	return c.show("resources", v, pr)
}

func (c *call) createResource() error {
	body, bad := c.body(resourceFields, true)
	if len(bad) > 0 {
		return c.resourcesRender(localProblem(bad), c.formValues())
	}
	if a := address(c.r.PostFormValue("address"), c.r.PathValue("d")); a != "" {
		body["address"] = a
	}
	res, err := c.api(http.MethodPost, dpath(c)+"/resources", body)
	if err != nil {
		return err
	}
	if !res.ok() {
		pr := res.problem()
		pr.fold("notify_addresses", "notify_addresses", splitLines(c.r.PostFormValue("notify_addresses")))
		return c.resourcesRender(pr, c.formValues())
	}
	var x obj
	if err := res.decode(&x); err != nil {
		return err
	}
	return c.redirect(resourcePageURL(fmt.Sprint(x["address"])), "created")
}

func (c *call) resource() error { return c.resourceRender(nil, nil) }

// resourceRender shows a resource's page; form holds what a refused form sent, shown over the
// resource's current values.
func (c *call) resourceRender(pr *Problem, form map[string]string) error {
	addr := c.r.PathValue("r")
	var x obj
	if err := c.get(rpath(addr), &x); err != nil {
		return err
	}
	v := c.view("Resource " + fmt.Sprint(x["address"]))
	v.Domain, v.Tab = fmt.Sprint(x["domain"]), "resources"
	page := resourceChoices
	page.Resource = x
	v.Data = page
	f := map[string]string{"notify_addresses": joinLines(x["notify_addresses"])}
	for _, k := range []string{"display_name", "type", "capacity", "location", "booking_policy", "max_conflicts"} {
		f[k] = funcs["str"].(func(any) string)(x[k])
	}
	for k, s := range form {
		f[k] = s
	}
	v.Form = f
	return c.show("resource", v, pr)
}

func (c *call) saveResource() error {
	body, bad := c.body(resourceFields, false)
	if len(bad) > 0 {
		return c.resourceRender(localProblem(bad), c.formValues())
	}
	res, err := c.api(http.MethodPatch, rpath(c.r.PathValue("r")), body)
	if err != nil {
		return err
	}
	if !res.ok() {
		pr := res.problem()
		pr.fold("notify_addresses", "notify_addresses", splitLines(c.r.PostFormValue("notify_addresses")))
		return c.resourceRender(pr, c.formValues())
	}
	return c.redirect(resourcePageURL(c.r.PathValue("r")), "saved")
}

func (c *call) addResourceAlias() error {
	addr := c.r.PathValue("r")
	res, err := c.api(http.MethodPost, rpath(addr)+"/aliases", obj{"alias": strings.TrimSpace(c.r.PostFormValue("alias"))})
	if err != nil {
		return err
	}
	if !res.ok() {
		return c.resourceRender(res.problem(), map[string]string{"alias": c.r.PostFormValue("alias")})
	}
	return c.redirect(resourcePageURL(addr)+"#aliases-h", "alias-added")
}

func (c *call) removeResourceAlias() error {
	addr := c.r.PathValue("r")
	res, err := c.api(http.MethodDelete, rpath(addr)+"/aliases/"+url.PathEscape(c.r.PostFormValue("alias")), nil)
	if err != nil {
		return err
	}
	if !res.ok() {
		return c.resourceRender(res.problem(), nil)
	}
	return c.redirect(resourcePageURL(addr)+"#aliases-h", "alias-removed")
}

func (c *call) deleteResource() error {
	addr := c.r.PathValue("r")
	if c.r.PostFormValue("confirm") == "" {
		return c.resourceRender(localProblem(map[string]string{"confirm": "tick the box to delete the resource"}), nil)
	}
	var x obj
	if err := c.get(rpath(addr), &x); err != nil {
		return err
	}
	res, err := c.api(http.MethodDelete, rpath(addr), nil)
	if err != nil {
		return err
	}
	if !res.ok() {
		return c.resourceRender(res.problem(), nil)
	}
	return c.redirect("/domains/"+url.PathEscape(fmt.Sprint(x["domain"]))+"/resources", "deleted")
}
