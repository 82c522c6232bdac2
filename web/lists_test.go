package web_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"mailplane/api"
	"mailplane/api/apitest"
	"mailplane/projections/ldap"
	"mailplane/projections/ldap/ldaptest"
)

// panelWithDirectory is panel with the LDAP projection running into a base of the test's own
// in the dev stack's slapd, and an API that evaluates dynamic lists there, as mailplane serve
// does.
func panelWithDirectory(t *testing.T) (*apitest.Env, string) {
	t.Helper()
	e := panelEnv(t, nil)
	d := ldaptest.New(t)
	cfg := ldap.Config{URL: d.Env.URL, BindDN: d.Env.Admin.DN, Password: d.Env.Admin.Password, DIT: ldap.DIT{Base: d.Base}}
	p, err := ldap.New(ldap.Options{Directory: cfg, Pool: e.Pool, Registry: e.Registry, Keyring: e.Keyring,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), LockRetry: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = p.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	deps := e.Server.Deps
	deps.Members = ldap.NewMembers(cfg)
	return e, servePanel(t, api.NewServer(deps, panelConfig).Handler())
}

// members reads a list's members through the API, every page.
func members(t *testing.T, e *apitest.Env, list string) []string {
	t.Helper()
	var out []string
	path := "/api/v1/lists/" + list + "/members?limit=500"
	for path != "" {
		var page struct {
			Items []struct {
				Address string `json:"address"`
			} `json:"items"`
			NextCursor *string `json:"next_cursor"`
		}
		r := e.Do(t, http.MethodGet, path, e.AdminToken, nil)
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		r.Decode(t, &page)
		for _, it := range page.Items {
			out = append(out, it.Address)
		}
		path = ""
		if page.NextCursor != nil {
			path = "/api/v1/lists/" + list + "/members?limit=500&cursor=" + *page.NextCursor
		}
	}
	sort.Strings(out)
	return out
}

// fieldError waits for the error shown beside the input with id, and checks the input is marked
// invalid and points at it.
func fieldError(t *testing.T, ctx context.Context, id, text string) {
	t.Helper()
	waitText(t, ctx, "#"+id+"-err", text)
	desc, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById(`+js(id)+`).getAttribute("aria-invalid") + " " + document.getElementById(`+js(id)+`).getAttribute("aria-describedby")`))
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(desc, "true "), "%s is marked invalid: %s", id, desc)
	require.Contains(t, desc, id+"-err")
}

// TestPanelLists: a static list is created with members pasted, gets more one by one and in
// bulk (a bad line is refused beside the field, nothing added), an owner and a policy (a bad
// policy and a bad allowed sender are refused beside their fields); a dynamic list with a bad
// member URL is refused beside the field, then created with a good one, whose members the page
// shows as the directory evaluates them; the list turns static; the first list is deleted.
func TestPanelLists(t *testing.T) {
	e, base := panelWithDirectory(t)
	dom := e.CreateDomain(t, nil)
	ann := e.CreateAccount(t, dom, map[string]any{"local_part": "ann", "display_name": "Sales Ann"})
	bob := e.CreateAccount(t, dom, map[string]any{"local_part": "bob", "display_name": "Sales Bob"})
	cat := e.CreateAccount(t, dom, map[string]any{"local_part": "cat", "display_name": "Support Cat"})
	ctx := tab(t, 10*time.Minute)
	signIn(t, ctx, base)

	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(base+"/domains/"+dom+"/lists")))
	waitText(t, ctx, "#lists tbody", "No mailing list.")
	axe(t, ctx, "lists")

	// A static list, its first members pasted one a line.
	team := "team@" + dom
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("f-address"), "team"),
		chromedp.SendKeys(chromedp.ID("f-display-name"), "The team"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById("f-members").value = `+js(ann+"\n\n"+bob+"\n")),
		chromedp.Click(chromedp.CSS(`#create-list button.primary`)),
	))
	waitPath(t, ctx, "/lists/"+team)
	waitText(t, ctx, ".flash", "Created.")
	require.Equal(t, []string{ann, bob}, members(t, e, team))
	require.Contains(t, text(t, ctx, "#members"), bob)

	// One more, by the single-address form.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("f-member"), cat),
		chromedp.Click(chromedp.CSS(`#members + form button`)),
	))
	waitText(t, ctx, ".flash", "Added.")
	waitText(t, ctx, "#members", cat)
	require.Equal(t, []string{ann, bob, cat}, members(t, e, team))

	// Many at once: a bad line is named beside the text area, and nothing is added.
	dan, eve := "dan@elsewhere.example", "eve@"+dom
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Evaluate[chromedp.Void](`document.getElementById("f-members").value = `+js(dan+"\nnot an address\n"+eve)),
		chromedp.Click(chromedp.CSS(`#bulk-members button[value=add]`)),
	))
	fieldError(t, ctx, "f-members", "line 2, “not an address”")
	require.Equal(t, []string{ann, bob, cat}, members(t, e, team))
	sent, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("f-members").value`))
	require.NoError(t, err)
	require.Contains(t, sent, dan, "what was sent is shown again")
	axe(t, ctx, "list-members-refused")
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Evaluate[chromedp.Void](`document.getElementById("f-members").value = `+js(dan+"\n"+eve)),
		chromedp.Click(chromedp.CSS(`#bulk-members button[value=add]`)),
	))
	waitText(t, ctx, ".flash", "Added.")
	require.Equal(t, []string{ann, bob, cat, dan, eve}, members(t, e, team))
	var events []string
	for _, it := range e.Do(t, http.MethodGet, "/api/v1/lists/"+team+"/history", e.AdminToken, nil).JSON(t)["items"].([]any) {
		events = append(events, it.(map[string]any)["type"].(string))
	}
	require.Equal(t, []string{"ListCreated", "ListMembersAdded", "ListMembersAdded"}, events, "the two pasted addresses are one change")

	// An owner.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("f-owner"), ann),
		chromedp.Click(chromedp.CSS(`#owners + form button`)),
	))
	waitText(t, ctx, "#owners", ann)
	require.Equal(t, []any{ann}, e.Do(t, http.MethodGet, "/api/v1/lists/"+team, e.AdminToken, nil).JSON(t)["owners"])

	// A policy.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Evaluate[chromedp.Void](`document.getElementById("f-subscription-policy").value = "reject"`),
		chromedp.Click(chromedp.CSS(`#list-settings button.primary`)),
	))
	waitText(t, ctx, ".flash", "Saved.")
	require.Equal(t, "reject", e.Do(t, http.MethodGet, "/api/v1/lists/"+team, e.AdminToken, nil).JSON(t)["subscription_policy"])
	axe(t, ctx, "list")

	// A policy the API does not know, and an allowed sender that is no address: each refused
	// beside its field, nothing changed.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Evaluate[chromedp.Void](`(() => { const s = document.getElementById("f-unsubscription-policy"); s.add(new Option("maybe", "maybe")); s.value = "maybe" })()`),
		chromedp.Evaluate[chromedp.Void](`document.getElementById("f-allowed-senders").value = "nobody at all"`),
		chromedp.Click(chromedp.CSS(`#list-settings button.primary`)),
	))
	fieldError(t, ctx, "f-unsubscription-policy", "")
	require.NotEmpty(t, text(t, ctx, "#f-unsubscription-policy-err"))
	fieldError(t, ctx, "f-allowed-senders", "nobody at all")
	l := e.Do(t, http.MethodGet, "/api/v1/lists/"+team, e.AdminToken, nil).JSON(t)
	require.Equal(t, "accept", l["unsubscription_policy"])
	require.Empty(t, l["allowed_senders"])

	// A dynamic list: a member URL that is no LDAP URL is refused beside its field.
	sales := "sales@" + dom
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(base+"/domains/"+dom+"/lists")))
	waitText(t, ctx, "#lists tbody", team)
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("f-address"), "sales"),
		chromedp.Click(chromedp.ID("mode-dynamic")),
		chromedp.SendKeys(chromedp.ID("f-dynamic-member-url"), "http://directory.example/?(mail=*)"),
		chromedp.Click(chromedp.CSS(`#create-list button.primary`)),
	))
	fieldError(t, ctx, "f-dynamic-member-url", "")
	require.NotEmpty(t, text(t, ctx, "#f-dynamic-member-url-err"))
	axe(t, ctx, "list-create-refused")
	require.Equal(t, http.StatusNotFound, e.Do(t, http.MethodGet, "/api/v1/lists/"+sales, e.AdminToken, nil).Status)
	// The page kept the mode and the address; a good URL creates it.
	require.NoError(t, chromedp.Do(ctx,
		setField("f-dynamic-member-url", "ldap:///??sub?(&(mailplaneDomain="+dom+")(displayName=Sales*))"),
		chromedp.Click(chromedp.CSS(`#create-list button.primary`)),
	))
	waitPath(t, ctx, "/lists/"+sales)
	waitText(t, ctx, "#list-mode", "Dynamic list")
	// Its members are the accounts the query finds in the directory, once the LDAP projection
	// has written them there: the page is read again until it shows them.
	deadline := time.Now().Add(3 * time.Minute)
	for {
		got := text(t, ctx, "#members")
		if strings.Contains(got, ann) && strings.Contains(got, bob) {
			require.NotContains(t, got, cat, "Support Cat is no Sales account")
			break
		}
		require.True(t, time.Now().Before(deadline), "the evaluated members never showed: %s", text(t, ctx, "main"))
		time.Sleep(500 * time.Millisecond)
		require.NoError(t, chromedp.Do(ctx, chromedp.Reload()))
	}
	shown, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#members li")].map(li => li.textContent.trim())`))
	require.NoError(t, err)
	require.Equal(t, []string{ann, bob}, shown)
	axe(t, ctx, "list-dynamic")

	// Static again.
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#list-static button`))))
	waitText(t, ctx, ".flash", "The list's mode has changed.")
	waitText(t, ctx, "#list-mode", "Static list")
	require.Nil(t, e.Do(t, http.MethodGet, "/api/v1/lists/"+sales, e.AdminToken, nil).JSON(t)["dynamic"])
	narrow(t, ctx, base+"/lists/"+team, "list-narrow")

	// Delete the first list: refused without the tick, done with it.
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(base+"/lists/"+team)))
	waitText(t, ctx, "#members", eve)
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#list-delete button.danger`))))
	fieldError(t, ctx, "f-confirm", "tick the box")
	require.Equal(t, http.StatusOK, e.Do(t, http.MethodGet, "/api/v1/lists/"+team, e.AdminToken, nil).Status)
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.ID("f-confirm")),
		chromedp.Click(chromedp.CSS(`#list-delete button.danger`)),
	))
	waitPath(t, ctx, "/domains/"+dom+"/lists")
	waitText(t, ctx, ".flash", "Deleted.")
	require.NotContains(t, text(t, ctx, "#lists tbody"), team)
	require.Equal(t, http.StatusNotFound, e.Do(t, http.MethodGet, "/api/v1/lists/"+team, e.AdminToken, nil).Status)
}
