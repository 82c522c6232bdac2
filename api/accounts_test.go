package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"mailplane/api/apitest"
	"mailplane/commands"
	"mailplane/domain"
	"mailplane/eventstore"
)

func accountsPath(d string) string   { return "/api/v1/domains/" + d + "/accounts" }
func accountPath(addr string) string { return "/api/v1/accounts/" + addr }

// streamEvents lists the types of an account stream's events, oldest first.
func streamEvents(t *testing.T, e *apitest.Env, addr string) []string {
	t.Helper()
	rows, err := e.Pool.Query(t.Context(), `SELECT event_type FROM events WHERE stream_id = $1 ORDER BY stream_version`, "account-"+addr)
	require.NoError(t, err)
	defer rows.Close()
	var types []string
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		types = append(types, s)
	}
	require.NoError(t, rows.Err())
	return types
}

func TestCreateAccount(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	dom := e.CreateDomain(t, nil)

	t.Run("HappyPath", func(t *testing.T) {
		addr := apitest.Unique("Alice.") + "@" + strings.ToUpper(dom)
		r := e.Do(t, http.MethodPost, accountsPath(dom), e.AdminToken, map[string]any{
			"address": addr, "display_name": "Alice", "password": "correct-horse-1", "status": "maintenance",
			"mail_quota_bytes": 5 << 20, "domain_admin": true, "attributes": map[string]string{"department": "sales"},
		})
		require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
		a := r.JSON(t)
		want := strings.ToLower(addr)
		require.Equal(t, want, a["address"], "stored lower case")
		require.Equal(t, accountPath(want), r.Header.Get("Location"))
		require.Equal(t, `"1"`, r.Header.Get("ETag"))
		require.Equal(t, float64(1), a["version"])
		require.Equal(t, strings.Split(want, "@")[0], a["local_part"])
		require.Equal(t, dom, a["domain"])
		require.Equal(t, "Alice", a["display_name"])
		require.Equal(t, "maintenance", a["status"])
		require.Equal(t, float64(5<<20), a["mail_quota_bytes"])
		require.Equal(t, true, a["domain_admin"])
		require.Equal(t, false, a["global_admin"])
		require.Equal(t, true, a["has_password"])
		require.Nil(t, a["cos"])
		require.Equal(t, map[string]any{"department": "sales"}, a["attributes"])
		require.Equal(t, []any{}, a["aliases"])
		require.NotEmpty(t, a["created_at"])
		require.NotEmpty(t, a["updated_at"])
		eff, src := a["effective"].(map[string]any), a["sources"].(map[string]any)
		require.Equal(t, float64(5<<20), eff["mail_quota_bytes"])
		require.Equal(t, "account", src["mail_quota_bytes"])
		require.Equal(t, "default", eff["cos"])
		require.Equal(t, "global", src["cos"])
		require.Equal(t, "cos:default", src["features"], "the default COS exists (bootstrap made it)")
		for _, k := range []string{"password", "password_hash", "password_secret", "PasswordSecret"} {
			require.NotContains(t, a, k)
		}
		require.NotContains(t, string(r.Body), "correct-horse-1")

		got := e.Do(t, http.MethodGet, accountPath(want), e.AdminToken, nil)
		require.Equal(t, http.StatusOK, got.Status, "%s", got.Body)
		require.JSONEq(t, string(r.Body), string(got.Body))
		require.Equal(t, `"1"`, got.Header.Get("ETag"))
		// The password works once the account is active.
		e.Do(t, http.MethodPost, "/api/v1/auth/login", "", map[string]string{"email": want, "password": "correct-horse-1"}).
			Problem(t, http.StatusForbidden)
		require.Equal(t, http.StatusOK, e.Do(t, http.MethodPatch, accountPath(want), e.AdminToken, map[string]any{"status": "active"}).Status)
		e.Login(t, want, "correct-horse-1")
	})

	t.Run("LocalPartAndDefaults", func(t *testing.T) {
		local := apitest.Unique("bob")
		r := e.Do(t, http.MethodPost, accountsPath(dom), e.AdminToken, map[string]any{"local_part": local})
		require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
		a := r.JSON(t)
		require.Equal(t, local+"@"+dom, a["address"])
		require.Equal(t, "active", a["status"])
		require.Equal(t, false, a["has_password"])
		require.Nil(t, a["mail_quota_bytes"])
		require.Equal(t, "global", a["sources"].(map[string]any)["mail_quota_bytes"])
		// Both members may be given when they agree.
		local2 := apitest.Unique("carol")
		r = e.Do(t, http.MethodPost, accountsPath(dom), e.AdminToken, map[string]any{"local_part": strings.ToUpper(local2), "address": local2 + "@" + dom})
		require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	})

	t.Run("UnicodeDomain", func(t *testing.T) {
		uni := apitest.Unique("münchen-") + ".example"
		ascii := e.CreateDomain(t, map[string]any{"name": uni})
		r := e.Do(t, http.MethodPost, accountsPath(uni), e.AdminToken, map[string]any{"address": "info@" + uni})
		require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
		require.Equal(t, "info@"+ascii, r.JSON(t)["address"])
		require.Equal(t, "info@"+uni, r.JSON(t)["unicode_address"])
		require.Equal(t, http.StatusOK, e.Do(t, http.MethodGet, accountPath("info@"+uni), e.AdminToken, nil).Status)
	})

	t.Run("ValidationListsEveryBadField", func(t *testing.T) {
		// A bad address together with bad values: all of them.
		fields := e.Do(t, http.MethodPost, accountsPath(dom), e.AdminToken, map[string]any{
			"address": "bad..x@" + dom, "status": "weird", "mail_quota_bytes": -1, "cos": "no-such-cos",
			"attributes": map[string]string{"1bad": "x"}, "password": "short", "password_hash": "$1$md5$crypt",
		}).FieldErrors(t)
		require.Subset(t, fields, []string{"address", "status", "mail_quota_bytes", "cos", "attributes.1bad", "password_hash"})

		// A good address: the password's length is checked with the rest.
		fields = e.Do(t, http.MethodPost, accountsPath(dom), e.AdminToken, map[string]any{
			"local_part": apitest.Unique("v"), "status": "weird", "password": "short", "display_name": strings.Repeat("x", 300),
		}).FieldErrors(t)
		require.Subset(t, fields, []string{"password", "status", "display_name"})

		// Wrong types are listed member by member, with the decision's errors.
		fields = e.Do(t, http.MethodPost, accountsPath(dom), e.AdminToken, map[string]any{
			"local_part": apitest.Unique("v"), "mail_quota_bytes": "lots", "global_admin": "yes", "attributes": []int{1}, "status": "weird",
		}).FieldErrors(t)
		require.Subset(t, fields, []string{"mail_quota_bytes", "global_admin", "attributes", "status"})

		// The address must be in the domain of the URL, and be given.
		other := e.CreateDomain(t, nil)
		require.Equal(t, []string{"address"}, e.Do(t, http.MethodPost, accountsPath(dom), e.AdminToken,
			map[string]any{"address": "x@" + other}).FieldErrors(t))
		require.Equal(t, []string{"address"}, e.Do(t, http.MethodPost, accountsPath(dom), e.AdminToken,
			map[string]any{"display_name": "nobody"}).FieldErrors(t))
		require.Equal(t, []string{"local_part"}, e.Do(t, http.MethodPost, accountsPath(dom), e.AdminToken,
			map[string]any{"address": "x@" + dom, "local_part": "y"}).FieldErrors(t))
		require.Equal(t, []string{"password_hash"}, e.Do(t, http.MethodPost, accountsPath(dom), e.AdminToken,
			map[string]any{"local_part": apitest.Unique("v"), "password": "long-enough-1", "password_hash": "{SSHA}abc"}).FieldErrors(t))

		// Nothing of it was written.
		var n int
		require.NoError(t, e.Pool.QueryRow(t.Context(), `SELECT count(*) FROM events WHERE event_type = 'AccountCreated' AND data->>'status' = 'weird'`).Scan(&n))
		require.Zero(t, n)
	})

	t.Run("BadBodies", func(t *testing.T) {
		e.Do(t, http.MethodPost, accountsPath(dom), e.AdminToken, `{"local_part":`).Problem(t, http.StatusBadRequest)
		p := e.Do(t, http.MethodPost, accountsPath(dom), e.AdminToken, `{"local_part":"x","passwd":"y"}`).Problem(t, http.StatusBadRequest)
		require.Equal(t, "/problems/unknown-field", p["type"])
		e.Do(t, http.MethodPost, accountsPath(dom), e.AdminToken, `[1]`).Problem(t, http.StatusBadRequest)
		big := `{"display_name":"` + strings.Repeat("a", 1<<20) + `"}`
		e.Do(t, http.MethodPost, accountsPath(dom), e.AdminToken, big).Problem(t, http.StatusRequestEntityTooLarge)
	})

	t.Run("MissingDomainIs404", func(t *testing.T) {
		e.Do(t, http.MethodPost, accountsPath("missing.example"), e.AdminToken, map[string]any{"local_part": "x"}).
			Problem(t, http.StatusNotFound)
		e.Do(t, http.MethodPost, accountsPath("missing.example"), e.AdminToken, map[string]any{"local_part": "x", "status": "weird"}).
			Problem(t, http.StatusNotFound)
		e.Do(t, http.MethodPost, accountsPath("bad..name"), e.AdminToken, map[string]any{"local_part": "x"}).
			Problem(t, http.StatusNotFound)
	})

	t.Run("DuplicateAndAliasAre409", func(t *testing.T) {
		addr := e.CreateAccount(t, dom, nil)
		p := e.Do(t, http.MethodPost, accountsPath(dom), e.AdminToken, map[string]any{"address": strings.ToUpper(addr)}).
			Problem(t, http.StatusConflict)
		require.Equal(t, "/problems/already-exists", p["type"])

		alias := apitest.Unique("alias") + "@" + dom
		r := e.Do(t, http.MethodPost, accountPath(addr)+"/aliases", e.AdminToken, map[string]any{"alias": alias})
		require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
		p = e.Do(t, http.MethodPost, accountsPath(dom), e.AdminToken, map[string]any{"address": alias}).
			Problem(t, http.StatusConflict)
		require.Equal(t, "/problems/address-taken", p["type"])
		require.Contains(t, p["detail"], addr)
		e.Do(t, http.MethodGet, accountPath(alias), e.AdminToken, nil).Problem(t, http.StatusNotFound)
		require.Empty(t, streamEvents(t, e, alias), "the refused creation left no event")
	})

	t.Run("ClosedDomainRefuses", func(t *testing.T) {
		closed := e.CreateDomain(t, nil)
		require.Equal(t, http.StatusOK, e.Do(t, http.MethodPost, "/api/v1/domains/"+closed+"/close", e.AdminToken, nil).Status)
		p := e.Do(t, http.MethodPost, accountsPath(closed), e.AdminToken, map[string]any{"local_part": "x"}).
			Problem(t, http.StatusConflict)
		require.Equal(t, "/problems/domain-unavailable", p["type"])
	})

	t.Run("IdempotentReplay", func(t *testing.T) {
		addr := apitest.Unique("idem") + "@" + dom
		body := map[string]any{"address": addr, "password": "idempotent-pw-1"}
		key := apitest.Unique("key-")
		first := e.Do(t, http.MethodPost, accountsPath(dom), e.AdminToken, body, "Idempotency-Key", key)
		require.Equal(t, http.StatusCreated, first.Status, "%s", first.Body)
		require.Empty(t, first.Header.Get("Idempotent-Replayed"))
		again := e.Do(t, http.MethodPost, accountsPath(dom), e.AdminToken, body, "Idempotency-Key", key)
		require.Equal(t, http.StatusCreated, again.Status, "%s", again.Body)
		require.Equal(t, "true", again.Header.Get("Idempotent-Replayed"))
		require.Equal(t, string(first.Body), string(again.Body))
		require.Equal(t, []string{"AccountCreated"}, streamEvents(t, e, addr), "the repeat appended nothing")

		other := e.Do(t, http.MethodPost, accountsPath(dom), e.AdminToken, map[string]any{"address": "other-" + addr},
			"Idempotency-Key", key)
		require.Equal(t, "/problems/idempotency-key-reused", other.Problem(t, http.StatusUnprocessableEntity)["type"])
		require.Empty(t, streamEvents(t, e, "other-"+addr))
	})
}

func TestAccountRoles(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	mine := e.CreateDomain(t, nil)
	other := e.CreateDomain(t, nil)
	adminAddr, adminToken := e.User(t, mine, apitest.DomainAdmin)
	plainAddr, plainToken := e.User(t, mine, apitest.Plain)
	_, otherAdminToken := e.User(t, other, apitest.DomainAdmin)
	globalInMine, _ := e.User(t, mine, apitest.GlobalAdmin)
	peer := e.CreateAccount(t, mine, map[string]any{"password": "peer-password-1"})
	theirs := e.CreateAccount(t, other, nil)

	t.Run("NoTokenIs401", func(t *testing.T) {
		for _, c := range []struct{ method, path string }{
			{http.MethodGet, accountsPath(mine)}, {http.MethodPost, accountsPath(mine)},
			{http.MethodGet, accountPath(peer)}, {http.MethodPatch, accountPath(peer)}, {http.MethodDelete, accountPath(peer)},
			{http.MethodPost, accountPath(peer) + "/aliases"}, {http.MethodDelete, accountPath(peer) + "/aliases/x@" + mine},
			{http.MethodGet, accountPath(peer) + "/sessions"}, {http.MethodDelete, accountPath(peer) + "/sessions/abc"},
		} {
			p := e.Do(t, c.method, c.path, "", map[string]any{}).Problem(t, http.StatusUnauthorized)
			require.Equal(t, "/problems/unauthenticated", p["type"], "%s %s", c.method, c.path)
			e.Do(t, c.method, c.path, "mpt_forged", map[string]any{}).Problem(t, http.StatusUnauthorized)
		}
	})

	t.Run("DomainAdmin", func(t *testing.T) {
		// Its own domain: everything but global_admin.
		r := e.Do(t, http.MethodPost, accountsPath(mine), adminToken, map[string]any{"local_part": apitest.Unique("da"), "domain_admin": true})
		require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
		made := r.JSON(t)["address"].(string)
		require.Equal(t, http.StatusOK, e.Do(t, http.MethodGet, accountsPath(mine), adminToken, nil).Status)
		require.Equal(t, http.StatusOK, e.Do(t, http.MethodGet, accountPath(peer), adminToken, nil).Status)
		require.Equal(t, http.StatusOK, e.Do(t, http.MethodPatch, accountPath(peer), adminToken, map[string]any{"status": "locked"}).Status)
		require.Equal(t, http.StatusCreated, e.Do(t, http.MethodPost, accountPath(made)+"/aliases", adminToken,
			map[string]any{"alias": apitest.Unique("al") + "@" + mine}).Status)
		require.Equal(t, http.StatusNoContent, e.Do(t, http.MethodDelete, accountPath(made), adminToken, nil).Status)

		p := e.Do(t, http.MethodPost, accountsPath(mine), adminToken, map[string]any{"local_part": apitest.Unique("ga"), "global_admin": true}).
			Problem(t, http.StatusForbidden)
		require.Equal(t, "/problems/forbidden", p["type"])
		e.Do(t, http.MethodPatch, accountPath(peer), adminToken, map[string]any{"global_admin": true}).Problem(t, http.StatusForbidden)
		e.Do(t, http.MethodPatch, accountPath(peer), adminToken, map[string]any{"global_admin": false}).Problem(t, http.StatusForbidden)

		// Another domain: nothing.
		e.Do(t, http.MethodPost, accountsPath(other), adminToken, map[string]any{"local_part": "x"}).Problem(t, http.StatusForbidden)
		e.Do(t, http.MethodGet, accountsPath(other), adminToken, nil).Problem(t, http.StatusForbidden)
		e.Do(t, http.MethodGet, accountPath(theirs), adminToken, nil).Problem(t, http.StatusForbidden)
		e.Do(t, http.MethodPatch, accountPath(theirs), adminToken, map[string]any{"display_name": "x"}).Problem(t, http.StatusForbidden)
		e.Do(t, http.MethodDelete, accountPath(theirs), adminToken, nil).Problem(t, http.StatusForbidden)
		e.Do(t, http.MethodPost, accountPath(theirs)+"/aliases", adminToken, map[string]any{"alias": apitest.Unique("a") + "@" + mine}).
			Problem(t, http.StatusForbidden)
		// An alias in a domain it does not administer, even for its own domain's account.
		e.Do(t, http.MethodPost, accountPath(peer)+"/aliases", adminToken, map[string]any{"alias": apitest.Unique("a") + "@" + other}).
			Problem(t, http.StatusForbidden)
		// The admin of the other domain cannot touch ours either.
		e.Do(t, http.MethodGet, accountPath(peer), otherAdminToken, nil).Problem(t, http.StatusForbidden)
		e.Do(t, http.MethodPatch, accountPath(peer), otherAdminToken, map[string]any{"display_name": "x"}).Problem(t, http.StatusForbidden)
		e.Do(t, http.MethodDelete, accountPath(peer), otherAdminToken, nil).Problem(t, http.StatusForbidden)
		e.Do(t, http.MethodGet, accountsPath(mine), otherAdminToken, nil).Problem(t, http.StatusForbidden)
		e.Do(t, http.MethodPost, accountsPath(mine), otherAdminToken, map[string]any{"local_part": "x"}).Problem(t, http.StatusForbidden)
		e.Do(t, http.MethodPost, accountPath(peer)+"/aliases", otherAdminToken, map[string]any{"alias": apitest.Unique("a") + "@" + other}).
			Problem(t, http.StatusForbidden)
		e.Do(t, http.MethodDelete, accountPath(made)+"/aliases/x@"+mine, otherAdminToken, nil).Problem(t, http.StatusForbidden)

		// A global admin's account in its domain: readable, not changeable.
		require.Equal(t, http.StatusOK, e.Do(t, http.MethodGet, accountPath(globalInMine), adminToken, nil).Status)
		e.Do(t, http.MethodPatch, accountPath(globalInMine), adminToken, map[string]any{"password": "taken-over-1"}).Problem(t, http.StatusForbidden)
		e.Do(t, http.MethodDelete, accountPath(globalInMine), adminToken, nil).Problem(t, http.StatusForbidden)
		e.Do(t, http.MethodPost, accountPath(globalInMine)+"/aliases", adminToken, map[string]any{"alias": apitest.Unique("a") + "@" + mine}).
			Problem(t, http.StatusForbidden)
		gaToken := e.Login(t, globalInMine, "user-password-1")
		var gaSession string
		for _, it := range e.Do(t, http.MethodGet, accountPath(globalInMine)+"/sessions", adminToken, nil).JSON(t)["items"].([]any) {
			gaSession = it.(map[string]any)["id"].(string)
		}
		e.Do(t, http.MethodDelete, accountPath(globalInMine)+"/sessions/"+gaSession, adminToken, nil).Problem(t, http.StatusForbidden)
		require.Equal(t, http.StatusOK, e.Do(t, http.MethodGet, accountPath(globalInMine), gaToken, nil).Status)
		require.Equal(t, []string{"AccountCreated", "SessionStarted", "SessionStarted"}, streamEvents(t, e, globalInMine))

		// Its own account: it may change itself (not into a global admin).
		require.Equal(t, http.StatusOK, e.Do(t, http.MethodPatch, accountPath(adminAddr), adminToken, map[string]any{"display_name": "Me"}).Status)
		e.Do(t, http.MethodPatch, accountPath(adminAddr), adminToken, map[string]any{"global_admin": true}).Problem(t, http.StatusForbidden)
	})

	t.Run("Plain", func(t *testing.T) {
		got := e.Do(t, http.MethodGet, accountPath(plainAddr), plainToken, nil)
		require.Equal(t, http.StatusOK, got.Status, "%s", got.Body)
		require.Equal(t, plainAddr, got.JSON(t)["address"])
		e.Do(t, http.MethodGet, accountPath(peer), plainToken, nil).Problem(t, http.StatusForbidden)
		e.Do(t, http.MethodGet, accountPath("nobody@"+mine), plainToken, nil).Problem(t, http.StatusForbidden)
		e.Do(t, http.MethodGet, accountsPath(mine), plainToken, nil).Problem(t, http.StatusForbidden)
		e.Do(t, http.MethodPost, accountsPath(mine), plainToken, map[string]any{"local_part": "x"}).Problem(t, http.StatusForbidden)
		e.Do(t, http.MethodPatch, accountPath(peer), plainToken, map[string]any{"display_name": "x"}).Problem(t, http.StatusForbidden)
		e.Do(t, http.MethodDelete, accountPath(peer), plainToken, nil).Problem(t, http.StatusForbidden)
		e.Do(t, http.MethodDelete, accountPath(plainAddr), plainToken, nil).Problem(t, http.StatusForbidden)
		e.Do(t, http.MethodPost, accountPath(plainAddr)+"/aliases", plainToken, map[string]any{"alias": apitest.Unique("a") + "@" + mine}).
			Problem(t, http.StatusForbidden)
		e.Do(t, http.MethodDelete, accountPath(plainAddr)+"/aliases/x@"+mine, plainToken, nil).Problem(t, http.StatusForbidden)

		// On itself: display_name and password only.
		for _, body := range []map[string]any{{"status": "active"}, {"mail_quota_bytes": 1}, {"cos": "default"},
			{"domain_admin": true}, {"global_admin": true}, {"attributes": map[string]string{"a": "b"}},
			{"password_hash": "{SSHA}AAAAAAAAAAAAAAAAAAAAAAAAAAAA"}, {"display_name": "Me", "status": "active"}} {
			e.Do(t, http.MethodPatch, accountPath(plainAddr), plainToken, body).Problem(t, http.StatusForbidden)
		}
		r := e.Do(t, http.MethodPatch, accountPath(plainAddr), plainToken, map[string]any{"display_name": "Me Myself", "password": "my-new-password-1"})
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		require.Equal(t, "Me Myself", r.JSON(t)["display_name"])
		e.Login(t, plainAddr, "my-new-password-1")
		require.Equal(t, http.StatusUnauthorized, e.Do(t, http.MethodPost, "/api/v1/auth/login", "",
			map[string]string{"email": plainAddr, "password": "user-password-1"}).Status, "the old password is gone")
	})
}

func TestGetAccount(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	dom := e.CreateDomain(t, nil)
	e.Do(t, http.MethodGet, accountPath("nobody@"+dom), e.AdminToken, nil).Problem(t, http.StatusNotFound)
	e.Do(t, http.MethodGet, accountPath("nobody@missing.example"), e.AdminToken, nil).Problem(t, http.StatusNotFound)
	e.Do(t, http.MethodGet, accountPath("not-an-address"), e.AdminToken, nil).Problem(t, http.StatusNotFound)
	addr := e.CreateAccount(t, dom, nil)
	r := e.Do(t, http.MethodGet, accountPath(strings.ToUpper(addr)), e.AdminToken, nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Equal(t, addr, r.JSON(t)["address"])
}

func TestListAccounts(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	dom := e.CreateDomain(t, nil)
	prefix := apitest.Unique("p")
	for i := 0; i < 5; i++ {
		body := map[string]any{"local_part": fmt.Sprintf("%s%c", prefix, 'a'+i), "display_name": fmt.Sprintf("Person %d", i)}
		if i == 3 {
			body["status"] = "locked"
			body["display_name"] = "Zed Findme"
		}
		e.CreateAccount(t, dom, body)
	}
	var all []string
	cursor := ""
	for pages := 0; pages < 10; pages++ {
		path := accountsPath(dom) + "?limit=2&q=" + prefix
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		r := e.Do(t, http.MethodGet, path, e.AdminToken, nil)
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		var pg struct {
			Items []struct {
				Address   string         `json:"address"`
				Effective map[string]any `json:"effective"`
			} `json:"items"`
			NextCursor *string `json:"next_cursor"`
		}
		r.Decode(t, &pg)
		require.LessOrEqual(t, len(pg.Items), 2)
		for _, it := range pg.Items {
			all = append(all, it.Address)
			require.NotEmpty(t, it.Effective)
		}
		if pg.NextCursor == nil {
			break
		}
		cursor = *pg.NextCursor
	}
	var want []string
	for i := 0; i < 5; i++ {
		want = append(want, fmt.Sprintf("%s%c@%s", prefix, 'a'+i, dom))
	}
	require.Equal(t, want, all)

	items := func(query string) []any {
		r := e.Do(t, http.MethodGet, accountsPath(dom)+query, e.AdminToken, nil)
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		return r.JSON(t)["items"].([]any)
	}
	locked := items("?status=locked")
	require.Len(t, locked, 1)
	require.Equal(t, want[3], locked[0].(map[string]any)["address"])
	require.Len(t, items("?q=zed+FIND"), 1, "display names match, case-insensitively")
	require.Len(t, items("?q=%25"), 0, "the filter is a substring, not a pattern")
	require.Len(t, items("?status=pending"), 0)

	require.Equal(t, []string{"status"}, e.Do(t, http.MethodGet, accountsPath(dom)+"?status=sleepy", e.AdminToken, nil).FieldErrors(t))
	e.Do(t, http.MethodGet, accountsPath(dom)+"?limit=501", e.AdminToken, nil).Problem(t, http.StatusBadRequest)
	e.Do(t, http.MethodGet, accountsPath(dom)+"?cursor=***", e.AdminToken, nil).Problem(t, http.StatusBadRequest)
	e.Do(t, http.MethodGet, accountsPath("missing.example"), e.AdminToken, nil).Problem(t, http.StatusNotFound)
}

func TestPatchAccount(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	dom := e.CreateDomain(t, nil)
	_, _, err := e.Commands.CreateCOS(t.Context(), commands.Request{Meta: eventstore.Metadata{Actor: "test"}},
		domain.CreateCOS{Name: "gold", MailQuotaBytes: ptr(int64(7 << 30))})
	require.NoError(t, err)
	waitFor(t, func() bool { _, err := e.Reads.COS(context.Background(), "gold"); return err == nil })
	addr := e.CreateAccount(t, dom, map[string]any{"display_name": "Old", "mail_quota_bytes": 100,
		"attributes": map[string]string{"keep": "1", "drop": "2"}})
	path := accountPath(addr)

	t.Run("HappyPath", func(t *testing.T) {
		r := e.Do(t, http.MethodPatch, path, e.AdminToken, map[string]any{"display_name": "New", "cos": "Gold",
			"mail_quota_bytes": nil, "status": "locked", "domain_admin": true,
			"attributes": map[string]any{"drop": nil, "add": "3"}}, "If-Match", `"1"`)
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		a := r.JSON(t)
		require.Equal(t, `"2"`, r.Header.Get("ETag"))
		require.Equal(t, "New", a["display_name"])
		require.Equal(t, "gold", a["cos"])
		require.Equal(t, "locked", a["status"])
		require.Equal(t, true, a["domain_admin"])
		require.Nil(t, a["mail_quota_bytes"])
		require.Equal(t, map[string]any{"keep": "1", "add": "3"}, a["attributes"], "attributes are merged")
		require.Equal(t, float64(7<<30), a["effective"].(map[string]any)["mail_quota_bytes"])
		require.Equal(t, "cos:gold", a["sources"].(map[string]any)["mail_quota_bytes"])
		require.Equal(t, "account", a["sources"].(map[string]any)["cos"])

		// cos null goes back to the inherited COS; attributes null removes them all.
		r = e.Do(t, http.MethodPatch, path, e.AdminToken, map[string]any{"cos": nil, "attributes": nil}, "If-Match", `"2"`)
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		a = r.JSON(t)
		require.Nil(t, a["cos"])
		require.Equal(t, "default", a["effective"].(map[string]any)["cos"])
		require.Equal(t, map[string]any{}, a["attributes"])
	})

	t.Run("StaleIfMatchIs412", func(t *testing.T) {
		before := e.Do(t, http.MethodGet, path, e.AdminToken, nil)
		p := e.Do(t, http.MethodPatch, path, e.AdminToken, map[string]any{"display_name": "late"}, "If-Match", `"1"`).
			Problem(t, http.StatusPreconditionFailed)
		require.Equal(t, "/problems/precondition-failed", p["type"])
		e.Do(t, http.MethodPatch, path, e.AdminToken, map[string]any{"display_name": "late", "password": "late-password-1"}, "If-Match", `"1"`).
			Problem(t, http.StatusPreconditionFailed)
		require.JSONEq(t, string(before.Body), string(e.Do(t, http.MethodGet, path, e.AdminToken, nil).Body))
		e.Do(t, http.MethodPatch, path, e.AdminToken, map[string]any{"display_name": "x"}, "If-Match", "garbage").Problem(t, http.StatusBadRequest)
	})

	t.Run("ValidationListsEveryBadField", func(t *testing.T) {
		before := e.Do(t, http.MethodGet, path, e.AdminToken, nil)
		fields := e.Do(t, http.MethodPatch, path, e.AdminToken, map[string]any{"status": "sleepy", "mail_quota_bytes": -5,
			"cos": "no-such", "attributes": map[string]any{"9x": "y"}, "password": "short"}).FieldErrors(t)
		require.Subset(t, fields, []string{"status", "mail_quota_bytes", "cos", "attributes.9x", "password"})
		fields = e.Do(t, http.MethodPatch, path, e.AdminToken, map[string]any{"status": 5, "mail_quota_bytes": "big",
			"attributes": map[string]any{"n": 1}, "display_name": strings.Repeat("x", 300), "password": nil}).FieldErrors(t)
		require.Subset(t, fields, []string{"status", "mail_quota_bytes", "attributes.n", "display_name", "password"})
		require.Equal(t, []string{"password_hash"}, e.Do(t, http.MethodPatch, path, e.AdminToken,
			map[string]any{"password": "long-enough-1", "password_hash": "{SSHA}abc"}).FieldErrors(t))
		p := e.Do(t, http.MethodPatch, path, e.AdminToken, map[string]any{"colour": "blue"}).Problem(t, http.StatusBadRequest)
		require.Equal(t, "/problems/unknown-field", p["type"])
		e.Do(t, http.MethodPatch, path, e.AdminToken, `{"display_name":`).Problem(t, http.StatusBadRequest)

		// A good change beside a bad password is not applied alone.
		require.Equal(t, []string{"password"}, e.Do(t, http.MethodPatch, path, e.AdminToken,
			map[string]any{"display_name": "Half", "password": "short"}).FieldErrors(t))
		require.JSONEq(t, string(before.Body), string(e.Do(t, http.MethodGet, path, e.AdminToken, nil).Body))
	})

	t.Run("PasswordWithOtherChangesIsOneWrite", func(t *testing.T) {
		before := len(streamEvents(t, e, addr))
		r := e.Do(t, http.MethodPatch, path, e.AdminToken, map[string]any{"display_name": "Both", "password": "both-password-1"})
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		require.Equal(t, true, r.JSON(t)["has_password"])
		events := streamEvents(t, e, addr)
		require.Equal(t, []string{"AccountUpdated", "AccountPasswordChanged"}, events[before:])
		var txs int
		require.NoError(t, e.Pool.QueryRow(t.Context(), `SELECT count(DISTINCT transaction_id) FROM events
			WHERE stream_id = $1 AND stream_version > $2`, "account-"+addr, before).Scan(&txs))
		require.Equal(t, 1, txs, "both events in one transaction")
		require.Equal(t, float64(len(events)), r.JSON(t)["version"])
		// The account is locked (above); unlock it and log in with the new password.
		require.Equal(t, http.StatusOK, e.Do(t, http.MethodPatch, path, e.AdminToken, map[string]any{"status": "active"}).Status)
		e.Login(t, addr, "both-password-1")
	})

	t.Run("NoChangeAppendsNothing", func(t *testing.T) {
		before := e.Do(t, http.MethodGet, path, e.AdminToken, nil).JSON(t)["version"]
		r := e.Do(t, http.MethodPatch, path, e.AdminToken, map[string]any{"display_name": "Both"})
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		require.Equal(t, before, r.JSON(t)["version"])
	})

	t.Run("GlobalAdminFlag", func(t *testing.T) {
		other := e.CreateAccount(t, dom, nil)
		r := e.Do(t, http.MethodPatch, accountPath(other), e.AdminToken, map[string]any{"global_admin": true})
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		require.Equal(t, true, r.JSON(t)["global_admin"])
	})

	t.Run("Missing", func(t *testing.T) {
		e.Do(t, http.MethodPatch, accountPath("nobody@"+dom), e.AdminToken, map[string]any{"display_name": "x"}).Problem(t, http.StatusNotFound)
		e.Do(t, http.MethodPatch, accountPath("nobody@"+dom), e.AdminToken, map[string]any{"status": "bad"}).Problem(t, http.StatusNotFound)
		e.Do(t, http.MethodPatch, accountPath("garbage"), e.AdminToken, map[string]any{"display_name": "x"}).Problem(t, http.StatusNotFound)
	})
}

func TestDeleteAccount(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	dom := e.CreateDomain(t, nil)
	addr := e.CreateAccount(t, dom, nil)

	e.Do(t, http.MethodDelete, accountPath(addr), e.AdminToken, nil, "If-Match", `"7"`).Problem(t, http.StatusPreconditionFailed)
	require.Equal(t, http.StatusOK, e.Do(t, http.MethodGet, accountPath(addr), e.AdminToken, nil).Status)
	r := e.Do(t, http.MethodDelete, accountPath(addr), e.AdminToken, nil, "If-Match", `"1"`)
	require.Equal(t, http.StatusNoContent, r.Status, "%s", r.Body)
	require.Empty(t, r.Body)
	e.Do(t, http.MethodGet, accountPath(addr), e.AdminToken, nil).Problem(t, http.StatusNotFound)
	e.Do(t, http.MethodDelete, accountPath(addr), e.AdminToken, nil).Problem(t, http.StatusNotFound)
	e.Do(t, http.MethodDelete, accountPath("nobody@"+dom), e.AdminToken, nil).Problem(t, http.StatusNotFound)
	require.Len(t, e.Do(t, http.MethodGet, accountsPath(dom), e.AdminToken, nil).JSON(t)["items"], 0)
	require.Equal(t, float64(0), e.Do(t, http.MethodGet, "/api/v1/domains/"+dom, e.AdminToken, nil).JSON(t)["counts"].(map[string]any)["accounts"])
}

func TestRecreateDeletedAccount(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	dom := e.CreateDomain(t, nil)
	addr := e.CreateAccount(t, dom, map[string]any{"password": "first-life-pw-1", "display_name": "First"})
	alias := apitest.Unique("old") + "@" + dom
	require.Equal(t, http.StatusCreated, e.Do(t, http.MethodPost, accountPath(addr)+"/aliases", e.AdminToken, map[string]any{"alias": alias}).Status)
	oldToken := e.Login(t, addr, "first-life-pw-1")
	require.Equal(t, http.StatusOK, e.Do(t, http.MethodGet, accountPath(addr), oldToken, nil).Status)

	require.Equal(t, http.StatusNoContent, e.Do(t, http.MethodDelete, accountPath(addr), e.AdminToken, nil).Status)
	e.Do(t, http.MethodGet, accountPath(addr), oldToken, nil).Problem(t, http.StatusUnauthorized)

	r := e.Do(t, http.MethodPost, accountsPath(dom), e.AdminToken, map[string]any{"address": addr, "password": "second-life-pw-1"})
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	a := r.JSON(t)
	require.Equal(t, []any{}, a["aliases"], "the old aliases are gone")
	require.Equal(t, "", a["display_name"])
	require.Equal(t, float64(len(streamEvents(t, e, addr))), a["version"], "the stream continues")
	sessions := e.Do(t, http.MethodGet, accountPath(addr)+"/sessions", e.AdminToken, nil)
	require.Equal(t, http.StatusOK, sessions.Status, "%s", sessions.Body)
	require.Len(t, sessions.JSON(t)["items"], 0, "the old sessions are gone")

	// The old token stays dead, the old password is refused, the new one works.
	e.Do(t, http.MethodGet, accountPath(addr), oldToken, nil).Problem(t, http.StatusUnauthorized)
	e.Do(t, http.MethodPost, "/api/v1/auth/login", "", map[string]string{"email": addr, "password": "first-life-pw-1"}).
		Problem(t, http.StatusUnauthorized)
	token := e.Login(t, addr, "second-life-pw-1")
	require.Equal(t, http.StatusOK, e.Do(t, http.MethodGet, accountPath(addr), token, nil).Status)

	// The old alias is free for anyone.
	other := e.CreateAccount(t, dom, nil)
	require.Equal(t, http.StatusCreated, e.Do(t, http.MethodPost, accountPath(other)+"/aliases", e.AdminToken, map[string]any{"alias": alias}).Status)
}

func TestAliases(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	dom := e.CreateDomain(t, nil)
	second := e.CreateDomain(t, nil)
	addr := e.CreateAccount(t, dom, nil)
	other := e.CreateAccount(t, dom, nil)
	aliasesOf := func(r apitest.Response) []any { return r.JSON(t)["aliases"].([]any) }

	alias := apitest.Unique("Sales") + "@" + strings.ToUpper(dom)
	r := e.Do(t, http.MethodPost, accountPath(addr)+"/aliases", e.AdminToken, map[string]any{"alias": alias}, "If-Match", `"1"`)
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	require.Equal(t, []any{strings.ToLower(alias)}, aliasesOf(r))
	require.Equal(t, accountPath(addr)+"/aliases/"+strings.ToLower(alias), r.Header.Get("Location"))
	require.Equal(t, `"2"`, r.Header.Get("ETag"))
	// An alias in another domain (the global admin administers every domain).
	far := apitest.Unique("far") + "@" + second
	r = e.Do(t, http.MethodPost, accountPath(addr)+"/aliases", e.AdminToken, map[string]any{"alias": far})
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	require.Len(t, aliasesOf(r), 2)
	require.Equal(t, float64(1), e.Do(t, http.MethodGet, "/api/v1/domains/"+second, e.AdminToken, nil).JSON(t)["counts"].(map[string]any)["aliases"])

	// Conflicts: the same alias again, an alias another account has, an account's address.
	p := e.Do(t, http.MethodPost, accountPath(addr)+"/aliases", e.AdminToken, map[string]any{"alias": alias}).Problem(t, http.StatusConflict)
	require.Equal(t, "/problems/already-exists", p["type"])
	p = e.Do(t, http.MethodPost, accountPath(other)+"/aliases", e.AdminToken, map[string]any{"alias": alias}).Problem(t, http.StatusConflict)
	require.Equal(t, "/problems/address-taken", p["type"])
	p = e.Do(t, http.MethodPost, accountPath(other)+"/aliases", e.AdminToken, map[string]any{"alias": addr}).Problem(t, http.StatusConflict)
	require.Equal(t, "/problems/address-taken", p["type"])
	require.Len(t, aliasesOf(e.Do(t, http.MethodGet, accountPath(other), e.AdminToken, nil)), 0)

	// Bad input.
	require.Equal(t, []string{"alias"}, e.Do(t, http.MethodPost, accountPath(addr)+"/aliases", e.AdminToken, map[string]any{"alias": "no-at-sign"}).FieldErrors(t))
	require.Equal(t, []string{"alias"}, e.Do(t, http.MethodPost, accountPath(addr)+"/aliases", e.AdminToken, map[string]any{}).FieldErrors(t))
	require.Equal(t, []string{"alias"}, e.Do(t, http.MethodPost, accountPath(addr)+"/aliases", e.AdminToken, map[string]any{"alias": addr}).FieldErrors(t))
	require.Equal(t, []string{"alias"}, e.Do(t, http.MethodPost, accountPath(addr)+"/aliases", e.AdminToken, map[string]any{"alias": "x@missing.example"}).FieldErrors(t))
	e.Do(t, http.MethodPost, accountPath(addr)+"/aliases", e.AdminToken, map[string]any{"alias": "x@" + dom, "extra": 1}).Problem(t, http.StatusBadRequest)
	e.Do(t, http.MethodPost, accountPath("nobody@"+dom)+"/aliases", e.AdminToken, map[string]any{"alias": "x@" + dom}).Problem(t, http.StatusNotFound)
	e.Do(t, http.MethodPost, accountPath(addr)+"/aliases", e.AdminToken, map[string]any{"alias": "y@" + dom}, "If-Match", `"1"`).
		Problem(t, http.StatusPreconditionFailed)

	// Idempotent replay.
	key := apitest.Unique("key-")
	body := map[string]any{"alias": apitest.Unique("idem") + "@" + dom}
	first := e.Do(t, http.MethodPost, accountPath(other)+"/aliases", e.AdminToken, body, "Idempotency-Key", key)
	require.Equal(t, http.StatusCreated, first.Status, "%s", first.Body)
	n := len(streamEvents(t, e, other))
	again := e.Do(t, http.MethodPost, accountPath(other)+"/aliases", e.AdminToken, body, "Idempotency-Key", key)
	require.Equal(t, http.StatusCreated, again.Status, "%s", again.Body)
	require.Equal(t, "true", again.Header.Get("Idempotent-Replayed"))
	require.Equal(t, string(first.Body), string(again.Body))
	require.Len(t, streamEvents(t, e, other), n)
	e.Do(t, http.MethodPost, accountPath(other)+"/aliases", e.AdminToken, map[string]any{"alias": "z@" + dom}, "Idempotency-Key", key).
		Problem(t, http.StatusUnprocessableEntity)
	require.Len(t, streamEvents(t, e, other), n)

	// Removal.
	require.Equal(t, http.StatusNoContent, e.Do(t, http.MethodDelete, accountPath(addr)+"/aliases/"+strings.ToLower(alias), e.AdminToken, nil).Status)
	require.Equal(t, []any{far}, aliasesOf(e.Do(t, http.MethodGet, accountPath(addr), e.AdminToken, nil)))
	e.Do(t, http.MethodDelete, accountPath(addr)+"/aliases/"+strings.ToLower(alias), e.AdminToken, nil).Problem(t, http.StatusNotFound)
	e.Do(t, http.MethodDelete, accountPath(other)+"/aliases/"+far, e.AdminToken, nil).Problem(t, http.StatusNotFound)
	e.Do(t, http.MethodDelete, accountPath(addr)+"/aliases/garbage", e.AdminToken, nil).Problem(t, http.StatusNotFound)
	e.Do(t, http.MethodDelete, accountPath("nobody@"+dom)+"/aliases/"+far, e.AdminToken, nil).Problem(t, http.StatusNotFound)
	v := e.Do(t, http.MethodGet, accountPath(addr), e.AdminToken, nil).Header.Get("ETag")
	e.Do(t, http.MethodDelete, accountPath(addr)+"/aliases/"+far, e.AdminToken, nil, "If-Match", `"1"`).Problem(t, http.StatusPreconditionFailed)
	require.Equal(t, http.StatusNoContent, e.Do(t, http.MethodDelete, accountPath(addr)+"/aliases/"+far, e.AdminToken, nil, "If-Match", v).Status)
	// The removed alias is free again: it can even become an account.
	require.Equal(t, http.StatusCreated, e.Do(t, http.MethodPost, accountsPath(dom), e.AdminToken, map[string]any{"address": alias}).Status)
}

// post sends a JSON POST from any goroutine (the apitest helpers may only fail the test's own).
func post(url, token string, body any) (int, []byte, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return 0, nil, err
	}
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, err = buf.ReadFrom(resp.Body)
	return resp.StatusCode, buf.Bytes(), err
}

func TestConcurrentCreatesRespectMaxAccounts(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	dom := e.CreateDomain(t, map[string]any{"limits": map[string]any{"max_accounts": 150}})

	const attempts = 200
	type result struct {
		status int
		body   []byte
		err    error
	}
	results := make([]result, attempts)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range attempts {
		wg.Go(func() {
			<-start
			status, body, err := post(e.URL+accountsPath(dom), e.AdminToken, map[string]any{"local_part": fmt.Sprintf("user%03d", i)})
			results[i] = result{status, body, err}
		})
	}
	close(start)
	wg.Wait()

	var created []string
	limited := 0
	for i, r := range results {
		require.NoError(t, r.err, "request %d", i)
		switch r.status {
		case http.StatusCreated:
			var a map[string]any
			require.NoError(t, json.Unmarshal(r.body, &a))
			created = append(created, a["address"].(string))
		case http.StatusConflict:
			var p map[string]any
			require.NoError(t, json.Unmarshal(r.body, &p))
			require.Equal(t, "/problems/limit-reached", p["type"], "request %d: %s", i, r.body)
			limited++
		default:
			t.Fatalf("request %d: unexpected %d: %s", i, r.status, r.body)
		}
	}
	require.Len(t, created, 150)
	require.Equal(t, 50, limited)

	var listed int
	cursor := ""
	for {
		path := accountsPath(dom) + "?limit=500"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		r := e.Do(t, http.MethodGet, path, e.AdminToken, nil)
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		pg := r.JSON(t)
		listed += len(pg["items"].([]any))
		if pg["next_cursor"] == nil {
			break
		}
		cursor = pg["next_cursor"].(string)
	}
	require.Equal(t, 150, listed)
	d := e.Do(t, http.MethodGet, "/api/v1/domains/"+dom, e.AdminToken, nil).JSON(t)
	require.Equal(t, float64(150), d["counts"].(map[string]any)["accounts"])
	var events int
	require.NoError(t, e.Pool.QueryRow(t.Context(), `SELECT count(*) FROM events WHERE domain = $1 AND event_type = 'AccountCreated'`, dom).Scan(&events))
	require.Equal(t, 150, events)

	// Deleting one makes room for exactly one more.
	require.Equal(t, http.StatusNoContent, e.Do(t, http.MethodDelete, accountPath(created[0]), e.AdminToken, nil).Status)
	var made []string
	for i := range 3 {
		r := e.Do(t, http.MethodPost, accountsPath(dom), e.AdminToken, map[string]any{"local_part": fmt.Sprintf("late%d", i)})
		if r.Status == http.StatusCreated {
			made = append(made, r.JSON(t)["address"].(string))
		} else {
			r.Problem(t, http.StatusConflict)
		}
	}
	require.Len(t, made, 1)
}

func TestCOSQuotaReachesInheritingAccounts(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	req := commands.Request{Meta: eventstore.Metadata{Actor: "test"}}
	_, _, err := e.Commands.CreateCOS(t.Context(), req, domain.CreateCOS{Name: "silver", MailQuotaBytes: ptr(int64(1 << 30))})
	require.NoError(t, err)
	waitFor(t, func() bool { _, err := e.Reads.COS(context.Background(), "silver"); return err == nil })
	dom := e.CreateDomain(t, map[string]any{"default_cos": "silver"})
	viaDomain := e.CreateAccount(t, dom, nil)
	other := e.CreateDomain(t, nil)
	viaAccount := e.CreateAccount(t, other, map[string]any{"cos": "silver"})
	own := e.CreateAccount(t, dom, map[string]any{"mail_quota_bytes": 123})

	quota := func(addr string) (float64, string) {
		a := e.Do(t, http.MethodGet, accountPath(addr), e.AdminToken, nil).JSON(t)
		return a["effective"].(map[string]any)["mail_quota_bytes"].(float64), a["sources"].(map[string]any)["mail_quota_bytes"].(string)
	}
	for _, addr := range []string{viaDomain, viaAccount} {
		q, src := quota(addr)
		require.Equal(t, float64(1<<30), q, addr)
		require.Equal(t, "cos:silver", src, addr)
	}

	_, err = e.Commands.UpdateCOS(t.Context(), req, "silver", domain.UpdateCOS{MailQuotaBytes: ptr(int64(3 << 30))})
	require.NoError(t, err)
	waitFor(t, func() bool { q, _ := quota(viaDomain); return q == float64(3<<30) })
	for _, addr := range []string{viaDomain, viaAccount} {
		q, src := quota(addr)
		require.Equal(t, float64(3<<30), q, addr)
		require.Equal(t, "cos:silver", src, addr)
	}
	q, src := quota(own)
	require.Equal(t, float64(123), q)
	require.Equal(t, "account", src)
	// The list shows the same effective values.
	items := e.Do(t, http.MethodGet, accountsPath(dom), e.AdminToken, nil).JSON(t)["items"].([]any)
	require.Len(t, items, 2)
	for _, it := range items {
		a := it.(map[string]any)
		want := float64(3 << 30)
		if a["address"] == own {
			want = 123
		}
		require.Equal(t, want, a["effective"].(map[string]any)["mail_quota_bytes"], a["address"])
	}

	// A domain's account quota is given to new accounts, with source "domain"; the COS's no longer
	// applies to them, and changing the domain's later does not change them.
	limited := e.CreateDomain(t, map[string]any{"default_cos": "silver", "limits": map[string]any{"account_quota_bytes": 5 << 20}})
	fresh := e.CreateAccount(t, limited, nil)
	a := e.Do(t, http.MethodGet, accountPath(fresh), e.AdminToken, nil).JSON(t)
	require.Equal(t, float64(5<<20), a["mail_quota_bytes"])
	require.Equal(t, float64(5<<20), a["effective"].(map[string]any)["mail_quota_bytes"])
	require.Equal(t, "domain", a["sources"].(map[string]any)["mail_quota_bytes"])
	mine := e.CreateAccount(t, limited, map[string]any{"mail_quota_bytes": 9})
	q, src = quota(mine)
	require.Equal(t, float64(9), q)
	require.Equal(t, "account", src)
	require.Equal(t, http.StatusOK, e.Do(t, http.MethodPatch, "/api/v1/domains/"+limited, e.AdminToken,
		map[string]any{"limits": map[string]any{"account_quota_bytes": 6 << 20}}).Status)
	q, src = quota(fresh)
	require.Equal(t, float64(5<<20), q)
	require.Equal(t, "domain", src)
	// Clearing the account's quota lets it inherit the COS again.
	r := e.Do(t, http.MethodPatch, accountPath(fresh), e.AdminToken, map[string]any{"mail_quota_bytes": nil})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Equal(t, "cos:silver", r.JSON(t)["sources"].(map[string]any)["mail_quota_bytes"])
}

func ptr[T any](v T) *T { return &v }

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, time.Minute, 5*time.Millisecond)
}
