package api_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"mailplane/api"
	"mailplane/api/apitest"
)

// Every request is bounded: one that runs out of time answers 503 (a problem), not a hang or
// a 500, and changes nothing.
func TestRequestTimeout(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	slow := api.NewServer(e.Server.Deps, api.Config{RequestTimeout: time.Microsecond})

	name := apitest.Unique("late") + ".example"
	quick := e.WithHandler(t, slow.Handler())
	r := quick.Do(t, http.MethodPost, "/api/v1/domains", e.AdminToken, map[string]any{"name": name})
	p := r.Problem(t, http.StatusServiceUnavailable)
	require.Equal(t, "/problems/timeout", p["type"])
	require.NotEmpty(t, r.Header.Get("Retry-After"))
	e.Do(t, http.MethodGet, "/api/v1/domains/"+name, e.AdminToken, nil).Problem(t, http.StatusNotFound)
}
