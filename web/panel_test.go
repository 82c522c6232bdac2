package web_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/stretchr/testify/require"

	"mailplane/api"
	"mailplane/api/apitest"
	"mailplane/domain"
	"mailplane/web"
)

// panel starts an API (with workers, for the removal job) and the panel in front of it, as
// mailplane serve does.
func panel(t *testing.T) (*apitest.Env, string) { return panelWith(t, nil) }

// panelWith is panel with the API's options changed by opt (River UI, certificate issuance).
func panelWith(t *testing.T, opt func(*apitest.Options)) (*apitest.Env, string) {
	t.Helper()
	e := panelEnv(t, opt)
	return e, servePanel(t, e.Server.Handler())
}

// panelConfig is the API configuration of the panel's tests: a generous read-your-writes bound,
// since on a loaded machine the default answers 503, and these tests are about the pages, not
// the projections' speed.
var panelConfig = api.Config{ReadYourWritesTimeout: 2 * time.Minute, RequestTimeout: 3 * time.Minute}

// panelEnv starts the API the panel's tests use (its options changed by opt, if any); a failed test logs the server's warnings.
func panelEnv(t *testing.T, opt func(*apitest.Options)) *apitest.Env {
	t.Helper()
	log := &syncBuf{}
	o := apitest.Options{Workers: &apitest.Workers{NoACME: true}, Log: log, Config: panelConfig}
	if opt != nil {
		opt(&o)
	}
	e := apitest.NewWith(t, o)
	t.Cleanup(func() {
		if t.Failed() {
			for _, l := range strings.Split(log.String(), "\n") {
				if strings.Contains(l, "level=ERROR") || strings.Contains(l, "level=WARN") {
					t.Log(l)
				}
			}
		}
	})
	return e
}

// servePanel serves the panel in front of an API handler.
func servePanel(t *testing.T, h http.Handler) string {
	t.Helper()
	p, err := web.New(web.Config{API: h})
	require.NoError(t, err)
	hs := httptest.NewServer(p.Handler())
	t.Cleanup(hs.Close)
	return hs.URL
}

// tab opens a tab in a browser context of its own, with a deadline for the whole test.
func tab(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	tctx, tcancel := context.WithTimeout(browserCtx, d)
	ctx, cancel := chromedp.NewContext(tctx, chromedp.WithNewBrowserContext())
	t.Cleanup(func() { cancel(); tcancel() })
	require.NoError(t, chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900)))
	return ctx
}

func js(v string) string { b, _ := json.Marshal(v); return string(b) }

// until evaluates expr until it is true. A page that navigates meanwhile makes an evaluation
// fail ("Inspected target navigated"); that is retried, not a failure.
func until(ctx context.Context, expr string, d time.Duration) error {
	deadline := time.Now().Add(d)
	var last error
	for time.Now().Before(deadline) {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => { try { return document.readyState === "complete" && !!(`+expr+`) } catch (e) { return false } })()`))
		if err == nil && ok {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("still false after %s (last error %v)", d, last)
}

// waitPath waits until the page's path is p.
func waitPath(t *testing.T, ctx context.Context, p string) {
	t.Helper()
	if err := until(ctx, `location.pathname === `+js(p), 3*time.Minute); err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
		t.Fatalf("waiting for %s (at %s): %v\npage: %s", p, loc, err, body)
	}
}

// waitText waits until the element sel holds text.
func waitText(t *testing.T, ctx context.Context, sel, text string) {
	t.Helper()
	if err := until(ctx, `document.querySelector(`+js(sel)+`).textContent.includes(`+js(text)+`)`, 3*time.Minute); err != nil {
		body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
		t.Fatalf("waiting for %q in %s: %v\npage: %s", text, sel, err, body)
	}
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.querySelector(`+js(sel)+`)||{}).innerText || ""`))
	require.NoError(t, err)
	return s
}

// axe injects axe-core (fetched by scripts/stack.sh) and fails on any serious or critical
// violation of the page shown. With -screens (MAILPLANE_SCREENS) it also saves a screenshot.
func axe(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	path := os.Getenv("MAILPLANE_AXE_JS")
	require.NotEmpty(t, path, "MAILPLANE_AXE_JS is unset: run the tests through scripts/test.sh")
	src, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](string(src))))
	type violation struct {
		ID      string   `json:"id"`
		Impact  string   `json:"impact"`
		Help    string   `json:"help"`
		Targets []string `json:"targets"`
	}
	vs, err := chromedp.Run(ctx, chromedp.Evaluate[[]violation](
		`axe.run(document).then(r => r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help, targets: v.nodes.map(n => String(n.target))})))`,
		chromedp.EvalAwaitPromise))
	require.NoError(t, err)
	for _, v := range vs {
		if v.Impact == "serious" || v.Impact == "critical" {
			loc, _ := chromedp.Run(ctx, chromedp.Location())
			t.Errorf("axe on %s (%s): %s %s: %s at %v", name, loc, v.Impact, v.ID, v.Help, v.Targets)
		}
	}
	if dir := os.Getenv("MAILPLANE_SCREENS"); dir != "" {
		buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		require.NoError(t, err)
		// Written aside and renamed: tests running in parallel save the same pages (sign-in).
		f, err := os.CreateTemp(dir, name+".*.tmp")
		require.NoError(t, err)
		_, err = f.Write(buf)
		require.NoError(t, errors.Join(err, f.Close(), os.Chmod(f.Name(), 0o644)))
		require.NoError(t, os.Rename(f.Name(), filepath.Join(dir, name+".png")))
	}
}

func signIn(t *testing.T, ctx context.Context, base string) {
	t.Helper()
	signInAs(t, ctx, base, apitest.AdminEmail, apitest.AdminPassword)
}

// signInAs signs in through the form as the account email.
func signInAs(t *testing.T, ctx context.Context, base, email, password string) {
	t.Helper()
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.ID("f-email")),
	))
	waitPath(t, ctx, "/login")
	axe(t, ctx, "sign-in")
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("f-email"), email),
		chromedp.SendKeys(chromedp.ID("f-password"), password),
		chromedp.Click(chromedp.CSS(`main button[type=submit]`)),
	))
	waitPath(t, ctx, "/domains")
}

// setField replaces an input's value by typing into it.
func setField(id, v string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(chromedp.Evaluate[chromedp.Void](`document.getElementById(`+js(id)+`).value = ""`), chromedp.SendKeys(chromedp.ID(id), v))
}

// badCertificate is a self-signed certificate for another name, with its key.
func badCertificate(t *testing.T) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "elsewhere.test"},
		DNSNames: []string{"elsewhere.test"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(0, 1, 0)}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	require.NoError(t, err)
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
}

// TestPanelEndToEnd walks the path in the browser: sign in, create a domain, set its
// quota and warning recipient, create an account with an alias, see the effective quota and its
// source, end a session, verify a bad certificate and see its problems, then delete the domain
// through the preview and watch the removal job finish. axe checks every page on the way.
func TestPanelEndToEnd(t *testing.T) {
	e, base := panel(t)
	ctx := tab(t, 10*time.Minute)
	signIn(t, ctx, base)
	axe(t, ctx, "domains")

	dom := apitest.Unique("p") + ".example"
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`a[href="/domains/new"]`))))
	waitPath(t, ctx, "/domains/new")
	// A refused form shows the API's problem beside the field it names.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("f-name"), "not a domain!"),
		chromedp.Click(chromedp.CSS(`main button.primary`)),
	))
	waitText(t, ctx, "#f-name-err", "")
	require.NotEmpty(t, text(t, ctx, "#f-name-err"), "the name's problem is shown beside it")
	inv, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("f-name").getAttribute("aria-invalid")`))
	require.NoError(t, err)
	require.Equal(t, "true", inv)
	axe(t, ctx, "domain-create-refused")
	require.NoError(t, chromedp.Do(ctx,
		setField("f-name", dom),
		chromedp.SendKeys(chromedp.ID("f-description"), "made in the browser"),
		chromedp.SendKeys(chromedp.ID("f-time-zone"), "Europe/Rome"),
		chromedp.Click(chromedp.CSS(`main button.primary`)),
	))
	waitPath(t, ctx, "/domains/"+dom)
	waitText(t, ctx, ".flash", "Created.")
	axe(t, ctx, "domain-general")
	d := e.Do(t, http.MethodGet, "/api/v1/domains/"+dom, e.AdminToken, nil).JSON(t)
	require.Equal(t, "Europe/Rome", d["time_zone"])

	// The domain list shows it, with its status, and the filter finds it.
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(base+"/domains?q="+url.QueryEscape(dom))))
	waitText(t, ctx, "main table tbody", dom)
	require.Contains(t, text(t, ctx, "main table tbody"), "active")

	// Mailbox quota: limits and the warning recipient.
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(base+"/domains/"+dom+"/quota")))
	waitPath(t, ctx, "/domains/"+dom+"/quota")
	require.NoError(t, chromedp.Do(ctx,
		setField("f-limits-account-quota-bytes", "1GiB"),
		setField("f-limits-warn-percent", "80"),
		setField("f-limits-warn-recipient", "postmaster@"+dom),
		chromedp.Click(chromedp.CSS(`main form button.primary`)),
	))
	waitText(t, ctx, ".flash", "Saved.")
	d = e.Do(t, http.MethodGet, "/api/v1/domains/"+dom, e.AdminToken, nil).JSON(t)
	limits := d["limits"].(map[string]any)
	require.Equal(t, float64(1<<30), limits["account_quota_bytes"])
	require.Equal(t, float64(80), limits["warn_percent"])
	require.Equal(t, "postmaster@"+dom, limits["warn_recipient"])
	axe(t, ctx, "domain-quota")

	// An account with an alias: its effective quota comes from the domain.
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(base+"/domains/"+dom+"/accounts")))
	waitPath(t, ctx, "/domains/"+dom+"/accounts")
	axe(t, ctx, "accounts")
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("f-local-part"), "alice"),
		chromedp.SendKeys(chromedp.ID("f-display-name"), "Alice Liddell"),
		chromedp.SendKeys(chromedp.ID("f-password"), "alice-password-1"),
		chromedp.SendKeys(chromedp.ID("f-alias"), "ally@"+dom),
		chromedp.Click(chromedp.CSS(`#create-account button.primary`)),
	))
	alice := "alice@" + dom
	waitPath(t, ctx, "/accounts/"+alice)
	waitText(t, ctx, "main", "ally@"+dom)
	row := text(t, ctx, "#eff-mail_quota_bytes")
	require.Contains(t, row, "1.0 GiB", "effective quota")
	require.Contains(t, row, "domain", "its source")
	a := e.Do(t, http.MethodGet, "/api/v1/accounts/"+alice, e.AdminToken, nil).JSON(t)
	require.Equal(t, []any{"ally@" + dom}, a["aliases"])

	// End a session: Alice logs in (through the API), the panel ends it, her token stops working.
	token := e.Login(t, alice, "alice-password-1")
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(base+"/accounts/"+alice)))
	waitText(t, ctx, "#sessions tbody", "End session")
	axe(t, ctx, "account")
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#sessions tbody button`))))
	waitText(t, ctx, ".flash", "The session has ended.")
	waitText(t, ctx, "#sessions tbody", "No open session.")
	require.Eventually(t, func() bool {
		return e.Do(t, http.MethodGet, "/api/v1/accounts/"+alice, token, nil).Status == http.StatusUnauthorized
	}, time.Minute, 200*time.Millisecond, "the ended session's token is refused")

	// A virtual host, and a certificate that does not verify: each problem is listed.
	host := "mail." + dom
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(base+"/domains/"+dom+"/virtual-hosts")))
	waitPath(t, ctx, "/domains/"+dom+"/virtual-hosts")
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("f-host"), host),
		chromedp.Click(chromedp.CSS(`form[action$="/virtual-hosts"] button`)),
	))
	waitText(t, ctx, ".flash", "Virtual host added.")
	cert, key := badCertificate(t)
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Evaluate[chromedp.Void](`document.getElementById("f-certificate").value = `+js(cert)),
		chromedp.Evaluate[chromedp.Void](`document.getElementById("f-private-key").value = `+js(key)),
		chromedp.Click(chromedp.CSS(`#cert-form button[value=verify]`)),
	))
	waitText(t, ctx, "#verify-result", "does not verify")
	problems := text(t, ctx, "#cert-problems")
	require.Contains(t, problems, domain.ProblemHostNotCovered)
	require.Contains(t, problems, domain.ProblemCAChainMissing)
	axe(t, ctx, "virtual-hosts-verify")
	// Installing it is refused, with the same problems.
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#cert-form button[value=install]`))))
	waitText(t, ctx, "#problem", domain.ProblemHostNotCovered)

	// DELETE DOMAIN: the preview lists what goes, then the removal job runs to its end.
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(base+"/domains/"+dom+"/delete")))
	waitText(t, ctx, "#preview", alice)
	require.Contains(t, text(t, ctx, "#preview"), "ally@"+dom)
	require.Contains(t, text(t, ctx, "#preview"), host)
	axe(t, ctx, "delete-domain")
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.ID("choice-remove")),
		chromedp.SendKeys(chromedp.ID("f-confirm"), dom),
		chromedp.Click(chromedp.CSS(`main form button.danger`)),
	))
	if err := until(ctx, `location.pathname.startsWith("/jobs/")`, 3*time.Minute); err != nil {
		body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
		t.Fatalf("waiting for the job page: %v\npage: %s", err, body)
	}
	waitText(t, ctx, "#job-state", "succeeded")
	axe(t, ctx, "removal-job")
	require.Equal(t, http.StatusNotFound, e.Do(t, http.MethodGet, "/api/v1/domains/"+dom, e.AdminToken, nil).Status)

	// The Operations page, for global administrators.
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(base+"/operations")))
	waitText(t, ctx, "main table", "running")
	axe(t, ctx, "operations")

	// The session cookie: HttpOnly, Secure, SameSite=Strict.
	cookies, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{base + "/"}})
	require.NoError(t, err)
	var found bool
	for _, c := range cookies.Cookies {
		if c.Name == web.SessionCookie {
			found = true
			require.True(t, c.HTTPOnly)
			require.True(t, c.Secure)
			require.Equal(t, network.CookieSameSiteStrict, c.SameSite)
		}
	}
	require.True(t, found, "the session cookie is set")
}

// tabTo presses Tab until the element with id has the focus.
func tabTo(t *testing.T, ctx context.Context, id string) {
	t.Helper()
	for range 80 {
		got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.activeElement ? document.activeElement.id : ""`))
		require.NoError(t, err)
		if got == id {
			return
		}
		require.NoError(t, chromedp.Do(ctx, chromedp.KeyEvent(kb.Tab)))
	}
	t.Fatalf("Tab never reached #%s", id)
}

// TestPanelKeyboardOnly signs in and creates an account with the keyboard alone.
func TestPanelKeyboardOnly(t *testing.T) {
	e, base := panel(t)
	dom := e.CreateDomain(t, nil)
	ctx := tab(t, 5*time.Minute)
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(base+"/login"), chromedp.WaitVisible(chromedp.ID("f-email"))))
	tabTo(t, ctx, "f-email")
	require.NoError(t, chromedp.Do(ctx, chromedp.KeyEvent(apitest.AdminEmail), chromedp.KeyEvent(kb.Tab)))
	tabTo(t, ctx, "f-password")
	require.NoError(t, chromedp.Do(ctx, chromedp.KeyEvent(apitest.AdminPassword), chromedp.KeyEvent(kb.Enter)))
	waitPath(t, ctx, "/domains")

	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(base+"/domains/"+dom+"/accounts"), chromedp.WaitVisible(chromedp.ID("f-local-part"))))
	tabTo(t, ctx, "f-local-part")
	require.NoError(t, chromedp.Do(ctx, chromedp.KeyEvent("bob"), chromedp.KeyEvent(kb.Tab)))
	tabTo(t, ctx, "f-display-name")
	require.NoError(t, chromedp.Do(ctx, chromedp.KeyEvent("Bob Keys"), chromedp.KeyEvent(kb.Tab)))
	tabTo(t, ctx, "f-alias")
	require.NoError(t, chromedp.Do(ctx, chromedp.KeyEvent("robert@"+dom)))
	tabTo(t, ctx, "f-domain-admin")
	// Space toggles the checkbox; Tab then reaches the submit button, Enter presses it.
	require.NoError(t, chromedp.Do(ctx, chromedp.KeyEvent(" "), chromedp.KeyEvent(kb.Tab)))
	focused, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.activeElement.textContent`))
	require.NoError(t, err)
	require.Equal(t, "Create account", focused)
	require.NoError(t, chromedp.Do(ctx, chromedp.KeyEvent(kb.Enter)))
	waitPath(t, ctx, "/accounts/bob@"+dom)
	a := e.Do(t, http.MethodGet, "/api/v1/accounts/bob@"+dom, e.AdminToken, nil).JSON(t)
	require.Equal(t, "Bob Keys", a["display_name"])
	require.Equal(t, true, a["domain_admin"])
	require.Equal(t, []any{"robert@" + dom}, a["aliases"])

	// A narrow screen (a phone's 390 px): nothing is wider than the viewport but the tables,
	// which scroll inside their box.
	require.NoError(t, chromedp.Do(ctx, chromedp.EmulateViewport(390, 844), chromedp.Navigate(base+"/domains/"+dom+"/accounts")))
	waitPath(t, ctx, "/domains/"+dom+"/accounts")
	wide, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth`))
	require.NoError(t, err)
	require.False(t, wide, "the page scrolls sideways at 390 px")
	axe(t, ctx, "accounts-narrow")
}

// TestPanelCSRF: a form sent without its token, or with another session's, is refused with
// 403 and changes nothing; so is a sign-in without the login form's token.
func TestPanelCSRF(t *testing.T) {
	e, base := panel(t)

	// In the browser: the create-domain form with its token removed.
	ctx := tab(t, 5*time.Minute)
	signIn(t, ctx, base)
	dom := apitest.Unique("csrf") + ".example"
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(base+"/domains/new"),
		chromedp.WaitVisible(chromedp.ID("f-name")),
		chromedp.SendKeys(chromedp.ID("f-name"), dom),
		chromedp.Evaluate[chromedp.Void](`document.querySelector('main input[name=csrf]').remove()`),
		chromedp.Click(chromedp.CSS(`main button.primary`)),
	))
	waitText(t, ctx, "body", "403 Forbidden")
	require.Equal(t, http.StatusNotFound, e.Do(t, http.MethodGet, "/api/v1/domains/"+dom, e.AdminToken, nil).Status)

	// Over HTTP: a session cookie and no token, a wrong token, and a sign-in without one.
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	u, _ := url.Parse(base)
	jar.SetCookies(u, []*http.Cookie{{Name: web.SessionCookie, Value: e.AdminToken, Path: "/"}})
	client := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, form := range []url.Values{{"name": {dom}}, {"name": {dom}, "csrf": {"forged"}}} {
		res, err := client.PostForm(base+"/domains", form)
		require.NoError(t, err)
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		require.Equal(t, http.StatusForbidden, res.StatusCode, "%s", b)
	}
	require.Equal(t, http.StatusNotFound, e.Do(t, http.MethodGet, "/api/v1/domains/"+dom, e.AdminToken, nil).Status)
	res, err := http.PostForm(base+"/login", url.Values{"email": {apitest.AdminEmail}, "password": {apitest.AdminPassword}})
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusForbidden, res.StatusCode)
	require.Empty(t, res.Cookies(), "no session")

	// Every page carries the strict policy.
	res, err = client.Get(base + "/domains")
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.True(t, strings.HasPrefix(res.Header.Get("Content-Security-Policy"), "default-src 'self'"))
}

// syncBuf collects the server's log lines (written from many goroutines).
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }
