package api_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"mailplane/api/apitest"
	"mailplane/projections/postgres"
)

// A projection stopped on lost order shows in GET /projections with its reason; writes answer
// at once that the read models are stopped instead of waiting out the read-your-writes bound;
// only the event it stopped at may be skipped, by a global admin, and the projection then runs
// on.
func TestProjectionsEndpointsShowAndResumeAStop(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	ctx := context.Background()
	_, plain := e.User(t, e.CreateDomain(t, nil), apitest.Plain)

	r := e.Do(t, http.MethodGet, "/api/v1/projections", e.AdminToken, nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	var list []map[string]any
	r.Decode(t, &list)
	require.Len(t, list, 2)
	require.Equal(t, postgres.AdminName, list[0]["name"])
	require.Equal(t, postgres.GALEntriesName, list[1]["name"])
	require.Equal(t, "running", list[0]["state"])
	require.Nil(t, list[0]["stopped"])
	e.Do(t, http.MethodGet, "/api/v1/projections", plain, nil).Problem(t, http.StatusForbidden)

	// Someone with the database writes version 2 of a domain stream without version 1.
	var pos int64
	require.NoError(t, e.Pool.QueryRow(ctx, `INSERT INTO events (stream_id, stream_type, stream_version, domain,
		event_type, data, recorded_at, prev_hash, hash) VALUES ('domain-gap.example', 'domain', 2, 'gap.example',
		'DomainUpdated', '{"name":"gap.example"}', now(), '', '') RETURNING position`).Scan(&pos))
	var stopped map[string]any
	require.Eventually(t, func() bool {
		r := e.Do(t, http.MethodGet, "/api/v1/projections", e.AdminToken, nil)
		r.Decode(t, &list)
		stopped, _ = list[0]["stopped"].(map[string]any)
		return list[0]["state"] == "stopped"
	}, 30*time.Second, 20*time.Millisecond)
	require.Equal(t, float64(pos), stopped["position"])
	require.Equal(t, "domain-gap.example", stopped["stream"])
	require.Contains(t, stopped["reason"], "version gap")

	start := time.Now()
	w := e.Do(t, http.MethodPost, "/api/v1/domains", e.AdminToken, map[string]any{"name": apitest.Unique("d") + ".example"})
	p := w.Problem(t, http.StatusServiceUnavailable)
	require.Equal(t, "/problems/projection-stopped", p["type"])
	require.Contains(t, p["detail"], postgres.AdminName)
	require.Less(t, time.Since(start), 4*time.Second, "no waiting out the read-your-writes bound")

	e.Do(t, http.MethodPost, "/api/v1/projections/"+postgres.AdminName+"/resume", plain, map[string]any{}).Problem(t, http.StatusForbidden)
	e.Do(t, http.MethodPost, "/api/v1/projections/nope/resume", e.AdminToken, nil).Problem(t, http.StatusNotFound)
	e.Do(t, http.MethodPost, "/api/v1/projections/"+postgres.AdminName+"/resume", e.AdminToken,
		map[string]any{"skip_position": pos - 1}).Problem(t, http.StatusConflict)

	r = e.Do(t, http.MethodPost, "/api/v1/projections/"+postgres.AdminName+"/resume", e.AdminToken,
		map[string]any{"skip_position": pos})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Equal(t, "running", r.JSON(t)["state"])
	e.Do(t, http.MethodPost, "/api/v1/projections/"+postgres.AdminName+"/resume", e.AdminToken, nil).Problem(t, http.StatusConflict)

	// It runs on.
	var actor string
	require.NoError(t, e.Pool.QueryRow(ctx, `SELECT actor FROM projection_actions WHERE projection = $1 AND action = 'resume'`,
		postgres.AdminName).Scan(&actor))
	require.Equal(t, fmt.Sprintf("api:%s", apitest.AdminEmail), actor)
	require.Equal(t, http.StatusCreated, e.Do(t, http.MethodPost, "/api/v1/domains", e.AdminToken,
		map[string]any{"name": apitest.Unique("d") + ".example"}).Status)
}
