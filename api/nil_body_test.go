package api_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"mailplane/api/apitest"
)

// A request made in process (the web panel calls the API's handler directly) may have a nil
// Body, which net/http's server never hands over: a DELETE of a domain without one panicked
// (500) instead of being served.
func TestInProcessRequestWithoutBody(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	dom := e.CreateDomain(t, nil)
	req, err := http.NewRequest(http.MethodDelete, "/api/v1/domains/"+dom, nil)
	require.NoError(t, err)
	require.Nil(t, req.Body)
	req.Header.Set("Authorization", "Bearer "+e.AdminToken)
	w := httptest.NewRecorder()
	e.Server.Handler().ServeHTTP(w, req)
	require.Less(t, w.Code, 500, "%s", w.Body)
}
