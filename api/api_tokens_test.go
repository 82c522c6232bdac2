package api_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"mailplane/api/apitest"
	"mailplane/domain"
	"mailplane/eventstore"
	"mailplane/eventstore/keyring"
)

// makeAPIToken creates an API token with the caller's login token and returns the secret and
// the id.
func makeAPIToken(t *testing.T, e *apitest.Env, as string, body map[string]any) (string, string) {
	t.Helper()
	if _, ok := body["expires_at"]; !ok {
		body["expires_at"] = time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339)
	}
	if _, ok := body["name"]; !ok {
		body["name"] = "script"
	}
	r := e.Do(t, http.MethodPost, "/api/v1/api-tokens", as, body)
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	b := r.JSON(t)
	require.True(t, strings.HasPrefix(b["token"].(string), "mpa_"))
	return b["token"].(string), b["id"].(string)
}

// tokenOp is one documented operation of the API.
type tokenOp struct{ method, path, tag string }

// documentedOps lists every operation of the served OpenAPI document (built from apiRoutes)
// that needs a bearer token, with its tag: the object kind a token's scope names.
func documentedOps(t *testing.T, e *apitest.Env) []tokenOp {
	t.Helper()
	doc := openAPIDoc(t, e.URL)
	var ops []tokenOp
	for path, item := range doc["paths"].(map[string]any) {
		for method, v := range item.(map[string]any) {
			op, ok := v.(map[string]any)
			if !ok || !strings.Contains("get put post patch delete", method) {
				continue
			}
			if sec, ok := op["security"].([]any); ok && len(sec) == 0 {
				continue // public
			}
			ops = append(ops, tokenOp{strings.ToUpper(method), path, op["tags"].([]any)[0].(string)})
		}
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i].method+ops[i].path < ops[j].method+ops[j].path })
	require.Greater(t, len(ops), 80, "the walk covers the API")
	return ops
}

// fill gives an operation's path parameters values in the domain: the scope is checked before
// any handler looks at them.
func fill(path, dom string) string {
	return strings.NewReplacer("{domain}", dom, "{address}", "someone@"+dom, "{alias}", "other@"+dom,
		"{member}", "m@"+dom, "{owner}", "o@"+dom, "{host}", "www."+dom, "{selector}", "s1",
		"{name}", "basic", "{id}", "1").Replace(path)
}

// bodyFor is a request body the routing and content checks let through to the scope check.
func bodyFor(op tokenOp) any {
	if op.method == http.MethodGet || op.method == http.MethodDelete {
		return nil
	}
	return map[string]any{}
}

func isDomainBound(path string) bool {
	return strings.Contains(path, "{domain}") || strings.Contains(path, "{address}")
}

// A read-only token is refused every write of the API, and appends nothing; its reads pass the
// scope check.
func TestAPITokenReadOnlyRefusesEveryWrite(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	dom := e.CreateDomain(t, nil)
	token, _ := makeAPIToken(t, e, e.AdminToken, map[string]any{"access": map[string]any{"*": "read"}})
	before := eventCount(t, e)
	writes := 0
	for _, op := range documentedOps(t, e) {
		// Every kind a token may reach can be named in a scope.
		require.True(t, op.tag == "api-tokens" || op.tag == "auth" || slices.Contains(domain.APITokenKinds, op.tag),
			"%s %s: the tag %s is missing from domain.APITokenKinds", op.method, op.path, op.tag)
	}
	for _, op := range documentedOps(t, e) {
		r := e.Do(t, op.method, fill(op.path, dom), token, bodyFor(op))
		switch {
		case op.method != http.MethodGet || op.tag == "api-tokens" || op.tag == "auth":
			writes++
			p := r.Problem(t, http.StatusForbidden)
			require.Equal(t, "/problems/forbidden", p["type"], "%s %s", op.method, op.path)
		default:
			require.NotContains(t, []int{http.StatusUnauthorized, http.StatusForbidden}, r.Status,
				"%s %s: a read of a global admin's read token: %s", op.method, op.path, r.Body)
		}
	}
	require.Greater(t, writes, 50)
	require.Equal(t, before, eventCount(t, e), "nothing written on refusal")

	// The same token reads.
	require.Equal(t, http.StatusOK, e.Do(t, http.MethodGet, "/api/v1/domains/"+dom, token, nil).Status)
}

// A token of one domain is refused every route of another domain and every route bound to no
// domain, even when its owner is a global administrator; in its own domain it works.
func TestAPITokenOfOneDomainRefusesOthers(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	mine := e.CreateDomain(t, nil)
	other := e.CreateDomain(t, nil)
	account := e.CreateAccount(t, mine, nil)
	token, _ := makeAPIToken(t, e, e.AdminToken, map[string]any{"domains": []string{strings.ToUpper(mine)},
		"access": map[string]any{"*": "write"}})
	before := eventCount(t, e)
	for _, op := range documentedOps(t, e) {
		r := e.Do(t, op.method, fill(op.path, other), token, bodyFor(op))
		require.Equal(t, http.StatusForbidden, r.Status, "%s %s: %s", op.method, op.path, r.Body)
	}
	// A domain named in the body rather than the path: an alias in the other domain.
	r := e.Do(t, http.MethodPost, accountPath(account)+"/aliases", token, map[string]any{"alias": "x@" + other})
	r.Problem(t, http.StatusForbidden)
	// A path whose domain cannot be told is refused before any handler.
	e.Do(t, http.MethodGet, "/api/v1/accounts/no-address", token, nil).Problem(t, http.StatusForbidden)
	require.Equal(t, before, eventCount(t, e), "nothing written on refusal")

	// Its own domain.
	require.Equal(t, http.StatusOK, e.Do(t, http.MethodGet, "/api/v1/domains/"+mine, token, nil).Status)
	r = e.Do(t, http.MethodPost, "/api/v1/domains/"+mine+"/accounts", token, map[string]any{"local_part": "made-by-token"})
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	r = e.Do(t, http.MethodPost, accountPath(account)+"/aliases", token, map[string]any{"alias": "y@" + mine})
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
}

// A token of some kinds is refused every other kind's routes, in its own domain too.
func TestAPITokenPerKind(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	dom := e.CreateDomain(t, nil)
	token, _ := makeAPIToken(t, e, e.AdminToken, map[string]any{"domains": []string{dom},
		"access": map[string]any{"lists": "write", "accounts": "read"}})
	before := eventCount(t, e)
	checked := 0
	for _, op := range documentedOps(t, e) {
		if op.tag == "lists" || (op.tag == "accounts" && op.method == http.MethodGet) || !isDomainBound(op.path) {
			continue
		}
		checked++
		r := e.Do(t, op.method, fill(op.path, dom), token, bodyFor(op))
		require.Equal(t, http.StatusForbidden, r.Status, "%s %s: %s", op.method, op.path, r.Body)
	}
	require.Greater(t, checked, 30)
	require.Equal(t, before, eventCount(t, e), "nothing written on refusal")

	r := e.Do(t, http.MethodPost, "/api/v1/domains/"+dom+"/lists", token, map[string]any{"address": "team@" + dom})
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	require.Equal(t, http.StatusOK, e.Do(t, http.MethodGet, "/api/v1/domains/"+dom+"/accounts", token, nil).Status)
	e.Do(t, http.MethodPost, "/api/v1/domains/"+dom+"/accounts", token, map[string]any{"local_part": "x"}).Problem(t, http.StatusForbidden)
	e.Do(t, http.MethodGet, "/api/v1/domains/"+dom+"/resources", token, nil).Problem(t, http.StatusForbidden)
}

// Revoked and expired tokens are refused (401) from the next request on.
func TestAPITokenRevokedAndExpired(t *testing.T) {
	t.Parallel()
	var offset atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	e := apitest.NewWith(t, apitest.Options{Now: clock})
	dom := e.CreateDomain(t, nil)
	path := "/api/v1/domains/" + dom

	revoked, id := makeAPIToken(t, e, e.AdminToken, map[string]any{"access": map[string]any{"*": "read"}})
	require.Equal(t, http.StatusOK, e.Do(t, http.MethodGet, path, revoked, nil).Status)
	require.Equal(t, http.StatusNoContent, e.Do(t, http.MethodDelete, "/api/v1/api-tokens/"+id, e.AdminToken, nil).Status)
	r := e.Do(t, http.MethodGet, path, revoked, nil)
	r.Problem(t, http.StatusUnauthorized)
	require.Contains(t, r.Header.Get("WWW-Authenticate"), "invalid_token")
	e.Do(t, http.MethodDelete, "/api/v1/api-tokens/"+id, e.AdminToken, nil).Problem(t, http.StatusNotFound)

	expiring, _ := makeAPIToken(t, e, e.AdminToken, map[string]any{"access": map[string]any{"*": "read"},
		"expires_at": clock().Add(time.Hour).UTC().Format(time.RFC3339)})
	require.Equal(t, http.StatusOK, e.Do(t, http.MethodGet, path, expiring, nil).Status)
	offset.Store(int64(2 * time.Hour))
	e.Do(t, http.MethodGet, path, expiring, nil).Problem(t, http.StatusUnauthorized)
}

// The expiry is required, in the future and at most 366 days away; the scope's kinds and
// access levels are checked; nothing is made from a bad request.
func TestAPITokenCreateValidation(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	before := eventCount(t, e)
	for _, tc := range []struct {
		body  map[string]any
		field string
	}{
		{map[string]any{"name": "x", "access": map[string]any{"*": "read"}}, "expires_at"},
		{map[string]any{"name": "x", "access": map[string]any{"*": "read"}, "expires_at": time.Now().Add(-time.Hour).Format(time.RFC3339)}, "expires_at"},
		{map[string]any{"name": "x", "access": map[string]any{"*": "read"}, "expires_at": time.Now().Add(367 * 24 * time.Hour).Format(time.RFC3339)}, "expires_at"},
		{map[string]any{"access": map[string]any{"*": "read"}, "expires_at": time.Now().Add(time.Hour).Format(time.RFC3339)}, "name"},
		{map[string]any{"name": "x", "expires_at": time.Now().Add(time.Hour).Format(time.RFC3339)}, "access"},
		{map[string]any{"name": "x", "access": map[string]any{"mailboxes": "read"}, "expires_at": time.Now().Add(time.Hour).Format(time.RFC3339)}, "access.mailboxes"},
		{map[string]any{"name": "x", "access": map[string]any{"*": "admin"}, "expires_at": time.Now().Add(time.Hour).Format(time.RFC3339)}, "access.*"},
		{map[string]any{"name": "x", "domains": []string{"no_such"}, "access": map[string]any{"*": "read"}, "expires_at": time.Now().Add(time.Hour).Format(time.RFC3339)}, "domains[0]"},
	} {
		r := e.Do(t, http.MethodPost, "/api/v1/api-tokens", e.AdminToken, tc.body)
		require.Equal(t, http.StatusBadRequest, r.Status, "%v: %s", tc.body, r.Body)
		require.Contains(t, r.FieldErrors(t), tc.field, "%v", tc.body)
	}
	require.Equal(t, before, eventCount(t, e))
}

// A token never reaches further than the account that made it: a domain administrator's cannot
// name another domain nor reach the routes bound to none; an account's cannot do what the
// account cannot; and the owner's roles are read at each request.
func TestAPITokenBoundedByItsOwner(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	dom := e.CreateDomain(t, nil)
	other := e.CreateDomain(t, nil)
	_, adminToken := e.User(t, dom, apitest.DomainAdmin)
	_, plainToken := e.User(t, dom, apitest.Plain)
	all := map[string]any{"*": "write"}

	// Wider than its owner: refused, nothing made.
	before := eventCount(t, e)
	e.Do(t, http.MethodPost, "/api/v1/api-tokens", adminToken, map[string]any{"name": "x", "domains": []string{other},
		"access": all, "expires_at": time.Now().Add(time.Hour).Format(time.RFC3339)}).Problem(t, http.StatusForbidden)
	e.Do(t, http.MethodPost, "/api/v1/api-tokens", plainToken, map[string]any{"name": "x", "domains": []string{dom, other},
		"access": all, "expires_at": time.Now().Add(time.Hour).Format(time.RFC3339)}).Problem(t, http.StatusForbidden)
	require.Equal(t, before, eventCount(t, e))

	// A domain admin's token (no domains: its own) works in the domain, not on global routes.
	daToken, _ := makeAPIToken(t, e, adminToken, map[string]any{"access": all})
	r := e.Do(t, http.MethodGet, "/api/v1/api-tokens", adminToken, nil)
	require.Equal(t, []any{dom}, r.JSON(t)["items"].([]any)[0].(map[string]any)["domains"])
	require.Equal(t, http.StatusOK, e.Do(t, http.MethodGet, "/api/v1/domains/"+dom, daToken, nil).Status)
	for _, p := range []string{"/api/v1/config", "/api/v1/cos", "/api/v1/domains", "/api/v1/projections", "/api/v1/jobs/1"} {
		e.Do(t, http.MethodGet, p, daToken, nil).Problem(t, http.StatusForbidden)
	}
	e.Do(t, http.MethodGet, "/api/v1/domains/"+other, daToken, nil).Problem(t, http.StatusForbidden)

	// A plain account's write token still cannot create accounts.
	plainAPIToken, _ := makeAPIToken(t, e, plainToken, map[string]any{"access": all})
	e.Do(t, http.MethodPost, "/api/v1/domains/"+dom+"/accounts", plainAPIToken, map[string]any{"local_part": "x"}).Problem(t, http.StatusForbidden)

	// A global admin's token of all domains reaches the global routes while its owner is one.
	ga, gaLogin := e.User(t, dom, apitest.GlobalAdmin)
	gaToken, _ := makeAPIToken(t, e, gaLogin, map[string]any{"access": all})
	require.Equal(t, http.StatusOK, e.Do(t, http.MethodGet, "/api/v1/config", gaToken, nil).Status)
	require.Equal(t, http.StatusOK, e.Do(t, http.MethodGet, "/api/v1/domains/"+other, gaToken, nil).Status)
	// Demoted: the token loses the rights at once.
	r = e.Do(t, http.MethodPatch, accountPath(ga), e.AdminToken, map[string]any{"global_admin": false})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	e.Do(t, http.MethodGet, "/api/v1/config", gaToken, nil).Problem(t, http.StatusForbidden)
	e.Do(t, http.MethodGet, "/api/v1/domains/"+other, gaToken, nil).Problem(t, http.StatusForbidden)
	// Locked: the token is refused altogether.
	r = e.Do(t, http.MethodPatch, accountPath(ga), e.AdminToken, map[string]any{"status": "locked"})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	e.Do(t, http.MethodGet, accountPath(ga), gaToken, nil).Problem(t, http.StatusUnauthorized)

	// Deleted and created again under the same address: another identity, the token stays dead.
	require.Equal(t, http.StatusNoContent, e.Do(t, http.MethodDelete, accountPath(ga), e.AdminToken, nil).Status)
	e.CreateAccount(t, dom, map[string]any{"address": ga, "global_admin": true})
	e.Do(t, http.MethodGet, "/api/v1/config", gaToken, nil).Problem(t, http.StatusUnauthorized)
}

// Tokens are for scripts, made by people: a token cannot make, list or revoke tokens. Owners
// and their domain's administrators list and revoke; nobody else sees them.
func TestAPITokenManagement(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	dom := e.CreateDomain(t, nil)
	other := e.CreateDomain(t, nil)
	owner, ownerLogin := e.User(t, dom, apitest.Plain)
	_, domAdmin := e.User(t, dom, apitest.DomainAdmin)
	_, otherAdmin := e.User(t, other, apitest.DomainAdmin)
	token, id := makeAPIToken(t, e, ownerLogin, map[string]any{"name": "backup", "access": map[string]any{"*": "write"}})

	e.Do(t, http.MethodPost, "/api/v1/api-tokens", token, map[string]any{"name": "x", "access": map[string]any{"*": "read"},
		"expires_at": time.Now().Add(time.Hour).Format(time.RFC3339)}).Problem(t, http.StatusForbidden)
	e.Do(t, http.MethodGet, "/api/v1/api-tokens", token, nil).Problem(t, http.StatusForbidden)
	e.Do(t, http.MethodDelete, "/api/v1/api-tokens/"+id, token, nil).Problem(t, http.StatusForbidden)

	// Last use, at low resolution; the secret is never listed.
	require.Equal(t, http.StatusOK, e.Do(t, http.MethodGet, accountPath(owner), token, nil).Status)
	r := e.Do(t, http.MethodGet, "/api/v1/api-tokens", ownerLogin, nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	items := r.JSON(t)["items"].([]any)
	require.Len(t, items, 1)
	it := items[0].(map[string]any)
	require.Equal(t, id, it["id"])
	require.Equal(t, "backup", it["name"])
	require.Equal(t, owner, it["account"])
	require.NotNil(t, it["last_used_at"])
	require.NotContains(t, it, "token")
	require.NotContains(t, string(r.Body), token)

	q := "/api/v1/api-tokens?account=" + owner
	require.Len(t, e.Do(t, http.MethodGet, q, domAdmin, nil).JSON(t)["items"], 1)
	require.Len(t, e.Do(t, http.MethodGet, q, e.AdminToken, nil).JSON(t)["items"], 1)
	e.Do(t, http.MethodGet, q, otherAdmin, nil).Problem(t, http.StatusForbidden)
	require.Empty(t, e.Do(t, http.MethodGet, "/api/v1/api-tokens", domAdmin, nil).JSON(t)["items"], "one's own only")

	e.Do(t, http.MethodDelete, "/api/v1/api-tokens/"+id, otherAdmin, nil).Problem(t, http.StatusNotFound)
	e.Do(t, http.MethodDelete, "/api/v1/api-tokens/nope", ownerLogin, nil).Problem(t, http.StatusNotFound)
	require.Equal(t, http.StatusOK, e.Do(t, http.MethodGet, accountPath(owner), token, nil).Status)
	require.Equal(t, http.StatusNoContent, e.Do(t, http.MethodDelete, "/api/v1/api-tokens/"+id, domAdmin, nil).Status)
	e.Do(t, http.MethodGet, accountPath(owner), token, nil).Problem(t, http.StatusUnauthorized)
	require.Empty(t, e.Do(t, http.MethodGet, "/api/v1/api-tokens", ownerLogin, nil).JSON(t)["items"])
}

// Every event a token's request appends names the token (session_id api-token:<id>) and its
// owner (actor); the token's creation and revocation are in its owner's domain's history.
func TestAPITokenEventsNameTheToken(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	dom := e.CreateDomain(t, nil)
	admin, adminLogin := e.User(t, dom, apitest.DomainAdmin)
	token, id := makeAPIToken(t, e, adminLogin, map[string]any{"access": map[string]any{"accounts": "write"}})
	r := e.Do(t, http.MethodPost, "/api/v1/domains/"+dom+"/accounts", token, map[string]any{"local_part": "scripted"})
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	require.Equal(t, http.StatusNoContent, e.Do(t, http.MethodDelete, "/api/v1/api-tokens/"+id, adminLogin, nil).Status)

	r = e.Do(t, http.MethodGet, "/api/v1/domains/"+dom+"/history?session_id="+"api-token:"+id, e.AdminToken, nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	items := r.JSON(t)["items"].([]any)
	require.NotEmpty(t, items)
	for _, it := range items {
		m := it.(map[string]any)
		require.Equal(t, admin, m["actor"])
		require.Equal(t, "account-scripted@"+dom, m["stream"])
	}

	r = e.Do(t, http.MethodGet, "/api/v1/domains/"+dom+"/history?type=APITokenCreated,APITokenRevoked", e.AdminToken, nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	items = r.JSON(t)["items"].([]any)
	require.Len(t, items, 2)
	created := items[0].(map[string]any)
	require.Equal(t, "APITokenCreated", created["type"])
	require.Equal(t, domain.APITokenStreamID(dom, id), created["stream"])
	require.Equal(t, admin, created["actor"])
	require.NotContains(t, fmt.Sprint(created["data"]), token, "the secret is never in an event")
	require.Equal(t, "APITokenRevoked", items[1].(map[string]any)["type"])

	// The token's stream is one of the domain's: its export holds it and checks out offline.
	ctx := context.Background()
	head, err := e.Store.Head(ctx)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		a, ok, err := e.Anchors.Record(ctx)
		require.NoError(t, err)
		return ok && !a.Position.Less(head)
	}, 30*time.Second, 10*time.Millisecond)
	x := e.Do(t, http.MethodGet, "/api/v1/domains/"+dom+"/history/export", e.AdminToken, nil)
	require.Equal(t, http.StatusOK, x.Status, "%s", x.Body)
	require.Contains(t, string(x.Body), `"type":"APITokenCreated"`)
	storeKey, err := keyring.Derive(e.MasterKey, eventstore.KeyPurpose)
	require.NoError(t, err)
	rep, err := eventstore.VerifyExport(bytes.NewReader(x.Body), eventstore.ExportCheck{ChainKey: eventstore.ChainKey(storeKey),
		PublicKey: e.Anchors.PublicKey(), InDomain: domain.StreamInDomain})
	require.NoError(t, err)
	require.True(t, rep.OK(), "%v", rep.Problems)
}
