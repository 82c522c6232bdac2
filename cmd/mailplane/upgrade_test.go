package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"mailplane/domain"
	"mailplane/eventstore"
	"mailplane/migrations/testdb"
	"mailplane/projections"
	"mailplane/projections/ldap/ldaptest"
	"mailplane/projections/postgres"
)

// upgradeOldBinEnv names the mailplane binary of an older commit for TestRollingUpgrade
// (scripts/upgrade.sh builds it: go tool task upgrade).
const upgradeOldBinEnv = "MAILPLANE_UPGRADE_OLD_BIN"

// A rolling upgrade with real binaries: a serve of an older commit (one that predates the TOTP
// events, scripts/upgrade.sh) runs the projections; a serve of this commit on the same database
// takes the writes, among them a TOTP enrolment. The old one stops its projections at that event
// instead of skipping it; killed, the new one takes over once an operator resumes them, and
// converges. Building the old binary takes a minute or more, so it runs in go tool task upgrade,
// not in CI; TestRollingUpgradeInProcess is CI's cheap variant.
func TestRollingUpgrade(t *testing.T) {
	oldBin := os.Getenv(upgradeOldBinEnv)
	if oldBin == "" {
		t.Skip(upgradeOldBinEnv + " is not set (go tool task upgrade builds an old binary and sets it)")
	}
	u := newUpgrade(t)
	dir := ldaptest.New(t)
	u.env = append(u.env, "MAILPLANE_LDAP_BASE_DN="+dir.Base)
	oldAddr := freeAddr(t)
	old := exec.Command(oldBin, "serve", "--addr", oldAddr)
	old.Env = u.env
	oldLog := u.logTo(t, old, "old-serve.log")
	require.NoError(t, old.Start())
	defer func() {
		if old.ProcessState == nil {
			_ = old.Process.Kill()
			_ = old.Wait()
		}
		logIfFailed(t, "the old serve's log", oldLog)
	}()
	u.waitReady(t, "http://"+oldAddr, http.StatusOK)
	u.rebuildAfter = true
	// The LDAP projection keeps its checkpoint in the directory (no lease row): readyz covers it.
	u.holders = func() []string { return []string{postgres.AdminName, postgres.GALEntriesName} }
	u.startNew(t)
	u.run(t, "http://"+oldAddr, func() {
		require.NoError(t, old.Process.Signal(syscall.SIGKILL))
		_ = old.Wait()
	})
}

// The same in one process for CI: the old release is a projection runner whose registry lacks
// the TOTP events (as the commit before them did), holding the projections' locks; the new one
// is serve.
func TestRollingUpgradeInProcess(t *testing.T) {
	u := newUpgrade(t)
	u.env = append(u.env, "MAILPLANE_LDAP_URL=") // the old runner here runs the Postgres projections only
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pool, err := pgxpool.New(ctx, u.url)
	require.NoError(t, err)
	defer pool.Close()
	var evs []eventstore.Event
	for _, e := range domain.Events() {
		if !strings.HasPrefix(e.EventType(), "TOTP") {
			evs = append(evs, e)
		}
	}
	require.Less(t, len(evs), len(domain.Events()))
	oldReg, err := eventstore.NewRegistry(evs, nil)
	require.NoError(t, err)
	runner, err := projections.NewRunner(pool, oldReg, slog.New(slog.DiscardHandler), projections.Config{},
		postgres.NewAdmin(oldReg), postgres.NewGALEntries(oldReg, eventstore.NewPostgres(pool, oldReg)))
	require.NoError(t, err)
	done := make(chan struct{})
	go func() { defer close(done); _ = runner.Run(ctx) }()
	require.Eventually(t, func() bool {
		for _, s := range runner.Status() {
			if !s.Active {
				return false
			}
		}
		return true
	}, time.Minute, 10*time.Millisecond, "the old runner holds the projections")
	u.holders = func() []string { return []string{postgres.AdminName, postgres.GALEntriesName} }
	u.startNew(t)
	u.run(t, "", func() { cancel(); <-done })
}

type upgrade struct {
	url     string
	env     []string
	newBase string
	newCmd  *exec.Cmd
	// holders names the projections the old process runs.
	holders func() []string
	// rebuildAfter: the old release's rows may lack members its event types have gained since;
	// rebuild postgres after the upgrade (docs/operations.md, "Rolling upgrades").
	rebuildAfter bool
}

func newUpgrade(t *testing.T) *upgrade {
	url := testdb.NewURL(t)
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	keyFile := filepath.Join(t.TempDir(), "master.key")
	require.NoError(t, os.WriteFile(keyFile, key, 0o600))
	t.Setenv("DATABASE_URL", url)
	t.Setenv("MAILPLANE_MASTER_KEY_FILE", keyFile)
	return &upgrade{url: url, env: append(os.Environ(), "DATABASE_URL="+url, "MAILPLANE_MASTER_KEY_FILE="+keyFile,
		"MAILPLANE_POLICY_ADDR=127.0.0.1:0", slowMachineTimeouts[0], slowMachineTimeouts[1])}
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

func (u *upgrade) logTo(t *testing.T, cmd *exec.Cmd, name string) string {
	path := filepath.Join(t.TempDir(), name)
	f, err := os.Create(path)
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	cmd.Stdout, cmd.Stderr = f, f
	return path
}

func (u *upgrade) waitReady(t *testing.T, base string, want int) {
	t.Helper()
	var body []byte
	require.Eventually(t, func() bool {
		var code int
		code, body = httpGet(base+"/readyz", "")
		return code == want
	}, 2*time.Minute, 100*time.Millisecond, "%s/readyz: want %d: %s", base, want, body)
}

func httpGet(url, token string) (int, []byte) {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

// startNew starts this commit's serve (this test binary as TestServeChild): it migrates the
// database further while the old process runs, and waits for the projections' locks.
func (u *upgrade) startNew(t *testing.T) {
	addr := freeAddr(t)
	u.newBase = "http://" + addr
	u.newCmd = serveChild(addr, u.env)
	logs := u.logTo(t, u.newCmd, "new-serve.log")
	require.NoError(t, u.newCmd.Start())
	t.Cleanup(func() {
		_ = u.newCmd.Process.Signal(syscall.SIGTERM)
		_ = u.newCmd.Wait()
		logIfFailed(t, "the new serve's log", logs)
	})
	waitHealthy(t, u.newBase)
}

func (u *upgrade) post(t *testing.T, path, token string, body any) (int, []byte) {
	b, _ := json.Marshal(body)
	req, err := http.NewRequest(http.MethodPost, u.newBase+path, bytes.NewReader(b))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	return res.StatusCode, out
}

// run writes through the new process — a domain, an account, then a TOTP enrolment, which the
// old release does not know, then more — and checks that the old process's projections stopped
// at the enrolment with nothing skipped; then kills the old one (kill), resumes the stops as the
// operator would and checks that the new one runs every projection to the head, equal to what
// verify --read-models folds from the events. oldBase is the old process's API ("" when it
// has none).
func (u *upgrade) run(t *testing.T, oldBase string, kill func()) {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, u.url)
	require.NoError(t, err)
	defer pool.Close()
	// Every projection runs on the old process: the new one holds none.
	for _, n := range u.holders() {
		var leasedBy string
		require.NoError(t, pool.QueryRow(ctx, `SELECT coalesce(leased_by, '') FROM projection_checkpoints WHERE name = $1`, n).Scan(&leasedBy))
		require.NotEmpty(t, leasedBy, n)
	}

	const dom = "upgrade.example"
	adminAddr := "root@" + dom
	var out, errOut bytes.Buffer
	require.Equal(t, 0, run(ctx, []string{"admin", "bootstrap", "--email", adminAddr, "--password", "root-password-1"}, &out, &errOut), errOut.String())
	var token string
	require.Eventually(t, func() bool {
		code, b := u.post(t, "/api/v1/auth/login", "", map[string]string{"email": adminAddr, "password": "root-password-1"})
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		token, _ = m["token"].(string)
		return code == http.StatusOK
	}, time.Minute, 100*time.Millisecond, "the old process projects what the new one writes")
	code, b := u.post(t, "/api/v1/domains/"+dom+"/accounts", token, map[string]any{"local_part": "before", "password": "before-password-1", "global_admin": true})
	// 503: recorded, but its read-your-writes wait ran out on a loaded machine; the login
	// below shows it was made.
	require.Contains(t, []int{http.StatusCreated, http.StatusServiceUnavailable}, code, "%s", b)
	// A second administrator, whose account the enrolment below leaves alone: requests of the
	// enrolling one wait for its account's new state, which the stopped projections never show.
	// A login waits for the read models (the serve's 5 s bound), which the old runner keeps on
	// a loaded machine: a 503 read-model-behind is asked again.
	require.Eventually(t, func() bool {
		code, b = u.post(t, "/api/v1/auth/login", "", map[string]string{"email": "before@" + dom, "password": "before-password-1"})
		require.Contains(t, []int{http.StatusOK, http.StatusServiceUnavailable}, code, "%s", b)
		return code == http.StatusOK
	}, time.Minute, 100*time.Millisecond, "the old process projects the second administrator")
	var login map[string]any
	require.NoError(t, json.Unmarshal(b, &login))
	other := login["token"].(string)

	// The event type the old release does not know.
	code, b = u.post(t, "/api/v1/accounts/"+adminAddr+"/totp", token, map[string]any{})
	require.Less(t, code, 600, "%s", b) // answered (the read-your-writes wait may report the stop)
	var totpPos int64
	require.Eventually(t, func() bool {
		return pool.QueryRow(ctx, `SELECT position FROM events WHERE event_type = 'TOTPEnrolmentStarted'`).Scan(&totpPos) == nil
	}, time.Minute, 50*time.Millisecond)
	var prevPos int64
	require.NoError(t, pool.QueryRow(ctx, `SELECT position FROM events WHERE (transaction_id, position) <
		(SELECT transaction_id, position FROM events WHERE position = $1) ORDER BY events.transaction_id DESC, events.position DESC LIMIT 1`, totpPos).Scan(&prevPos))
	// More writes after it, which nothing of the old release may apply.
	code, b = u.post(t, "/api/v1/domains/"+dom+"/accounts", other, map[string]any{"local_part": "after"})
	require.Contains(t, []int{http.StatusCreated, http.StatusServiceUnavailable}, code, "%s", b)
	var afterPos int64
	require.NoError(t, pool.QueryRow(ctx, `SELECT position FROM events WHERE stream_id = $1`, "account-after@"+dom).Scan(&afterPos), "the write after it is recorded")

	stopped := map[string]bool{}
	require.Eventually(t, func() bool {
		var kind, typ string
		var pos int64
		if pool.QueryRow(ctx, `SELECT kind, event_type, position FROM projection_stops WHERE projection = $1`, postgres.AdminName).Scan(&kind, &typ, &pos) != nil {
			return false
		}
		require.Equal(t, "unknown_event_type", kind)
		require.Equal(t, "TOTPEnrolmentStarted", typ)
		require.Equal(t, totpPos, pos)
		return true
	}, time.Minute, 50*time.Millisecond, "the old process stops postgres.admin at the enrolment")
	rows, err := pool.Query(ctx, `SELECT projection FROM projection_stops`)
	require.NoError(t, err)
	for rows.Next() {
		var n string
		require.NoError(t, rows.Scan(&n))
		stopped[n] = true
	}
	require.NoError(t, rows.Err())
	for n := range stopped {
		var cp, skips, dead int64
		require.NoError(t, pool.QueryRow(ctx, `SELECT position FROM projection_checkpoints WHERE name = $1`, n).Scan(&cp))
		require.Equal(t, prevPos, cp, "%s: the checkpoint is the event just before the unknown one", n)
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM projection_skips WHERE projection = $1`, n).Scan(&skips))
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM projection_dead_letters WHERE projection = $1`, n).Scan(&dead))
		require.Zero(t, skips+dead, "%s: nothing skipped or parked", n)
	}
	var afterRows int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM rm_accounts WHERE address = $1`, "after@"+dom).Scan(&afterRows))
	require.Zero(t, afterRows, "nothing after the stop was applied")
	// The enrolling administrator's requests wait for its account's new state, which the stopped
	// projections do not show: refused before anything is done, and saying so.
	var events, eventsAfter int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&events))
	code, b = u.post(t, "/api/v1/domains/"+dom+"/accounts", token, map[string]any{"local_part": "refused"})
	require.Equal(t, http.StatusServiceUnavailable, code, "%s", b)
	require.Contains(t, string(b), "/problems/projection-stopped")
	require.Contains(t, string(b), "nothing was done")
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&eventsAfter))
	require.Equal(t, events, eventsAfter)
	u.waitReady(t, u.newBase, http.StatusServiceUnavailable)
	if oldBase != "" {
		u.waitReady(t, oldBase, http.StatusServiceUnavailable)
	}

	// Replaced: the old process dies, the operator resumes, the new one takes over.
	kill()
	for n := range stopped {
		out.Reset()
		errOut.Reset()
		require.Equal(t, 0, run(ctx, []string{"projections", "resume", n, "--actor", "upgrade-test"}, &out, &errOut), errOut.String())
	}
	u.waitReady(t, u.newBase, http.StatusOK)
	var head int64
	require.NoError(t, pool.QueryRow(ctx, `SELECT position FROM events ORDER BY events.transaction_id DESC, events.position DESC LIMIT 1`).Scan(&head))
	for _, n := range u.holders() {
		require.Eventually(t, func() bool {
			var cp int64
			_ = pool.QueryRow(ctx, `SELECT position FROM projection_checkpoints WHERE name = $1`, n).Scan(&cp)
			return cp >= head
		}, time.Minute, 50*time.Millisecond, "%s reaches the head on the new process", n)
	}
	code, b = httpGet(u.newBase+"/api/v1/accounts/after@"+dom, token)
	require.Equal(t, http.StatusOK, code, "%s", b)
	code, b = httpGet(u.newBase+"/api/v1/accounts/"+adminAddr+"/totp", token)
	require.Equal(t, http.StatusOK, code, "%s", b)
	require.Contains(t, string(b), `"pending":true`, "the enrolment the old release stopped at is applied")
	out.Reset()
	errOut.Reset()
	if run(ctx, []string{"verify", "--read-models"}, &out, &errOut) != 0 {
		require.True(t, u.rebuildAfter, "the read models differ from the events:\n%s%s", out.String(), errOut.String())
		// Rows the old release projected from events of types it knew, but with members it
		// does not (AccountCreated's auditor, written by this commit), lack them: rebuilt.
		t.Logf("before the rebuild:\n%s", out.String())
		out.Reset()
		errOut.Reset()
		require.Equal(t, 0, run(ctx, []string{"rebuild", "postgres"}, &out, &errOut), "%s%s", out.String(), errOut.String())
		out.Reset()
		errOut.Reset()
		require.Equal(t, 0, run(ctx, []string{"verify", "--read-models"}, &out, &errOut), "%s%s", out.String(), errOut.String())
	}
}
