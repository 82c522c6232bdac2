package api_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"mailplane/api/apitest"
)

func vhostsPath(d string) string      { return "/api/v1/domains/" + d + "/virtual-hosts" }
func vhostPath(d, host string) string { return vhostsPath(d) + "/" + host }
func certPath(d, host string) string  { return vhostPath(d, host) + "/certificate" }
func addHost(t *testing.T, e *apitest.Env, token, d, host string) map[string]any {
	t.Helper()
	r := e.Do(t, http.MethodPost, vhostsPath(d), token, map[string]any{"host": host})
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	return r.JSON(t)
}

// Virtual hosts are added, listed, shown and removed by the domain's administrators; a name is
// unique across all domains, follows the domain name rules, and shows in the deletion preview.
func TestVirtualHosts(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	dom := e.CreateDomain(t, nil)
	other := e.CreateDomain(t, nil)
	_, admin := e.User(t, dom, apitest.DomainAdmin)
	_, otherAdmin := e.User(t, other, apitest.DomainAdmin)
	_, plain := e.User(t, dom, apitest.Plain)

	host := "Mail." + strings.ToUpper(dom)
	v := addHost(t, e, admin, dom, host)
	require.Equal(t, "mail."+dom, v["host"])
	require.Equal(t, dom, v["domain"])
	require.Equal(t, float64(1), v["version"])
	cert := v["certificate"].(map[string]any)
	require.Equal(t, "none", cert["status"])
	require.Nil(t, cert["source"])
	require.Nil(t, cert["not_after"])

	r := e.Do(t, http.MethodPost, vhostsPath(dom), admin, map[string]any{"host": "webmail.bücher-" + dom})
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	idn := r.JSON(t)
	require.True(t, strings.HasPrefix(idn["host"].(string), "webmail.xn--"), "%v", idn["host"])
	require.Equal(t, "/api/v1/domains/"+dom+"/virtual-hosts/"+idn["host"].(string), r.Header.Get("Location"))

	list := e.Do(t, http.MethodGet, vhostsPath(dom), admin, nil)
	require.Equal(t, http.StatusOK, list.Status, "%s", list.Body)
	items := list.JSON(t)["items"].([]any)
	require.Len(t, items, 2)
	require.Len(t, e.Do(t, http.MethodGet, vhostsPath(dom)+"?q=webmail", admin, nil).JSON(t)["items"], 1)
	got := e.Do(t, http.MethodGet, vhostPath(dom, "MAIL."+dom), admin, nil)
	require.Equal(t, http.StatusOK, got.Status, "%s", got.Body)
	require.Equal(t, `"1"`, got.Header.Get("ETag"))

	// Unique across domains; the other domain's admin is not told whose it is.
	portal := apitest.Unique("portal") + ".example.net"
	addHost(t, e, admin, dom, portal)
	p := e.Do(t, http.MethodPost, vhostsPath(other), otherAdmin, map[string]any{"host": portal}).Problem(t, http.StatusConflict)
	require.Contains(t, p["detail"], "another domain")
	require.NotContains(t, p["detail"], dom)
	e.Do(t, http.MethodPost, vhostsPath(dom), admin, map[string]any{"host": "mail." + dom}).Problem(t, http.StatusConflict)
	// Another domain's name (or a name under it) belongs to that tenant.
	require.Equal(t, []string{"host"}, e.Do(t, http.MethodPost, vhostsPath(dom), admin, map[string]any{"host": "www." + other}).FieldErrors(t))
	require.Equal(t, []string{"host"}, e.Do(t, http.MethodPost, vhostsPath(dom), admin, map[string]any{"host": other}).FieldErrors(t))
	addHost(t, e, admin, dom, dom) // its own name is fine
	for _, bad := range []string{"", "no-dot", "bad..name", "-x-." + dom, "a_b." + dom, "10.0.0.1"} {
		require.Equal(t, []string{"host"}, e.Do(t, http.MethodPost, vhostsPath(dom), admin, map[string]any{"host": bad}).FieldErrors(t), bad)
	}
	e.Do(t, http.MethodPost, vhostsPath(dom), admin, map[string]any{"hostname": "x." + dom}).Problem(t, http.StatusBadRequest)

	// Who may.
	e.Do(t, http.MethodGet, vhostsPath(dom), otherAdmin, nil).Problem(t, http.StatusForbidden)
	e.Do(t, http.MethodGet, vhostsPath(dom), plain, nil).Problem(t, http.StatusForbidden)
	e.Do(t, http.MethodPost, vhostsPath(dom), plain, map[string]any{"host": "x." + dom}).Problem(t, http.StatusForbidden)
	e.Do(t, http.MethodGet, vhostPath(dom, "nope."+dom), admin, nil).Problem(t, http.StatusNotFound)
	e.Do(t, http.MethodGet, vhostsPath("nope.example"), e.AdminToken, nil).Problem(t, http.StatusNotFound)

	preview := e.Do(t, http.MethodGet, "/api/v1/domains/"+dom+"/deletion-preview", e.AdminToken, nil).JSON(t)
	require.Equal(t, []any{dom, "mail." + dom, portal, idn["host"]}, preview["virtual_hosts"])

	// Removed, the name is free for another domain.
	e.Do(t, http.MethodDelete, vhostPath(dom, portal), admin, nil, "If-Match", `"7"`).Problem(t, http.StatusPreconditionFailed)
	require.Equal(t, http.StatusNoContent, e.Do(t, http.MethodDelete, vhostPath(dom, portal), admin, nil, "If-Match", `"1"`).Status)
	e.Do(t, http.MethodGet, vhostPath(dom, portal), admin, nil).Problem(t, http.StatusNotFound)
	e.Do(t, http.MethodDelete, vhostPath(dom, portal), admin, nil).Problem(t, http.StatusNotFound)
	addHost(t, e, otherAdmin, other, portal)
	preview = e.Do(t, http.MethodGet, "/api/v1/domains/"+dom+"/deletion-preview", e.AdminToken, nil).JSON(t)
	require.Equal(t, []any{dom, "mail." + dom, idn["host"]}, preview["virtual_hosts"])

	// History shows the events: four added, one removed.
	h := e.Do(t, http.MethodGet, "/api/v1/domains/"+dom+"/history?type=VirtualHostAdded,VirtualHostRemoved", admin, nil)
	require.Equal(t, http.StatusOK, h.Status, "%s", h.Body)
	require.Len(t, h.JSON(t)["items"], 5)
}

// Two domains racing for one host name: exactly one gets it.
func TestVirtualHostClaimRace(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	doms := []string{e.CreateDomain(t, nil), e.CreateDomain(t, nil), e.CreateDomain(t, nil), e.CreateDomain(t, nil)}
	for round := 0; round < 5; round++ {
		host := apitest.Unique("race") + ".example.net"
		statuses := make([]int, len(doms))
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, d := range doms {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				statuses[i] = e.Do(t, http.MethodPost, vhostsPath(d), e.AdminToken, map[string]any{"host": host}).Status
			}()
		}
		close(start)
		wg.Wait()
		created := 0
		for _, s := range statuses {
			switch s {
			case http.StatusCreated:
				created++
			case http.StatusConflict:
			default:
				t.Fatalf("round %d: %v", round, statuses)
			}
		}
		require.Equal(t, 1, created, "round %d: %v", round, statuses)
		var claims int
		require.NoError(t, e.Pool.QueryRow(t.Context(), `SELECT count(*) FROM virtual_host_claims WHERE host = $1`, host).Scan(&claims))
		require.Equal(t, 1, claims)
	}
}
