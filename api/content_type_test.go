package api_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"mailplane/api/apitest"
)

// A request body that does not say it is JSON is refused with 415 before anything reads it:
// nothing changes, nothing is appended. Requests without a body need no Content-Type.
func TestRequestBodiesMustBeJSON(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	dom := e.CreateDomain(t, map[string]any{"description": "before"})
	addr := e.CreateAccount(t, dom, nil)
	domainBefore := e.Do(t, http.MethodGet, "/api/v1/domains/"+dom, e.AdminToken, nil)
	require.Equal(t, http.StatusOK, domainBefore.Status)
	accountBefore := e.Do(t, http.MethodGet, "/api/v1/accounts/"+addr, e.AdminToken, nil)
	require.Equal(t, http.StatusOK, accountBefore.Status)
	configBefore := e.Do(t, http.MethodGet, "/api/v1/config", e.AdminToken, nil)
	require.Equal(t, http.StatusOK, configBefore.Status)
	head, err := e.Store.Head(t.Context())
	require.NoError(t, err)
	newDomain := apitest.Unique("refused") + ".example"

	for _, c := range []struct {
		name, method, path, contentType, body string
	}{
		{"CreateAsText", http.MethodPost, "/api/v1/domains", "text/plain", `{"name":"` + newDomain + `"}`},
		{"CreateWithoutMediaType", http.MethodPost, "/api/v1/domains", "", `{"name":"` + newDomain + `"}`},
		{"CreateAsProblem", http.MethodPost, "/api/v1/domains", "application/problem+json", `{"name":"` + newDomain + `"}`},
		{"CreateInLatin1", http.MethodPost, "/api/v1/domains", "application/json; charset=iso-8859-1", `{"name":"` + newDomain + `"}`},
		{"MalformedMediaType", http.MethodPost, "/api/v1/domains", "application/json; charset", `{"name":"` + newDomain + `"}`},
		{"MergePatchIsForPatch", http.MethodPost, "/api/v1/domains", "application/merge-patch+json", `{"name":"` + newDomain + `"}`},
		{"AccountAsForm", http.MethodPost, "/api/v1/domains/" + dom + "/accounts", "application/x-www-form-urlencoded", "local_part=formed"},
		{"PatchDomainAsJSONPatch", http.MethodPatch, "/api/v1/domains/" + dom, "application/json-patch+json", `[{"op":"replace","path":"/description","value":"after"}]`},
		{"PatchAccountAsText", http.MethodPatch, "/api/v1/accounts/" + addr, "text/plain", `{"display_name":"after"}`},
		{"PatchConfigAsXML", http.MethodPatch, "/api/v1/config", "application/xml", `<time_zone>Europe/Rome</time_zone>`},
		{"CloseWithTextBody", http.MethodPost, "/api/v1/domains/" + dom + "/close", "text/plain", "please"},
		{"DeleteWithTextBody", http.MethodDelete, "/api/v1/accounts/" + addr, "text/plain", "please"},
		{"LoginAsText", http.MethodPost, "/api/v1/auth/login", "text/plain", `{"email":"` + apitest.AdminEmail + `","password":"` + apitest.AdminPassword + `"}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := e.Do(t, c.method, c.path, e.AdminToken, c.body, "Content-Type", c.contentType)
			p := r.Problem(t, http.StatusUnsupportedMediaType)
			require.Equal(t, "/problems/unsupported-media-type", p["type"])
			require.Equal(t, "application/json", r.Header.Get("Accept"))
			if c.method == http.MethodPatch {
				require.Equal(t, "application/merge-patch+json, application/json", r.Header.Get("Accept-Patch"))
			}
		})
	}

	after, err := e.Store.Head(t.Context())
	require.NoError(t, err)
	require.Equal(t, head, after, "a refused request appends nothing")
	e.Do(t, http.MethodGet, "/api/v1/domains/"+newDomain, e.AdminToken, nil).Problem(t, http.StatusNotFound)
	e.Do(t, http.MethodGet, "/api/v1/accounts/formed@"+dom, e.AdminToken, nil).Problem(t, http.StatusNotFound)
	for path, before := range map[string]apitest.Response{
		"/api/v1/domains/" + dom: domainBefore, "/api/v1/accounts/" + addr: accountBefore, "/api/v1/config": configBefore,
	} {
		now := e.Do(t, http.MethodGet, path, e.AdminToken, nil)
		require.Equal(t, http.StatusOK, now.Status)
		require.JSONEq(t, string(before.Body), string(now.Body), "%s is unchanged", path)
		require.Equal(t, before.Header.Get("ETag"), now.Header.Get("ETag"))
	}

	t.Run("JSONWithParametersAndAnyCase", func(t *testing.T) {
		r := e.Do(t, http.MethodPost, "/api/v1/domains", e.AdminToken, map[string]any{"name": apitest.Unique("cs") + ".example"},
			"Content-Type", "Application/JSON; charset=UTF-8")
		require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	})
	t.Run("MergePatch", func(t *testing.T) {
		r := e.Do(t, http.MethodPatch, "/api/v1/domains/"+dom, e.AdminToken, `{"description":"merged"}`,
			"Content-Type", "application/merge-patch+json")
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		require.Equal(t, "merged", r.JSON(t)["description"])
	})
	t.Run("NoBodyNeedsNoMediaType", func(t *testing.T) {
		r := e.Do(t, http.MethodPost, "/api/v1/domains/"+dom+"/close", e.AdminToken, nil)
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		require.Equal(t, "closed", r.JSON(t)["status"])
		r = e.Do(t, http.MethodDelete, "/api/v1/accounts/"+addr, e.AdminToken, nil)
		require.Equal(t, http.StatusNoContent, r.Status, "%s", r.Body)
	})
}
