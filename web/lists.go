package web

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// Mailing lists: the domain's lists, and a list's page with its settings, its address sets
// (members, owners, aliases), its mode (static or dynamic) and its removal.

func lpath(addr string) string { return "/api/v1/lists/" + url.PathEscape(addr) }

// listPageURL is the panel's page of a list.
func listPageURL(addr string) string { return "/lists/" + url.PathEscape(addr) }

var listCreateFields = []field{{"address", text}, {"display_name", text}, {"description", text}, {"members", lines},
	{"owners", lines}, {"subscription_policy", text}, {"unsubscription_policy", text}, {"hide_in_gal", check}}

var listSettingsFields = []field{{"display_name", text}, {"description", text}, {"allowed_senders", lines},
	{"subscription_policy", text}, {"unsubscription_policy", text}, {"hide_in_gal", check}}

type listsPage struct {
	Items []obj
	Next  string
}

func (c *call) lists() error { return c.listsRender(nil, nil) }

func (c *call) listsRender(pr *Problem, form map[string]string) error {
	v, _, err := c.domainView("Mailing lists", "lists")
	if err != nil {
		return err
	}
	items, next, q, err := c.pageOf(dpath(c)+"/lists", "q")
	if err != nil {
		return err
	}
	v.Data = listsPage{Items: items, Next: next}
	if form == nil {
		form = map[string]string{"subscription_policy": "approval", "unsubscription_policy": "accept"}
	}
	form["q"] = q.Get("q")
	v.Form = form
	return c.show("lists", v, pr)
}

func (c *call) createList() error {
	fields := listCreateFields
	dynamic := c.r.PostFormValue("mode") == "dynamic"
	if dynamic {
		// A dynamic list takes its members from its query and accepts none of its own.
		fields = append(fields[:3:3], append([]field{{"dynamic.member_url", text}}, fields[4:]...)...)
	}
	body, bad := c.body(fields, true)
	if len(bad) > 0 {
		return c.listsRender(localProblem(bad), c.formValues())
	}
	if a := address(c.r.PostFormValue("address"), c.r.PathValue("d")); a != "" {
		body["address"] = a
	}
	if dynamic && body["dynamic"] == nil {
		body["dynamic"] = obj{"member_url": ""}
	}
	res, err := c.api(http.MethodPost, dpath(c)+"/lists", body)
	if err != nil {
		return err
	}
	if !res.ok() {
		pr := res.problem()
		pr.fold("members", "members", splitLines(c.r.PostFormValue("members")))
		pr.fold("owners", "owners", splitLines(c.r.PostFormValue("owners")))
		return c.listsRender(pr, c.formValues())
	}
	var l obj
	if err := res.decode(&l); err != nil {
		return err
	}
	return c.redirect(listPageURL(fmt.Sprint(l["address"])), "created")
}

type listPage struct {
	List obj
	// Members is one page of the members: a dynamic list's as its query finds them in the
	// directory. MembersProblem says why they could not be read.
	Members        []string
	MembersProblem *Problem
	Next           string
	Dynamic        bool
}

func (c *call) list() error { return c.listRender(nil, nil, "") }

// listRender shows a list's page; form holds what a refused form sent, shown over the list's
// current values.
func (c *call) listRender(pr *Problem, form map[string]string, flash string) error {
	addr := c.r.PathValue("l")
	var l obj
	if err := c.get(lpath(addr), &l); err != nil {
		return err
	}
	v := c.view("List " + fmt.Sprint(l["address"]))
	if flash != "" {
		v.Flash = flash
	}
	v.Domain, v.Tab = fmt.Sprint(l["domain"]), "lists"
	page := listPage{List: l, Dynamic: l["dynamic"] != nil}
	q := url.Values{"limit": {"100"}}
	if c.r.Method == http.MethodGet {
		for _, k := range []string{"q", "cursor"} {
			if s := c.r.URL.Query().Get(k); s != "" {
				q.Set(k, s)
			}
		}
	}
	res, err := c.api(http.MethodGet, lpath(addr)+"/members?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	var ml list
	if !res.ok() {
		page.MembersProblem = res.problem()
	} else if err := res.decode(&ml); err != nil {
		return err
	}
	for _, m := range ml.Items {
		page.Members = append(page.Members, fmt.Sprint(m["address"]))
	}
	if ml.NextCursor != nil {
		page.Next = "?" + url.Values{"q": {q.Get("q")}, "cursor": {*ml.NextCursor}}.Encode() + "#members-h"
	}
	v.Data = page
	f := map[string]string{"q": q.Get("q"), "allowed_senders": joinLines(l["allowed_senders"])}
	for _, k := range []string{"display_name", "description", "subscription_policy", "unsubscription_policy"} {
		f[k] = fmt.Sprint(l[k])
	}
	if l["hide_in_gal"] == true {
		f["hide_in_gal"] = "on"
	}
	if d, ok := l["dynamic"].(obj); ok {
		f["dynamic.member_url"] = fmt.Sprint(d["member_url"])
	}
	if form != nil {
		if _, settings := form["display_name"]; settings && form["hide_in_gal"] == "" {
			delete(f, "hide_in_gal") // an unticked box is not sent
		}
		for k, s := range form {
			f[k] = s
		}
	}
	v.Form = f
	return c.show("list", v, pr)
}

func (c *call) saveList() error {
	body, bad := c.body(listSettingsFields, false)
	if len(bad) > 0 {
		return c.listRender(localProblem(bad), c.formValues(), "")
	}
	res, err := c.api(http.MethodPatch, lpath(c.r.PathValue("l")), body)
	if err != nil {
		return err
	}
	if !res.ok() {
		pr := res.problem()
		pr.fold("allowed_senders", "allowed_senders", splitLines(c.r.PostFormValue("allowed_senders")))
		return c.listRender(pr, c.formValues(), "")
	}
	return c.redirect(listPageURL(c.r.PathValue("l")), "saved")
}

// listSet changes one of a list's address sets: set is the API's name ("members"), one the
// form's input for a single address ("member"). The members' form may instead send many, one
// a line, in "members" (the API's bulk change, one event), to add or, with op=remove, remove.
func listSet(set, one string, removing bool) func(*call) error {
	return func(c *call) error {
		addr := c.r.PathValue("l")
		var res response
		var err error
		key, sent := one, []string{strings.TrimSpace(c.r.PostFormValue(one))}
		switch {
		case removing:
			res, err = c.api(http.MethodDelete, lpath(addr)+"/"+set+"/"+url.PathEscape(sent[0]), nil)
		case c.r.PostForm.Has(set):
			key, sent = set, splitLines(c.r.PostFormValue(set))
			method := http.MethodPost
			if c.r.PostFormValue("op") == "remove" {
				method = http.MethodDelete
			}
			res, err = c.api(method, lpath(addr)+"/"+set, obj{set: sent})
		default:
			res, err = c.api(http.MethodPost, lpath(addr)+"/"+set, obj{set: sent})
		}
		if err != nil {
			return err
		}
		if !res.ok() {
			pr := res.problem()
			pr.fold(set, key, sent)
			form := c.formValues()
			if removing {
				form = nil // the address was one of the list's, not typed
			}
			return c.listRender(pr, form, "")
		}
		flash := "added"
		if removing || c.r.PostFormValue("op") == "remove" {
			flash = "removed"
		}
		return c.redirect(listPageURL(addr)+"#"+set+"-h", flash)
	}
}

// listMode turns a list dynamic (or gives it another query), or static again.
func (c *call) listMode() error {
	addr := c.r.PathValue("l")
	var res response
	var err error
	if c.r.PostFormValue("mode") == "static" {
		res, err = c.api(http.MethodDelete, lpath(addr)+"/dynamic", nil)
	} else {
		res, err = c.api(http.MethodPut, lpath(addr)+"/dynamic", obj{
			"member_url":   strings.TrimSpace(c.r.PostFormValue("dynamic.member_url")),
			"drop_members": c.r.PostFormValue("drop_members") != ""})
	}
	if err != nil {
		return err
	}
	if !res.ok() {
		return c.listRender(res.problem(), c.formValues(), "")
	}
	return c.redirect(listPageURL(addr), "mode-changed")
}

func (c *call) deleteList() error {
	addr := c.r.PathValue("l")
	if c.r.PostFormValue("confirm") == "" {
		return c.listRender(localProblem(map[string]string{"confirm": "tick the box to delete the list"}), nil, "")
	}
	var l obj
	if err := c.get(lpath(addr), &l); err != nil {
		return err
	}
	res, err := c.api(http.MethodDelete, lpath(addr), nil)
	if err != nil {
		return err
	}
	if !res.ok() {
		return c.listRender(res.problem(), nil, "")
	}
	return c.redirect("/domains/"+url.PathEscape(fmt.Sprint(l["domain"]))+"/lists", "deleted")
}
