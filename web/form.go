package web

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

type obj = map[string]any

// list is an API list page.
type list struct {
	Items      []obj   `json:"items"`
	NextCursor *string `json:"next_cursor"`
}

// kinds of form fields: how an input's text becomes JSON.
type kind int

const (
	text     kind = iota // a string, sent as is
	nullText             // empty: null (inherit), else the string
	nullInt              // empty: null (inherit), else a number
	integer              // empty: 0 ("no limit")
	check                // a checkbox: true when sent
	lines                // a text area, one address a line: an array (empty: [])
	count                // a whole number without units; empty: 0
	// secret is write-only (a bind password): empty is left out, so the API keeps the one set,
	// unless the checkbox NAME_clear is ticked, which sends "" to clear it. Never trimmed.
	secret
)

type field struct {
	name string
	kind kind
}

// body turns the posted form into the API's JSON, nesting dotted names ("limits.warn_percent").
// create leaves out what is empty (the API's defaults apply). Numbers that do not parse are
// refused here, beside their field, without calling the API.
func (c *call) body(fields []field, create bool) (obj, map[string]string) {
	out, bad := obj{}, map[string]string{}
	for _, f := range fields {
		raw := strings.TrimSpace(c.r.PostFormValue(f.name))
		if f.kind == text && f.name == "password" {
			raw = c.r.PostFormValue(f.name)
		}
		var v any
		switch f.kind {
		case text:
			if raw == "" && create {
				continue
			}
			v = raw
		case nullText:
			if raw == "" {
				if create {
					continue
				}
				v = nil
			} else {
				v = raw
			}
		case nullInt, integer:
			if raw == "" {
				if create {
					continue
				}
				if f.kind == integer {
					v = 0
				} else {
					v = nil
				}
				break
			}
			n, err := parseSize(raw)
			if err != nil {
				bad[f.name] = err.Error()
				continue
			}
			v = n
		case check:
			v = c.r.PostFormValue(f.name) != ""
		case lines:
			if raw == "" && create {
				continue
			}
			v = splitLines(raw)
		case count:
			if raw == "" {
				if create {
					continue
				}
				v = 0
				break
			}
			n, err := strconv.Atoi(raw)
			if err != nil {
				bad[f.name] = "is not a whole number"
				continue
			}
			v = n
		case secret:
			if raw = c.r.PostFormValue(f.name); raw == "" && c.r.PostFormValue(f.name+"_clear") == "" {
				continue
			}
			v = raw
		}
		dst := out
		parts := strings.Split(f.name, ".")
		for _, part := range parts[:len(parts)-1] {
			sub, ok := dst[part].(obj)
			if !ok {
				sub = obj{}
				dst[part] = sub
			}
			dst = sub
		}
		dst[parts[len(parts)-1]] = v
	}
	return out, bad
}

// parseSize reads a number, with an optional binary unit (KiB, MiB, GiB, TiB; K/M/G/T too).
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(strings.ReplaceAll(s, " ", ""))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		m      int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"T", 1 << 40}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}} {
		if len(s) > len(u.suffix) && strings.EqualFold(s[len(s)-len(u.suffix):], u.suffix) {
			s, mult = s[:len(s)-len(u.suffix)], u.m
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("is not a whole number (units KiB, MiB, GiB, TiB may follow)")
	}
	return n * mult, nil
}

// formValues keeps what was posted, to show it again beside the problems (never a password).
func (c *call) formValues() map[string]string {
	out := map[string]string{}
	for k, v := range c.r.PostForm {
		if k != "csrf" && !strings.HasSuffix(k, "password") && k != "private_key" && len(v) > 0 {
			out[k] = v[0]
		}
	}
	return out
}

func localProblem(bad map[string]string) *Problem {
	pr := &Problem{Status: http.StatusBadRequest, Title: "Bad Request", Type: "/problems/validation", Detail: "the form has invalid fields"}
	for f, m := range bad {
		pr.Errors = append(pr.Errors, struct {
			Field   string `json:"field"`
			Message string `json:"message"`
		}{f, m})
	}
	return pr
}

func dpath(c *call) string { return "/api/v1/domains/" + url.PathEscape(c.r.PathValue("d")) }

// splitLines reads a text area of one value a line; blank lines are passed over.
func splitLines(s string) []string {
	out := []string{}
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// joinLines shows an array of the API in a text area, one a line.
func joinLines(v any) string {
	xs, _ := v.([]any)
	var b strings.Builder
	for _, x := range xs {
		b.WriteString(fmt.Sprint(x))
		b.WriteString("\n")
	}
	return b.String()
}

// fold gives the field errors about name — the array as a whole or one element of it,
// "name[3]" — to the form's input to, so that they are shown beside it; an element's error
// says which line of sent it is about.
func (pr *Problem) fold(name, to string, sent []string) {
	if pr == nil {
		return
	}
	for i, e := range pr.Errors {
		switch {
		case e.Field == name:
			pr.Errors[i].Field = to
		case strings.HasPrefix(e.Field, name+"[") && strings.HasSuffix(e.Field, "]"):
			n, err := strconv.Atoi(e.Field[len(name)+1 : len(e.Field)-1])
			pr.Errors[i].Field = to
			if err == nil && n >= 0 && n < len(sent) {
				if len(sent) > 1 {
					pr.Errors[i].Message = fmt.Sprintf("line %d, “%s”: %s", n+1, sent[n], e.Message)
				} else {
					pr.Errors[i].Message = fmt.Sprintf("“%s”: %s", sent[n], e.Message)
				}
			}
		}
	}
}

// show renders a page, with the problem of a refused submission when there is one (and its
// status).
func (c *call) show(name string, v *View, pr *Problem) error {
	status := http.StatusOK
	if pr != nil {
		v.setProblem(pr)
		status = pr.Status
	}
	return c.render(status, name, v)
}

// pageOf reads one page of an API list at path: on a GET the request's own filters (keys) and
// cursor are passed on. next is the query of the following page ("" on the last one); q holds
// the filters read.
func (c *call) pageOf(path string, keys ...string) (items []obj, next string, q url.Values, err error) {
	q = url.Values{"limit": {"100"}}
	if c.r.Method == http.MethodGet {
		for _, k := range append(keys, "cursor") {
			if s := c.r.URL.Query().Get(k); s != "" {
				q.Set(k, s)
			}
		}
	}
	var l list
	if err := c.get(path+"?"+q.Encode(), &l); err != nil {
		return nil, "", q, err
	}
	if l.NextCursor != nil {
		nq := url.Values{}
		for k, v := range q {
			nq[k] = v
		}
		nq.Set("cursor", *l.NextCursor)
		nq.Del("limit")
		next = "?" + nq.Encode()
	}
	q.Del("cursor")
	return l.Items, next, q, nil
}

// address completes a bare local part with the page's domain: the create forms ask for the
// name before the @ and take a whole address too.
func address(s, domainName string) string {
	s = strings.TrimSpace(s)
	if s != "" && !strings.Contains(s, "@") {
		return s + "@" + domainName
	}
	return s
}
