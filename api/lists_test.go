package api_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"mailplane/api/apitest"
	"mailplane/domain"
)

func listsPath(d string) string   { return "/api/v1/domains/" + d + "/lists" }
func listPath(addr string) string { return "/api/v1/lists/" + addr }

// eventTypes lists the types of a stream's events, oldest first.
func eventTypes(t *testing.T, e *apitest.Env, streamID string) []string {
	t.Helper()
	rows, err := e.Pool.Query(t.Context(), `SELECT event_type FROM events WHERE stream_id = $1 ORDER BY stream_version`, streamID)
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

func listEvents(t *testing.T, e *apitest.Env, addr string) []string {
	return eventTypes(t, e, "list-"+addr)
}

// allEvents counts every event, to show that a refused request wrote nothing anywhere.
func allEvents(t *testing.T, e *apitest.Env) int {
	t.Helper()
	var n int
	require.NoError(t, e.Pool.QueryRow(t.Context(), `SELECT count(*) FROM events`).Scan(&n))
	return n
}

// createList creates a list as the global admin and returns it.
func createList(t *testing.T, e *apitest.Env, dom string, body map[string]any) map[string]any {
	t.Helper()
	if body == nil {
		body = map[string]any{}
	}
	if _, ok := body["address"]; !ok {
		body["address"] = apitest.Unique("list") + "@" + dom
	}
	r := e.Do(t, http.MethodPost, listsPath(dom), e.AdminToken, body)
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	return r.JSON(t)
}

func fieldsOf(t *testing.T, r apitest.Response) []string { t.Helper(); return r.FieldErrors(t) }

func TestCreateList(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	dom := e.CreateDomain(t, nil)
	owner := e.CreateAccount(t, dom, nil)

	t.Run("HappyPath", func(t *testing.T) {
		addr := apitest.Unique("Team.") + "@" + strings.ToUpper(dom)
		r := e.Do(t, http.MethodPost, listsPath(dom), e.AdminToken, map[string]any{
			"address": addr, "display_name": "Team", "description": "everyone\nin the team",
			"members": []string{"Zed@Elsewhere.example", "ann@" + dom, "ANN@" + dom}, "owners": []string{strings.ToUpper(owner)},
			"allowed_senders": []string{"boss@elsewhere.example"}, "subscription_policy": "reject",
			"unsubscription_policy": "approval", "hide_in_gal": true,
		})
		require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
		want := strings.ToLower(addr)
		require.Equal(t, listPath(want), r.Header.Get("Location"))
		require.Equal(t, `"1"`, r.Header.Get("ETag"))
		l := r.JSON(t)
		require.Equal(t, want, l["address"])
		require.Equal(t, dom, l["domain"])
		require.Equal(t, "Team", l["display_name"])
		require.Equal(t, "everyone\nin the team", l["description"])
		require.Equal(t, []any{owner}, l["owners"])
		require.Equal(t, []any{"boss@elsewhere.example"}, l["allowed_senders"])
		require.Equal(t, "reject", l["subscription_policy"])
		require.Equal(t, "approval", l["unsubscription_policy"])
		require.Equal(t, true, l["hide_in_gal"])
		require.Equal(t, []any{}, l["aliases"])
		require.Nil(t, l["dynamic"])
		require.Equal(t, float64(2), l["member_count"], "duplicates (in any case) count once")
		require.Equal(t, float64(1), l["version"])
		require.NotContains(t, l, "members", "members are paged at .../members")

		got := e.Do(t, http.MethodGet, listPath(want), e.AdminToken, nil)
		require.Equal(t, http.StatusOK, got.Status, "%s", got.Body)
		require.JSONEq(t, string(r.Body), string(got.Body))
		require.Equal(t, `"1"`, got.Header.Get("ETag"))

		m := e.Do(t, http.MethodGet, listPath(want)+"/members", e.AdminToken, nil)
		require.Equal(t, http.StatusOK, m.Status, "%s", m.Body)
		require.JSONEq(t, `{"items":[{"address":"ann@`+dom+`"},{"address":"zed@elsewhere.example"}],"next_cursor":null}`, string(m.Body))
		require.Equal(t, []string{"ListCreated"}, listEvents(t, e, want))
	})

	t.Run("Defaults", func(t *testing.T) {
		l := createList(t, e, dom, nil)
		require.Equal(t, "approval", l["subscription_policy"])
		require.Equal(t, "accept", l["unsubscription_policy"])
		require.Equal(t, false, l["hide_in_gal"])
		require.Equal(t, float64(0), l["member_count"])
		require.Equal(t, []any{}, l["owners"])
		require.Equal(t, []any{}, l["allowed_senders"])
	})

	t.Run("ValidationListsEveryBadFieldAndWritesNothing", func(t *testing.T) {
		other := e.CreateDomain(t, nil)
		before := allEvents(t, e)
		r := e.Do(t, http.MethodPost, listsPath(dom), e.AdminToken, map[string]any{
			"address": "bad..list@" + dom, "display_name": "x\x00", "description": strings.Repeat("d", 2000),
			"members": []string{"ok@x.example", "not-an-address"}, "owners": []string{"nobody@" + dom},
			"allowed_senders": []string{"@x"}, "subscription_policy": "maybe", "unsubscription_policy": "later",
		})
		require.ElementsMatch(t, []string{"address", "display_name", "description", "members[1]", "owners[0]",
			"allowed_senders[0]", "subscription_policy", "unsubscription_policy"}, fieldsOf(t, r))

		// A good address: the same checks, all at once.
		require.ElementsMatch(t, []string{"members[0]", "subscription_policy", "owners[0]"}, fieldsOf(t, e.Do(t, http.MethodPost,
			listsPath(dom), e.AdminToken, map[string]any{"address": apitest.Unique("l") + "@" + dom, "members": []string{"x"},
				"subscription_policy": "no", "owners": []string{"nobody@" + dom}})))
		// The address must be given, and be in the domain of the URL.
		require.Equal(t, []string{"address"}, fieldsOf(t, e.Do(t, http.MethodPost, listsPath(dom), e.AdminToken, map[string]any{})))
		require.Equal(t, []string{"address"}, fieldsOf(t, e.Do(t, http.MethodPost, listsPath(dom), e.AdminToken,
			map[string]any{"address": "x@" + other})))
		// A member may not be the list itself.
		self := apitest.Unique("self") + "@" + dom
		require.Equal(t, []string{"members[0]"}, fieldsOf(t, e.Do(t, http.MethodPost, listsPath(dom), e.AdminToken,
			map[string]any{"address": self, "members": []string{strings.ToUpper(self)}})))
		// Mistyped members are listed member by member, with what the command finds wrong in the rest.
		require.ElementsMatch(t, []string{"members", "hide_in_gal", "dynamic", "subscription_policy"}, fieldsOf(t, e.Do(t, http.MethodPost,
			listsPath(dom), e.AdminToken, map[string]any{"address": apitest.Unique("l") + "@" + dom, "members": "a@b.example",
				"hide_in_gal": "yes", "dynamic": 3, "subscription_policy": "maybe"})))
		require.ElementsMatch(t, []string{"address", "owners"}, fieldsOf(t, e.Do(t, http.MethodPost, listsPath(dom), e.AdminToken,
			map[string]any{"address": "bad..x@" + dom, "owners": "me"})))
		p := e.Do(t, http.MethodPost, listsPath(dom), e.AdminToken, map[string]any{"address": apitest.Unique("l") + "@" + dom, "member": []string{}}).
			Problem(t, http.StatusBadRequest)
		require.Equal(t, "/problems/unknown-field", p["type"])
		e.Do(t, http.MethodPost, listsPath(dom), e.AdminToken, `{"address":`).Problem(t, http.StatusBadRequest)
		// More than 10,000 members at once.
		many := make([]string, domain.MaxListChange+1)
		for i := range many {
			many[i] = fmt.Sprintf("m%d@x.example", i)
		}
		p = e.Do(t, http.MethodPost, listsPath(dom), e.AdminToken, map[string]any{"address": apitest.Unique("l") + "@" + dom, "members": many}).
			Problem(t, http.StatusBadRequest)
		require.Contains(t, fmt.Sprint(p["errors"]), "at most 10000")
		require.Equal(t, before, allEvents(t, e), "nothing written")
	})

	t.Run("MissingDomainIs404", func(t *testing.T) {
		e.Do(t, http.MethodPost, listsPath("missing.example"), e.AdminToken, map[string]any{"address": "x@missing.example"}).
			Problem(t, http.StatusNotFound)
		e.Do(t, http.MethodPost, listsPath("missing.example"), e.AdminToken, map[string]any{"address": "bad..x@missing.example"}).
			Problem(t, http.StatusNotFound)
		e.Do(t, http.MethodGet, listsPath("missing.example"), e.AdminToken, nil).Problem(t, http.StatusNotFound)
		e.Do(t, http.MethodGet, listPath("nothing@"+dom), e.AdminToken, nil).Problem(t, http.StatusNotFound)
		e.Do(t, http.MethodGet, listPath("not-an-address"), e.AdminToken, nil).Problem(t, http.StatusNotFound)
	})

	t.Run("Duplicate", func(t *testing.T) {
		l := createList(t, e, dom, nil)
		p := e.Do(t, http.MethodPost, listsPath(dom), e.AdminToken, map[string]any{"address": strings.ToUpper(l["address"].(string))}).
			Problem(t, http.StatusConflict)
		require.Equal(t, "/problems/already-exists", p["type"])
	})

	t.Run("ClosedAndSuspendedDomainsRefuse", func(t *testing.T) {
		for _, status := range []string{"closed", "suspended"} {
			d := e.CreateDomain(t, map[string]any{"status": status})
			p := e.Do(t, http.MethodPost, listsPath(d), e.AdminToken, map[string]any{"address": "l@" + d}).Problem(t, http.StatusConflict)
			require.Equal(t, "/problems/domain-unavailable", p["type"], status)
			require.Empty(t, listEvents(t, e, "l@"+d))
		}
		// A locked domain still takes new objects, as it does accounts.
		d := e.CreateDomain(t, map[string]any{"status": "locked"})
		createList(t, e, d, nil)
	})

	t.Run("IdempotentReplay", func(t *testing.T) {
		addr := apitest.Unique("idem") + "@" + dom
		body := map[string]any{"address": addr, "members": []string{"a@x.example"}}
		key := apitest.Unique("key-")
		first := e.Do(t, http.MethodPost, listsPath(dom), e.AdminToken, body, "Idempotency-Key", key)
		require.Equal(t, http.StatusCreated, first.Status, "%s", first.Body)
		again := e.Do(t, http.MethodPost, listsPath(dom), e.AdminToken, body, "Idempotency-Key", key)
		require.Equal(t, http.StatusCreated, again.Status, "%s", again.Body)
		require.Equal(t, "true", again.Header.Get("Idempotent-Replayed"))
		require.Equal(t, string(first.Body), string(again.Body))
		require.Equal(t, []string{"ListCreated"}, listEvents(t, e, addr), "the repeat appended nothing")
		other := e.Do(t, http.MethodPost, listsPath(dom), e.AdminToken, map[string]any{"address": "other-" + addr}, "Idempotency-Key", key)
		require.Equal(t, "/problems/idempotency-key-reused", other.Problem(t, http.StatusUnprocessableEntity)["type"])

		// Adding members with a key: the repeat changes nothing either.
		members := map[string]any{"members": []string{"b@x.example"}}
		key = apitest.Unique("key-")
		first = e.Do(t, http.MethodPost, listPath(addr)+"/members", e.AdminToken, members, "Idempotency-Key", key)
		require.Equal(t, http.StatusOK, first.Status, "%s", first.Body)
		again = e.Do(t, http.MethodPost, listPath(addr)+"/members", e.AdminToken, members, "Idempotency-Key", key)
		require.Equal(t, "true", again.Header.Get("Idempotent-Replayed"))
		require.Equal(t, string(first.Body), string(again.Body))
		require.Equal(t, []string{"ListCreated", "ListMembersAdded"}, listEvents(t, e, addr))
	})
}

func TestListAddressesAreUniqueAcrossKinds(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	dom := e.CreateDomain(t, nil)

	acct := e.CreateAccount(t, dom, nil)
	p := e.Do(t, http.MethodPost, listsPath(dom), e.AdminToken, map[string]any{"address": acct}).Problem(t, http.StatusConflict)
	require.Equal(t, "/problems/address-taken", p["type"])
	require.Contains(t, p["detail"], "account-"+acct)
	require.Empty(t, listEvents(t, e, acct), "the refused list left no event")

	l := createList(t, e, dom, nil)["address"].(string)
	p = e.Do(t, http.MethodPost, accountsPath(dom), e.AdminToken, map[string]any{"address": l}).Problem(t, http.StatusConflict)
	require.Equal(t, "/problems/address-taken", p["type"])
	require.Empty(t, streamEvents(t, e, l))
	p = e.Do(t, http.MethodPost, "/api/v1/domains/"+dom+"/resources", e.AdminToken, map[string]any{"address": l, "type": "location"}).
		Problem(t, http.StatusConflict)
	require.Equal(t, "/problems/address-taken", p["type"])
	p = e.Do(t, http.MethodPost, accountPath(acct)+"/aliases", e.AdminToken, map[string]any{"alias": l}).Problem(t, http.StatusConflict)
	require.Equal(t, "/problems/address-taken", p["type"])

	// Aliases: a list's against an account's and the other way round.
	accountAlias := apitest.Unique("aa") + "@" + dom
	require.Equal(t, http.StatusCreated, e.Do(t, http.MethodPost, accountPath(acct)+"/aliases", e.AdminToken,
		map[string]any{"alias": accountAlias}).Status)
	listAlias := apitest.Unique("la") + "@" + dom
	before := listEvents(t, e, l)
	p = e.Do(t, http.MethodPost, listPath(l)+"/aliases", e.AdminToken, map[string]any{"aliases": []string{listAlias, accountAlias}}).
		Problem(t, http.StatusConflict)
	require.Equal(t, "/problems/address-taken", p["type"])
	require.Equal(t, before, listEvents(t, e, l), "neither alias was added")
	r := e.Do(t, http.MethodPost, listPath(l)+"/aliases", e.AdminToken, map[string]any{"aliases": []string{listAlias}})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Equal(t, []any{listAlias}, r.JSON(t)["aliases"])
	p = e.Do(t, http.MethodPost, accountPath(acct)+"/aliases", e.AdminToken, map[string]any{"alias": listAlias}).Problem(t, http.StatusConflict)
	require.Equal(t, "/problems/address-taken", p["type"])
	e.Do(t, http.MethodPost, accountsPath(dom), e.AdminToken, map[string]any{"address": listAlias}).Problem(t, http.StatusConflict)

	// Deleting the list frees its address and aliases.
	require.Equal(t, http.StatusNoContent, e.Do(t, http.MethodDelete, listPath(l), e.AdminToken, nil).Status)
	e.Do(t, http.MethodGet, listPath(l), e.AdminToken, nil).Problem(t, http.StatusNotFound)
	require.Equal(t, http.StatusCreated, e.Do(t, http.MethodPost, accountPath(acct)+"/aliases", e.AdminToken,
		map[string]any{"alias": listAlias}).Status)
	e.CreateAccount(t, dom, map[string]any{"address": l})
}

func TestListMembers(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	dom := e.CreateDomain(t, nil)
	l := createList(t, e, dom, map[string]any{"members": []string{"first@x.example"}})["address"].(string)

	t.Run("TenThousandInOneRequestIsOneEvent", func(t *testing.T) {
		many := make([]string, domain.MaxListChange)
		for i := range many {
			many[i] = fmt.Sprintf("Member%05d@Example%d.test", i, i%7)
		}
		start := time.Now()
		r := e.Do(t, http.MethodPost, listPath(l)+"/members", e.AdminToken, map[string]any{"members": many})
		post := time.Since(start)
		require.Equal(t, http.StatusOK, r.Status, "%.300s", r.Body)
		require.Equal(t, float64(domain.MaxListChange+1), r.JSON(t)["member_count"])
		require.Equal(t, `"2"`, r.Header.Get("ETag"))
		require.Equal(t, []string{"ListCreated", "ListMembersAdded"}, listEvents(t, e, l), "one event for 10,000 members")
		var n int
		require.NoError(t, e.Pool.QueryRow(t.Context(), `SELECT jsonb_array_length(data->'members') FROM events
			WHERE stream_id = $1 AND event_type = 'ListMembersAdded'`, "list-"+l).Scan(&n))
		require.Equal(t, domain.MaxListChange, n)

		start = time.Now()
		got := e.Do(t, http.MethodGet, listPath(l), e.AdminToken, nil)
		read := time.Since(start)
		require.Equal(t, http.StatusOK, got.Status)
		require.Equal(t, float64(domain.MaxListChange+1), got.JSON(t)["member_count"])
		start = time.Now()
		page := e.Do(t, http.MethodGet, listPath(l)+"/members?limit=500", e.AdminToken, nil)
		pageTime := time.Since(start)
		require.Equal(t, http.StatusOK, page.Status)
		require.Len(t, page.JSON(t)["items"], 500)
		start = time.Now()
		require.Equal(t, http.StatusOK, e.Do(t, http.MethodGet, listPath(l), e.AdminToken, nil).Status)
		again := time.Since(start)
		start = time.Now()
		require.Equal(t, http.StatusOK, e.Do(t, http.MethodPatch, listPath(l), e.AdminToken, map[string]any{"display_name": "Big"}).Status)
		patch := time.Since(start)
		t.Logf("latency: POST 10,000 members %v; GET the list right after (waits for the read model) %v, again %v; "+
			"GET 500 members %v; PATCH the 10,001-member list %v",
			post.Round(time.Millisecond), read.Round(time.Millisecond), again.Round(time.Millisecond),
			pageTime.Round(time.Millisecond), patch.Round(time.Millisecond))

		// Again with the same addresses: nothing new, no event, the same version.
		r = e.Do(t, http.MethodPost, listPath(l)+"/members", e.AdminToken, map[string]any{"members": many[:100]})
		require.Equal(t, http.StatusOK, r.Status)
		require.Equal(t, `"3"`, r.Header.Get("ETag"))
		require.Len(t, listEvents(t, e, l), 3)

		// One more than allowed: 400, nothing written.
		p := e.Do(t, http.MethodPost, listPath(l)+"/members", e.AdminToken,
			map[string]any{"members": append(many, "one-more@x.example")}).Problem(t, http.StatusBadRequest)
		require.Equal(t, "/problems/validation", p["type"])
		require.Len(t, listEvents(t, e, l), 3)

		// Removing them all: one event too.
		start = time.Now()
		r = e.Do(t, http.MethodDelete, listPath(l)+"/members", e.AdminToken, map[string]any{"members": many})
		t.Logf("latency: DELETE 10,000 members %v", time.Since(start).Round(time.Millisecond))
		require.Equal(t, http.StatusOK, r.Status, "%.300s", r.Body)
		require.Equal(t, float64(1), r.JSON(t)["member_count"])
		require.Equal(t, []string{"ListCreated", "ListMembersAdded", "ListUpdated", "ListMembersRemoved"}, listEvents(t, e, l))
	})

	t.Run("PagingAndFilter", func(t *testing.T) {
		lst := createList(t, e, dom, map[string]any{"members": []string{"c@x.example", "a@x.example", "b@y.example", "d@x.example"}})
		addr := lst["address"].(string)
		var got []string
		cursor := ""
		for {
			r := e.Do(t, http.MethodGet, listPath(addr)+"/members?limit=3&cursor="+url.QueryEscape(cursor), e.AdminToken, nil)
			require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
			var page struct {
				Items      []struct{ Address string }
				NextCursor *string `json:"next_cursor"`
			}
			r.Decode(t, &page)
			for _, it := range page.Items {
				got = append(got, it.Address)
			}
			if page.NextCursor == nil {
				break
			}
			cursor = *page.NextCursor
		}
		require.Equal(t, []string{"a@x.example", "b@y.example", "c@x.example", "d@x.example"}, got)
		r := e.Do(t, http.MethodGet, listPath(addr)+"/members?q=Y.EX", e.AdminToken, nil)
		require.JSONEq(t, `{"items":[{"address":"b@y.example"}],"next_cursor":null}`, string(r.Body))
		e.Do(t, http.MethodGet, listPath(addr)+"/members?limit=0", e.AdminToken, nil).Problem(t, http.StatusBadRequest)
		e.Do(t, http.MethodGet, listPath(addr)+"/members?cursor=!!", e.AdminToken, nil).Problem(t, http.StatusBadRequest)
	})

	t.Run("OneAtATime", func(t *testing.T) {
		addr := createList(t, e, dom, nil)["address"].(string)
		r := e.Do(t, http.MethodPost, listPath(addr)+"/members", e.AdminToken, map[string]any{"members": []string{"Solo@x.example"}})
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		require.Equal(t, float64(1), r.JSON(t)["member_count"])
		r = e.Do(t, http.MethodDelete, listPath(addr)+"/members/SOLO@x.example", e.AdminToken, nil)
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		require.Equal(t, float64(0), r.JSON(t)["member_count"])
		e.Do(t, http.MethodDelete, listPath(addr)+"/members/solo@x.example", e.AdminToken, nil).Problem(t, http.StatusNotFound)
		e.Do(t, http.MethodDelete, listPath(addr)+"/members/not-an-address", e.AdminToken, nil).Problem(t, http.StatusNotFound)
		// Removing a non-member in bulk is no error, and no event.
		r = e.Do(t, http.MethodDelete, listPath(addr)+"/members", e.AdminToken, map[string]any{"members": []string{"solo@x.example"}})
		require.Equal(t, http.StatusOK, r.Status)
		require.Equal(t, []string{"ListCreated", "ListMembersAdded", "ListMembersRemoved"}, listEvents(t, e, addr))
	})

	t.Run("BadBodies", func(t *testing.T) {
		before := allEvents(t, e)
		for _, body := range []any{nil, `{}`, `{"members":null}`, `{"members":"a@x.example"}`, `{"members":[1]}`,
			`{"members":[],"extra":1}`, `{"members":[]}`, `{"members":["bad"]}`} {
			e.Do(t, http.MethodPost, listPath(l)+"/members", e.AdminToken, body).Problem(t, http.StatusBadRequest)
			e.Do(t, http.MethodDelete, listPath(l)+"/members", e.AdminToken, body).Problem(t, http.StatusBadRequest)
		}
		// A DELETE body must be JSON too.
		req, err := http.NewRequest(http.MethodDelete, e.URL+listPath(l)+"/members", strings.NewReader("members=a@x.example"))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+e.AdminToken)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusUnsupportedMediaType, resp.StatusCode)
		e.Do(t, http.MethodPost, listPath("nobody@"+dom)+"/members", e.AdminToken, map[string]any{"members": []string{"a@x.example"}}).
			Problem(t, http.StatusNotFound)
		require.Equal(t, before, allEvents(t, e), "nothing written")
	})
}

func TestListOwnersRights(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	dom := e.CreateDomain(t, nil)
	ownerAddr, ownerToken := e.User(t, dom, apitest.Plain)
	_, strangerToken := e.User(t, dom, apitest.Plain)
	other := e.CreateDomain(t, nil)
	_, otherAdminToken := e.User(t, other, apitest.DomainAdmin)
	_, adminToken := e.User(t, dom, apitest.DomainAdmin)
	peer := e.CreateAccount(t, dom, nil)

	mine := createList(t, e, dom, map[string]any{"owners": []string{ownerAddr}, "members": []string{"m@x.example"}})["address"].(string)
	theirs := createList(t, e, dom, map[string]any{"owners": []string{peer}})["address"].(string)

	t.Run("OwnerManagesItsList", func(t *testing.T) {
		r := e.Do(t, http.MethodGet, listPath(mine), ownerToken, nil)
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		require.Equal(t, http.StatusOK, e.Do(t, http.MethodGet, listPath(mine)+"/members", ownerToken, nil).Status)
		r = e.Do(t, http.MethodPost, listPath(mine)+"/members", ownerToken, map[string]any{"members": []string{"n@x.example"}})
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		require.Equal(t, float64(2), r.JSON(t)["member_count"])
		require.Equal(t, http.StatusOK, e.Do(t, http.MethodDelete, listPath(mine)+"/members/m@x.example", ownerToken, nil).Status)
		r = e.Do(t, http.MethodPatch, listPath(mine), ownerToken, map[string]any{"subscription_policy": "accept",
			"unsubscription_policy": "approval", "allowed_senders": []string{"boss@x.example"}, "display_name": "Mine", "description": "d"})
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		require.Equal(t, "accept", r.JSON(t)["subscription_policy"])
		r = e.Do(t, http.MethodPost, listPath(mine)+"/owners", ownerToken, map[string]any{"owners": []string{peer}})
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		require.ElementsMatch(t, []any{ownerAddr, peer}, r.JSON(t)["owners"])
		require.Equal(t, http.StatusOK, e.Do(t, http.MethodDelete, listPath(mine)+"/owners/"+peer, ownerToken, nil).Status)
		// Every change is recorded with the owner as its actor.
		var actor string
		require.NoError(t, e.Pool.QueryRow(t.Context(), `SELECT metadata->>'actor' FROM events WHERE stream_id = $1
			ORDER BY stream_version DESC LIMIT 1`, "list-"+mine).Scan(&actor))
		require.Equal(t, ownerAddr, actor)
	})

	t.Run("OwnerMayNotDoTheRest", func(t *testing.T) {
		before := allEvents(t, e)
		e.Do(t, http.MethodDelete, listPath(mine), ownerToken, nil).Problem(t, http.StatusForbidden)
		e.Do(t, http.MethodPatch, listPath(mine), ownerToken, map[string]any{"hide_in_gal": true}).Problem(t, http.StatusForbidden)
		e.Do(t, http.MethodPost, listPath(mine)+"/aliases", ownerToken, map[string]any{"aliases": []string{"x@" + dom}}).Problem(t, http.StatusForbidden)
		e.Do(t, http.MethodDelete, listPath(mine)+"/aliases/x@"+dom, ownerToken, nil).Problem(t, http.StatusForbidden)
		e.Do(t, http.MethodPut, listPath(mine)+"/dynamic", ownerToken, map[string]any{"member_url": "ldap:///??sub?(a=b)"}).Problem(t, http.StatusForbidden)
		e.Do(t, http.MethodDelete, listPath(mine)+"/dynamic", ownerToken, nil).Problem(t, http.StatusForbidden)
		e.Do(t, http.MethodGet, listsPath(dom), ownerToken, nil).Problem(t, http.StatusForbidden)
		e.Do(t, http.MethodPost, listsPath(dom), ownerToken, map[string]any{"address": "new@" + dom}).Problem(t, http.StatusForbidden)
		// Another list, even in the same domain: nothing.
		e.Do(t, http.MethodGet, listPath(theirs), ownerToken, nil).Problem(t, http.StatusForbidden)
		e.Do(t, http.MethodPost, listPath(theirs)+"/members", ownerToken, map[string]any{"members": []string{"n@x.example"}}).
			Problem(t, http.StatusForbidden)
		e.Do(t, http.MethodPost, listPath(theirs)+"/owners", ownerToken, map[string]any{"owners": []string{ownerAddr}}).
			Problem(t, http.StatusForbidden)
		e.Do(t, http.MethodPatch, listPath(theirs), ownerToken, map[string]any{"display_name": "x"}).Problem(t, http.StatusForbidden)
		// A list that does not exist looks the same as one it does not own.
		e.Do(t, http.MethodGet, listPath("nothing@"+dom), ownerToken, nil).Problem(t, http.StatusForbidden)
		require.Equal(t, before, allEvents(t, e))
	})

	t.Run("OthersGet403", func(t *testing.T) {
		for _, token := range []string{strangerToken, otherAdminToken} {
			e.Do(t, http.MethodGet, listPath(mine), token, nil).Problem(t, http.StatusForbidden)
			e.Do(t, http.MethodGet, listPath(mine)+"/members", token, nil).Problem(t, http.StatusForbidden)
			e.Do(t, http.MethodPost, listPath(mine)+"/members", token, map[string]any{"members": []string{"n@x.example"}}).Problem(t, http.StatusForbidden)
			e.Do(t, http.MethodPatch, listPath(mine), token, map[string]any{"display_name": "x"}).Problem(t, http.StatusForbidden)
			e.Do(t, http.MethodDelete, listPath(mine), token, nil).Problem(t, http.StatusForbidden)
			e.Do(t, http.MethodGet, listsPath(dom), token, nil).Problem(t, http.StatusForbidden)
		}
		e.Do(t, http.MethodGet, listPath(mine), "", nil).Problem(t, http.StatusUnauthorized)
	})

	t.Run("DomainAdmin", func(t *testing.T) {
		r := e.Do(t, http.MethodPost, listsPath(dom), adminToken, map[string]any{"address": apitest.Unique("da") + "@" + dom})
		require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
		made := r.JSON(t)["address"].(string)
		require.Equal(t, http.StatusOK, e.Do(t, http.MethodGet, listsPath(dom), adminToken, nil).Status)
		require.Equal(t, http.StatusOK, e.Do(t, http.MethodPatch, listPath(theirs), adminToken, map[string]any{"hide_in_gal": true}).Status)
		// Aliases only in domains it administers.
		e.Do(t, http.MethodPost, listPath(made)+"/aliases", adminToken, map[string]any{"aliases": []string{"x@" + other}}).
			Problem(t, http.StatusForbidden)
		require.Equal(t, http.StatusOK, e.Do(t, http.MethodPost, listPath(made)+"/aliases", adminToken,
			map[string]any{"aliases": []string{apitest.Unique("a") + "@" + dom}}).Status)
		require.Equal(t, http.StatusNoContent, e.Do(t, http.MethodDelete, listPath(made), adminToken, nil).Status)
		e.Do(t, http.MethodPost, listsPath(other), adminToken, map[string]any{"address": "x@" + other}).Problem(t, http.StatusForbidden)
	})

	t.Run("OwnersAreAccounts", func(t *testing.T) {
		before := listEvents(t, e, mine)
		p := e.Do(t, http.MethodPost, listPath(mine)+"/owners", e.AdminToken, map[string]any{"owners": []string{"nobody@" + dom, peer}}).
			Problem(t, http.StatusBadRequest)
		require.Contains(t, fmt.Sprint(p["errors"]), "owners[0]")
		require.Equal(t, before, listEvents(t, e, mine))
	})

	t.Run("RemovedOwnerLosesItsRights", func(t *testing.T) {
		require.Equal(t, http.StatusOK, e.Do(t, http.MethodDelete, listPath(mine)+"/owners", ownerToken,
			map[string]any{"owners": []string{ownerAddr}}).Status)
		e.Do(t, http.MethodGet, listPath(mine), ownerToken, nil).Problem(t, http.StatusForbidden)
	})
}

func TestListPatch(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	dom := e.CreateDomain(t, nil)
	l := createList(t, e, dom, map[string]any{"display_name": "L", "allowed_senders": []string{"a@x.example"},
		"subscription_policy": "reject", "hide_in_gal": true})
	addr := l["address"].(string)

	r := e.Do(t, http.MethodPatch, listPath(addr), e.AdminToken, map[string]any{"display_name": "New", "allowed_senders": []string{"B@x.example", "a@x.example"}})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Equal(t, `"2"`, r.Header.Get("ETag"))
	require.Equal(t, []any{"a@x.example", "b@x.example"}, r.JSON(t)["allowed_senders"])
	got := e.Do(t, http.MethodGet, listPath(addr), e.AdminToken, nil)
	require.JSONEq(t, string(r.Body), string(got.Body))

	// null: the defaults, anyone may post, empty, false.
	r = e.Do(t, http.MethodPatch, listPath(addr), e.AdminToken, map[string]any{"display_name": nil, "allowed_senders": nil,
		"subscription_policy": nil, "hide_in_gal": nil})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	l = r.JSON(t)
	require.Equal(t, "", l["display_name"])
	require.Equal(t, []any{}, l["allowed_senders"])
	require.Equal(t, "approval", l["subscription_policy"])
	require.Equal(t, false, l["hide_in_gal"])
	require.Equal(t, float64(3), l["version"])

	// Nothing changes: no event, the same version.
	r = e.Do(t, http.MethodPatch, listPath(addr), e.AdminToken, map[string]any{"display_name": ""})
	require.Equal(t, http.StatusOK, r.Status)
	require.Equal(t, `"3"`, r.Header.Get("ETag"))

	before := allEvents(t, e)
	require.ElementsMatch(t, []string{"subscription_policy", "allowed_senders[0]", "display_name"}, fieldsOf(t, e.Do(t, http.MethodPatch,
		listPath(addr), e.AdminToken, map[string]any{"subscription_policy": "maybe", "allowed_senders": []string{"bad"}, "display_name": "\x07"})))
	require.ElementsMatch(t, []string{"members", "dynamic", "address", "hide_in_gal", "unsubscription_policy"}, fieldsOf(t,
		e.Do(t, http.MethodPatch, listPath(addr), e.AdminToken, map[string]any{"members": []string{}, "dynamic": nil,
			"address": "x@" + dom, "hide_in_gal": 1, "unsubscription_policy": "never"})))
	require.Equal(t, "/problems/unknown-field", e.Do(t, http.MethodPatch, listPath(addr), e.AdminToken,
		map[string]any{"colour": "red"}).Problem(t, http.StatusBadRequest)["type"])

	// If-Match: a stale version is 412, the current one goes through.
	p := e.Do(t, http.MethodPatch, listPath(addr), e.AdminToken, map[string]any{"description": "x"}, "If-Match", `"2"`).
		Problem(t, http.StatusPreconditionFailed)
	require.Equal(t, "/problems/precondition-failed", p["type"])
	e.Do(t, http.MethodPost, listPath(addr)+"/members", e.AdminToken, map[string]any{"members": []string{"a@x.example"}}, "If-Match", `"1"`).
		Problem(t, http.StatusPreconditionFailed)
	e.Do(t, http.MethodDelete, listPath(addr), e.AdminToken, nil, "If-Match", `"1"`).Problem(t, http.StatusPreconditionFailed)
	e.Do(t, http.MethodPut, listPath(addr)+"/dynamic", e.AdminToken, map[string]any{"member_url": "ldap:///??sub?(a=b)"}, "If-Match", `"1"`).
		Problem(t, http.StatusPreconditionFailed)
	require.Equal(t, before, allEvents(t, e), "nothing written")
	r = e.Do(t, http.MethodPatch, listPath(addr), e.AdminToken, map[string]any{"description": "x"}, "If-Match", `"3"`)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Equal(t, `"4"`, r.Header.Get("ETag"))

	t.Run("AsOf", func(t *testing.T) {
		var at time.Time
		require.NoError(t, e.Pool.QueryRow(t.Context(), `SELECT recorded_at FROM events WHERE stream_id = $1 AND stream_version = 1`,
			"list-"+addr).Scan(&at))
		r := e.Do(t, http.MethodGet, listPath(addr)+"?as_of="+url.QueryEscape(at.Format(time.RFC3339Nano)), e.AdminToken, nil)
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		require.Equal(t, "L", r.JSON(t)["display_name"])
		require.Equal(t, `"1"`, r.Header.Get("ETag"))
		e.Do(t, http.MethodGet, listPath(addr)+"?as_of="+url.QueryEscape(at.Add(-time.Hour).Format(time.RFC3339)), e.AdminToken, nil).
			Problem(t, http.StatusNotFound)
	})

	t.Run("SuspendedDomainFreezesLists", func(t *testing.T) {
		d := e.CreateDomain(t, nil)
		frozen := createList(t, e, d, nil)["address"].(string)
		require.Equal(t, http.StatusOK, e.Do(t, http.MethodPatch, "/api/v1/domains/"+d, e.AdminToken, map[string]any{"status": "suspended"}).Status)
		for _, c := range []struct {
			method, path string
			body         any
		}{
			{http.MethodPatch, listPath(frozen), map[string]any{"display_name": "x"}},
			{http.MethodPost, listPath(frozen) + "/members", map[string]any{"members": []string{"a@x.example"}}},
			{http.MethodPost, listPath(frozen) + "/owners", map[string]any{"owners": []string{apitest.AdminEmail}}},
			{http.MethodPut, listPath(frozen) + "/dynamic", map[string]any{"member_url": "ldap:///??sub?(a=b)"}},
			{http.MethodDelete, listPath(frozen), nil},
		} {
			p := e.Do(t, c.method, c.path, e.AdminToken, c.body).Problem(t, http.StatusConflict)
			require.Equal(t, "/problems/domain-unavailable", p["type"], "%s %s", c.method, c.path)
		}
		require.Equal(t, []string{"ListCreated"}, listEvents(t, e, frozen))
		// A closed domain refuses new lists but its lists may still change (as its accounts).
		require.Equal(t, http.StatusOK, e.Do(t, http.MethodPatch, "/api/v1/domains/"+d, e.AdminToken, map[string]any{"status": "closed"}).Status)
		require.Equal(t, http.StatusOK, e.Do(t, http.MethodPatch, listPath(frozen), e.AdminToken, map[string]any{"display_name": "x"}).Status)
	})
}

func TestDynamicLists(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	dom := e.CreateDomain(t, nil)
	owner := e.CreateAccount(t, dom, nil)

	t.Run("Create", func(t *testing.T) {
		l := createList(t, e, dom, map[string]any{"dynamic": map[string]any{"member_url": "LDAP:///?mail?SUB?(department=sales%20EU)"},
			"owners": []string{owner}, "hide_in_gal": true})
		require.Equal(t, map[string]any{"member_url": "ldap:///??sub?(department=sales%20EU)", "scope": "sub",
			"filter": "(department=sales EU)"}, l["dynamic"])
		require.Nil(t, l["member_count"])
		require.Equal(t, true, l["hide_in_gal"])
		addr := l["address"].(string)

		p := e.Do(t, http.MethodGet, listPath(addr)+"/members", e.AdminToken, nil).Problem(t, http.StatusNotImplemented)
		require.Equal(t, "/problems/not-implemented-yet", p["type"])
		require.Contains(t, p["detail"], "directory")
		require.Equal(t, []string{"members"}, fieldsOf(t, e.Do(t, http.MethodPost, listPath(addr)+"/members", e.AdminToken,
			map[string]any{"members": []string{"a@x.example"}})))
		require.Equal(t, []string{"members"}, fieldsOf(t, e.Do(t, http.MethodPost, listsPath(dom), e.AdminToken, map[string]any{
			"address": apitest.Unique("d") + "@" + dom, "members": []string{"a@x.example"}, "dynamic": map[string]any{"member_url": "ldap:///??one?(a=b)"}})))
		// Subscription settings stay editable.
		r := e.Do(t, http.MethodPatch, listPath(addr), e.AdminToken, map[string]any{"subscription_policy": "accept", "unsubscription_policy": "reject"})
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		require.Equal(t, "reject", r.JSON(t)["unsubscription_policy"])
	})

	t.Run("MemberURLValidation", func(t *testing.T) {
		static := createList(t, e, dom, nil)["address"].(string)
		before := allEvents(t, e)
		for _, c := range []struct{ url, want string }{
			{"ldap:///??sub?(department=sales", "unbalanced parentheses"},
			{"ldap:///??sub?(department=sales)(x=y)", "unexpected text"},
			{"ldap:///??sub?(=sales)", "missing attribute name"},
			{"ldap://ldap.example.com/??sub?(a=b)", "must not name a host"},
			{"ldap://evil.example:389/ou=x??sub?(a=b)", "must not name a host"},
			{"ldap:///ou=people,dc=example,dc=com??sub?(a=b)", "must not name a base DN"},
			{"ldap:///??base?(a=b)", "scope must be sub or one"},
			{"ldap:///??children?(a=b)", "scope must be sub or one"},
			{"ldap:///?cn?sub?(a=b)", "attributes must be empty or mail"},
			{"ldaps:///??sub?(a=b)", "must start with ldap:///"},
			{"not a url at all", "not an LDAP URL"},
			{"ldap:///??sub?(a=%ZZ)", "bad percent-encoding"},
			{"ldap:///??sub?(a=b)?bindname=x", "extensions are not supported"},
			{"", "required"},
			// The package's own parser takes U+FFFD in a value; go-ldap, which the directory's
			// readers and writer use, does not: what it refuses is refused.
			{"ldap:///??sub?(cn=%EF%BF%BD)", "error reading rune"},
		} {
			for _, send := range []func() apitest.Response{
				func() apitest.Response {
					return e.Do(t, http.MethodPost, listsPath(dom), e.AdminToken, map[string]any{
						"address": apitest.Unique("dyn") + "@" + dom, "dynamic": map[string]any{"member_url": c.url}})
				},
				func() apitest.Response {
					return e.Do(t, http.MethodPut, listPath(static)+"/dynamic", e.AdminToken, map[string]any{"member_url": c.url})
				},
			} {
				p := send().Problem(t, http.StatusBadRequest)
				errs := p["errors"].([]any)
				require.Len(t, errs, 1, c.url)
				fe := errs[0].(map[string]any)
				require.Equal(t, "dynamic.member_url", fe["field"], c.url)
				require.Contains(t, fe["message"], c.want, c.url)
			}
		}
		require.Equal(t, before, allEvents(t, e), "nothing written")
	})

	t.Run("TurningDynamicAndStatic", func(t *testing.T) {
		addr := createList(t, e, dom, map[string]any{"members": []string{"a@x.example", "b@x.example"}})["address"].(string)
		p := e.Do(t, http.MethodPut, listPath(addr)+"/dynamic", e.AdminToken, map[string]any{"member_url": "ldap:///??one?(l=Rome)"}).
			Problem(t, http.StatusConflict)
		require.Contains(t, p["detail"], "2 members")
		r := e.Do(t, http.MethodPut, listPath(addr)+"/dynamic", e.AdminToken, map[string]any{"member_url": "ldap:///??one?(l=Rome)", "drop_members": true})
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		require.Equal(t, "one", r.JSON(t)["dynamic"].(map[string]any)["scope"])
		require.Equal(t, []string{"ListCreated", "ListMadeDynamic"}, listEvents(t, e, addr))
		var dropped int
		require.NoError(t, e.Pool.QueryRow(t.Context(), `SELECT (data->>'dropped_members')::int FROM events
			WHERE stream_id = $1 AND event_type = 'ListMadeDynamic'`, "list-"+addr).Scan(&dropped))
		require.Equal(t, 2, dropped)
		// The same query again: nothing; another one: a new event.
		r = e.Do(t, http.MethodPut, listPath(addr)+"/dynamic", e.AdminToken, map[string]any{"member_url": "ldap:///?mail?one?(l=Rome)"})
		require.Equal(t, http.StatusOK, r.Status)
		require.Len(t, listEvents(t, e, addr), 2)
		r = e.Do(t, http.MethodPut, listPath(addr)+"/dynamic", e.AdminToken, map[string]any{"member_url": "ldap:///??sub?(l=Milan)"})
		require.Equal(t, http.StatusOK, r.Status)
		require.Len(t, listEvents(t, e, addr), 3)

		r = e.Do(t, http.MethodDelete, listPath(addr)+"/dynamic", e.AdminToken, nil)
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		require.Nil(t, r.JSON(t)["dynamic"])
		require.Equal(t, float64(0), r.JSON(t)["member_count"], "a list made static has no members")
		e.Do(t, http.MethodDelete, listPath(addr)+"/dynamic", e.AdminToken, nil).Problem(t, http.StatusNotFound)
		m := e.Do(t, http.MethodGet, listPath(addr)+"/members", e.AdminToken, nil)
		require.JSONEq(t, `{"items":[],"next_cursor":null}`, string(m.Body))
		e.Do(t, http.MethodGet, listPath(addr)+"/dynamic", e.AdminToken, nil).Problem(t, http.StatusMethodNotAllowed)
	})
}

func TestListAliasesAndDomainViews(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	dom := e.CreateDomain(t, nil)
	other := e.CreateDomain(t, nil)
	closed := e.CreateDomain(t, map[string]any{"status": "closed"})
	addr := createList(t, e, dom, map[string]any{"members": []string{"a@x.example"}})["address"].(string)
	in := apitest.Unique("all") + "@" + dom
	elsewhere := apitest.Unique("team") + "@" + other

	r := e.Do(t, http.MethodPost, listPath(addr)+"/aliases", e.AdminToken, map[string]any{"aliases": []string{strings.ToUpper(in), elsewhere}})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.ElementsMatch(t, []any{in, elsewhere}, r.JSON(t)["aliases"])
	require.Equal(t, []string{"ListCreated", "ListAliasesAdded"}, listEvents(t, e, addr), "one event for both")

	before := allEvents(t, e)
	require.Equal(t, []string{"aliases[0]", "aliases[1]"}, fieldsOf(t, e.Do(t, http.MethodPost, listPath(addr)+"/aliases", e.AdminToken,
		map[string]any{"aliases": []string{addr, "x@missing.example"}})))
	p := e.Do(t, http.MethodPost, listPath(addr)+"/aliases", e.AdminToken, map[string]any{"aliases": []string{"x@" + closed}}).
		Problem(t, http.StatusConflict)
	require.Equal(t, "/problems/domain-unavailable", p["type"])
	require.Equal(t, []string{"members[0]"}, fieldsOf(t, e.Do(t, http.MethodPost, listPath(addr)+"/members", e.AdminToken,
		map[string]any{"members": []string{in}})), "mail to the list's own alias would loop")
	require.Equal(t, before, allEvents(t, e))

	// The domains' counts and deletion previews show lists, resources and their aliases.
	res := e.Do(t, http.MethodPost, "/api/v1/domains/"+dom+"/resources", e.AdminToken, map[string]any{"address": "room@" + dom, "type": "location"})
	require.Equal(t, http.StatusCreated, res.Status, "%s", res.Body)
	require.Equal(t, http.StatusCreated, e.Do(t, http.MethodPost, "/api/v1/resources/room@"+dom+"/aliases", e.AdminToken,
		map[string]any{"alias": "beamer@" + other}).Status)
	d := e.Do(t, http.MethodGet, "/api/v1/domains/"+dom, e.AdminToken, nil).JSON(t)
	require.Equal(t, map[string]any{"accounts": float64(0), "lists": float64(1), "resources": float64(1), "aliases": float64(1)}, d["counts"])
	preview := e.Do(t, http.MethodGet, "/api/v1/domains/"+dom+"/deletion-preview", e.AdminToken, nil)
	require.Equal(t, http.StatusOK, preview.Status, "%s", preview.Body)
	pv := preview.JSON(t)
	require.Equal(t, []any{addr}, pv["lists"])
	require.Equal(t, []any{"room@" + dom}, pv["resources"])
	require.ElementsMatch(t, []any{in, elsewhere, "beamer@" + other}, pv["aliases"])
	// The domain as it stood before the list: no lists yet.
	var at time.Time
	require.NoError(t, e.Pool.QueryRow(t.Context(), `SELECT recorded_at FROM events WHERE stream_id = $1`, "domain-"+dom).Scan(&at))
	past := e.Do(t, http.MethodGet, "/api/v1/domains/"+dom+"?as_of="+url.QueryEscape(at.Format(time.RFC3339Nano)), e.AdminToken, nil).JSON(t)
	require.Equal(t, float64(0), past["counts"].(map[string]any)["lists"])
	now := e.Do(t, http.MethodGet, "/api/v1/domains/"+dom+"?as_of="+url.QueryEscape(time.Now().Add(time.Minute).Format(time.RFC3339)), e.AdminToken, nil).JSON(t)
	require.Equal(t, d["counts"], now["counts"], "as_of now counts what the read model does")

	// One at a time and in bulk.
	r = e.Do(t, http.MethodDelete, listPath(addr)+"/aliases/"+elsewhere, e.AdminToken, nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Equal(t, []any{in}, r.JSON(t)["aliases"])
	e.Do(t, http.MethodDelete, listPath(addr)+"/aliases/"+elsewhere, e.AdminToken, nil).Problem(t, http.StatusNotFound)
	r = e.Do(t, http.MethodDelete, listPath(addr)+"/aliases", e.AdminToken, map[string]any{"aliases": []string{in, elsewhere}})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Equal(t, []any{}, r.JSON(t)["aliases"])
	// Both addresses are free again.
	e.CreateAccount(t, dom, map[string]any{"address": in})
	e.CreateAccount(t, other, map[string]any{"address": elsewhere})
}

func TestListListing(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	dom := e.CreateDomain(t, nil)
	for _, n := range []string{"alpha", "beta", "gamma"} {
		createList(t, e, dom, map[string]any{"address": n + "@" + dom, "display_name": strings.ToUpper(n) + " list"})
	}
	createList(t, e, e.CreateDomain(t, nil), nil) // another domain's

	r := e.Do(t, http.MethodGet, listsPath(dom)+"?limit=2", e.AdminToken, nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	var page struct {
		Items []struct {
			Address string `json:"address"`
		}
		NextCursor *string `json:"next_cursor"`
	}
	r.Decode(t, &page)
	require.Len(t, page.Items, 2)
	require.Equal(t, "alpha@"+dom, page.Items[0].Address)
	require.NotNil(t, page.NextCursor)
	r = e.Do(t, http.MethodGet, listsPath(dom)+"?limit=2&cursor="+*page.NextCursor, e.AdminToken, nil)
	r.Decode(t, &page)
	require.Len(t, page.Items, 1)
	require.Equal(t, "gamma@"+dom, page.Items[0].Address)
	require.Nil(t, page.NextCursor)
	r = e.Do(t, http.MethodGet, listsPath(dom)+"?q=BETA", e.AdminToken, nil)
	r.Decode(t, &page)
	require.Len(t, page.Items, 1)
	require.Equal(t, "beta@"+dom, page.Items[0].Address)
	e.Do(t, http.MethodGet, listsPath(dom)+"?limit=501", e.AdminToken, nil).Problem(t, http.StatusBadRequest)
}
