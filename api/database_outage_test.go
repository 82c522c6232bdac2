package api_test

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"mailplane/api/apitest"
	"mailplane/migrations"
	"mailplane/migrations/pgcluster"
)

// privateCluster starts a PostgreSQL cluster of the test's own with a migrated database and
// returns it with the database's URL: the test stops it, which the shared server must never be.
func privateCluster(t *testing.T) (*pgcluster.Cluster, string) {
	t.Helper()
	// The server runs as the postgres user when the test runs as root: the folder must be
	// reachable by it (t.TempDir's are 0700).
	parent, err := os.MkdirTemp("", "mailplane-pg-")
	require.NoError(t, err)
	require.NoError(t, os.Chmod(parent, 0o755))
	t.Cleanup(func() { _ = os.RemoveAll(parent) })
	c, err := pgcluster.New(filepath.Join(parent, "data"))
	require.NoError(t, err)
	t.Cleanup(c.Remove)
	require.NoError(t, c.Start())
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, c.URL("postgres"))
	require.NoError(t, err)
	_, err = admin.Exec(ctx, "CREATE DATABASE mailplane")
	require.NoError(t, err)
	require.NoError(t, admin.Close(ctx))
	pool, err := pgxpool.New(ctx, c.URL("mailplane"))
	require.NoError(t, err)
	require.NoError(t, migrations.Up(ctx, pool, slog.New(slog.DiscardHandler)))
	pool.Close()
	return c, c.URL("mailplane")
}

// While PostgreSQL is away the API answers every request — reads, writes, logins — at once
// with 503 problem+json and a Retry-After (not a 500, not a hang), and once the server is back
// the same process serves again by itself: its pool reconnects and its projections resume (a
// write's answer waits for the read model, so a 201 and the read after it show the admin
// projection running again).
func TestDatabaseOutageAnswers503AndRecovers(t *testing.T) {
	t.Parallel()
	cluster, url := privateCluster(t)
	e := apitest.NewWith(t, apitest.Options{DatabaseURL: url})
	dom := e.CreateDomain(t, nil)
	before := e.CreateAccount(t, dom, nil)

	require.NoError(t, cluster.Stop())
	n := 0
	for _, rq := range []struct {
		method, path string
		body         any
	}{
		{http.MethodPost, "/api/v1/domains/" + dom + "/accounts", map[string]any{"local_part": "during"}},
		{http.MethodGet, "/api/v1/accounts/" + before, nil},
		{http.MethodPatch, "/api/v1/accounts/" + before, map[string]any{"display_name": "Changed while away"}},
		{http.MethodGet, "/api/v1/domains/" + dom + "/accounts", nil},
		{http.MethodPost, "/api/v1/domains", map[string]any{"name": apitest.Unique("away-") + ".test"}},
	} {
		for i := 0; i < 3; i++ { // the first on a pooled connection the shutdown ended, then new ones
			t0 := time.Now()
			r := e.Do(t, rq.method, rq.path, e.AdminToken, rq.body)
			took := time.Since(t0)
			p := r.Problem(t, http.StatusServiceUnavailable)
			require.Equal(t, "/problems/database-unavailable", p["type"], "%s %s: %v", rq.method, rq.path, p)
			secs, err := strconv.Atoi(r.Header.Get("Retry-After"))
			require.NoError(t, err, "%s %s: Retry-After %q", rq.method, rq.path, r.Header.Get("Retry-After"))
			require.Positive(t, secs)
			require.Less(t, took, 20*time.Second, "%s %s answered after %s: the request waited instead of answering", rq.method, rq.path, took)
			n++
		}
	}
	login := e.Do(t, http.MethodPost, "/api/v1/auth/login", "", map[string]any{"email": apitest.AdminEmail, "password": apitest.AdminPassword})
	require.Equal(t, "/problems/database-unavailable", login.Problem(t, http.StatusServiceUnavailable)["type"])
	require.NotEmpty(t, login.Header.Get("Retry-After"))

	require.NoError(t, cluster.Start())
	// The same server, no restart: the first requests may still find the server starting up
	// (503 too); then writes and reads succeed again.
	var created apitest.Response
	require.Eventually(t, func() bool {
		created = e.Do(t, http.MethodPost, "/api/v1/domains/"+dom+"/accounts", e.AdminToken, map[string]any{"local_part": "after"})
		if created.Status == http.StatusServiceUnavailable {
			require.NotEmpty(t, created.Header.Get("Retry-After"))
			return false
		}
		return true
	}, 90*time.Second, 200*time.Millisecond)
	require.Equal(t, http.StatusCreated, created.Status, "%s", created.Body)
	r := e.Do(t, http.MethodGet, "/api/v1/accounts/after@"+dom, e.AdminToken, nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	r = e.Do(t, http.MethodGet, "/api/v1/accounts/"+before, e.AdminToken, nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.NotEqual(t, "Changed while away", r.JSON(t)["display_name"], "a refused PATCH changed nothing")
	r = e.Do(t, http.MethodGet, "/api/v1/domains/"+dom+"/accounts", e.AdminToken, nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	var during int
	require.NoError(t, e.Pool.QueryRow(context.Background(), `SELECT count(*) FROM rm_accounts WHERE address = $1`, "during@"+dom).Scan(&during))
	require.Zero(t, during, "a refused create left nothing")
	t.Logf("%d requests refused with 503 while PostgreSQL was away", n)
}
