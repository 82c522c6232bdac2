package web_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"mailplane/api/apitest"
	"mailplane/eventstore"
	"mailplane/web"
)

// TestPanelOperations: the Operations page lists the projections, the recent jobs (a domain
// removal just asked for among them, with its kind, state and progress) and links River UI,
// which opens for the signed-in global administrator.
func TestPanelOperations(t *testing.T) {
	t.Parallel()
	e, base := panelWith(t, func(o *apitest.Options) { o.RiverUI = true })
	dom := e.CreateDomain(t, nil)
	e.CreateAccount(t, dom, map[string]any{"local_part": "gone"})
	r := e.Do(t, http.MethodDelete, "/api/v1/domains/"+dom, e.AdminToken, nil)
	require.Equal(t, http.StatusAccepted, r.Status, "%s", r.Body)
	job := r.JSON(t)["job"].(map[string]any)
	id := fmt.Sprint(job["id"])

	// The latest verify of each kind, as mailplane verify records them (cmd/mailplane tests that).
	now := time.Now()
	for _, run := range []eventstore.VerifyRun{
		{Kind: eventstore.VerifyChains, OK: true, Summary: "12 events in 3 streams, 1 anchors: every hash chain and anchor holds"},
		{Kind: eventstore.VerifyReadModels, OK: true, Summary: "an older run"},
		{Kind: eventstore.VerifyReadModels, OK: false, Summary: "9 tables, 20 rows: 1 table(s) differ from the events",
			Problems: []string{`DIFFERS rm_domains: 1 of 2 rows; first: row x.example: status is "locked"`}},
	} {
		now = now.Add(time.Second)
		run.StartedAt, run.FinishedAt, run.Host = now, now, "verifier"
		_, err := e.Store.RecordVerifyRun(t.Context(), run)
		require.NoError(t, err)
	}

	ctx := tab(t, 10*time.Minute)
	signIn(t, ctx, base)
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`a[href="/operations"]`))))
	waitPath(t, ctx, "/operations")
	waitText(t, ctx, "#projections tbody", "running")
	jobRow := `#jobs a[href="/jobs/` + id + `"]`
	require.True(t, evalBool(t, ctx, `!!document.querySelector(`+js(jobRow)+`)`), "job %s listed: %s", id, text(t, ctx, "#jobs"))
	row := evalString(t, ctx, `document.querySelector(`+js(jobRow)+`).closest("tr").innerText`)
	require.Contains(t, row, fmt.Sprint(job["kind"]))
	// Its state as the jobs API names it, whichever it has reached by now.
	require.Regexp(t, `queued|running|retrying|succeeded`, row)
	require.Contains(t, text(t, ctx, "#verify-note"), "mailplane verify")
	runs := text(t, ctx, "#verify-runs tbody")
	require.Regexp(t, `Hash chains and anchors\s+passed`, runs)
	require.Regexp(t, `Read models\s+FAILED`, runs)
	require.Contains(t, runs, `DIFFERS rm_domains: 1 of 2 rows`)
	require.Contains(t, runs, "on verifier")
	require.NotContains(t, runs, "an older run", "the latest run of each kind only")
	axe(t, ctx, "operations-jobs")
	narrow(t, ctx, base+"/operations", "operations-narrow")

	// The job's link opens its page; River UI's link opens for this session.
	require.Equal(t, "/riverui/", evalString(t, ctx, `document.getElementById("riverui").getAttribute("href")`))
	status, err := chromedp.Run(ctx, chromedp.Evaluate[int](`fetch("/riverui/").then(r => r.status)`, chromedp.EvalAwaitPromise))
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(jobRow))))
	waitPath(t, ctx, "/jobs/"+id)
	require.Equal(t, "succeeded", waitJobEnd(t, ctx, base))
}

// sessionToken is the panel's session cookie in the browser (HttpOnly: read over CDP).
func sessionToken(t *testing.T, ctx context.Context, base string) string {
	t.Helper()
	cookies, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{base + "/"}})
	require.NoError(t, err)
	for _, c := range cookies.Cookies {
		if c.Name == web.SessionCookie {
			return c.Value
		}
	}
	return ""
}

// TestPanelSignOut: signing out ends the API session, so its token is refused from then on,
// not only forgotten by the browser.
func TestPanelSignOut(t *testing.T) {
	t.Parallel()
	e, base := panel(t)
	ctx := tab(t, 5*time.Minute)
	signIn(t, ctx, base)
	token := sessionToken(t, ctx, base)
	require.NotEmpty(t, token)
	require.Equal(t, http.StatusOK, e.Do(t, http.MethodGet, "/api/v1/domains", token, nil).Status)

	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`form.logout button`))))
	waitPath(t, ctx, "/login")
	waitText(t, ctx, ".flash", "the session has ended")
	require.Empty(t, sessionToken(t, ctx, base), "the cookie is dropped")
	require.Equal(t, http.StatusUnauthorized, e.Do(t, http.MethodGet, "/api/v1/domains", token, nil).Status, "the old token is refused")
	// The panel asks to sign in again.
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(base+"/domains")))
	waitPath(t, ctx, "/login")
}

// TestPanelDomainAdmin: a domain administrator signs in, sees only the domains it administers
// and no Operations link, and another domain's pages (and Operations) answer a refusal page
// with 403, not a 500.
func TestPanelDomainAdmin(t *testing.T) {
	t.Parallel()
	e, base := panel(t)
	mine := e.CreateDomain(t, nil)
	other := e.CreateDomain(t, nil)
	addr := e.CreateAccount(t, mine, map[string]any{"local_part": "admin", "password": "da-password-1", "domain_admin": true})
	ctx := tab(t, 5*time.Minute)
	signInAs(t, ctx, base, addr, "da-password-1")

	waitText(t, ctx, "main table tbody", mine)
	require.NotContains(t, text(t, ctx, "main"), other)
	require.False(t, evalBool(t, ctx, `!!document.querySelector('a[href="/operations"]')`), "no Operations link")
	axe(t, ctx, "domains-domain-admin")

	// Its own domain's sections open.
	for _, p := range []string{"", "/gal", "/authentication", "/quota", "/accounts", "/virtual-hosts"} {
		require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(base+"/domains/"+mine+p)))
		waitPath(t, ctx, "/domains/"+mine+p)
		require.False(t, evalBool(t, ctx, `!!document.getElementById("refused")`), "%s opens: %s", p, text(t, ctx, "main"))
	}

	// Another domain's pages, and Operations: refused, with the API's reason.
	for _, p := range []string{"/domains/" + other, "/domains/" + other + "/gal", "/domains/" + other + "/authentication",
		"/domains/" + other + "/accounts", "/domains/" + other + "/virtual-hosts", "/domains/" + other + "/delete", "/operations"} {
		status, err := chromedp.Run(ctx, chromedp.Evaluate[int](`fetch(`+js(p)+`).then(r => r.status)`, chromedp.EvalAwaitPromise))
		require.NoError(t, err)
		require.Equal(t, http.StatusForbidden, status, p)
		require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(base+p)))
		waitText(t, ctx, "#refused", "403")
		require.Contains(t, text(t, ctx, "h1"), "You may not open this page")
	}
	axe(t, ctx, "refused")
	// Nothing changed in the other domain by trying.
	require.Equal(t, http.StatusOK, e.Do(t, http.MethodGet, "/api/v1/domains/"+other, e.AdminToken, nil).Status)
}
