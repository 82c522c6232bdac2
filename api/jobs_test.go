package api_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"mailplane/api/apitest"
	"mailplane/workers"
)

// A job started for a domain shows at /api/v1/jobs/{id} to global admins, to that domain's
// admins and to whoever asked for it, with its state and progress.
func TestJobsShowStateAndProgressToWhoMaySeeThem(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	ctx := context.Background()
	dom := e.CreateDomain(t, nil)
	other := e.CreateDomain(t, nil)
	adminAddr, domainAdmin := e.User(t, dom, apitest.DomainAdmin)
	_, otherAdmin := e.User(t, other, apitest.DomainAdmin)
	_, plain := e.User(t, dom, apitest.Plain)

	client, err := workers.NewClient(e.Pool, slog.New(slog.NewTextHandler(io.Discard, nil)), workers.Config{}, false)
	require.NoError(t, err)
	tx, err := e.Pool.Begin(ctx)
	require.NoError(t, err)
	row, err := workers.Enqueue(ctx, tx, client, workers.SendEmailArgs{To: []string{"x@" + dom}, Subject: "s", Body: "b"}, nil,
		workers.JobMeta{Domain: dom, RequestedBy: adminAddr})
	require.NoError(t, err)
	require.NoError(t, tx.Commit(ctx))
	require.NoError(t, workers.SetProgress(ctx, e.Pool, row.ID, 3, 10))
	path := fmt.Sprintf("/api/v1/jobs/%d", row.ID)

	r := e.Do(t, http.MethodGet, path, e.AdminToken, nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	job := r.JSON(t)
	require.Equal(t, "send_email", job["kind"])
	require.Equal(t, "queued", job["state"])
	require.Equal(t, map[string]any{"done": float64(3), "total": float64(10)}, job["progress"])
	require.Nil(t, job["finished_at"])
	require.Equal(t, http.StatusOK, e.Do(t, http.MethodGet, path, domainAdmin, nil).Status)
	e.Do(t, http.MethodGet, path, otherAdmin, nil).Problem(t, http.StatusForbidden)
	e.Do(t, http.MethodGet, path, plain, nil).Problem(t, http.StatusForbidden)
	e.Do(t, http.MethodGet, "/api/v1/jobs/999999", e.AdminToken, nil).Problem(t, http.StatusNotFound)
	e.Do(t, http.MethodGet, "/api/v1/jobs/nope", e.AdminToken, nil).Problem(t, http.StatusNotFound)

	_, err = e.Pool.Exec(ctx, `UPDATE river_job SET state = 'discarded', finalized_at = now(),
		errors = ARRAY['{"at":"2026-12-01T00:00:00Z","attempt":1,"error":"smtp down","trace":""}'::jsonb] WHERE id = $1`, row.ID)
	require.NoError(t, err)
	job = e.Do(t, http.MethodGet, path, e.AdminToken, nil).JSON(t)
	require.Equal(t, "failed", job["state"])
	require.Equal(t, []any{"smtp down"}, job["errors"])
	require.NotNil(t, job["finished_at"])

	// Failed once and due again soon: River keeps it available, the API says retrying.
	_, err = e.Pool.Exec(ctx, `UPDATE river_job SET state = 'available', finalized_at = NULL WHERE id = $1`, row.ID)
	require.NoError(t, err)
	require.Equal(t, "retrying", e.Do(t, http.MethodGet, path, e.AdminToken, nil).JSON(t)["state"])
	// A worker that gave up for good (river.JobCancel) failed the job; a cancel from outside
	// leaves no such error and is a cancel.
	_, err = e.Pool.Exec(ctx, `UPDATE river_job SET state = 'cancelled', finalized_at = now(),
		errors = ARRAY['{"at":"2026-12-01T00:00:00Z","attempt":1,"error":"JobCancelError: the CA refused","trace":""}'::jsonb] WHERE id = $1`, row.ID)
	require.NoError(t, err)
	job = e.Do(t, http.MethodGet, path, e.AdminToken, nil).JSON(t)
	require.Equal(t, "failed", job["state"])
	require.Equal(t, []any{"the CA refused"}, job["errors"])
	_, err = e.Pool.Exec(ctx, `UPDATE river_job SET errors = '{}' WHERE id = $1`, row.ID)
	require.NoError(t, err)
	require.Equal(t, "cancelled", e.Do(t, http.MethodGet, path, e.AdminToken, nil).JSON(t)["state"])
}

// /metrics counts the jobs per kind and state, and the runs this process worked per kind and
// outcome with their durations: a mail sent, and a mail whose relay is down (tried again).
func TestJobMetricsPerKind(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := apitest.NewWith(t, apitest.Options{Workers: &apitest.Workers{}})
	down := apitest.NewWith(t, apitest.Options{Workers: &apitest.Workers{SMTPAddr: "127.0.0.1:1"}})
	dom := e.CreateDomain(t, nil)

	enqueue := func(env *apitest.Env) int64 {
		tx, err := env.Pool.Begin(ctx)
		require.NoError(t, err)
		row, err := workers.Enqueue(ctx, tx, env.Jobs, workers.SendEmailArgs{To: []string{"m@" + dom}, Subject: "metrics", Body: "b"},
			nil, workers.JobMeta{Domain: dom})
		require.NoError(t, err)
		require.NoError(t, tx.Commit(ctx))
		return row.ID
	}
	state := func(env *apitest.Env, id int64) string {
		return env.Do(t, http.MethodGet, fmt.Sprintf("/api/v1/jobs/%d", id), env.AdminToken, nil).JSON(t)["state"].(string)
	}
	sent, failing := enqueue(e), enqueue(down)
	require.Eventually(t, func() bool { return state(e, sent) == "succeeded" }, 20*time.Second, 20*time.Millisecond)
	require.Eventually(t, func() bool { return state(down, failing) == "retrying" }, 20*time.Second, 20*time.Millisecond)

	metrics := func(env *apitest.Env) string {
		r := env.Do(t, http.MethodGet, "/metrics", "", nil)
		require.Equal(t, http.StatusOK, r.Status)
		return string(r.Body)
	}
	m := metrics(e)
	require.Contains(t, m, `mailplane_jobs_status_up 1`)
	require.Contains(t, m, `mailplane_jobs{kind="send_email",state="succeeded"} 1`)
	require.Contains(t, m, `mailplane_jobs{kind="send_email",state="queued"} 0`)
	require.Contains(t, m, `mailplane_jobs{kind="send_email",state="failed"} 0`)
	require.Contains(t, m, `mailplane_job_runs_total{kind="send_email",outcome="succeeded"} 1`)
	require.Contains(t, m, `mailplane_job_run_duration_seconds_count{kind="send_email",outcome="succeeded"} 1`)

	m = metrics(down)
	require.Contains(t, m, `mailplane_jobs{kind="send_email",state="retrying"} 1`)
	require.Contains(t, m, `mailplane_jobs{kind="send_email",state="succeeded"} 0`)
	require.Contains(t, m, `mailplane_job_runs_total{kind="send_email",outcome="errored"} 1`)
	require.NotContains(t, m, `mailplane_job_runs_total{kind="send_email",outcome="succeeded"}`)
}
