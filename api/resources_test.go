package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"mailplane/api/apitest"
)

func resourcesPath(d string) string   { return "/api/v1/domains/" + d + "/resources" }
func resourcePath(addr string) string { return "/api/v1/resources/" + addr }

func resourceEvents(t *testing.T, e *apitest.Env, addr string) []string {
	return eventTypes(t, e, "resource-"+addr)
}

func createResource(t *testing.T, e *apitest.Env, dom string, body map[string]any) map[string]any {
	t.Helper()
	if body == nil {
		body = map[string]any{}
	}
	if _, ok := body["address"]; !ok {
		body["address"] = apitest.Unique("room") + "@" + dom
	}
	if _, ok := body["type"]; !ok {
		body["type"] = "location"
	}
	r := e.Do(t, http.MethodPost, resourcesPath(dom), e.AdminToken, body)
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	return r.JSON(t)
}

func TestCreateResource(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	dom := e.CreateDomain(t, nil)

	t.Run("HappyPath", func(t *testing.T) {
		addr := apitest.Unique("Room.") + "@" + strings.ToUpper(dom)
		r := e.Do(t, http.MethodPost, resourcesPath(dom), e.AdminToken, map[string]any{
			"address": addr, "display_name": "Room 1", "type": "location", "capacity": 12, "location": "2nd floor",
			"booking_policy": "manual", "max_conflicts": 2, "notify_addresses": []string{"FM@" + dom, "fm@" + dom, "ext@x.example"},
		})
		require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
		want := strings.ToLower(addr)
		require.Equal(t, resourcePath(want), r.Header.Get("Location"))
		require.Equal(t, `"1"`, r.Header.Get("ETag"))
		x := r.JSON(t)
		require.Equal(t, want, x["address"])
		require.Equal(t, "Room 1", x["display_name"])
		require.Equal(t, "location", x["type"])
		require.Equal(t, float64(12), x["capacity"])
		require.Equal(t, "2nd floor", x["location"])
		require.Equal(t, "manual", x["booking_policy"])
		require.Equal(t, float64(2), x["max_conflicts"])
		require.Equal(t, []any{"ext@x.example", "fm@" + dom}, x["notify_addresses"])
		require.Equal(t, []any{}, x["aliases"])
		got := e.Do(t, http.MethodGet, resourcePath(want), e.AdminToken, nil)
		require.Equal(t, http.StatusOK, got.Status, "%s", got.Body)
		require.JSONEq(t, string(r.Body), string(got.Body))
	})

	t.Run("Defaults", func(t *testing.T) {
		x := createResource(t, e, dom, map[string]any{"type": "equipment"})
		require.Equal(t, "auto_accept_unless_busy", x["booking_policy"])
		require.Equal(t, float64(0), x["capacity"])
		require.Equal(t, float64(0), x["max_conflicts"])
		require.Equal(t, []any{}, x["notify_addresses"])
	})

	t.Run("SignatureIsRefused", func(t *testing.T) {
		addr := apitest.Unique("r") + "@" + dom
		for _, sig := range []any{"-- \nRoom 1", nil, 3} {
			p := e.Do(t, http.MethodPost, resourcesPath(dom), e.AdminToken, map[string]any{"address": addr, "type": "location", "signature": sig}).
				Problem(t, http.StatusBadRequest)
			require.Equal(t, []any{map[string]any{"field": "signature", "message": "resources have no signature"}}, p["errors"])
		}
		require.Empty(t, resourceEvents(t, e, addr))
	})

	t.Run("ValidationListsEveryBadFieldAndWritesNothing", func(t *testing.T) {
		other := e.CreateDomain(t, nil)
		before := allEvents(t, e)
		require.ElementsMatch(t, []string{"address", "type", "capacity", "booking_policy", "max_conflicts", "notify_addresses[1]",
			"location", "display_name", "signature"}, fieldsOf(t, e.Do(t, http.MethodPost, resourcesPath(dom), e.AdminToken, map[string]any{
			"address": "x@" + other, "type": "car", "capacity": -1, "booking_policy": "whenever", "max_conflicts": 5000,
			"notify_addresses": []string{"ok@x.example", "nope"}, "location": strings.Repeat("l", 300), "display_name": "\x01",
			"signature": "x"})))
		require.Equal(t, []string{"type"}, fieldsOf(t, e.Do(t, http.MethodPost, resourcesPath(dom), e.AdminToken,
			map[string]any{"address": apitest.Unique("r") + "@" + dom})))
		require.ElementsMatch(t, []string{"capacity", "notify_addresses", "booking_policy"}, fieldsOf(t, e.Do(t, http.MethodPost,
			resourcesPath(dom), e.AdminToken, map[string]any{"address": apitest.Unique("r") + "@" + dom, "type": "location",
				"capacity": "big", "notify_addresses": "a@x.example", "booking_policy": "whenever"})))
		require.Equal(t, "/problems/unknown-field", e.Do(t, http.MethodPost, resourcesPath(dom), e.AdminToken,
			map[string]any{"address": apitest.Unique("r") + "@" + dom, "type": "location", "seats": 3}).Problem(t, http.StatusBadRequest)["type"])
		require.Equal(t, before, allEvents(t, e), "nothing written")
	})

	t.Run("ConflictsAndDomains", func(t *testing.T) {
		x := createResource(t, e, dom, nil)["address"].(string)
		require.Equal(t, "/problems/already-exists", e.Do(t, http.MethodPost, resourcesPath(dom), e.AdminToken,
			map[string]any{"address": x, "type": "location"}).Problem(t, http.StatusConflict)["type"])
		acct := e.CreateAccount(t, dom, nil)
		require.Equal(t, "/problems/address-taken", e.Do(t, http.MethodPost, resourcesPath(dom), e.AdminToken,
			map[string]any{"address": acct, "type": "location"}).Problem(t, http.StatusConflict)["type"])
		require.Equal(t, "/problems/address-taken", e.Do(t, http.MethodPost, accountsPath(dom), e.AdminToken,
			map[string]any{"address": x}).Problem(t, http.StatusConflict)["type"])
		require.Equal(t, "/problems/address-taken", e.Do(t, http.MethodPost, listsPath(dom), e.AdminToken,
			map[string]any{"address": x}).Problem(t, http.StatusConflict)["type"])
		for _, status := range []string{"closed", "suspended"} {
			d := e.CreateDomain(t, map[string]any{"status": status})
			require.Equal(t, "/problems/domain-unavailable", e.Do(t, http.MethodPost, resourcesPath(d), e.AdminToken,
				map[string]any{"address": "r@" + d, "type": "location"}).Problem(t, http.StatusConflict)["type"])
		}
		e.Do(t, http.MethodPost, resourcesPath("missing.example"), e.AdminToken, map[string]any{"address": "r@missing.example", "type": "location"}).
			Problem(t, http.StatusNotFound)
	})

	t.Run("IdempotentReplay", func(t *testing.T) {
		addr := apitest.Unique("idem") + "@" + dom
		body := map[string]any{"address": addr, "type": "equipment"}
		key := apitest.Unique("key-")
		first := e.Do(t, http.MethodPost, resourcesPath(dom), e.AdminToken, body, "Idempotency-Key", key)
		require.Equal(t, http.StatusCreated, first.Status, "%s", first.Body)
		again := e.Do(t, http.MethodPost, resourcesPath(dom), e.AdminToken, body, "Idempotency-Key", key)
		require.Equal(t, http.StatusCreated, again.Status)
		require.Equal(t, "true", again.Header.Get("Idempotent-Replayed"))
		require.Equal(t, string(first.Body), string(again.Body))
		require.Equal(t, []string{"ResourceCreated"}, resourceEvents(t, e, addr))
	})
}

func TestResourceChanges(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	dom := e.CreateDomain(t, nil)
	other := e.CreateDomain(t, nil)
	addr := createResource(t, e, dom, map[string]any{"display_name": "Beamer", "type": "equipment", "location": "Desk",
		"notify_addresses": []string{"a@x.example"}})["address"].(string)

	r := e.Do(t, http.MethodPatch, resourcePath(addr), e.AdminToken, map[string]any{"type": "location", "capacity": 6,
		"booking_policy": "auto_decline", "notify_addresses": []string{"b@x.example"}})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Equal(t, `"2"`, r.Header.Get("ETag"))
	x := r.JSON(t)
	require.Equal(t, "location", x["type"])
	require.Equal(t, float64(6), x["capacity"])
	require.Equal(t, "auto_decline", x["booking_policy"])
	require.Equal(t, []any{"b@x.example"}, x["notify_addresses"])
	require.Equal(t, "Beamer", x["display_name"])

	r = e.Do(t, http.MethodPatch, resourcePath(addr), e.AdminToken, map[string]any{"location": nil, "capacity": nil, "notify_addresses": nil})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	x = r.JSON(t)
	require.Equal(t, "", x["location"])
	require.Equal(t, float64(0), x["capacity"])
	require.Equal(t, []any{}, x["notify_addresses"])

	before := allEvents(t, e)
	p := e.Do(t, http.MethodPatch, resourcePath(addr), e.AdminToken, map[string]any{"signature": "Room 1"}).Problem(t, http.StatusBadRequest)
	require.Equal(t, []any{map[string]any{"field": "signature", "message": "resources have no signature"}}, p["errors"])
	require.ElementsMatch(t, []string{"type", "booking_policy", "capacity"}, fieldsOf(t, e.Do(t, http.MethodPatch, resourcePath(addr),
		e.AdminToken, map[string]any{"type": nil, "booking_policy": "maybe", "capacity": -3})))
	require.Equal(t, []string{"address"}, fieldsOf(t, e.Do(t, http.MethodPatch, resourcePath(addr), e.AdminToken, map[string]any{"address": "x@" + dom})))
	e.Do(t, http.MethodPatch, resourcePath(addr), e.AdminToken, map[string]any{"capacity": 1}, "If-Match", `"1"`).Problem(t, http.StatusPreconditionFailed)
	e.Do(t, http.MethodDelete, resourcePath(addr), e.AdminToken, nil, "If-Match", `"1"`).Problem(t, http.StatusPreconditionFailed)
	e.Do(t, http.MethodPatch, resourcePath("nothing@"+dom), e.AdminToken, map[string]any{"capacity": 1}).Problem(t, http.StatusNotFound)
	require.Equal(t, before, allEvents(t, e), "nothing written")

	t.Run("Aliases", func(t *testing.T) {
		alias := apitest.Unique("beamer") + "@" + other
		r := e.Do(t, http.MethodPost, resourcePath(addr)+"/aliases", e.AdminToken, map[string]any{"alias": strings.ToUpper(alias)})
		require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
		require.Equal(t, resourcePath(addr)+"/aliases/"+alias, r.Header.Get("Location"))
		require.Equal(t, []any{alias}, r.JSON(t)["aliases"])
		require.Equal(t, "/problems/already-exists", e.Do(t, http.MethodPost, resourcePath(addr)+"/aliases", e.AdminToken,
			map[string]any{"alias": alias}).Problem(t, http.StatusConflict)["type"])
		require.Equal(t, "/problems/address-taken", e.Do(t, http.MethodPost, accountsPath(other), e.AdminToken,
			map[string]any{"address": alias}).Problem(t, http.StatusConflict)["type"])
		require.Equal(t, []string{"alias"}, fieldsOf(t, e.Do(t, http.MethodPost, resourcePath(addr)+"/aliases", e.AdminToken,
			map[string]any{"alias": "x@missing.example"})))
		require.Equal(t, []string{"alias"}, fieldsOf(t, e.Do(t, http.MethodPost, resourcePath(addr)+"/aliases", e.AdminToken,
			map[string]any{"alias": addr})))
		require.Equal(t, http.StatusNoContent, e.Do(t, http.MethodDelete, resourcePath(addr)+"/aliases/"+alias, e.AdminToken, nil).Status)
		e.Do(t, http.MethodDelete, resourcePath(addr)+"/aliases/"+alias, e.AdminToken, nil).Problem(t, http.StatusNotFound)
		e.CreateAccount(t, other, map[string]any{"address": alias}) // free again
	})

	t.Run("Roles", func(t *testing.T) {
		_, adminToken := e.User(t, dom, apitest.DomainAdmin)
		_, plainToken := e.User(t, dom, apitest.Plain)
		_, otherAdminToken := e.User(t, other, apitest.DomainAdmin)
		require.Equal(t, http.StatusOK, e.Do(t, http.MethodGet, resourcePath(addr), adminToken, nil).Status)
		require.Equal(t, http.StatusOK, e.Do(t, http.MethodPatch, resourcePath(addr), adminToken, map[string]any{"display_name": "B"}).Status)
		e.Do(t, http.MethodPost, resourcePath(addr)+"/aliases", adminToken, map[string]any{"alias": "x@" + other}).Problem(t, http.StatusForbidden)
		for _, token := range []string{plainToken, otherAdminToken} {
			e.Do(t, http.MethodGet, resourcesPath(dom), token, nil).Problem(t, http.StatusForbidden)
			e.Do(t, http.MethodPost, resourcesPath(dom), token, map[string]any{"address": "r@" + dom, "type": "location"}).Problem(t, http.StatusForbidden)
			e.Do(t, http.MethodGet, resourcePath(addr), token, nil).Problem(t, http.StatusForbidden)
			e.Do(t, http.MethodPatch, resourcePath(addr), token, map[string]any{"display_name": "x"}).Problem(t, http.StatusForbidden)
			e.Do(t, http.MethodDelete, resourcePath(addr), token, nil).Problem(t, http.StatusForbidden)
		}
	})

	t.Run("ListingAndDelete", func(t *testing.T) {
		for i := 0; i < 3; i++ {
			createResource(t, e, dom, map[string]any{"address": fmt.Sprintf("z%d@%s", i, dom), "display_name": fmt.Sprintf("Zone %d", i)})
		}
		r := e.Do(t, http.MethodGet, resourcesPath(dom)+"?limit=2&q=zone", e.AdminToken, nil)
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		page := r.JSON(t)
		require.Len(t, page["items"], 2)
		r = e.Do(t, http.MethodGet, resourcesPath(dom)+"?limit=2&q=zone&cursor="+page["next_cursor"].(string), e.AdminToken, nil)
		require.Len(t, r.JSON(t)["items"], 1)
		require.Nil(t, r.JSON(t)["next_cursor"])

		require.Equal(t, http.StatusNoContent, e.Do(t, http.MethodDelete, resourcePath(addr), e.AdminToken, nil).Status)
		e.Do(t, http.MethodGet, resourcePath(addr), e.AdminToken, nil).Problem(t, http.StatusNotFound)
		e.Do(t, http.MethodDelete, resourcePath(addr), e.AdminToken, nil).Problem(t, http.StatusNotFound)
		// The address is free; created again, the resource continues its stream.
		x := createResource(t, e, dom, map[string]any{"address": addr})
		require.Equal(t, float64(len(resourceEvents(t, e, addr))), x["version"])
		require.Equal(t, "", x["display_name"], "nothing of the old one")
	})

	t.Run("SuspendedDomainFreezesResources", func(t *testing.T) {
		d := e.CreateDomain(t, nil)
		frozen := createResource(t, e, d, nil)["address"].(string)
		require.Equal(t, http.StatusOK, e.Do(t, http.MethodPatch, "/api/v1/domains/"+d, e.AdminToken, map[string]any{"status": "suspended"}).Status)
		require.Equal(t, "/problems/domain-unavailable", e.Do(t, http.MethodPatch, resourcePath(frozen), e.AdminToken,
			map[string]any{"capacity": 3}).Problem(t, http.StatusConflict)["type"])
		require.Equal(t, "/problems/domain-unavailable", e.Do(t, http.MethodDelete, resourcePath(frozen), e.AdminToken, nil).
			Problem(t, http.StatusConflict)["type"])
		require.Equal(t, []string{"ResourceCreated"}, resourceEvents(t, e, frozen))
	})
}
