package api_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"mailplane/api/apitest"
)

type historyPage struct {
	Items []struct {
		Position   int64          `json:"position"`
		Stream     string         `json:"stream"`
		Version    int            `json:"version"`
		Type       string         `json:"type"`
		Data       map[string]any `json:"data"`
		Actor      string         `json:"actor"`
		RecordedAt time.Time      `json:"recorded_at"`
		PrevHash   string         `json:"prev_hash"`
		Hash       string         `json:"hash"`
	} `json:"items"`
	NextCursor *string `json:"next_cursor"`
}

func TestDomainHistory(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	dom := e.CreateDomain(t, map[string]any{"auth": map[string]any{"mechanism": "ldap", "ldap_url": "ldap://127.0.0.1:1",
		"bind_dn": "cn=reader,dc=x", "bind_password": "bind-secret-123", "search_base": "dc=x"}})
	addr := e.CreateAccount(t, dom, map[string]any{"password": "account-secret-123", "display_name": "First"})
	require.Equal(t, http.StatusCreated, e.Do(t, http.MethodPost, "/api/v1/accounts/"+addr+"/aliases", e.AdminToken,
		map[string]any{"alias": "alias-" + addr}).Status)
	require.Equal(t, http.StatusOK, e.Do(t, http.MethodPatch, "/api/v1/accounts/"+addr, e.AdminToken, map[string]any{"display_name": "Second"}).Status)
	other := e.CreateAccount(t, dom, nil)
	require.Equal(t, http.StatusNoContent, e.Do(t, http.MethodDelete, "/api/v1/accounts/"+other, e.AdminToken, nil).Status)
	unrelated := e.CreateDomain(t, nil)
	e.CreateAccount(t, unrelated, nil)

	path := "/api/v1/domains/" + dom + "/history"
	r := e.Do(t, http.MethodGet, path, e.AdminToken, nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.NotContains(t, string(r.Body), "bind-secret-123")
	require.NotContains(t, string(r.Body), "account-secret-123")
	require.NotContains(t, string(r.Body), "mpenc:", "not even the sealed secret is shown")
	var h historyPage
	r.Decode(t, &h)
	var types []string
	for _, it := range h.Items {
		types = append(types, it.Type)
		require.Equal(t, apitest.AdminEmail, it.Actor)
		require.Len(t, it.Hash, 64)
		require.NotContains(t, it.Stream, unrelated)
	}
	require.Equal(t, []string{"DomainCreated", "AccountCreated", "AliasAdded", "AccountUpdated", "AccountCreated", "AccountDeleted"}, types)
	require.Equal(t, "[redacted]", h.Items[0].Data["auth"].(map[string]any)["bind_password_secret"])
	require.Equal(t, "[redacted]", h.Items[1].Data["password_secret"])
	require.Equal(t, "Second", h.Items[3].Data["display_name"])
	// Oldest first, and each stream's events chain onto each other.
	last := map[string]string{}
	for i, it := range h.Items {
		if i > 0 {
			require.Greater(t, it.Position, h.Items[i-1].Position)
		}
		if prev, ok := last[it.Stream]; ok {
			require.Equal(t, prev, it.PrevHash)
		} else {
			require.Equal(t, strings.Repeat("0", 64), it.PrevHash)
			require.Equal(t, 1, it.Version)
		}
		last[it.Stream] = it.Hash
	}

	// Filters: by type, by time, and paging with a cursor reads the same events.
	var only historyPage
	e.Do(t, http.MethodGet, path+"?type=AccountCreated,AccountDeleted", e.AdminToken, nil).Decode(t, &only)
	require.Len(t, only.Items, 3)
	cut := h.Items[2].RecordedAt
	var later historyPage
	e.Do(t, http.MethodGet, path+"?after="+url.QueryEscape(cut.Format(time.RFC3339Nano)), e.AdminToken, nil).Decode(t, &later)
	for _, it := range later.Items {
		require.True(t, it.RecordedAt.After(cut))
	}
	var earlier historyPage
	e.Do(t, http.MethodGet, path+"?before="+url.QueryEscape(cut.Format(time.RFC3339Nano)), e.AdminToken, nil).Decode(t, &earlier)
	require.Equal(t, len(h.Items), len(later.Items)+len(earlier.Items)+countAt(h, cut))
	var paged []int64
	cursor := ""
	for i := 0; i < 10; i++ {
		p := path + "?limit=4"
		if cursor != "" {
			p += "&cursor=" + cursor
		}
		var pg historyPage
		e.Do(t, http.MethodGet, p, e.AdminToken, nil).Decode(t, &pg)
		for _, it := range pg.Items {
			paged = append(paged, it.Position)
		}
		if pg.NextCursor == nil {
			break
		}
		cursor = *pg.NextCursor
	}
	require.Len(t, paged, len(h.Items))

	fields := e.Do(t, http.MethodGet, path+"?after=yesterday&before=x&limit=0&cursor=%25", e.AdminToken, nil).FieldErrors(t)
	require.ElementsMatch(t, []string{"after", "before", "limit", "cursor"}, fields)

	// Roles: the domain's admins may read it; others not. (Its users log in with local
	// passwords from here on: the directory it named does not exist.)
	require.Equal(t, http.StatusOK, e.Do(t, http.MethodPatch, "/api/v1/domains/"+dom, e.AdminToken,
		map[string]any{"auth": map[string]any{"mechanism": "internal"}}).Status)
	_, mine := e.User(t, dom, apitest.DomainAdmin)
	require.Equal(t, http.StatusOK, e.Do(t, http.MethodGet, path, mine, nil).Status)
	_, theirs := e.User(t, unrelated, apitest.DomainAdmin)
	e.Do(t, http.MethodGet, path, theirs, nil).Problem(t, http.StatusForbidden)
	_, plain := e.User(t, dom, apitest.Plain)
	e.Do(t, http.MethodGet, path, plain, nil).Problem(t, http.StatusForbidden)
	e.Do(t, http.MethodGet, path, "", nil).Problem(t, http.StatusUnauthorized)
	e.Do(t, http.MethodGet, "/api/v1/domains/never.example/history", e.AdminToken, nil).Problem(t, http.StatusNotFound)
}

func countAt(h historyPage, t time.Time) int {
	n := 0
	for _, it := range h.Items {
		if it.RecordedAt.Equal(t) {
			n++
		}
	}
	return n
}

func TestReadAsOf(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	cos := apitest.Unique("asof")
	require.Equal(t, http.StatusCreated, e.Do(t, http.MethodPost, "/api/v1/cos", e.AdminToken, map[string]any{"name": cos, "mail_quota_bytes": 1000}).Status)
	beforeAll := time.Now()
	time.Sleep(5 * time.Millisecond)
	dom := e.CreateDomain(t, map[string]any{"default_cos": cos})
	time.Sleep(5 * time.Millisecond)
	t1 := time.Now()
	time.Sleep(5 * time.Millisecond)
	require.Equal(t, http.StatusOK, e.Do(t, http.MethodPatch, "/api/v1/domains/"+dom, e.AdminToken, map[string]any{"time_zone": "Asia/Tokyo"}).Status)
	addr := e.CreateAccount(t, dom, map[string]any{"display_name": "Old name"})
	time.Sleep(5 * time.Millisecond)
	t2 := time.Now()
	time.Sleep(5 * time.Millisecond)
	require.Equal(t, http.StatusOK, e.Do(t, http.MethodPatch, "/api/v1/accounts/"+addr, e.AdminToken, map[string]any{"display_name": "New name"}).Status)
	require.Equal(t, http.StatusOK, e.Do(t, http.MethodPatch, "/api/v1/cos/"+cos, e.AdminToken, map[string]any{"mail_quota_bytes": 2000}).Status)

	at := func(path string, t0 time.Time) apitest.Response {
		return e.Do(t, http.MethodGet, path+"?as_of="+url.QueryEscape(t0.Format(time.RFC3339Nano)), e.AdminToken, nil)
	}
	d := at("/api/v1/domains/"+dom, t1)
	require.Equal(t, http.StatusOK, d.Status, "%s", d.Body)
	dj := d.JSON(t)
	require.Equal(t, float64(1), dj["version"])
	require.Nil(t, dj["time_zone"])
	require.Equal(t, float64(0), dj["counts"].(map[string]any)["accounts"])
	dj = at("/api/v1/domains/"+dom, t2).JSON(t)
	require.Equal(t, float64(2), dj["version"])
	require.Equal(t, "Asia/Tokyo", dj["time_zone"])
	require.Equal(t, float64(1), dj["counts"].(map[string]any)["accounts"])
	at("/api/v1/domains/"+dom, beforeAll).Problem(t, http.StatusNotFound)

	a := at("/api/v1/accounts/"+addr, t2)
	require.Equal(t, http.StatusOK, a.Status, "%s", a.Body)
	aj := a.JSON(t)
	require.Equal(t, "Old name", aj["display_name"])
	require.Equal(t, float64(1000), aj["effective"].(map[string]any)["mail_quota_bytes"], "the COS as it was then")
	require.Equal(t, "cos:"+cos, aj["sources"].(map[string]any)["mail_quota_bytes"])
	require.Equal(t, "Asia/Tokyo", aj["effective"].(map[string]any)["time_zone"])
	now := e.Do(t, http.MethodGet, "/api/v1/accounts/"+addr, e.AdminToken, nil).JSON(t)
	require.Equal(t, "New name", now["display_name"])
	require.Equal(t, float64(2000), now["effective"].(map[string]any)["mail_quota_bytes"])
	at("/api/v1/accounts/"+addr, t1).Problem(t, http.StatusNotFound)

	require.Equal(t, []string{"as_of"}, e.Do(t, http.MethodGet, "/api/v1/accounts/"+addr+"?as_of=last-week", e.AdminToken, nil).FieldErrors(t))
}

func TestDeletionPreview(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	dom := e.CreateDomain(t, nil)
	elsewhere := e.CreateDomain(t, nil)
	a := e.CreateAccount(t, dom, nil)
	b := e.CreateAccount(t, dom, nil)
	require.Equal(t, http.StatusCreated, e.Do(t, http.MethodPost, "/api/v1/accounts/"+a+"/aliases", e.AdminToken, map[string]any{"alias": "x@" + dom}).Status)
	require.Equal(t, http.StatusCreated, e.Do(t, http.MethodPost, "/api/v1/accounts/"+a+"/aliases", e.AdminToken, map[string]any{"alias": "y@" + elsewhere}).Status)
	e.CreateAccount(t, elsewhere, nil)

	r := e.Do(t, http.MethodGet, "/api/v1/domains/"+dom+"/deletion-preview", e.AdminToken, nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.JSONEq(t, `{"domain":"`+dom+`","accounts":["`+min(a, b)+`","`+max(a, b)+`"],"aliases":["x@`+dom+`","y@`+elsewhere+`"],
		"lists":[],"resources":[],"virtual_hosts":[],"certificates":[],"gal_account":null,"removing":false,"next_cursor":null,
		"counts":{"accounts":2,"lists":0,"resources":0,"aliases":2,"virtual_hosts":0,"certificates":0}}`, string(r.Body))
	_, admin := e.User(t, dom, apitest.DomainAdmin)
	e.Do(t, http.MethodGet, "/api/v1/domains/"+dom+"/deletion-preview", admin, nil).Problem(t, http.StatusForbidden)
	e.Do(t, http.MethodGet, "/api/v1/domains/none.example/deletion-preview", e.AdminToken, nil).Problem(t, http.StatusNotFound)
}
