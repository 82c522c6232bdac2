package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"mailplane/migrations/testdb"
)

// serveChildEnv makes this test binary, run again, a `mailplane serve` listening on its value.
const serveChildEnv = "MAILPLANE_TEST_SERVE_CHILD"

// slowMachineTimeouts are the environment of the serve processes tests start: on CI's two
// CPUs, shared with every other package's tests, projections can take longer than the 5 s
// production bound to show a write, and a test's read after its write would get 503.
var slowMachineTimeouts = [2]string{"MAILPLANE_READ_YOUR_WRITES_TIMEOUT=60s", "MAILPLANE_REQUEST_TIMEOUT=2m"}

// TestServeChild is `mailplane serve` in a process of its own (this test binary run again with
// serveChildEnv set), so that a test can kill it with SIGKILL.
func TestServeChild(t *testing.T) {
	addr := os.Getenv(serveChildEnv)
	if addr == "" {
		t.Skip("runs only as a child process of TestImportSurvivesAKilledServe")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, []string{"serve", "--addr", addr}, os.Stdout, os.Stderr))
}

// serveChild is TestServeChild's process, not started yet: `mailplane serve` on addr with env.
func serveChild(addr string, env []string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^TestServeChild$", "-test.v")
	cmd.Env = slices.Concat(env, []string{serveChildEnv + "=" + addr})
	return cmd
}

// logIfFailed logs what (a child process's log) from the file at path when the test has failed.
func logIfFailed(t *testing.T, what, path string) {
	t.Helper()
	if t.Failed() {
		b, _ := os.ReadFile(path)
		t.Logf("%s:\n%s", what, b)
	}
}

// waitHealthy waits, two minutes at most, until the serve at base answers /healthz.
func waitHealthy(t *testing.T, base string) {
	t.Helper()
	require.Eventually(t, func() bool { code, _ := httpGet(base+"/healthz", ""); return code == http.StatusOK },
		2*time.Minute, 50*time.Millisecond)
}

// crashImportFile is a CSV of n rows with 37 bad ones (the lines returned): a malformed address,
// a wrong domain, a bad status, a bad quota, an address given twice, and the address of an
// existing account (taken), found only when applied.
func crashImportFile(dom string, n int, taken string) ([]byte, []int) {
	var b bytes.Buffer
	b.WriteString("address,display_name,status,mail_quota_bytes\n")
	var bad []int
	for i := range n {
		addr := fmt.Sprintf("user%05d@%s", i, dom)
		row := fmt.Sprintf("%s,User %d,active,%d\n", addr, i, 1<<20)
		if i%270 == 7 && i < 9900 {
			switch (i / 270) % 6 {
			case 0:
				row = fmt.Sprintf("user%05d@@%s,Bad,active,1\n", i, dom)
			case 1:
				row = fmt.Sprintf("user%05d@elsewhere.example,Wrong domain,active,1\n", i)
			case 2:
				row = fmt.Sprintf("%s,Bad status,sleeping,1\n", addr)
			case 3:
				row = fmt.Sprintf("%s,Bad quota,active,lots\n", addr)
			case 4:
				row = fmt.Sprintf("user%05d@%s,Duplicate,active,1\n", i-7, dom)
			case 5:
				row = fmt.Sprintf("%s,Taken,active,1\n", taken)
			}
			bad = append(bad, i+2) // line 1 is the header
		}
		b.WriteString(row)
	}
	return b.Bytes(), bad
}

// An import of 10,000 rows survives its `mailplane serve` being killed (SIGKILL) while the job
// runs: started again, the process finishes it with every valid row applied exactly once and
// the 37 bad ones reported by line; the same file sent again changes nothing.
func TestImportSurvivesAKilledServe(t *testing.T) {
	url := testdb.NewURL(t)
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	keyFile := filepath.Join(t.TempDir(), "master.key")
	require.NoError(t, os.WriteFile(keyFile, key, 0o600))
	t.Setenv("DATABASE_URL", url)
	t.Setenv("MAILPLANE_MASTER_KEY_FILE", keyFile)
	addr := freeAddr(t)
	base := "http://" + addr

	logs := filepath.Join(t.TempDir(), "serve.log")
	logFile, err := os.Create(logs)
	require.NoError(t, err)
	defer logFile.Close()
	start := func() *exec.Cmd {
		cmd := serveChild(addr, append(os.Environ(),
			"MAILPLANE_POLICY_ADDR=127.0.0.1:0", slowMachineTimeouts[0], slowMachineTimeouts[1],
			"MAILPLANE_LDAP_URL=", // the directory is not what this test is about
			// A killed attempt is handed on once its worker's timeout has passed, not minutes later.
			"MAILPLANE_RESCUE_STUCK_JOBS_AFTER=5s"))
		cmd.Stdout, cmd.Stderr = logFile, logFile
		require.NoError(t, cmd.Start())
		waitHealthy(t, base)
		return cmd
	}
	serve := start()
	defer func() {
		if serve.ProcessState == nil {
			_ = serve.Process.Kill()
			_ = serve.Wait()
		}
		logIfFailed(t, "serve's log", logs)
	}()

	dom := "crash-import.example"
	admin := "root@" + dom
	var out, errOut bytes.Buffer
	require.Equal(t, 0, run(context.Background(), []string{"admin", "bootstrap", "--email", admin, "--password", "root-password-1"}, &out, &errOut), errOut.String())

	call := func(method, path, token, contentType string, body []byte) (int, map[string]any) {
		req, err := http.NewRequest(method, base+path, bytes.NewReader(body))
		require.NoError(t, err)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		req.Header.Set("Content-Type", contentType)
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		var m map[string]any
		require.NoError(t, json.Unmarshal(b, &m), "%s %s: %d %s", method, path, res.StatusCode, b)
		return res.StatusCode, m
	}
	login, _ := json.Marshal(map[string]string{"email": admin, "password": "root-password-1"})
	var token string
	require.Eventually(t, func() bool { // the bootstrap's events reach the read models first
		status, m := call(http.MethodPost, "/api/v1/auth/login", "", "application/json", login)
		token, _ = m["token"].(string)
		return status == http.StatusOK
	}, time.Minute, 100*time.Millisecond)

	const rows = 10000
	file, bad := crashImportFile(dom, rows, admin)
	require.Len(t, bad, 37)
	status, body := call(http.MethodPost, "/api/v1/domains/"+dom+"/imports", token, "text/csv", file)
	require.Equal(t, http.StatusAccepted, status, "%v", body)
	id := body["import"].(map[string]any)["id"].(string)
	jobID := body["job"].(map[string]any)["id"]
	importPath := "/api/v1/domains/" + dom + "/imports/" + id

	// Killed while the job is under way: some rows applied, others still pending.
	require.Eventually(t, func() bool {
		_, m := call(http.MethodGet, importPath, token, "", nil)
		applied, _ := m["applied"].(float64)
		return applied >= 1000
	}, 5*time.Minute, 20*time.Millisecond)
	require.NoError(t, serve.Process.Signal(syscall.SIGKILL))
	_ = serve.Wait()

	ctx := context.Background()
	pool, err := pgxpool.New(ctx, url)
	require.NoError(t, err)
	defer pool.Close()
	var applied, pending int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE state = 'applied'), count(*) FILTER (WHERE state = 'pending')
		FROM import_rows WHERE import_id = $1`, id).Scan(&applied, &pending))
	require.Positive(t, pending, "the kill came after the job had finished: nothing shows it survives one")
	var state string
	require.NoError(t, pool.QueryRow(ctx, `SELECT state FROM river_job WHERE id = $1`, jobID).Scan(&state))
	require.Equal(t, "running", state, "the killed attempt is left running, for the rescuer")
	countEvents := func() int {
		var n int
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM events WHERE metadata->>'causation_id' = $1`, "import:"+id).Scan(&n))
		return n
	}
	require.Equal(t, applied, countEvents(), "each applied row has its event, no more, none half-written")
	t.Logf("killed with %d rows applied, %d pending", applied, pending)

	serve = start()
	require.Eventually(t, func() bool { // the login's session was in the killed process's database: it still holds
		_, m := call(http.MethodGet, importPath, token, "", nil)
		return m["state"] == "done"
	}, 5*time.Minute, 200*time.Millisecond)
	_, done := call(http.MethodGet, importPath, token, "", nil)
	require.Equal(t, float64(rows-37), done["applied"])
	require.Equal(t, float64(37), done["failed"])
	require.Equal(t, float64(0), done["pending"])
	var lines []int
	for _, p := range done["problems"].([]any) {
		lines = append(lines, int(p.(map[string]any)["line"].(float64)))
	}
	require.Equal(t, bad, lines)

	// Every valid row exactly once: one AccountCreated each, one claim each, one account each.
	require.Equal(t, rows-37, countEvents())
	var streams, dupStreams, claims int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(DISTINCT stream_id) FROM events WHERE metadata->>'causation_id' = $1`, "import:"+id).Scan(&streams))
	require.Equal(t, rows-37, streams)
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM (SELECT stream_id FROM events WHERE event_type = 'AccountCreated'
		AND stream_id LIKE 'account-user%' GROUP BY stream_id HAVING count(*) > 1) d`).Scan(&dupStreams))
	require.Zero(t, dupStreams)
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM address_claims WHERE domain = $1 AND kind = 'account'`, dom).Scan(&claims))
	require.Equal(t, rows-37+1, claims, "the imported accounts and the admin")
	require.Eventually(t, func() bool {
		var n int
		_ = pool.QueryRow(ctx, `SELECT count(*) FROM rm_accounts WHERE domain = $1 AND NOT deleted`, dom).Scan(&n)
		return n == rows-37+1
	}, 5*time.Minute, 100*time.Millisecond)
	require.NoError(t, pool.QueryRow(ctx, `SELECT state FROM river_job WHERE id = $1`, jobID).Scan(&state))
	require.Equal(t, "completed", state)

	// The same file again: the first import, and nothing new.
	var before, after, jobs int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&before))
	status, body = call(http.MethodPost, "/api/v1/domains/"+dom+"/imports", token, "text/csv", file)
	require.Equal(t, http.StatusAccepted, status, "%v", body)
	require.Equal(t, id, body["import"].(map[string]any)["id"])
	require.Equal(t, jobID, body["job"].(map[string]any)["id"])
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&after))
	require.Equal(t, before, after)
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE kind = 'import_accounts'`).Scan(&jobs))
	require.Equal(t, 1, jobs)

	require.NoError(t, serve.Process.Signal(syscall.SIGTERM))
	require.NoError(t, serve.Wait())
}
