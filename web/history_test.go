package web_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"mailplane/api/apitest"
	"mailplane/commands"
	"mailplane/domain"
	"mailplane/eventstore"
	"mailplane/eventstore/keyring"
)

// backdated is a command service on the test's database whose store records events at `at`:
// the history then has events of other days than today.
func backdated(t *testing.T, e *apitest.Env, at time.Time) *commands.Service {
	t.Helper()
	key, err := keyring.Derive(e.MasterKey, eventstore.KeyPurpose)
	require.NoError(t, err)
	store := eventstore.NewPostgres(e.Pool, e.Registry, eventstore.WithKey(key), eventstore.WithClock(func() time.Time { return at }))
	svc, err := commands.New(commands.Deps{Pool: e.Pool, Store: store, Keyring: e.Keyring,
		Hasher: commands.NewHasher(apitest.TestArgon2, 0), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now: func() time.Time { return at }})
	require.NoError(t, err)
	return svc
}

// historyEvents reads a domain's whole history through the API.
func historyEvents(t *testing.T, e *apitest.Env, dom string, q url.Values) []map[string]any {
	t.Helper()
	var out []map[string]any
	q.Set("limit", "500")
	for {
		var page struct {
			Items      []map[string]any `json:"items"`
			NextCursor *string          `json:"next_cursor"`
		}
		r := e.Do(t, http.MethodGet, "/api/v1/domains/"+dom+"/history?"+q.Encode(), e.AdminToken, nil)
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		r.Decode(t, &page)
		out = append(out, page.Items...)
		if page.NextCursor == nil {
			return out
		}
		q.Set("cursor", *page.NextCursor)
	}
}

// column is the text of one cell class of every row of the events table.
func column(t *testing.T, ctx context.Context, class string) []string {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#events tbody td.`+class+`")].map(td => td.textContent.trim())`))
	require.NoError(t, err)
	return v
}

// TestPanelHistory: the domain's history filtered by type and by actor through the form; an
// entry made before a later change opens the object as it stood then; the per-day timeline
// counts what the API's history holds on each day, with events of earlier days.
func TestPanelHistory(t *testing.T) {
	e, base := panel(t)
	dom := e.CreateDomain(t, nil)
	clerk := e.CreateAccount(t, dom, map[string]any{"local_part": "clerk", "password": "clerk-password-1", "domain_admin": true})
	clerkToken := e.Login(t, clerk, "clerk-password-1")
	room := "room@" + dom
	r := e.Do(t, http.MethodPost, "/api/v1/domains/"+dom+"/resources", e.AdminToken, map[string]any{
		"address": room, "display_name": "Blue room", "type": "location"})
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	r = e.Do(t, http.MethodPatch, "/api/v1/resources/"+room, clerkToken, map[string]any{"display_name": "Red room"})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)

	// Two resources made three days ago and one yesterday.
	today := time.Now().UTC()
	for i, at := range []time.Time{today.AddDate(0, 0, -3), today.AddDate(0, 0, -3).Add(time.Minute), today.AddDate(0, 0, -1)} {
		_, err := backdated(t, e, at).CreateResource(context.Background(), commands.Request{Meta: eventstore.Metadata{Actor: "importer"}},
			dom, domain.CreateResource{Address: "old" + strconv.Itoa(i) + "@" + dom, Type: "equipment"})
		require.NoError(t, err)
	}
	want := map[string]int{}
	for _, ev := range historyEvents(t, e, dom, url.Values{}) {
		at, err := time.Parse(time.RFC3339Nano, ev["recorded_at"].(string))
		require.NoError(t, err)
		want[at.UTC().Format(time.DateOnly)]++
	}
	require.Equal(t, 2, want[today.AddDate(0, 0, -3).Format(time.DateOnly)], "%v", want)
	require.Equal(t, 1, want[today.AddDate(0, 0, -1).Format(time.DateOnly)], "%v", want)

	ctx := tab(t, 10*time.Minute)
	signIn(t, ctx, base)
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(base+"/domains/"+dom+"/history")))
	waitText(t, ctx, "#events tbody", "ResourceUpdated")
	axe(t, ctx, "history")

	// The timeline: one row a day, each with the API's count.
	days, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]string](
		`Object.fromEntries([...document.querySelectorAll("#timeline tbody tr")].map(tr => [tr.querySelector("time").getAttribute("datetime"), tr.querySelector(".count").textContent.trim()]))`))
	require.NoError(t, err)
	got := map[string]int{}
	for d, n := range days {
		got[d], err = strconv.Atoi(n)
		require.NoError(t, err)
	}
	require.Equal(t, want, got)

	// By type, through the form.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Evaluate[chromedp.Void](`document.getElementById("f-type").value = "ResourceUpdated"`),
		chromedp.Click(chromedp.CSS(`#history-filter button[type=submit]`)),
	))
	if err := until(ctx, `location.search.includes("type=ResourceUpdated")`, 3*time.Minute); err != nil {
		t.Fatal(err)
	}
	require.Equal(t, []string{"ResourceUpdated"}, column(t, ctx, "type"))
	require.Contains(t, text(t, ctx, "#events tbody"), room)
	require.Equal(t, "1", text(t, ctx, "#timeline tbody .count"), "the timeline counts what the filters select")

	// By actor: the clerk signed in and changed the name, with her session.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Evaluate[chromedp.Void](`document.getElementById("f-type").value = ""`),
		setField("f-actor", clerk),
		chromedp.Click(chromedp.CSS(`#history-filter button[type=submit]`)),
	))
	if err := until(ctx, `location.search.includes(`+js("actor="+url.QueryEscape(clerk))+`)`, 3*time.Minute); err != nil {
		t.Fatal(err)
	}
	require.Equal(t, []string{"SessionStarted", "ResourceUpdated"}, column(t, ctx, "type"), "her sign-in and her change")
	require.Equal(t, []string{clerk, clerk}, column(t, ctx, "actor"))
	require.NotEqual(t, "—", column(t, ctx, "session")[1], "the change names the clerk's session")
	// The admin's filter is another set of events.
	require.NoError(t, chromedp.Do(ctx, setField("f-actor", apitest.AdminEmail), chromedp.Click(chromedp.CSS(`#history-filter button[type=submit]`))))
	if err := until(ctx, `location.search.includes(`+js("actor="+url.QueryEscape(apitest.AdminEmail))+`)`, 3*time.Minute); err != nil {
		t.Fatal(err)
	}
	types := column(t, ctx, "type")
	require.Contains(t, types, "ResourceCreated")
	require.NotContains(t, types, "ResourceUpdated")

	// As of the room's creation, before the clerk renamed it: its old name, read only.
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(base+"/domains/"+dom+"/history?type=ResourceCreated")))
	waitText(t, ctx, "#events tbody", room)
	href, err := chromedp.Run(ctx, chromedp.Evaluate[string](`[...document.querySelectorAll("#events tbody tr")].find(tr => tr.querySelector("td.object").textContent.includes(`+js(room)+`)).querySelector("a.as-of").getAttribute("href")`))
	require.NoError(t, err)
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(base+href)))
	waitText(t, ctx, "#as-of-note", "Read only")
	require.Equal(t, "Blue room", text(t, ctx, `#as-of tr[id="past-display_name"] td`))
	require.Empty(t, text(t, ctx, "main form"), "the view has no form")
	require.Equal(t, "Red room", e.Do(t, http.MethodGet, "/api/v1/resources/"+room, e.AdminToken, nil).JSON(t)["display_name"])
	axe(t, ctx, "history-as-of")

	narrow(t, ctx, base+"/domains/"+dom+"/history", "history-narrow")

	// A time that is none is refused beside its field.
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(base+"/domains/"+dom+"/history?after=yesterday")))
	fieldError(t, ctx, "f-after", "is not a time")
}

// narrow shows url on a phone's 390 px: nothing is wider than the viewport but the tables, which
// scroll inside their box. The viewport is wide again afterwards.
func narrow(t *testing.T, ctx context.Context, url, name string) {
	t.Helper()
	require.NoError(t, chromedp.Do(ctx, chromedp.EmulateViewport(390, 844), chromedp.Navigate(url)))
	if err := until(ctx, `document.querySelector("main h1")`, 3*time.Minute); err != nil {
		t.Fatal(err)
	}
	// Waited for: a layout still settling (a loaded machine) may be wide for a moment.
	if until(ctx, `document.documentElement.scrollWidth <= window.innerWidth`, 20*time.Second) != nil {
		// What pokes out: elements outside the scrolling boxes, and positioned ones anywhere.
		over, _ := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("body *")].filter(el => el.getBoundingClientRect().right > window.innerWidth && (!(el.parentElement && el.parentElement.closest(".scroll")) || getComputedStyle(el).position === "absolute")).slice(0, 8).map(el => el.tagName + "#" + el.id + "." + el.className + " " + Math.round(el.getBoundingClientRect().right))`))
		sizes, _ := chromedp.Run(ctx, chromedp.Evaluate[[]int](`[document.documentElement.scrollWidth, window.innerWidth, document.documentElement.clientWidth]`))
		t.Fatalf("%s scrolls sideways at 390 px (scroll, inner, client widths %v); wider than the viewport: %v", url, sizes, over)
	}
	axe(t, ctx, name)
	require.NoError(t, chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900)))
}
