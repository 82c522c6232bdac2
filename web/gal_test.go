package web_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/require"

	"mailplane/projections/ldap/ldaptest"
)

// setSelect chooses an option of a select.
func setSelect(id, v string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](`document.getElementById(` + js(id) + `).value = ` + js(v))
}

// submit clicks a form's button after removing the page's flash message, so that waiting for
// the next page's flash cannot be satisfied by this page's.
func submit(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(chromedp.Evaluate[chromedp.Void](`document.querySelectorAll(".flash").forEach(e => e.remove())`),
		chromedp.Click(chromedp.CSS(sel)))
}

// waitJobEnd waits on a job's page (it refreshes itself) until the job has ended, and returns
// its final state.
func waitJobEnd(t *testing.T, ctx context.Context, base string) string {
	t.Helper()
	if err := until(ctx, `location.pathname.startsWith("/jobs/") && ["succeeded","failed","cancelled"].includes(document.getElementById("job-state").textContent)`, 3*time.Minute); err != nil {
		body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
		t.Fatalf("waiting for the job to end: %v\npage: %s", err, body)
	}
	return text(t, ctx, "#job-state")
}

// TestPanelGAL: create a domain's GAL from its section, set the mode and polling interval and
// see them saved; a bad polling interval shows the API's problem beside its field; an external
// mode without a source names the source's fields; RE-SYNC shows its job, then the last sync
// result; removing the GAL leaves the create form.
func TestPanelGAL(t *testing.T) {
	t.Parallel()
	e, base := panel(t)
	dom := e.CreateDomain(t, nil)
	e.CreateAccount(t, dom, map[string]any{"local_part": "ann", "display_name": "Ann"})
	ctx := tab(t, 10*time.Minute)
	signIn(t, ctx, base)

	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(base+"/domains/"+dom+"/gal")))
	waitText(t, ctx, "#last-sync", "no GAL yet")
	axe(t, ctx, "domain-gal-new")
	require.Equal(t, "galsync@"+dom, evalString(t, ctx, `document.getElementById("f-account").value`), "the form proposes galsync@")

	// A polling interval under the minimum: refused beside the field, nothing stored.
	require.NoError(t, chromedp.Do(ctx,
		setField("f-polling-interval-seconds", "5"),
		submit(`#gal-form button.primary`),
	))
	waitText(t, ctx, "#f-polling-interval-seconds-err", "60")
	require.Equal(t, "true", evalString(t, ctx, `document.getElementById("f-polling-interval-seconds").getAttribute("aria-invalid")`))
	require.Equal(t, http.StatusNotFound, e.Do(t, http.MethodGet, "/api/v1/domains/"+dom+"/gal", e.AdminToken, nil).Status)
	axe(t, ctx, "domain-gal-refused")

	// External mode without a source: the source's URL and base are named beside their fields.
	require.NoError(t, chromedp.Do(ctx,
		setField("f-polling-interval-seconds", "600"),
		setSelect("f-mode", "external"),
		// A URL to the browser (type=url lets it through), not an LDAP one to the API.
		setField("f-external-ldap-url", "http://ldap.example.test"),
		submit(`#gal-form button.primary`),
	))
	waitText(t, ctx, "#f-external-ldap-url-err", "ldap://")
	waitText(t, ctx, "#f-external-search-base-err", "required")
	require.Equal(t, "600", evalString(t, ctx, `document.getElementById("f-polling-interval-seconds").value`), "the values sent are shown again")

	// Internal, polling every 10 minutes: saved.
	require.NoError(t, chromedp.Do(ctx,
		setSelect("f-mode", "internal"),
		setField("f-external-ldap-url", ""),
		submit(`#gal-form button.primary`),
	))
	waitText(t, ctx, ".flash", "Saved.")
	g := e.Do(t, http.MethodGet, "/api/v1/domains/"+dom+"/gal", e.AdminToken, nil).JSON(t)
	require.Equal(t, "internal", g["mode"])
	require.Equal(t, float64(600), g["polling_interval_seconds"])
	require.Equal(t, "galsync@"+dom, g["account"])
	require.Nil(t, g["external"])
	require.Equal(t, "600", evalString(t, ctx, `document.getElementById("f-polling-interval-seconds").value`))

	// Both, with an external source (a password that is never shown again): saved.
	require.NoError(t, chromedp.Do(ctx,
		setSelect("f-mode", "both"),
		setField("f-external-ldap-url", "ldap://127.0.0.1:1"),
		chromedp.Click(chromedp.ID("f-external-start-tls")),
		setField("f-external-bind-dn", "cn=reader,dc=example"),
		setField("f-external-bind-password", "s3cret-bind"),
		setField("f-external-search-base", "ou=people,dc=example"),
		setField("f-external-timeout-seconds", "7"),
		submit(`#gal-form button.primary`),
	))
	waitText(t, ctx, ".flash", "Saved.")
	g = e.Do(t, http.MethodGet, "/api/v1/domains/"+dom+"/gal", e.AdminToken, nil).JSON(t)
	require.Equal(t, "both", g["mode"])
	x := g["external"].(map[string]any)
	require.Equal(t, "ldap://127.0.0.1:1", x["ldap_url"])
	require.Equal(t, true, x["start_tls"])
	require.Equal(t, true, x["has_bind_password"])
	require.Equal(t, float64(7), x["timeout_seconds"])
	require.Empty(t, evalString(t, ctx, `document.getElementById("f-external-bind-password").value`), "the password is not shown")
	require.NotContains(t, evalString(t, ctx, `document.documentElement.outerHTML`), "s3cret-bind")
	axe(t, ctx, "domain-gal")

	// A real external source (a slapd of its own standing in for a company directory, two
	// people in it): RE-SYNC shows its job, then the result.
	dir := ldaptest.StartSlapdWith(t, ldaptest.SlapdOptions{Suffix: "dc=corp,dc=test"})
	conn, err := ldaptest.Dial(dir.URL, dir.Env.Admin)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	people := "ou=people,dc=corp,dc=test"
	add := ldap.NewAddRequest(people, nil)
	add.Attribute("objectClass", []string{"organizationalUnit"})
	add.Attribute("ou", []string{"people"})
	require.NoError(t, conn.Add(add))
	for _, uid := range []string{"carol", "dave"} {
		add := ldap.NewAddRequest("uid="+uid+","+people, nil)
		add.Attribute("objectClass", []string{"inetOrgPerson"})
		add.Attribute("uid", []string{uid})
		add.Attribute("cn", []string{uid + " Corp"})
		add.Attribute("sn", []string{"Corp"})
		add.Attribute("mail", []string{uid + "@corp.test"})
		require.NoError(t, conn.Add(add))
	}
	require.NoError(t, chromedp.Do(ctx,
		setField("f-external-ldap-url", dir.URL),
		chromedp.Evaluate[chromedp.Void](`document.getElementById("f-external-start-tls").checked = false`),
		setField("f-external-bind-dn", dir.Env.Admin.DN),
		setField("f-external-bind-password", dir.Env.Admin.Password),
		setField("f-external-search-base", people),
		setField("f-external-search-filter", "(objectClass=inetOrgPerson)"),
		submit(`#gal-form button.primary`),
	))
	waitText(t, ctx, ".flash", "Saved.")
	require.NoError(t, chromedp.Do(ctx, submit("#resync")))
	require.Equal(t, "succeeded", waitJobEnd(t, ctx, base), "%s", text(t, ctx, "main"))
	require.Contains(t, text(t, ctx, "h1"), "resync")
	axe(t, ctx, "gal-resync-job")
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`main a[href="/domains/`+dom+`"]`))))
	waitPath(t, ctx, "/domains/"+dom)
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(base+"/domains/"+dom+"/gal")))
	// This resync's result, or a scheduled one's that ran after it: both read the two people.
	waitText(t, ctx, "#last-sync", "succeeded")
	require.Equal(t, "2", text(t, ctx, "#sync-total"), "%s", text(t, ctx, "#last-sync"))
	require.Regexp(t, `^\d+$`, text(t, ctx, "#sync-added"))
	axe(t, ctx, "domain-gal-synced")
	require.Eventually(t, func() bool {
		items, _ := e.Do(t, http.MethodGet, "/api/v1/domains/"+dom+"/gal/search?q=carol", e.AdminToken, nil).JSON(t)["items"].([]any)
		return len(items) == 1
	}, time.Minute, 200*time.Millisecond, "the external person is in the address book")

	// Back to internal: the source is dropped.
	require.NoError(t, chromedp.Do(ctx,
		setSelect("f-mode", "internal"),
		setField("f-external-ldap-url", ""),
		submit(`#gal-form button.primary`),
	))
	waitText(t, ctx, ".flash", "Saved.")
	require.Nil(t, e.Do(t, http.MethodGet, "/api/v1/domains/"+dom+"/gal", e.AdminToken, nil).JSON(t)["external"])
	narrow(t, ctx, base+"/domains/"+dom+"/gal", "domain-gal-narrow")
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(base+"/domains/"+dom+"/gal")))
	waitPath(t, ctx, "/domains/"+dom+"/gal")

	// Remove: the create form is back.
	require.NoError(t, chromedp.Do(ctx, submit("#remove-gal")))
	waitText(t, ctx, ".flash", "removed")
	waitText(t, ctx, "#last-sync", "no GAL yet")
	require.Eventually(t, func() bool {
		return e.Do(t, http.MethodGet, "/api/v1/domains/"+dom+"/gal", e.AdminToken, nil).Status == http.StatusNotFound
	}, time.Minute, 200*time.Millisecond)
}

func evalString(t *testing.T, ctx context.Context, expr string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
	require.NoError(t, err)
	return s
}

// TestPanelAuthentication: the domain's authentication settings and TOTP requirement are saved
// from the section; a bad LDAP URL is refused beside its field; a domain administrator sees the
// settings and cannot change them.
func TestPanelAuthentication(t *testing.T) {
	t.Parallel()
	e, base := panel(t)
	dom := e.CreateDomain(t, nil)
	ctx := tab(t, 10*time.Minute)
	signIn(t, ctx, base)
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(base+"/domains/"+dom+"/authentication")))
	waitPath(t, ctx, "/domains/"+dom+"/authentication")
	require.Equal(t, "internal", evalString(t, ctx, `document.getElementById("f-auth-mechanism").value`))

	// ldap without a URL: the API names auth.ldap_url.
	require.NoError(t, chromedp.Do(ctx,
		setSelect("f-auth-mechanism", "ldap"),
		submit(`#auth-form button.primary`),
	))
	waitText(t, ctx, "#f-auth-ldap-url-err", "required")
	require.Equal(t, "internal", e.Do(t, http.MethodGet, "/api/v1/domains/"+dom, e.AdminToken, nil).JSON(t)["auth"].(map[string]any)["mechanism"])
	axe(t, ctx, "domain-authentication-refused")

	require.NoError(t, chromedp.Do(ctx,
		setField("f-auth-ldap-url", "ldaps://ldap.example.test:636"),
		setField("f-auth-bind-dn", "cn=auth,dc=example,dc=test"),
		setField("f-auth-bind-password", "bind-pw-1"),
		setField("f-auth-search-base", "ou=people,dc=example,dc=test"),
		chromedp.Click(chromedp.ID("f-totp-required")),
		submit(`#auth-form button.primary`),
	))
	waitText(t, ctx, ".flash", "Saved.")
	d := e.Do(t, http.MethodGet, "/api/v1/domains/"+dom, e.AdminToken, nil).JSON(t)
	require.Equal(t, true, d["totp_required"])
	a := d["auth"].(map[string]any)
	require.Equal(t, "ldap", a["mechanism"])
	require.Equal(t, "ldaps://ldap.example.test:636", a["ldap_url"])
	require.Equal(t, true, a["has_bind_password"])
	require.True(t, evalBool(t, ctx, `document.getElementById("f-totp-required").checked`))
	axe(t, ctx, "domain-authentication")

	// Saving again without a password keeps it; unticking TOTP is saved.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.ID("f-totp-required")),
		submit(`#auth-form button.primary`),
	))
	waitText(t, ctx, ".flash", "Saved.")
	d = e.Do(t, http.MethodGet, "/api/v1/domains/"+dom, e.AdminToken, nil).JSON(t)
	require.Equal(t, false, d["totp_required"])
	require.Equal(t, true, d["auth"].(map[string]any)["has_bind_password"])

	// A domain administrator (of a domain whose passwords mailplane checks: this one's go to
	// a directory that is not there): the section is shown read-only, and the API refuses a
	// change all the same, beside nothing but the form's summary.
	dom2 := e.CreateDomain(t, nil)
	addr := e.CreateAccount(t, dom2, map[string]any{"local_part": "boss", "password": "boss-password-1", "domain_admin": true})
	ctx2 := tab(t, 5*time.Minute)
	signInAs(t, ctx2, base, addr, "boss-password-1")
	require.NoError(t, chromedp.Do(ctx2, chromedp.Navigate(base+"/domains/"+dom2+"/authentication")))
	waitText(t, ctx2, "#auth-readonly", "Only a global administrator")
	require.True(t, evalBool(t, ctx2, `document.querySelector("#auth-form fieldset").disabled`))
	require.Equal(t, "internal", evalString(t, ctx2, `document.getElementById("f-auth-mechanism").value`))
	require.False(t, evalBool(t, ctx2, `!!document.querySelector("#auth-form button[type=submit]")`), evalString(t, ctx2, `document.getElementById("auth-form").outerHTML`))
	axe(t, ctx2, "domain-authentication-domain-admin")
}

func evalBool(t *testing.T, ctx context.Context, expr string) bool {
	t.Helper()
	b, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
	require.NoError(t, err)
	return b
}
