package api_test

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"mailplane/api/apitest"
	"mailplane/commands"
	"mailplane/domain"
	"mailplane/eventstore"
	"mailplane/eventstore/keyring"
	"mailplane/projections"
	"mailplane/projections/ldap"
	"mailplane/projections/ldap/ldaptest"
	"mailplane/workers"
)

// A removal worker is this test binary run again with these set: it works River jobs (the
// removal among them) against the test's database, with its master key, until it is killed.
const (
	removalChildEnv    = "MAILPLANE_TEST_REMOVAL_CHILD"
	removalChildDBEnv  = "MAILPLANE_TEST_REMOVAL_CHILD_DB"
	removalChildKeyEnv = "MAILPLANE_TEST_REMOVAL_CHILD_KEY"
	// The child's tuning: short slices so that River's rescuer may hand a killed attempt on soon.
	removalChildSlice = 200 * time.Millisecond
	removalChildGrace = time.Second
)

// removalSize is the domain the crash test removes: MAILPLANE_REMOVAL_ACCOUNTS accounts, with a
// fortieth as many lists and a quarter as many aliases. 20,000 is the domain (20,000
// accounts, 500 lists, 5,000 aliases; 160 s under -race on two cores, most of it the LDAP
// projection writing and then deleting 21,000 entries); the default, 5,000, keeps the suite's
// run near a minute and goes through the same paths (a kill a third of the way, the takeover).
func removalSize(t testing.TB) apitest.Seed {
	n := 5000
	if v := os.Getenv("MAILPLANE_REMOVAL_ACCOUNTS"); v != "" {
		var err error
		n, err = strconv.Atoi(v)
		require.NoError(t, err)
	}
	return apitest.Seed{Accounts: n, Lists: max(n/40, 1), MembersPerList: 20, Aliases: max(n/4, 4), Passwords: 10}
}

func TestRemovalWorkerChild(t *testing.T) {
	if os.Getenv(removalChildEnv) == "" {
		t.Skip("runs only as a child process of TestRemovalSurvivesAKilledWorker")
	}
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv(removalChildDBEnv))
	require.NoError(t, err)
	master, err := hex.DecodeString(os.Getenv(removalChildKeyEnv))
	require.NoError(t, err)
	evs := domain.Events()
	stored := make([]eventstore.Event, len(evs))
	for i, e := range evs {
		stored[i] = e
	}
	reg, err := eventstore.NewRegistry(stored, nil)
	require.NoError(t, err)
	storeKey, err := keyring.Derive(master, eventstore.KeyPurpose)
	require.NoError(t, err)
	store := eventstore.NewPostgres(pool, reg, eventstore.WithKey(storeKey))
	keys, err := keyring.New(pool, master)
	require.NoError(t, err)
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	svc, err := commands.New(commands.Deps{Pool: pool, Store: store, Keyring: keys, Logger: logger,
		Hasher: commands.NewHasher(apitest.TestArgon2, 0)})
	require.NoError(t, err)
	client, err := workers.NewClient(pool, logger, workers.Config{
		Mailer:   workers.MailerConfig{Addr: "127.0.0.1:1", From: "mailplane@mailplane.test"},
		Commands: svc, RemovalBatch: workers.DefaultRemovalBatch, RemovalSlice: removalChildSlice, RemovalGrace: removalChildGrace,
		RescueStuckJobsAfter: time.Second, FetchCooldown: 20 * time.Millisecond,
	}, true)
	require.NoError(t, err)
	require.NoError(t, client.Start(ctx))
	fmt.Println("working")
	select {} // until killed
}

// removalChild is a running removal worker process.
type removalChild struct {
	cmd   *exec.Cmd
	lines *bufio.Scanner
}

func startRemovalChild(t *testing.T, e *apitest.Env) *removalChild {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestRemovalWorkerChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), removalChildEnv+"=1", removalChildDBEnv+"="+e.Pool.Config().ConnString(),
		removalChildKeyEnv+"="+hex.EncodeToString(e.MasterKey))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	c := &removalChild{cmd: cmd, lines: bufio.NewScanner(out)}
	for c.lines.Scan() {
		if c.lines.Text() == "working" {
			go func() { _, _ = io.Copy(io.Discard, out) }()
			return c
		}
	}
	t.Fatal("the removal worker ended before it worked")
	return nil
}

func (c *removalChild) kill(t *testing.T) {
	t.Helper()
	require.NoError(t, c.cmd.Process.Signal(syscall.SIGKILL))
	err := c.cmd.Wait()
	require.Error(t, err)
	ws, ok := c.cmd.ProcessState.Sys().(syscall.WaitStatus)
	require.True(t, ok)
	require.True(t, ws.Signaled() && ws.Signal() == syscall.SIGKILL, "the worker ended with %v, not SIGKILL", err)
}

func jobProgress(t *testing.T, e *apitest.Env, id int64) (done, total int64) {
	t.Helper()
	require.NoError(t, e.Pool.QueryRow(t.Context(), `SELECT done, total FROM job_progress WHERE job_id = $1`, id).Scan(&done, &total))
	return done, total
}

// The removal test: a domain of 20,000 accounts with lists and aliases (also aliases of
// other domains' accounts in it, and of its accounts elsewhere) is removed by a worker process
// that is SIGKILLed mid-way; another process takes the job over and finishes it, and nothing of
// the domain is left — no read-model row, no LDAP entry, no claim, no orphan alias — while the
// API keeps serving the other domains throughout.
func TestRemovalSurvivesAKilledWorker(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	size := removalSize(t)
	e := apitest.New(t)
	dir := ldaptest.New(t)
	dit := ldap.DIT{Base: dir.Base}
	lp, err := ldap.New(ldap.Options{Directory: ldap.Config{URL: dir.Env.URL, BindDN: dir.Env.Admin.DN, Password: dir.Env.Admin.Password, DIT: dit},
		Pool: e.Pool, Registry: e.Registry, Keyring: e.Keyring, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		LockRetry: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	require.NoError(t, err)
	lctx, stopLDAP := context.WithCancel(ctx)
	ldapDone := make(chan struct{})
	go func() { defer close(ldapDone); _ = lp.Run(lctx) }()
	t.Cleanup(func() { stopLDAP(); <-ldapDone })
	caughtUp := func() {
		t.Helper()
		head, err := e.Store.Head(ctx)
		require.NoError(t, err)
		wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		defer cancel()
		require.NoError(t, projections.NewWaiter(e.Pool, 10*time.Millisecond, ldap.Name, "postgres.admin").Wait(wctx, head))
	}

	dom := e.CreateDomain(t, nil)
	other := e.CreateDomain(t, nil)
	size.Other = other
	start := time.Now()
	seeded := e.SeedDomain(t, dom, size)
	caughtUp()
	t.Logf("seeded %d accounts, %d lists, %d aliases (%d accounts elsewhere) and projected them in %s",
		len(seeded.Accounts), len(seeded.Lists), len(seeded.Aliases), len(seeded.OtherAccounts), time.Since(start).Round(time.Millisecond))
	var password string
	require.NoError(t, e.Pool.QueryRow(ctx, `SELECT data->>'password_secret' FROM events WHERE stream_id = $1`,
		"account-"+seeded.Accounts[0]).Scan(&password))
	require.NotEmpty(t, password)

	// The rest of the platform, served all along: accounts created in the other domain and read.
	stopServing := make(chan struct{})
	var served, failed atomic.Int64
	var firstFailure atomic.Value
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stopServing:
				return
			default:
			}
			r := e.Do(t, http.MethodPost, "/api/v1/domains/"+other+"/accounts", e.AdminToken, map[string]any{"local_part": fmt.Sprintf("live%05d", i)})
			g := e.Do(t, http.MethodGet, "/api/v1/accounts/"+seeded.OtherAccounts[i%len(seeded.OtherAccounts)], e.AdminToken, nil)
			if r.Status != http.StatusCreated || g.Status != http.StatusOK {
				failed.Add(1)
				firstFailure.CompareAndSwap(nil, fmt.Sprintf("%d %s / %d %s", r.Status, r.Body, g.Status, g.Body))
			}
			served.Add(1)
			time.Sleep(20 * time.Millisecond)
		}
	}()

	r := e.Do(t, http.MethodDelete, "/api/v1/domains/"+dom, e.AdminToken, nil)
	require.Equal(t, http.StatusAccepted, r.Status, "%s", r.Body)
	jobID := int64(r.JSON(t)["job"].(map[string]any)["id"].(float64))
	removalStart := time.Now()

	first := startRemovalChild(t, e)
	// Killed while an attempt runs: the attempts are short slices that snooze between them
	// (queued for a moment), and a kill in such a gap would leave River nothing to rescue.
	require.Eventually(t, func() bool {
		done, total := jobProgress(t, e, jobID)
		if total == 0 || done < total/3 {
			return false
		}
		job, err := workers.Lookup(ctx, e.Pool, jobID)
		require.NoError(t, err)
		return job.State == workers.JobRunning
	}, 5*time.Minute, 5*time.Millisecond)
	first.kill(t)
	done, total := jobProgress(t, e, jobID)
	t.Logf("killed the worker at %d of %d", done, total)
	require.Less(t, done, total, "killed mid-way")
	d, _, err := commands.Load[domain.Domain](ctx, e.Commands, domain.DomainStreamID(dom))
	require.NoError(t, err)
	require.True(t, d.Exists() && d.Removing, "half removed, still removing")
	job, err := workers.Lookup(ctx, e.Pool, jobID)
	require.NoError(t, err)
	// Running: River still thinks the dead process runs it, and its rescuer hands it on. Queued:
	// the attempt snoozed between the check above and the kill, and the next process picks it
	// up as it is; either way the second process must finish it with each object removed once.
	require.Contains(t, []string{workers.JobRunning, workers.JobQueued}, job.State)
	t.Logf("the killed attempt's job is %s", job.State)

	// Another process takes the job over once River finds the attempt stuck, and finishes.
	second := startRemovalChild(t, e)
	require.Eventually(t, func() bool {
		job, err = workers.Lookup(ctx, e.Pool, jobID)
		require.NoError(t, err)
		return job.State == workers.JobSucceeded || job.State == workers.JobFailed
	}, 5*time.Minute, 20*time.Millisecond)
	require.Equal(t, workers.JobSucceeded, job.State, "%v", job.Errors)
	require.Equal(t, job.Progress.Total, job.Progress.Done)
	removal := time.Since(removalStart)
	caughtUp()
	t.Logf("removed in %s (including the takeover), projected in %s", removal.Round(time.Millisecond),
		time.Since(removalStart).Round(time.Millisecond))
	second.kill(t)
	close(stopServing)
	wg.Wait()
	require.Zero(t, failed.Load(), "the other domain was served throughout: %v", firstFailure.Load())
	require.Positive(t, served.Load())

	// One deletion per object, each once: the killed step either committed or left nothing.
	var deleted, dup int
	require.NoError(t, e.Pool.QueryRow(ctx, `SELECT count(*), count(*) - count(DISTINCT stream_id) FROM events
		WHERE event_type IN ('AccountDeleted', 'ListDeleted') AND domain = $1`, dom).Scan(&deleted, &dup))
	require.Equal(t, len(seeded.Accounts)+len(seeded.Lists), deleted)
	require.Zero(t, dup)
	var removedHere int
	require.NoError(t, e.Pool.QueryRow(ctx, `SELECT count(*) FROM events WHERE event_type = 'AliasRemoved' AND domain = $1`, other).Scan(&removedHere))
	require.Equal(t, len(seeded.OtherAccounts), removedHere, "the other domain's aliases in the removed one, one event each")

	requireNothingLeft(t, e, dom)
	var orphans int
	require.NoError(t, e.Pool.QueryRow(ctx, `SELECT count(*) FROM rm_aliases a WHERE NOT EXISTS
		(SELECT 1 FROM rm_accounts x WHERE x.address = a.target AND NOT x.deleted) AND a.kind = 'account'`).Scan(&orphans))
	require.Zero(t, orphans, "no alias points to an account that is gone")
	var left []string
	for _, en := range dir.Dump(t, dir.Admin(t), dir.Base) {
		if strings.Contains(strings.ToLower(en.DN), dom) || strings.Contains(strings.Join(en.Get("mailLocalAddress"), ","), "@"+dom) {
			left = append(left, en.DN)
		}
	}
	require.Empty(t, left, "no LDAP entry or alias of the removed domain")
	_, err = e.Keyring.Open(ctx, password)
	require.ErrorIs(t, err, keyring.ErrShredded)

	// The name again, empty; the old history reads.
	require.Equal(t, http.StatusCreated, e.Do(t, http.MethodPost, "/api/v1/domains", e.AdminToken, map[string]any{"name": dom}).Status)
	pv := e.Do(t, http.MethodGet, "/api/v1/domains/"+dom+"/deletion-preview", e.AdminToken, nil).JSON(t)
	require.Equal(t, float64(0), pv["counts"].(map[string]any)["accounts"])
	h := e.Do(t, http.MethodGet, "/api/v1/domains/"+dom+"/history?type=DomainRemoved", e.AdminToken, nil)
	require.Equal(t, http.StatusOK, h.Status, "%s", h.Body)
	require.Len(t, h.JSON(t)["items"], 1)
}
