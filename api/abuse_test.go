package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"mailplane/api"
	"mailplane/api/apitest"
)

// abuseClient sends requests as given and follows no redirect: a redirect is an answer too.
var abuseClient = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// writtenState is what a refused request must leave as it was: the event count and a digest
// of every read model.
func writtenState(t *testing.T, e *apitest.Env) string {
	t.Helper()
	var s string
	require.NoError(t, e.Pool.QueryRow(t.Context(), `SELECT concat_ws(' ',
		(SELECT count(*) FROM events),
		(SELECT md5(coalesce(string_agg(address || version || state::text, ',' ORDER BY address), '')) FROM rm_accounts),
		(SELECT md5(coalesce(string_agg(name || version || state::text, ',' ORDER BY name), '')) FROM rm_domains),
		(SELECT md5(coalesce(string_agg(address || version || state::text, ',' ORDER BY address), '')) FROM rm_lists),
		(SELECT count(*) FROM rm_list_members), (SELECT count(*) FROM rm_aliases), (SELECT count(*) FROM rm_cos),
		(SELECT count(*) FROM sessions WHERE ended_at IS NULL))`).Scan(&s))
	return s
}

type abuseCase struct {
	name    string
	method  string
	path    string // sent as is: encoded characters stay encoded
	token   string
	body    any // string/[]byte as is, else JSON
	headers []string
	// want, when set, is the status the refusal must have (the checks that refuse before any
	// handler runs: token scopes, the auditor role).
	want int
}

// routePath fills a route's path parameters with the objects of vals ("accounts.address" for
// {address} under /accounts/, or the parameter's name).
func routePath(p string, vals map[string]string) string {
	kind := strings.Split(strings.TrimPrefix(p, "/api/v1/"), "/")[0]
	return regexp.MustCompile(`\{([^}:]+)(?::[^}]*)?\}`).ReplaceAllStringFunc(p, func(m string) string {
		n := strings.Trim(strings.SplitN(m, ":", 2)[0], "{}")
		v, ok := vals[kind+"."+n]
		if !ok {
			v, ok = vals[n]
		}
		if !ok {
			panic("no value for path parameter " + n + " of " + p)
		}
		return url.PathEscape(v)
	})
}

func sendRaw(t *testing.T, e *apitest.Env, c abuseCase) (int, http.Header, []byte) {
	t.Helper()
	var rd io.Reader
	ct := "application/json"
	switch b := c.body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		require.NoError(t, err)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(c.method, e.URL+c.path, rd)
	require.NoError(t, err)
	if rd != nil {
		req.Header.Set("Content-Type", ct)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for i := 0; i+1 < len(c.headers); i += 2 {
		req.Header.Set(c.headers[i], c.headers[i+1])
	}
	resp, err := abuseClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// Every hostile request is answered with a 4xx problem and writes nothing: not an event, not a
// read model row, not a session.
func TestAbuse(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	domA := e.CreateDomain(t, nil)
	domB := e.CreateDomain(t, nil)
	adminA, adminAToken := e.User(t, domA, apitest.DomainAdmin)
	owner, ownerToken := e.User(t, domA, apitest.Plain)
	user, userToken := e.User(t, domA, apitest.Plain)
	accountB := e.CreateAccount(t, domB, nil)
	list := createList(t, e, domA, map[string]any{"address": apitest.Unique("list") + "@" + domA, "owners": []string{owner}})["address"].(string)
	listB := createList(t, e, domB, map[string]any{"address": apitest.Unique("list") + "@" + domB})["address"].(string)
	_, auditorToken := newAuditor(t, e, domA, []string{domA})
	admin := e.AdminToken
	_, userSession := login(t, e, user, "user-password-1")

	// API tokens: of a global admin narrowed to domain A (all kinds, or accounts only); a domain
	// admin's read-only one; one revoked, one expired, one whose owner was locked.
	scoped, scopedID := makeAPIToken(t, e, admin, map[string]any{"domains": []string{domA}, "access": map[string]any{"*": "write"}})
	accountsOnly, _ := makeAPIToken(t, e, admin, map[string]any{"domains": []string{domA}, "access": map[string]any{"accounts": "write"}})
	readOnly, _ := makeAPIToken(t, e, adminAToken, map[string]any{"access": map[string]any{"*": "read"}})
	revokedAPI, revokedID := makeAPIToken(t, e, adminAToken, map[string]any{"access": map[string]any{"*": "write"}})
	require.Equal(t, http.StatusNoContent, e.Do(t, http.MethodDelete, "/api/v1/api-tokens/"+revokedID, adminAToken, nil).Status)
	expiredAPI, expiredID := makeAPIToken(t, e, adminAToken, map[string]any{"access": map[string]any{"*": "write"}})
	_, err := e.Pool.Exec(t.Context(), `UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE id = $1`, expiredID)
	require.NoError(t, err)
	locked, lockedSession := e.User(t, domA, apitest.DomainAdmin)
	lockedAPI, _ := makeAPIToken(t, e, lockedSession, map[string]any{"access": map[string]any{"*": "write"}})
	require.Equal(t, http.StatusOK, e.Do(t, http.MethodPatch, accountPath(locked), admin, map[string]any{"status": "locked"}).Status)
	// A session ended by an administrator (revoked), not by its owner.
	revoked, revokedSession := login(t, e, user, "user-password-1")
	require.Equal(t, http.StatusNoContent, e.Do(t, http.MethodDelete, accountPath(user)+"/sessions/"+revokedSession, admin, nil).Status)

	// Tokens that once were good: one ended by its owner, one expired.
	ended, endedSession := login(t, e, user, "user-password-1")
	require.Equal(t, http.StatusNoContent, e.Do(t, http.MethodDelete, accountPath(user)+"/sessions/"+endedSession, userToken, nil).Status)
	expired, expiredSession := login(t, e, user, "user-password-1")
	_, err = e.Pool.Exec(t.Context(), `UPDATE sessions SET expires_at = now() - interval '1 second' WHERE id = $1`, expiredSession)
	require.NoError(t, err)

	members := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("m%05d@%s", i, domB)
		}
		return out
	}
	deep := strings.Repeat(`{"a":`, 20000) + "1" + strings.Repeat("}", 20000)
	accounts := "/api/v1/domains/" + domA + "/accounts"
	lists := "/api/v1/domains/" + domA + "/lists"
	cases := []abuseCase{
		// Bodies.
		{name: "oversized body", method: http.MethodPost, path: accounts, token: admin,
			body: `{"local_part":"big","display_name":"` + strings.Repeat("x", 2<<20) + `"}`},
		{name: "deep JSON", method: http.MethodPost, path: accounts, token: admin, body: deep},
		{name: "deep JSON in a patch", method: http.MethodPatch, path: accountPath(user), token: admin, body: `{"attributes":` + deep + `}`},
		{name: "wrong content type", method: http.MethodPost, path: accounts, token: admin, body: `{"local_part":"ct"}`,
			headers: []string{"Content-Type", "text/plain"}},
		{name: "form content type", method: http.MethodPost, path: accounts, token: admin, body: `local_part=ct`,
			headers: []string{"Content-Type", "application/x-www-form-urlencoded"}},
		{name: "unknown field", method: http.MethodPost, path: accounts, token: admin, body: `{"local_part":"uf","is_root":true}`},
		{name: "unknown nested field", method: http.MethodPatch, path: "/api/v1/domains/" + domA, token: admin, body: `{"limits":{"max_accounts":1,"unlimited":true}}`},
		{name: "two JSON values", method: http.MethodPost, path: accounts, token: admin, body: `{"local_part":"a"}{"local_part":"b"}`},
		{name: "NUL in a string", method: http.MethodPost, path: accounts, token: admin, body: `{"local_part":"nul\u0000x"}`},
		// Header injection: an address is a header's value in mail and a line in Postfix maps.
		{name: "CRLF in an address", method: http.MethodPost, path: accounts, token: admin, body: map[string]any{"address": "x\r\nBcc: mallory@evil.test@" + domA}},
		{name: "CRLF in a local part", method: http.MethodPost, path: accounts, token: admin, body: map[string]any{"local_part": "x\r\nBcc: y"}},
		{name: "CRLF after the domain", method: http.MethodPost, path: accounts, token: admin, body: map[string]any{"address": "x@" + domA + "\r\nBcc: mallory@evil.test"}},
		{name: "CRLF in an alias", method: http.MethodPost, path: accountPath(user) + "/aliases", token: admin, body: map[string]any{"alias": "a\r\nb@" + domA}},
		{name: "CRLF in a list member", method: http.MethodPost, path: listPath(list) + "/members", token: admin, body: map[string]any{"members": []string{"ok@" + domB, "x\nTo: y@" + domB}}},
		{name: "LF in a warning recipient", method: http.MethodPatch, path: "/api/v1/domains/" + domA, token: admin, body: map[string]any{"limits": map[string]any{"warn_recipient": "w@" + domA + "\nBcc: z@evil.test"}}},
		// LDAP filter injection: what ends up in a filter is parsed, not pasted.
		{name: "member_url: a second filter", method: http.MethodPost, path: lists, token: admin,
			body: map[string]any{"address": "dyn1@" + domA, "dynamic": map[string]any{"member_url": "ldap:///??sub?(mail=*)(objectClass=*)"}}},
		{name: "member_url: closed early", method: http.MethodPost, path: lists, token: admin,
			body: map[string]any{"address": "dyn2@" + domA, "dynamic": map[string]any{"member_url": "ldap:///??sub?(mail=*))(|(objectClass=*)"}}},
		{name: "member_url: another host", method: http.MethodPost, path: lists, token: admin,
			body: map[string]any{"address": "dyn3@" + domA, "dynamic": map[string]any{"member_url": "ldap://evil.test/??sub?(mail=*)"}}},
		{name: "member_url: another base", method: http.MethodPost, path: lists, token: admin,
			body: map[string]any{"address": "dyn4@" + domA, "dynamic": map[string]any{"member_url": "ldap:///cn=config??sub?(objectClass=*)"}}},
		{name: "member_url: encoded NUL", method: http.MethodPost, path: lists, token: admin,
			body: map[string]any{"address": "dyn5@" + domA, "dynamic": map[string]any{"member_url": "ldap:///??sub?(mail=a%00)"}}},
		{name: "login search_filter injection", method: http.MethodPatch, path: "/api/v1/domains/" + domB, token: admin,
			body: map[string]any{"auth": map[string]any{"mechanism": "ldap", "ldap_url": "ldap://127.0.0.1:1", "search_base": "dc=x", "search_filter": "(uid=%u))(|(uid=*)"}}},
		// Path traversal in names.
		{name: "dot-dot in an account path", method: http.MethodGet, path: "/api/v1/accounts/..%2F..%2Fconfig", token: admin},
		{name: "encoded dot-dot as a domain", method: http.MethodPatch, path: "/api/v1/domains/%2e%2e", token: admin, body: `{"description":"x"}`},
		{name: "encoded slash in an address", method: http.MethodPatch, path: "/api/v1/accounts/" + strings.Replace(user, "@", "%2F..%2F@", 1), token: admin, body: `{"display_name":"x"}`},
		{name: "dot-dot in a COS name", method: http.MethodDelete, path: "/api/v1/cos/..%2Fdefault", token: admin},
		{name: "dot-dot local part", method: http.MethodPost, path: accounts, token: admin, body: map[string]any{"local_part": "../../etc"}},
		{name: "raw dot-dot segment", method: http.MethodDelete, path: "/api/v1/domains/" + domA + "/..", token: admin},
		// Bulk requests: 10,000 members at a time at most.
		{name: "10,001 members", method: http.MethodPost, path: listPath(list) + "/members", token: admin, body: map[string]any{"members": members(10001)}},
		{name: "10,001 members removed", method: http.MethodDelete, path: listPath(list) + "/members", token: admin, body: map[string]any{"members": members(10001)}},
		// Tokens.
		{name: "no token", method: http.MethodPost, path: accounts, body: `{"local_part":"t0"}`},
		{name: "invalid token", method: http.MethodPost, path: accounts, token: "mpt_" + strings.Repeat("A", 43), body: `{"local_part":"t1"}`},
		{name: "garbage token", method: http.MethodPost, path: accounts, token: "'; DROP TABLE events; --", body: `{"local_part":"t2"}`},
		{name: "invalid service token", method: http.MethodPost, path: "/api/v1/usage", token: "mps_nope", body: `{"reports":[]}`},
		{name: "ended token", method: http.MethodPatch, path: accountPath(user), token: ended, body: `{"display_name":"ended"}`},
		{name: "expired token", method: http.MethodPatch, path: accountPath(user), token: expired, body: `{"display_name":"expired"}`},
		{name: "basic auth", method: http.MethodPost, path: accounts, body: `{"local_part":"t3"}`, headers: []string{"Authorization", "Basic YWRtaW46YWRtaW4="}},
		{name: "revoked token", method: http.MethodPatch, path: accountPath(user), token: revoked, body: `{"display_name":"revoked"}`, want: http.StatusUnauthorized},
		{name: "locked account's token", method: http.MethodPost, path: accounts, token: lockedSession, body: `{"local_part":"t4"}`, want: http.StatusUnauthorized},
		{name: "invalid API token", method: http.MethodPost, path: accounts, token: "mpa_" + strings.Repeat("A", 43), body: `{"local_part":"t5"}`, want: http.StatusUnauthorized},
		{name: "revoked API token", method: http.MethodPost, path: accounts, token: revokedAPI, body: `{"local_part":"t6"}`, want: http.StatusUnauthorized},
		{name: "expired API token", method: http.MethodPost, path: accounts, token: expiredAPI, body: `{"local_part":"t7"}`, want: http.StatusUnauthorized},
		{name: "locked owner's API token", method: http.MethodPost, path: accounts, token: lockedAPI, body: `{"local_part":"t8"}`, want: http.StatusUnauthorized},
		{name: "API token id as a token", method: http.MethodPost, path: accounts, token: scopedID, body: `{"local_part":"t9"}`, want: http.StatusUnauthorized},
		{name: "API token cut short", method: http.MethodPost, path: accounts, token: scoped[:len(scoped)-1], body: `{"local_part":"t10"}`, want: http.StatusUnauthorized},
		// Scoped API tokens: another kind than the token's, a body naming another domain.
		{name: "accounts-only token writes a list", method: http.MethodPost, path: listPath(list) + "/members", token: accountsOnly, body: map[string]any{"members": []string{"x@" + domA}}, want: http.StatusForbidden},
		{name: "accounts-only token changes the domain", method: http.MethodPatch, path: "/api/v1/domains/" + domA, token: accountsOnly, body: `{"description":"x"}`, want: http.StatusForbidden},
		{name: "scoped token aliases into another domain", method: http.MethodPost, path: accountPath(user) + "/aliases", token: scoped, body: map[string]any{"alias": "alias@" + domB}},
		{name: "scoped token makes a wider token", method: http.MethodPost, path: "/api/v1/api-tokens", token: scoped,
			body: map[string]any{"name": "wider", "expires_at": "2099-01-01T00:00:00Z", "domains": []string{domB}, "access": map[string]any{"*": "write"}}},
		// Privilege escalation: domain admin → global.
		{name: "domain admin creates a domain", method: http.MethodPost, path: "/api/v1/domains", token: adminAToken, body: map[string]any{"name": apitest.Unique("esc") + ".test"}},
		{name: "domain admin changes the config", method: http.MethodPatch, path: "/api/v1/config", token: adminAToken, body: `{"time_zone":"UTC"}`},
		{name: "domain admin makes a global admin", method: http.MethodPost, path: accounts, token: adminAToken, body: map[string]any{"local_part": "root", "global_admin": true}},
		{name: "domain admin grants itself global", method: http.MethodPatch, path: accountPath(adminA), token: adminAToken, body: `{"global_admin":true}`},
		{name: "domain admin in another domain", method: http.MethodPatch, path: accountPath(accountB), token: adminAToken, body: `{"display_name":"x"}`},
		{name: "domain admin creates in another domain", method: http.MethodPost, path: "/api/v1/domains/" + domB + "/accounts", token: adminAToken, body: `{"local_part":"x"}`},
		{name: "domain admin changes its domain's auth", method: http.MethodPatch, path: "/api/v1/domains/" + domA, token: adminAToken, body: `{"auth":{"mechanism":"internal"}}`},
		{name: "domain admin changes its domain's status", method: http.MethodPatch, path: "/api/v1/domains/" + domA, token: adminAToken, body: `{"status":"active"}`},
		{name: "domain admin makes a service token", method: http.MethodPost, path: "/api/v1/service-tokens", token: adminAToken, body: `{"name":"x","role":"mailstore"}`},
		{name: "domain admin removes another domain", method: http.MethodDelete, path: "/api/v1/domains/" + domB, token: adminAToken},
		{name: "domain admin aliases into another domain", method: http.MethodPost, path: accountPath(user) + "/aliases", token: adminAToken, body: map[string]any{"alias": "alias@" + domB}},
		// List owner → domain admin.
		{name: "list owner creates an account", method: http.MethodPost, path: accounts, token: ownerToken, body: `{"local_part":"x"}`},
		{name: "list owner changes the domain", method: http.MethodPatch, path: "/api/v1/domains/" + domA, token: ownerToken, body: `{"description":"mine"}`},
		{name: "list owner grants itself domain admin", method: http.MethodPatch, path: accountPath(owner), token: ownerToken, body: `{"domain_admin":true}`},
		{name: "list owner adds an alias", method: http.MethodPost, path: listPath(list) + "/aliases", token: ownerToken, body: map[string]any{"aliases": []string{"alias2@" + domA}}},
		{name: "list owner makes the list dynamic", method: http.MethodPatch, path: listPath(list), token: ownerToken, body: map[string]any{"dynamic": map[string]any{"member_url": "ldap:///??sub?(objectClass=*)"}}},
		{name: "list owner deletes the list", method: http.MethodDelete, path: listPath(list), token: ownerToken},
		{name: "list owner creates a list", method: http.MethodPost, path: lists, token: ownerToken, body: map[string]any{"address": "new@" + domA}},
		// An ordinary account.
		{name: "user reads another account", method: http.MethodGet, path: accountPath(owner), token: userToken},
		{name: "user ends another's session", method: http.MethodDelete, path: accountPath(owner) + "/sessions/x", token: userToken},
		{name: "user changes its own status", method: http.MethodPatch, path: accountPath(user), token: userToken, body: `{"status":"active"}`},
	}

	// Every write route of the API table, with real objects in its path, for each role that
	// must not reach it: the auditor (anything), the read-only token (anything), the token of
	// domain A (another domain's routes and routes bound to no domain), the domain admin (routes
	// bound to no domain) and the list owner (its domain's routes).
	vals := func(dom, account, list string) map[string]string {
		return map[string]string{"domain": dom, "accounts.address": account, "lists.address": list,
			"resources.address": "room@" + dom, "alias": "other@" + dom, "member": "m@" + dom, "owner": owner,
			"host": "www." + dom, "selector": "s1", "accounts.id": userSession, "api-tokens.id": scopedID,
			"service-tokens.id": "x", "domains.id": "x", "cos.name": "default", "projections.name": "postgres.admin"}
	}
	inA, inB := vals(domA, user, list), vals(domB, accountB, listB)
	routes := 0
	for _, rt := range api.Routes() {
		if rt.Public || rt.Method == http.MethodGet {
			continue
		}
		routes++
		var body any = map[string]any{}
		if rt.Method == http.MethodDelete {
			body = nil
		}
		add := func(who, token string, vals map[string]string, want int) {
			cases = append(cases, abuseCase{name: who + ": " + rt.Method + " " + rt.Path, method: rt.Method,
				path: routePath(rt.Path, vals), token: token, body: body, want: want})
		}
		bound := strings.Contains(rt.Path, "{domain}") || strings.Contains(rt.Path, "{address}")
		add("auditor", auditorToken, inA, http.StatusForbidden)
		add("read-only token", readOnly, inA, http.StatusForbidden)
		if bound {
			add("token of domain A in domain B", scoped, inB, http.StatusForbidden)
		} else if !strings.HasPrefix(rt.Path, "/api/v1/api-tokens") {
			add("token of domain A on a global route", scoped, inA, http.StatusForbidden)
			// A domain admin makes and revokes its own API tokens; nothing else bound to no
			// domain is its.
			add("domain admin on a global route", adminAToken, inA, 0)
		}
		if strings.Contains(rt.Path, "{domain}") {
			add("list owner on its domain", ownerToken, inA, 0)
		}
	}
	require.Greater(t, routes, 50, "the walk covers the API's writes")
	t.Logf("%d cases, %d write routes walked", len(cases), routes)

	before := writtenState(t, e)
	for _, c := range cases {
		status, h, body := sendRaw(t, e, c)
		if status < 400 || status > 499 {
			t.Errorf("%s: %s %s answered %d, want a 4xx: %.300s", c.name, c.method, c.path, status, body)
			continue
		}
		if c.want != 0 && status != c.want {
			t.Errorf("%s: %s %s answered %d, want %d: %.300s", c.name, c.method, c.path, status, c.want, body)
		}
		if ct := h.Get("Content-Type"); ct != "application/problem+json" {
			t.Errorf("%s: %d with Content-Type %q, want application/problem+json: %.300s", c.name, status, ct, body)
		}
		if now := writtenState(t, e); now != before {
			t.Fatalf("%s: %d, but something was written (before %s, after %s)", c.name, status, before, now)
		}
	}

	// The limit itself is accepted: 10,000 members in one request.
	r := e.Do(t, http.MethodPost, listPath(list)+"/members", admin, map[string]any{"members": members(10000)})
	require.Equal(t, http.StatusOK, r.Status, "%.300s", r.Body)
}
