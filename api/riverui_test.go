package api_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"mailplane/api/apitest"
)

// River UI is served under /riverui/ to global admins only: by bearer token, or by the cookie
// login sets (a browser opening the page), with changes under the cookie only from the same
// origin.
func TestRiverUIIsForGlobalAdminsOnly(t *testing.T) {
	t.Parallel()
	e := apitest.NewWith(t, apitest.Options{RiverUI: true})
	dom := e.CreateDomain(t, nil)
	_, domainAdmin := e.User(t, dom, apitest.DomainAdmin)
	_, plain := e.User(t, dom, apitest.Plain)

	page := e.Do(t, http.MethodGet, "/riverui/", e.AdminToken, nil)
	require.Equal(t, http.StatusOK, page.Status, "%s", page.Body)
	require.Contains(t, page.Header.Get("Content-Type"), "text/html")
	require.Contains(t, string(page.Body), "River")
	jobs := e.Do(t, http.MethodGet, "/riverui/api/jobs?state=available", e.AdminToken, nil)
	require.Equal(t, http.StatusOK, jobs.Status, "%s", jobs.Body)
	require.Contains(t, jobs.JSON(t), "data")

	for _, path := range []string{"/riverui/", "/riverui/api/jobs?state=available", "/riverui/api/queues"} {
		p := e.Do(t, http.MethodGet, path, "", nil).Problem(t, http.StatusUnauthorized)
		require.Equal(t, "/problems/unauthenticated", p["type"])
		require.NotEmpty(t, e.Do(t, http.MethodGet, path, "", nil).Header.Get("WWW-Authenticate"))
		e.Do(t, http.MethodGet, path, "mpt_forged", nil).Problem(t, http.StatusUnauthorized)
		e.Do(t, http.MethodGet, path, domainAdmin, nil).Problem(t, http.StatusForbidden)
		e.Do(t, http.MethodGet, path, plain, nil).Problem(t, http.StatusForbidden)
	}
	// Cancelling is River UI's API too: refused to a domain admin before River sees it.
	e.Do(t, http.MethodPost, "/riverui/api/jobs/cancel", domainAdmin, map[string]any{"job_ids": []string{"1"}}).
		Problem(t, http.StatusForbidden)

	// The browser's way in: login sets the cookie for /riverui only.
	login := e.Do(t, http.MethodPost, "/api/v1/auth/login", "", map[string]any{"email": apitest.AdminEmail, "password": apitest.AdminPassword})
	require.Equal(t, http.StatusOK, login.Status)
	cookies := (&http.Response{Header: login.Header}).Cookies()
	require.Len(t, cookies, 1)
	c := cookies[0]
	require.Equal(t, "mailplane_session", c.Name)
	require.Equal(t, "/riverui", c.Path)
	require.True(t, c.HttpOnly)
	require.Equal(t, http.SameSiteStrictMode, c.SameSite)
	require.Equal(t, login.JSON(t)["token"], c.Value)
	cookie := c.Name + "=" + c.Value

	require.Equal(t, http.StatusOK, e.Do(t, http.MethodGet, "/riverui/api/queues", "", nil, "Cookie", cookie).Status)
	// The cookie does not make API calls.
	e.Do(t, http.MethodGet, "/api/v1/domains", "", nil, "Cookie", cookie).Problem(t, http.StatusUnauthorized)
	// A change sent with it from another site, or from nowhere said, is refused; from this
	// origin it reaches River UI (which finds no such job: not a refusal of ours).
	cancel := map[string]any{"job_ids": []string{"999999"}}
	e.Do(t, http.MethodPost, "/riverui/api/jobs/cancel", "", cancel, "Cookie", cookie).Problem(t, http.StatusForbidden)
	e.Do(t, http.MethodPost, "/riverui/api/jobs/cancel", "", cancel, "Cookie", cookie, "Sec-Fetch-Site", "cross-site").
		Problem(t, http.StatusForbidden)
	e.Do(t, http.MethodPost, "/riverui/api/jobs/cancel", "", cancel, "Cookie", cookie, "Origin", "http://evil.example").
		Problem(t, http.StatusForbidden)
	same := e.Do(t, http.MethodPost, "/riverui/api/jobs/cancel", "", cancel, "Cookie", cookie, "Sec-Fetch-Site", "same-origin")
	require.NotEqual(t, http.StatusForbidden, same.Status, "%s", same.Body)
	require.NotEqual(t, http.StatusUnauthorized, same.Status, "%s", same.Body)
	origin := e.Do(t, http.MethodPost, "/riverui/api/jobs/cancel", "", cancel, "Cookie", cookie,
		"Origin", e.URL)
	require.NotEqual(t, http.StatusForbidden, origin.Status, "%s", origin.Body)
	// A domain admin's cookie is still a domain admin's.
	e.Do(t, http.MethodGet, "/riverui/api/queues", "", nil, "Cookie", "mailplane_session="+domainAdmin).Problem(t, http.StatusForbidden)
}
