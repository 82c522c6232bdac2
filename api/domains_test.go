package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"mailplane/api/apitest"
)

func TestCreateDomain(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)

	t.Run("HappyPathWithIDNA", func(t *testing.T) {
		name := apitest.Unique("bücher-")
		r := e.Do(t, http.MethodPost, "/api/v1/domains", e.AdminToken, map[string]any{
			"name": strings.ToUpper(name[:1]) + name[1:] + ".Example", "description": "Books",
			"time_zone": "Europe/Berlin", "limits": map[string]any{"max_accounts": 10, "account_quota_bytes": 1 << 30},
		})
		require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
		d := r.JSON(t)
		require.True(t, strings.HasPrefix(d["name"].(string), "xn--"), "stored as A-labels: %v", d["name"])
		require.Equal(t, name+".example", d["unicode_name"])
		require.Equal(t, "/api/v1/domains/"+d["name"].(string), r.Header.Get("Location"))
		require.Equal(t, `"1"`, r.Header.Get("ETag"))
		require.Equal(t, float64(1), d["version"])
		require.Equal(t, "Europe/Berlin", d["effective"].(map[string]any)["time_zone"])
		require.Equal(t, "domain", d["sources"].(map[string]any)["time_zone"])
		require.Equal(t, "global", d["sources"].(map[string]any)["public_protocol"])

		// The Unicode form addresses it too.
		got := e.Do(t, http.MethodGet, "/api/v1/domains/"+name+".example", e.AdminToken, nil)
		require.Equal(t, http.StatusOK, got.Status, "%s", got.Body)
		require.Equal(t, d["name"], got.JSON(t)["name"])
	})

	t.Run("ValidationListsEveryBadField", func(t *testing.T) {
		r := e.Do(t, http.MethodPost, "/api/v1/domains", e.AdminToken, map[string]any{
			"name": "bad..name", "status": "weird", "public_protocol": "gopher", "time_zone": "Mars/Olympus",
			"limits": map[string]any{"max_accounts": -1, "warn_percent": 101},
		})
		fields := r.FieldErrors(t)
		require.Contains(t, fields, "name")
		require.Subset(t, fields, []string{"status", "public_protocol", "time_zone", "limits.max_accounts", "limits.warn_percent"})
		require.Equal(t, http.StatusNotFound, e.Do(t, http.MethodGet, "/api/v1/domains/bad..name", e.AdminToken, nil).Status)
	})

	t.Run("BadBodies", func(t *testing.T) {
		e.Do(t, http.MethodPost, "/api/v1/domains", e.AdminToken, `{"name":`).Problem(t, http.StatusBadRequest)
		p := e.Do(t, http.MethodPost, "/api/v1/domains", e.AdminToken, `{"name":"x.example","nmae":1}`).Problem(t, http.StatusBadRequest)
		require.Equal(t, "/problems/unknown-field", p["type"])
		e.Do(t, http.MethodPost, "/api/v1/domains", e.AdminToken, `{"name":"x.example"} {}`).Problem(t, http.StatusBadRequest)
		e.Do(t, http.MethodPost, "/api/v1/domains", e.AdminToken, `{"name":5}`).Problem(t, http.StatusBadRequest)
		big := `{"description":"` + strings.Repeat("a", 1<<20) + `"}`
		e.Do(t, http.MethodPost, "/api/v1/domains", e.AdminToken, big).Problem(t, http.StatusRequestEntityTooLarge)
	})

	t.Run("DuplicateIs409", func(t *testing.T) {
		name := e.CreateDomain(t, nil)
		e.Do(t, http.MethodPost, "/api/v1/domains", e.AdminToken, map[string]any{"name": strings.ToUpper(name)}).
			Problem(t, http.StatusConflict)
	})

	t.Run("IdempotentReplay", func(t *testing.T) {
		body := map[string]any{"name": apitest.Unique("idem") + ".example"}
		key := apitest.Unique("key-")
		first := e.Do(t, http.MethodPost, "/api/v1/domains", e.AdminToken, body, "Idempotency-Key", key)
		require.Equal(t, http.StatusCreated, first.Status, "%s", first.Body)
		again := e.Do(t, http.MethodPost, "/api/v1/domains", e.AdminToken, body, "Idempotency-Key", key)
		require.Equal(t, http.StatusCreated, again.Status, "%s", again.Body)
		require.Equal(t, "true", again.Header.Get("Idempotent-Replayed"))
		require.JSONEq(t, string(first.Body), string(again.Body))
		var n int
		require.NoError(t, e.Pool.QueryRow(t.Context(), `SELECT count(*) FROM events WHERE stream_id = $1`,
			"domain-"+body["name"].(string)).Scan(&n))
		require.Equal(t, 1, n, "the repeat appended nothing")

		other := e.Do(t, http.MethodPost, "/api/v1/domains", e.AdminToken, map[string]any{"name": "other-" + body["name"].(string)},
			"Idempotency-Key", key)
		require.Equal(t, "/problems/idempotency-key-reused", other.Problem(t, http.StatusUnprocessableEntity)["type"])
	})
}

func TestDomainRoles(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	mine := e.CreateDomain(t, nil)
	other := e.CreateDomain(t, nil)
	_, adminToken := e.User(t, mine, apitest.DomainAdmin)
	_, plainToken := e.User(t, mine, apitest.Plain)

	e.Do(t, http.MethodGet, "/api/v1/domains", "", nil).Problem(t, http.StatusUnauthorized)
	e.Do(t, http.MethodGet, "/api/v1/domains", "not-a-token", nil).Problem(t, http.StatusUnauthorized)
	e.Do(t, http.MethodPost, "/api/v1/domains", "", map[string]any{"name": "x.example"}).Problem(t, http.StatusUnauthorized)

	// A domain admin sees and changes its own domain only.
	require.Equal(t, http.StatusOK, e.Do(t, http.MethodGet, "/api/v1/domains/"+mine, adminToken, nil).Status)
	e.Do(t, http.MethodGet, "/api/v1/domains/"+other, adminToken, nil).Problem(t, http.StatusForbidden)
	list := e.Do(t, http.MethodGet, "/api/v1/domains", adminToken, nil)
	require.Equal(t, http.StatusOK, list.Status)
	require.Len(t, list.JSON(t)["items"], 1)
	require.Equal(t, http.StatusOK, e.Do(t, http.MethodPatch, "/api/v1/domains/"+mine, adminToken, map[string]any{"description": "ours"}).Status)
	e.Do(t, http.MethodPatch, "/api/v1/domains/"+mine, adminToken, map[string]any{"status": "suspended"}).Problem(t, http.StatusForbidden)
	e.Do(t, http.MethodPatch, "/api/v1/domains/"+other, adminToken, map[string]any{"description": "theirs"}).Problem(t, http.StatusForbidden)
	e.Do(t, http.MethodPost, "/api/v1/domains", adminToken, map[string]any{"name": "new.example"}).Problem(t, http.StatusForbidden)
	e.Do(t, http.MethodPost, "/api/v1/domains/"+mine+"/close", adminToken, nil).Problem(t, http.StatusForbidden)

	// A plain account sees no domain.
	e.Do(t, http.MethodGet, "/api/v1/domains", plainToken, nil).Problem(t, http.StatusForbidden)
	e.Do(t, http.MethodGet, "/api/v1/domains/"+mine, plainToken, nil).Problem(t, http.StatusForbidden)
	e.Do(t, http.MethodPatch, "/api/v1/domains/"+mine, plainToken, map[string]any{"description": "x"}).Problem(t, http.StatusForbidden)

	e.Do(t, http.MethodGet, "/api/v1/domains/missing.example", e.AdminToken, nil).Problem(t, http.StatusNotFound)
}

func TestPatchDomain(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	name := e.CreateDomain(t, map[string]any{"time_zone": "Europe/Rome", "limits": map[string]any{"warn_percent": 70, "warn_recipient": "ops@example.org"}})
	path := "/api/v1/domains/" + name

	r := e.Do(t, http.MethodPatch, path, e.AdminToken, map[string]any{"time_zone": nil, "public_protocol": "http",
		"limits": map[string]any{"warn_percent": nil, "warn_recipient": nil, "max_accounts": 3}}, "If-Match", `"1"`)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	d := r.JSON(t)
	require.Nil(t, d["time_zone"])
	require.Equal(t, "UTC", d["effective"].(map[string]any)["time_zone"])
	require.Equal(t, "global", d["sources"].(map[string]any)["time_zone"])
	require.Equal(t, "http", d["effective"].(map[string]any)["public_protocol"])
	require.Equal(t, "domain", d["sources"].(map[string]any)["public_protocol"])
	require.Equal(t, float64(90), d["effective"].(map[string]any)["warn_percent"])
	require.Equal(t, "", d["effective"].(map[string]any)["warn_recipient"])
	require.Equal(t, float64(3), d["effective"].(map[string]any)["max_accounts"])
	require.Equal(t, `"2"`, r.Header.Get("ETag"))

	// A stale If-Match is refused and changes nothing.
	e.Do(t, http.MethodPatch, path, e.AdminToken, map[string]any{"description": "late"}, "If-Match", `"1"`).
		Problem(t, http.StatusPreconditionFailed)
	require.Equal(t, "", e.Do(t, http.MethodGet, path, e.AdminToken, nil).JSON(t)["description"])
	e.Do(t, http.MethodPatch, path, e.AdminToken, map[string]any{"description": "x"}, "If-Match", "garbage").
		Problem(t, http.StatusBadRequest)

	// Bad values are refused all at once; unknown members too.
	fields := e.Do(t, http.MethodPatch, path, e.AdminToken, map[string]any{"status": "nope", "limits": map[string]any{"max_accounts": "many"}}).FieldErrors(t)
	require.Subset(t, fields, []string{"limits.max_accounts"})
	e.Do(t, http.MethodPatch, path, e.AdminToken, map[string]any{"colour": "blue"}).Problem(t, http.StatusBadRequest)
	e.Do(t, http.MethodPatch, path, e.AdminToken, map[string]any{"status": "nope"}).Problem(t, http.StatusBadRequest)
	e.Do(t, http.MethodPatch, "/api/v1/domains/missing.example", e.AdminToken, map[string]any{"description": "x"}).
		Problem(t, http.StatusNotFound)

	// A PATCH that changes nothing appends nothing.
	before := e.Do(t, http.MethodGet, path, e.AdminToken, nil).JSON(t)["version"]
	r = e.Do(t, http.MethodPatch, path, e.AdminToken, map[string]any{"public_protocol": "http"})
	require.Equal(t, http.StatusOK, r.Status)
	require.Equal(t, before, r.JSON(t)["version"])
}

func TestCloseDomainRefusesLogins(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	name := e.CreateDomain(t, nil)
	user, token := e.User(t, name, apitest.Plain)
	// The user's session works until the domain closes.
	require.NotEqual(t, http.StatusUnauthorized, e.Do(t, http.MethodGet, "/api/v1/domains/"+name, token, nil).Status)

	r := e.Do(t, http.MethodPost, "/api/v1/domains/"+name+"/close", e.AdminToken, nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Equal(t, "closed", r.JSON(t)["status"])
	e.Do(t, http.MethodGet, "/api/v1/domains/"+name, token, nil).Problem(t, http.StatusUnauthorized)
	p := e.Do(t, http.MethodPost, "/api/v1/auth/login", "", map[string]any{"email": user, "password": "user-password-1"}).
		Problem(t, http.StatusForbidden)
	require.Equal(t, "/problems/login-refused", p["type"])
	e.Do(t, http.MethodPost, "/api/v1/domains/missing.example/close", e.AdminToken, nil).Problem(t, http.StatusNotFound)

	// A PATCH of the status reopens it: its objects were kept, and its users log in again.
	r = e.Do(t, http.MethodPatch, "/api/v1/domains/"+name, e.AdminToken, map[string]any{"status": "active"})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Equal(t, "active", r.JSON(t)["status"])
	again := e.Login(t, user, "user-password-1")
	require.Equal(t, http.StatusOK, e.Do(t, http.MethodGet, "/api/v1/accounts/"+user, again, nil).Status)
}

func TestListDomainsPaginates(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	prefix := apitest.Unique("page")
	for i := 0; i < 5; i++ {
		e.CreateDomain(t, map[string]any{"name": prefix + string(rune('a'+i)) + ".example"})
	}
	var names []string
	cursor := ""
	for pages := 0; pages < 10; pages++ {
		path := "/api/v1/domains?limit=2&q=" + prefix
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		r := e.Do(t, http.MethodGet, path, e.AdminToken, nil)
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		var pg struct {
			Items []struct {
				Name string `json:"name"`
			} `json:"items"`
			NextCursor *string `json:"next_cursor"`
		}
		r.Decode(t, &pg)
		for _, it := range pg.Items {
			names = append(names, it.Name)
		}
		if pg.NextCursor == nil {
			break
		}
		cursor = *pg.NextCursor
	}
	require.Equal(t, []string{prefix + "a.example", prefix + "b.example", prefix + "c.example", prefix + "d.example", prefix + "e.example"}, names)

	require.Len(t, e.Do(t, http.MethodGet, "/api/v1/domains?status=closed&q="+prefix, e.AdminToken, nil).JSON(t)["items"], 0)
	e.Do(t, http.MethodGet, "/api/v1/domains?limit=501", e.AdminToken, nil).Problem(t, http.StatusBadRequest)
	e.Do(t, http.MethodGet, "/api/v1/domains?limit=0", e.AdminToken, nil).Problem(t, http.StatusBadRequest)
	e.Do(t, http.MethodGet, "/api/v1/domains?cursor=***", e.AdminToken, nil).Problem(t, http.StatusBadRequest)
}

func TestUnknownPathsAndMethodsAreProblems(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	e.Do(t, http.MethodDelete, "/api/v1/config", e.AdminToken, nil).Problem(t, http.StatusMethodNotAllowed)
	e.Do(t, http.MethodPut, "/api/v1/domains", e.AdminToken, nil).Problem(t, http.StatusMethodNotAllowed)
	e.Do(t, http.MethodGet, "/api/v1/nothing-here", e.AdminToken, nil).Problem(t, http.StatusNotFound)
	e.Do(t, http.MethodGet, "/nothing-here", "", nil).Problem(t, http.StatusNotFound)
}

func TestCloseDomainIdempotentReplay(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	name := e.CreateDomain(t, nil)
	key := apitest.Unique("close-")
	first := e.Do(t, http.MethodPost, "/api/v1/domains/"+name+"/close", e.AdminToken, nil, "Idempotency-Key", key)
	require.Equal(t, http.StatusOK, first.Status, "%s", first.Body)
	again := e.Do(t, http.MethodPost, "/api/v1/domains/"+name+"/close", e.AdminToken, nil, "Idempotency-Key", key)
	require.Equal(t, http.StatusOK, again.Status, "%s", again.Body)
	require.Equal(t, "true", again.Header.Get("Idempotent-Replayed"))
	require.JSONEq(t, string(first.Body), string(again.Body))
	var closed int
	require.NoError(t, e.Pool.QueryRow(t.Context(), `SELECT count(*) FROM events WHERE stream_id = $1 AND event_type = 'DomainClosed'`,
		"domain-"+name).Scan(&closed))
	require.Equal(t, 1, closed)
	// The same key for another domain's close is another request.
	other := e.CreateDomain(t, nil)
	e.Do(t, http.MethodPost, "/api/v1/domains/"+other+"/close", e.AdminToken, nil, "Idempotency-Key", key).
		Problem(t, http.StatusUnprocessableEntity)
}

// GET /domains filters the same way whoever lists: ?status is checked (400 naming it, as for
// accounts), and a domain admin's or a limited auditor's list is the same query narrowed to the
// domains they may see, so ?q, ?status and paging apply to it too.
func TestListDomainsFiltersForEveryRole(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	p := e.Do(t, http.MethodGet, "/api/v1/domains?status=bogus", e.AdminToken, nil).Problem(t, http.StatusBadRequest)
	require.Equal(t, "status", p["errors"].([]any)[0].(map[string]any)["field"], "%v", p)

	prefix := apitest.Unique("roles")
	dom := e.CreateDomain(t, map[string]any{"name": prefix + "a.example", "description": "first"})
	second := e.CreateDomain(t, map[string]any{"name": prefix + "b.example"})
	_, admin := e.User(t, dom, apitest.DomainAdmin)
	_, auditor := newAuditor(t, e, dom, []string{dom, second})
	names := func(token, query string) []string {
		t.Helper()
		r := e.Do(t, http.MethodGet, "/api/v1/domains"+query, token, nil)
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		var pg struct {
			Items []struct {
				Name string `json:"name"`
			} `json:"items"`
		}
		r.Decode(t, &pg)
		out := []string{}
		for _, it := range pg.Items {
			out = append(out, it.Name)
		}
		return out
	}
	require.Equal(t, []string{dom}, names(admin, ""))
	require.Equal(t, []string{dom}, names(admin, "?q=first"))
	require.Equal(t, []string{}, names(admin, "?q=nothing-like-it"), "a filter that matches nothing")
	require.Equal(t, []string{}, names(admin, "?status=closed"))
	e.Do(t, http.MethodGet, "/api/v1/domains?status=bogus", admin, nil).Problem(t, http.StatusBadRequest)

	require.Equal(t, []string{dom, second}, names(auditor, ""))
	require.Equal(t, []string{second}, names(auditor, "?q="+prefix+"b"))
	require.Equal(t, []string{}, names(auditor, "?status=closed"))
	require.Equal(t, []string{dom}, names(auditor, "?limit=1"), "paged like everyone's")
}
