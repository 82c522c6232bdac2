package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"mailplane/domain"
)

// History: the events of a domain and of every object in it (the API's domain history), with
// its filters, a count of events per day, and each object as it stood at an event's moment.

// historyFilters are the API's history filters the page offers (after and before are read from
// the form's datetime-local inputs, in UTC).
var historyFilters = []string{"after", "before", "type", "actor", "ip", "request_id", "session_id"}

// timelinePages bounds the reading behind the per-day timeline: at most this many pages of 500
// events; beyond, the timeline says it counted only the first ones.
const timelinePages = 20

// event is one entry of the API's history.
type event struct {
	Position   int64           `json:"position"`
	Stream     string          `json:"stream"`
	StreamType string          `json:"stream_type"`
	Version    int             `json:"version"`
	Type       string          `json:"type"`
	Data       json.RawMessage `json:"data"`
	Actor      string          `json:"actor"`
	SessionID  string          `json:"session_id"`
	RequestID  string          `json:"request_id"`
	SourceIP   string          `json:"source_ip"`
	RecordedAt time.Time       `json:"recorded_at"`
}

type historyPage struct {
	Items []historyEntry
	Next  string
	Types []string
	Days  []dayCount
	// Max is the largest day's count (the bars' scale); Counted the events the timeline saw,
	// Capped whether there were more than it read.
	Max, Counted int
	Capped       bool
}

type historyEntry struct {
	event
	Object string
	// Page is the object's page now; AsOf its read-only view at the event's moment ("" for
	// objects the panel has no page for).
	Page, AsOf string
	Data       string
}

type dayCount struct {
	Day string
	N   int
}

// objectPages are the panel's pages of the objects whose past the API can show (?as_of=).
var objectPages = map[string]string{
	domain.StreamTypeDomain: "/domains/", domain.StreamTypeAccount: "/accounts/",
	domain.StreamTypeList: "/lists/", domain.StreamTypeResource: "/resources/",
}

// objectAPI is where the API reads each kind of object.
var objectAPI = map[string]string{
	domain.StreamTypeDomain: "/api/v1/domains/", domain.StreamTypeAccount: "/api/v1/accounts/",
	domain.StreamTypeList: "/api/v1/lists/", domain.StreamTypeResource: "/api/v1/resources/",
}

// eventTypes are the types the type filter offers.
var eventTypes = func() []string {
	var out []string
	for _, e := range domain.Events() {
		out = append(out, e.EventType())
	}
	slices.Sort(out)
	return out
}()

// historyQuery turns the page's filters into the API's; a time that does not parse is
// refused beside its field.
func (c *call) historyQuery() (url.Values, map[string]string, map[string]string) {
	in := c.r.URL.Query()
	q, form, bad := url.Values{}, map[string]string{}, map[string]string{}
	for _, k := range historyFilters {
		s := strings.TrimSpace(in.Get(k))
		if s == "" {
			continue
		}
		form[k] = s
		if k == "after" || k == "before" {
			t, err := parseMoment(s)
			if err != nil {
				bad[k] = err.Error()
				continue
			}
			s = t.Format(time.RFC3339Nano)
		}
		q.Set(k, s)
	}
	return q, form, bad
}

// parseMoment reads a datetime-local value (UTC) or an RFC 3339 time.
func parseMoment(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("is not a time: give it as 2026-12-01T17:30 (UTC)")
}

func (c *call) history() error {
	v, _, err := c.domainView("History", "history")
	if err != nil {
		return err
	}
	q, form, bad := c.historyQuery()
	v.Form = form
	page := historyPage{Types: eventTypes}
	v.Data = &page
	if len(bad) > 0 {
		return c.show("history", v, localProblem(bad))
	}
	hpath := dpath(c) + "/history"
	pq := url.Values{"limit": {"50"}}
	for k, s := range q {
		pq[k] = s
	}
	if cur := c.r.URL.Query().Get("cursor"); cur != "" {
		pq.Set("cursor", cur)
	}
	events, next, pr, err := c.events(hpath, pq)
	if err != nil {
		return err
	}
	if pr != nil {
		return c.show("history", v, pr)
	}
	d := c.r.PathValue("d")
	for _, e := range events {
		page.Items = append(page.Items, entryOf(d, e))
	}
	if next != "" {
		nq := url.Values{}
		for k, s := range form {
			nq.Set(k, s)
		}
		nq.Set("cursor", next)
		page.Next = "?" + nq.Encode()
	}
	if err := c.timeline(hpath, q, &page); err != nil {
		return err
	}
	return c.show("history", v, nil)
}

// events reads one page of a history; a refused query is a problem to show, not an error.
func (c *call) events(path string, q url.Values) ([]event, string, *Problem, error) {
	res, err := c.api(http.MethodGet, path+"?"+q.Encode(), nil)
	if err != nil {
		return nil, "", nil, err
	}
	if !res.ok() {
		return nil, "", res.problem(), nil
	}
	var l struct {
		Items      []event `json:"items"`
		NextCursor *string `json:"next_cursor"`
	}
	if err := res.decode(&l); err != nil {
		return nil, "", nil, err
	}
	next := ""
	if l.NextCursor != nil {
		next = *l.NextCursor
	}
	return l.Items, next, nil, nil
}

// timeline counts the events the filters select per day (UTC), reading their pages.
func (c *call) timeline(path string, q url.Values, page *historyPage) error {
	counts := map[string]int{}
	tq := url.Values{"limit": {"500"}}
	for k, s := range q {
		tq[k] = s
	}
	for range timelinePages {
		events, next, pr, err := c.events(path, tq)
		if err != nil {
			return err
		}
		if pr != nil {
			return fmt.Errorf("%s: %d %s", path, pr.Status, pr.Detail)
		}
		for _, e := range events {
			counts[e.RecordedAt.UTC().Format(time.DateOnly)]++
			page.Counted++
		}
		if next == "" {
			page.setDays(counts, false)
			return nil
		}
		tq.Set("cursor", next)
	}
	page.setDays(counts, true)
	return nil
}

func (page *historyPage) setDays(counts map[string]int, capped bool) {
	page.Capped = capped
	for day, n := range counts {
		page.Days = append(page.Days, dayCount{Day: day, N: n})
		page.Max = max(page.Max, n)
	}
	slices.SortFunc(page.Days, func(a, b dayCount) int { return strings.Compare(a.Day, b.Day) })
}

func entryOf(domainName string, e event) historyEntry {
	h := historyEntry{event: e, Object: strings.TrimPrefix(e.Stream, e.StreamType+"-")}
	if p, ok := objectPages[e.StreamType]; ok {
		h.Page = p + url.PathEscape(h.Object)
		h.AsOf = "/domains/" + url.PathEscape(domainName) + "/history/as-of?" + url.Values{
			"kind": {e.StreamType}, "name": {h.Object}, "at": {e.RecordedAt.Format(time.RFC3339Nano)}}.Encode()
	}
	var buf bytes.Buffer
	if json.Indent(&buf, e.Data, "", "  ") == nil {
		h.Data = buf.String()
	}
	return h
}

type asOfPage struct {
	Kind, Name, At, Page string
	Rows                 []effectiveRow
}

// asOf shows an object as it stood at a moment: the API's read with ?as_of=, read only.
func (c *call) asOf() error {
	v, _, err := c.domainView("As of", "history")
	if err != nil {
		return err
	}
	in := c.r.URL.Query()
	kind, name, at := in.Get("kind"), in.Get("name"), in.Get("at")
	base, ok := objectAPI[kind]
	if !ok {
		return c.show("as_of", v, localProblem(map[string]string{"kind": "the panel shows the past of domains, accounts, lists and resources"}))
	}
	page := asOfPage{Kind: kind, Name: name, At: at, Page: objectPages[kind] + url.PathEscape(name)}
	v.Title = fmt.Sprintf("%s %s as of %s", kind, name, at)
	v.Data = &page
	res, err := c.api(http.MethodGet, base+url.PathEscape(name)+"?"+url.Values{"as_of": {at}}.Encode(), nil)
	if err != nil {
		return err
	}
	if !res.ok() {
		return c.show("as_of", v, res.problem())
	}
	var o obj
	if err := res.decode(&o); err != nil {
		return err
	}
	flatten("", o, &page.Rows)
	return c.show("as_of", v, nil)
}

// flatten lists an object's members as rows, nested ones by dotted name ("limits.warn_percent").
func flatten(prefix string, o obj, rows *[]effectiveRow) {
	for _, k := range sortedKeys(o) {
		name := prefix + k
		switch x := o[k].(type) {
		case obj:
			flatten(name+".", x, rows)
		case []any:
			parts := make([]string, len(x))
			for i, e := range x {
				parts[i] = funcs["str"].(func(any) string)(e)
			}
			*rows = append(*rows, effectiveRow{Name: name, Value: strings.Join(parts, ", ")})
		default:
			*rows = append(*rows, effectiveRow{Name: name, Value: funcs["str"].(func(any) string)(x)})
		}
	}
}
