package api_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"mailplane/api"
	"mailplane/api/apitest"
)

// A write whose read models do not catch up within the configured bound is answered 503
// read-model-behind, naming that bound, and the write is kept (a retry is not a second one).
func TestReadYourWritesBoundIsTheConfiguredOne(t *testing.T) {
	e := apitest.NewWith(t, apitest.Options{Config: api.Config{ReadYourWritesTimeout: 700 * time.Millisecond}})
	e.StopProjections()
	name := apitest.Unique("d") + ".example"
	w := e.Do(t, http.MethodPost, "/api/v1/domains", e.AdminToken, map[string]any{"name": name})
	p := w.Problem(t, http.StatusServiceUnavailable)
	require.Equal(t, "/problems/read-model-behind", p["type"])
	require.Contains(t, p["detail"], "within 700ms")
	require.Equal(t, "1", w.Header.Get("Retry-After"))

	var n int
	require.NoError(t, e.Pool.QueryRow(t.Context(),
		`SELECT count(*) FROM events WHERE event_type = 'DomainCreated' AND data->>'name' = $1`, name).Scan(&n))
	require.Equal(t, 1, n, "the write is recorded")
}
