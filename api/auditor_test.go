package api_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"mailplane/api"
	"mailplane/api/apitest"
)

// auditorFixture is a domain with one object of every kind, a second domain, and two auditors:
// one of every domain and one of the first domain only.
type auditorFixture struct {
	e                         *apitest.Env
	dom, other                string
	acc, alias, list, room    string
	member, host, selector    string
	cos, sessionID, tokenID   string
	job                       string
	otherAcc                  string
	global, limited           string // auditor addresses
	globalToken, limitedToken string
}

// newAuditor creates an auditor through the API (as the global admin) and logs it in.
func newAuditor(t *testing.T, e *apitest.Env, home string, domains []string) (string, string) {
	t.Helper()
	body := map[string]any{"local_part": apitest.Unique("auditor"), "password": "auditor-password-1", "auditor": true}
	if domains != nil {
		body["auditor_domains"] = domains
	}
	r := e.Do(t, http.MethodPost, "/api/v1/domains/"+home+"/accounts", e.AdminToken, body)
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	a := r.JSON(t)
	require.Equal(t, true, a["auditor"])
	addr := a["address"].(string)
	return addr, e.Login(t, addr, "auditor-password-1")
}

func setupAuditors(t *testing.T) *auditorFixture {
	t.Helper()
	e := apitest.New(t)
	f := &auditorFixture{e: e}
	admin := e.AdminToken
	ok := func(r apitest.Response, status int) apitest.Response {
		t.Helper()
		require.Equal(t, status, r.Status, "%s", r.Body)
		return r
	}
	f.dom = e.CreateDomain(t, map[string]any{"description": "audited"})
	f.other = e.CreateDomain(t, nil)
	home := e.CreateDomain(t, nil) // where the auditors live: in neither scope
	f.cos = strings.ToLower(apitest.Unique("gold"))
	ok(e.Do(t, http.MethodPost, "/api/v1/cos", admin, map[string]any{"name": f.cos}), http.StatusCreated)
	f.acc = e.CreateAccount(t, f.dom, map[string]any{"display_name": "one", "password": "account-password-1"})
	ok(e.Do(t, http.MethodPatch, "/api/v1/accounts/"+f.acc, admin, map[string]any{"display_name": "two"}), http.StatusOK)
	f.alias = "alias-" + f.acc
	ok(e.Do(t, http.MethodPost, "/api/v1/accounts/"+f.acc+"/aliases", admin, map[string]any{"alias": f.alias}), http.StatusCreated)
	login := e.Do(t, http.MethodPost, "/api/v1/auth/login", "", map[string]string{"email": f.acc, "password": "account-password-1"})
	f.sessionID = ok(login, http.StatusOK).JSON(t)["session_id"].(string)
	f.member = "member@elsewhere.example"
	f.list = "team@" + f.dom
	ok(e.Do(t, http.MethodPost, "/api/v1/domains/"+f.dom+"/lists", admin, map[string]any{"address": f.list,
		"members": []string{f.member}, "owners": []string{f.acc}}), http.StatusCreated)
	ok(e.Do(t, http.MethodPost, "/api/v1/lists/"+f.list+"/aliases", admin, map[string]any{"aliases": []string{"crew@" + f.dom}}), http.StatusOK)
	f.room = "room@" + f.dom
	ok(e.Do(t, http.MethodPost, "/api/v1/domains/"+f.dom+"/resources", admin,
		map[string]any{"address": f.room, "type": "location", "display_name": "Room"}), http.StatusCreated)
	ok(e.Do(t, http.MethodPost, "/api/v1/resources/"+f.room+"/aliases", admin, map[string]any{"alias": "hall@" + f.dom}), http.StatusCreated)
	f.host = "webmail." + f.dom
	addHost(t, e, admin, f.dom, f.host)
	ok(e.Do(t, http.MethodPut, certPath(f.dom, f.host), admin, newTestCA(t).files(t, f.host)), http.StatusOK)
	f.selector = "s2026"
	ok(e.Do(t, http.MethodPost, dkimPath(f.dom), admin, map[string]any{"selector": f.selector, "algorithm": "ed25519"}), http.StatusCreated)
	ok(e.Do(t, http.MethodPut, galPath(f.dom), admin, map[string]any{"mode": "internal"}), http.StatusOK)
	// A job of a domain outside the limited auditor's scope: the removal of another domain.
	gone := e.CreateDomain(t, nil)
	f.job = jobID(t, ok(e.Do(t, http.MethodDelete, "/api/v1/domains/"+gone, admin, nil), http.StatusAccepted))
	st := ok(e.Do(t, http.MethodPost, "/api/v1/service-tokens", admin, map[string]any{"name": "ms", "role": "mailstore"}), http.StatusCreated)
	f.tokenID = st.JSON(t)["id"].(string)
	f.otherAcc = e.CreateAccount(t, f.other, nil)

	f.global, f.globalToken = newAuditor(t, e, home, nil)
	f.limited, f.limitedToken = newAuditor(t, e, home, []string{strings.ToUpper(f.dom)})
	return f
}

func jobID(t *testing.T, r apitest.Response) string {
	t.Helper()
	m := r.JSON(t)
	if j, ok := m["job"].(map[string]any); ok {
		m = j
	}
	switch id := m["id"].(type) {
	case float64:
		return strconv.FormatInt(int64(id), 10)
	case string:
		return id
	}
	t.Fatalf("no job id in %s", r.Body)
	return ""
}

// secretsRE finds what no read may show: a private key, a sealed value, a token, a password
// hash, a secret member not redacted. clearRE is what the history export may not show either:
// it carries each event as stored, sealed secrets as ciphertext (the chain hashes cover them,
// and the ciphertext opens only with the key ring), never anything in clear.
var (
	secretsRE = regexp.MustCompile(`PRIVATE KEY|mpenc:|\bmp[st]_[A-Za-z0-9_-]{16}|\$argon2|_secret"\s*:\s*"[^\[]|bind_password"\s*:\s*"[^\[]`)
	clearRE   = regexp.MustCompile(`PRIVATE KEY|\bmp[st]_[A-Za-z0-9_-]{16}|\$argon2`)
)

// An auditor reads every object kind, as_of and history in its scope, with secrets redacted,
// and gets 403 outside it; the auditor of one domain does not see what belongs to every domain.
func TestAuditorReads(t *testing.T) {
	t.Parallel()
	f := setupAuditors(t)
	e := f.e
	var created time.Time
	require.NoError(t, e.Pool.QueryRow(t.Context(), `SELECT recorded_at FROM events WHERE stream_id = $1 AND stream_version = 1`,
		"account-"+f.acc).Scan(&created))
	asOf := "?as_of=" + url.QueryEscape(created.Format(time.RFC3339Nano))
	d := "/api/v1/domains/" + f.dom
	inScope := []string{
		d, d + asOf, d + "/history", d + "/history/export", d + "/deletion-preview", d + "/quota",
		d + "/accounts", d + "/accounts/export", "/api/v1/accounts/" + f.acc, "/api/v1/accounts/" + f.acc + asOf,
		"/api/v1/accounts/" + f.acc + "/history", "/api/v1/accounts/" + f.acc + "/sessions",
		d + "/lists", "/api/v1/lists/" + f.list, "/api/v1/lists/" + f.list + "/members", "/api/v1/lists/" + f.list + "/history",
		d + "/resources", "/api/v1/resources/" + f.room, "/api/v1/resources/" + f.room + "/history",
		vhostsPath(f.dom), vhostPath(f.dom, f.host), certPath(f.dom, f.host), certPath(f.dom, f.host) + "/download",
		dkimPath(f.dom), galPath(f.dom), galPath(f.dom) + "/search?q=a",
		"/api/v1/config", "/api/v1/cos", "/api/v1/cos/" + f.cos, "/api/v1/domains",
	}
	for _, who := range []struct{ name, token string }{{"global", f.globalToken}, {"limited", f.limitedToken}} {
		t.Run(who.name, func(t *testing.T) {
			for _, p := range inScope {
				r := e.Do(t, http.MethodGet, p, who.token, nil)
				require.Equal(t, http.StatusOK, r.Status, "GET %s: %s", p, r.Body)
				re := secretsRE
				if strings.HasSuffix(p, "/history/export") {
					re = clearRE
				}
				if m := re.FindIndex(r.Body); m != nil {
					t.Fatalf("GET %s shows a secret: …%s…", p, r.Body[max(0, m[0]-80):min(len(r.Body), m[1]+40)])
				}
			}
			// as_of answers the state of that moment.
			require.Equal(t, "one", e.Do(t, http.MethodGet, "/api/v1/accounts/"+f.acc+asOf, who.token, nil).JSON(t)["display_name"])
			hist := history(t, e, "/api/v1/accounts/"+f.acc+"/history", who.token)
			require.Contains(t, types(hist), "AccountCreated")
			require.Contains(t, types(history(t, e, d+"/history", who.token)), "CertificateInstalled")
		})
	}

	// The domains list of the limited auditor holds its one domain.
	var page struct {
		Items []struct {
			Name string `json:"name"`
		} `json:"items"`
	}
	e.Do(t, http.MethodGet, "/api/v1/domains", f.limitedToken, nil).Decode(t, &page)
	require.Len(t, page.Items, 1)
	require.Equal(t, f.dom, page.Items[0].Name)

	// Out of scope: the same 403 a domain admin gets for another domain.
	o := "/api/v1/domains/" + f.other
	for _, p := range []string{o, o + "/history", o + "/history/export", o + "/accounts", "/api/v1/accounts/" + f.otherAcc,
		"/api/v1/accounts/" + f.otherAcc + "/history", o + "/deletion-preview", vhostsPath(f.other), dkimPath(f.other)} {
		e.Do(t, http.MethodGet, p, f.limitedToken, nil).Problem(t, http.StatusForbidden)
		require.Equal(t, http.StatusOK, e.Do(t, http.MethodGet, p, f.globalToken, nil).Status, "GET %s", p)
	}
	require.Equal(t, http.StatusOK, e.Do(t, http.MethodGet, "/api/v1/jobs/"+f.job, f.globalToken, nil).Status)
	e.Do(t, http.MethodGet, "/api/v1/jobs/"+f.job, f.limitedToken, nil).Problem(t, http.StatusForbidden)
	// Projection status names streams of any domain: auditors of every domain only.
	require.Equal(t, http.StatusOK, e.Do(t, http.MethodGet, "/api/v1/projections", f.globalToken, nil).Status)
	e.Do(t, http.MethodGet, "/api/v1/projections", f.limitedToken, nil).Problem(t, http.StatusForbidden)

	// The auditor's account shows the role and its normalised scope.
	a := e.Do(t, http.MethodGet, "/api/v1/accounts/"+f.limited, e.AdminToken, nil).JSON(t)
	require.Equal(t, true, a["auditor"])
	require.Equal(t, []any{f.dom}, a["auditor_domains"])
	require.Equal(t, []any{}, e.Do(t, http.MethodGet, "/api/v1/accounts/"+f.global, e.AdminToken, nil).JSON(t)["auditor_domains"])
	require.Equal(t, false, e.Do(t, http.MethodGet, "/api/v1/accounts/"+f.acc, e.AdminToken, nil).JSON(t)["auditor"])
}

// path fills the path parameters of a route with the fixture's real objects.
func (f *auditorFixture) path(p string) string {
	kind := strings.Split(strings.TrimPrefix(p, "/api/v1/"), "/")[0]
	address := map[string]string{"accounts": f.acc, "lists": f.list, "resources": f.room}[kind]
	alias := map[string]string{"accounts": f.alias, "lists": "crew@" + f.dom, "resources": "hall@" + f.dom}[kind]
	id := map[string]string{"accounts": f.sessionID, "service-tokens": f.tokenID, "jobs": f.job, "api-tokens": "t1"}[kind]
	name := map[string]string{"cos": f.cos, "projections": "postgres"}[kind]
	vals := map[string]string{"domain": f.dom, "address": address, "alias": alias, "member": f.member, "owner": f.acc,
		"host": f.host, "selector": f.selector, "id": id, "name": name}
	return regexp.MustCompile(`\{([^}:]+)(?::[^}]*)?\}`).ReplaceAllStringFunc(p, func(m string) string {
		n := strings.Trim(strings.SplitN(m, ":", 2)[0], "{}")
		v, ok := vals[n]
		if !ok || v == "" {
			panic("no value for path parameter " + n + " of " + p)
		}
		return url.PathEscape(v)
	})
}

// Every write route of the API table, tried by both auditors with real objects in the path,
// answers 403 problem+json and appends nothing; a route added to the table is tried too.
func TestAuditorWritesNothing(t *testing.T) {
	t.Parallel()
	f := setupAuditors(t)
	e := f.e
	// Workers append on their own (the domain removal queued above): count what people did.
	count := func() int {
		var n int
		require.NoError(t, e.Pool.QueryRow(context.Background(),
			`SELECT count(*) FROM events WHERE coalesce(metadata->>'actor', '') NOT LIKE 'system%'`).Scan(&n))
		return n
	}
	before := count()
	tried := 0
	for _, rt := range api.Routes() {
		if rt.Public || rt.Method == http.MethodGet || rt.Method == http.MethodHead {
			continue
		}
		p := f.path(rt.Path)
		for _, token := range []string{f.globalToken, f.limitedToken} {
			r := e.Do(t, rt.Method, p, token, map[string]any{}, "If-Match", `"1"`, "Idempotency-Key", apitest.Unique("k"))
			r.Problem(t, http.StatusForbidden)
			require.Contains(t, r.JSON(t)["detail"], "auditor", "%s %s", rt.Method, p)
		}
		tried++
	}
	require.Greater(t, tried, 40)
	require.Equal(t, before, count(), "an auditor's request appended events")
	var mine int
	require.NoError(t, e.Pool.QueryRow(context.Background(), `SELECT count(*) FROM events WHERE metadata->>'actor' = ANY($1)
		AND event_type <> 'SessionStarted'`, []string{f.global, f.limited}).Scan(&mine))
	require.Zero(t, mine)
	// Nothing changed either where no event is written (sessions, tokens).
	require.Equal(t, http.StatusOK, e.Do(t, http.MethodGet, "/api/v1/accounts/"+f.acc, e.AdminToken, nil).Status)
	var open bool
	require.NoError(t, e.Pool.QueryRow(context.Background(), `SELECT ended_at IS NULL FROM sessions WHERE id = $1`, f.sessionID).Scan(&open))
	require.True(t, open)

	// It may set up its own second factor (the TOTP routes answer it, not the auditor check).
	r := e.Do(t, http.MethodPost, "/api/v1/accounts/"+f.limited+"/totp", f.limitedToken, map[string]any{})
	require.NotEqual(t, http.StatusForbidden, r.Status, "%s", r.Body)
	require.Less(t, r.Status, 300, "%s", r.Body)

	// It may log itself out (end its own session), and its token stops working.
	var sid string
	require.NoError(t, e.Pool.QueryRow(context.Background(), `SELECT id FROM sessions WHERE account = $1`, f.limited).Scan(&sid))
	require.Equal(t, http.StatusNoContent, e.Do(t, http.MethodDelete, "/api/v1/accounts/"+f.limited+"/sessions/"+sid, f.limitedToken, nil).Status)
	e.Do(t, http.MethodGet, "/api/v1/domains", f.limitedToken, nil).Problem(t, http.StatusUnauthorized)
}

// Only a global administrator grants, scopes or revokes the role, and never together with an
// admin role; a domain admin may not change an auditor's account.
func TestAuditorGrant(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	dom := e.CreateDomain(t, nil)
	_, domAdmin := e.User(t, dom, apitest.DomainAdmin)
	accounts := "/api/v1/domains/" + dom + "/accounts"
	before := func() int {
		var n int
		require.NoError(t, e.Pool.QueryRow(context.Background(), `SELECT count(*) FROM events WHERE domain = $1`, dom).Scan(&n))
		return n
	}
	n := before()
	e.Do(t, http.MethodPost, accounts, domAdmin, map[string]any{"local_part": "a1", "auditor": true}).Problem(t, http.StatusForbidden)
	e.Do(t, http.MethodPost, accounts, domAdmin, map[string]any{"local_part": "a1", "auditor": false, "auditor_domains": []string{dom}}).
		Problem(t, http.StatusForbidden)
	plain := e.CreateAccount(t, dom, nil)
	n = before()
	e.Do(t, http.MethodPatch, "/api/v1/accounts/"+plain, domAdmin, map[string]any{"auditor": true}).Problem(t, http.StatusForbidden)
	e.Do(t, http.MethodPatch, "/api/v1/accounts/"+plain, domAdmin, map[string]any{"auditor_domains": []string{}}).Problem(t, http.StatusForbidden)
	require.Equal(t, n, before(), "a refused grant wrote something")

	// Separation of duties: 400 naming auditor; a scope without the role: 400 naming auditor_domains.
	require.Equal(t, []string{"auditor"}, e.Do(t, http.MethodPost, accounts, e.AdminToken,
		map[string]any{"local_part": "a2", "auditor": true, "domain_admin": true}).FieldErrors(t))
	require.Equal(t, []string{"auditor_domains"}, e.Do(t, http.MethodPost, accounts, e.AdminToken,
		map[string]any{"local_part": "a2", "auditor_domains": []string{dom}}).FieldErrors(t))
	require.Equal(t, []string{"auditor_domains"}, e.Do(t, http.MethodPost, accounts, e.AdminToken,
		map[string]any{"local_part": "a2", "auditor": true, "auditor_domains": []string{"not a domain"}}).FieldErrors(t))
	require.Equal(t, n, before(), "a refused account was written")

	// A global admin grants, narrows and revokes it.
	r := e.Do(t, http.MethodPatch, "/api/v1/accounts/"+plain, e.AdminToken, map[string]any{"auditor": true, "auditor_domains": []string{dom}})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Equal(t, []any{dom}, r.JSON(t)["auditor_domains"])
	require.Equal(t, []string{"auditor"}, e.Do(t, http.MethodPatch, "/api/v1/accounts/"+plain, e.AdminToken,
		map[string]any{"global_admin": true}).FieldErrors(t))
	// Now an auditor's, the account is out of the domain admin's hands.
	e.Do(t, http.MethodPatch, "/api/v1/accounts/"+plain, domAdmin, map[string]any{"password": "taken-over-1"}).Problem(t, http.StatusForbidden)
	e.Do(t, http.MethodDelete, "/api/v1/accounts/"+plain, domAdmin, nil).Problem(t, http.StatusForbidden)
	r = e.Do(t, http.MethodPatch, "/api/v1/accounts/"+plain, e.AdminToken, map[string]any{"auditor": false})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Equal(t, false, r.JSON(t)["auditor"])
	require.Equal(t, []any{}, r.JSON(t)["auditor_domains"])
}
