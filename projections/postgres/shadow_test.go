package postgres_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"mailplane/api/apitest"
	"mailplane/eventstore"
	"mailplane/migrations/testdb"
	"mailplane/projections"
	"mailplane/projections/postgres"
)

// shadowOptions rebuilds both Postgres projections of the Env's database in small pages (many
// page transactions, and the catch-up loop, even on a small history).
func shadowOptions(e *apitest.Env, page int) postgres.RebuildOptions {
	return postgres.RebuildOptions{Pool: e.Pool, Registry: e.Registry, PageSize: page,
		Projections: []postgres.Shadowed{postgres.ShadowedAdmin(e.Registry), postgres.ShadowedGALEntries(e.Registry, e.Store)}}
}

// call is one HTTP request outside the test's goroutine (no require there).
func call(e *apitest.Env, method, path string, body any) (int, []byte, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.URL+path, r)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+e.AdminToken)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// seedMix fills the Env with a bit of everything the read models hold: COS, domains with
// settings, accounts with aliases and changes, lists with members, a deleted account.
func seedMix(t *testing.T, e *apitest.Env) string {
	t.Helper()
	cos := apitest.Unique("cos")
	r := e.Do(t, http.MethodPost, "/api/v1/cos", e.AdminToken, map[string]any{"name": cos, "description": "gold"})
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	other := e.CreateDomain(t, nil)
	dom := e.CreateDomain(t, map[string]any{"description": "rebuilt"})
	res := e.SeedDomain(t, dom, apitest.Seed{Accounts: 300, Lists: 10, MembersPerList: 5, Aliases: 40, Other: other})
	for i, a := range res.Accounts[:20] {
		r := e.Do(t, http.MethodPatch, "/api/v1/accounts/"+a, e.AdminToken, map[string]any{"display_name": fmt.Sprintf("Person %d", i)})
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	}
	r = e.Do(t, http.MethodDelete, "/api/v1/accounts/"+res.Accounts[20], e.AdminToken, nil)
	require.Less(t, r.Status, 300, "%s", r.Body)
	r = e.Do(t, http.MethodPatch, "/api/v1/domains/"+dom, e.AdminToken, map[string]any{"description": "rebuilt twice"})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	return dom
}

// writer issues commands through the API until stop is closed, and returns the accounts whose
// creation was acknowledged. Every command must succeed.
func writer(e *apitest.Env, dom string, stop <-chan struct{}) (func() ([]string, error), *atomic.Int64) {
	var acked []string
	var failed error
	var n atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			local := apitest.Unique("w")
			st, b, err := call(e, http.MethodPost, "/api/v1/domains/"+dom+"/accounts", map[string]any{"local_part": local, "display_name": "Writer " + local})
			if err == nil && st != http.StatusCreated {
				err = fmt.Errorf("create account: %d %s", st, b)
			}
			if err != nil {
				failed = err
				return
			}
			addr := local + "@" + dom
			acked = append(acked, addr)
			n.Add(1)
			steps := []struct {
				method, path string
				body         any
			}{
				{http.MethodPost, "/api/v1/accounts/" + addr + "/aliases", map[string]any{"alias": "a" + local + "@" + dom}},
				{http.MethodPatch, "/api/v1/accounts/" + addr, map[string]any{"display_name": "Renamed " + local}},
			}
			if i%5 == 0 {
				steps = append(steps, struct {
					method, path string
					body         any
				}{http.MethodPatch, "/api/v1/domains/" + dom, map[string]any{"description": "write " + local}})
			}
			for _, s := range steps {
				st, b, err := call(e, s.method, s.path, s.body)
				if err == nil && st >= 300 {
					err = fmt.Errorf("%s %s: %d %s", s.method, s.path, st, b)
				}
				if err != nil {
					failed = err
					return
				}
				n.Add(1)
			}
		}
	}()
	return func() ([]string, error) { <-done; return acked, failed }, &n
}

// reader reads through the API until stop is closed; it returns the responses that were not 200.
func reader(e *apitest.Env, dom string, stop <-chan struct{}) func() (int, []string) {
	var ok int
	var bad []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			for _, p := range []string{"/api/v1/domains/" + dom + "/accounts?limit=50", "/api/v1/domains/" + dom} {
				st, b, err := call(e, http.MethodGet, p, nil)
				if err != nil || st != http.StatusOK {
					bad = append(bad, fmt.Sprintf("GET %s: %d %s %v", p, st, b, err))
					continue
				}
				ok++
			}
		}
	}()
	return func() (int, []string) { <-done; return ok, bad }
}

// caughtUp waits until both Postgres projections of the database have passed its last event.
func caughtUp(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	require.Eventually(t, func() bool {
		var n int
		err := pool.QueryRow(context.Background(), `SELECT count(*) FROM projection_checkpoints c
			WHERE name IN ('postgres.admin', 'postgres.gal') AND (c.transaction_id, c.position) >= (SELECT transaction_id, position
				FROM events ORDER BY transaction_id DESC, position DESC LIMIT 1)`).Scan(&n)
		return err == nil && n == 2
	}, 2*time.Minute, 20*time.Millisecond)
}

// replay copies the events into a database of their own and has the live runner project them
// from position 0 there: the read models as a fresh replay makes them.
func replay(t *testing.T, src *pgxpool.Pool, reg *eventstore.Registry) *pgxpool.Pool {
	t.Helper()
	ctx := context.Background()
	dst := testdb.New(t)
	out, err := src.Acquire(ctx)
	require.NoError(t, err)
	defer out.Release()
	in, err := dst.Acquire(ctx)
	require.NoError(t, err)
	defer in.Release()
	pr, pw := io.Pipe()
	var copyErr error
	go func() {
		_, copyErr = out.Conn().PgConn().CopyTo(ctx, pw, `COPY events TO STDOUT (FORMAT binary)`)
		pw.CloseWithError(copyErr)
	}()
	_, err = in.Conn().PgConn().CopyFrom(ctx, pr, `COPY events FROM STDIN (FORMAT binary)`)
	require.NoError(t, err)
	require.NoError(t, copyErr)

	runner, err := projections.NewRunner(dst, reg, slog.New(slog.DiscardHandler), projections.Config{PollInterval: 5 * time.Millisecond, BatchSize: 500},
		postgres.NewAdmin(reg), postgres.NewGALEntries(reg, eventstore.NewPostgres(dst, reg)))
	require.NoError(t, err)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = runner.Run(runCtx) }()
	caughtUp(t, dst)
	cancel()
	<-done
	return dst
}

// requireSameReadModels compares every table of both projections row by row (the GAL's entry ids
// come from a sequence, and are left out).
func requireSameReadModels(t *testing.T, want, got *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	rowsOf := func(pool *pgxpool.Pool, table string) []string {
		rows, err := pool.Query(ctx, `SELECT (to_jsonb(t) - 'id' - 'entry_id')::text FROM public.`+table+` t ORDER BY 1`)
		require.NoError(t, err)
		var out []string
		for rows.Next() {
			var s string
			require.NoError(t, rows.Scan(&s))
			out = append(out, s)
		}
		require.NoError(t, rows.Err())
		return out
	}
	for _, table := range append(append([]string{}, postgres.AdminTables...), postgres.GALEntriesTables...) {
		w, g := rowsOf(want, table), rowsOf(got, table)
		require.Equal(t, w, g, "table %s", table)
		if table == "rm_accounts" || table == "gal_tokens" {
			require.NotEmpty(t, g, "table %s", table)
		}
	}
}

// A rebuild while commands keep coming through the API loses nothing: the read models it swaps
// in, once the live projections have caught up after it, equal a fresh replay of every event,
// table by table and row by row; every account a writer was told was created is there; and the
// API answered every read meanwhile.
func TestShadowRebuildUnderConcurrentWrites(t *testing.T) {
	e := apitest.New(t)
	ctx := context.Background()
	dom := seedMix(t, e)

	stop := make(chan struct{})
	written, writes := writer(e, dom, stop)
	read := reader(e, dom, stop)
	if !assert.Eventually(t, func() bool { return writes.Load() >= 20 }, 2*time.Minute, 10*time.Millisecond, "the writer runs") {
		close(stop)
		_, err := written()
		t.Fatalf("writer: %v", err)
	}
	o := shadowOptions(e, 100)
	var pages atomic.Int64
	o.Progress = func(p postgres.RebuildProgress) {
		if p.Phase == postgres.PhaseBuild && !p.Final {
			pages.Add(1)
			// Let commands land between every two pages, however fast the pages go.
			w := writes.Load()
			for deadline := time.Now().Add(30 * time.Second); writes.Load() < w+3 && time.Now().Before(deadline); {
				time.Sleep(2 * time.Millisecond)
			}
		}
	}
	before := writes.Load()
	sum, err := postgres.ShadowRebuild(ctx, o)
	require.NoError(t, err)
	during := writes.Load() - before
	// Go on writing after the swap: the live projection takes over from the checkpoint set.
	target := writes.Load() + 20
	require.Eventually(t, func() bool { return writes.Load() >= target }, time.Minute, 10*time.Millisecond)
	close(stop)
	acked, werr := written()
	require.NoError(t, werr)
	ok, bad := read()
	require.Empty(t, bad, "the API answers while the rebuild runs and swaps")
	require.Positive(t, ok)
	t.Logf("rebuild: %d events (%d in the swap), %d pages, %d commands during it, %d reads", sum.Events, sum.SwapEvents, pages.Load(), during, ok)
	require.Greater(t, pages.Load(), int64(3), "several pages")
	require.False(t, sum.Resumed)
	for n, p := range sum.Before {
		require.False(t, sum.Head.Less(p), "%s's checkpoint was not past the shadow", n)
	}

	caughtUp(t, e.Pool)
	for _, a := range acked {
		_, err := e.Reads.Account(ctx, a)
		require.NoError(t, err, "acknowledged account %s", a)
	}
	var schemas int
	require.NoError(t, e.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_namespace WHERE nspname = 'rebuild'`).Scan(&schemas))
	require.Zero(t, schemas, "the shadow schema is gone after the swap")
	requireSameReadModels(t, replay(t, e.Pool, e.Registry), e.Pool)
}

// A rebuild stopped midway (its context cancelled after a few pages, as a kill would leave it)
// leaves the live tables as they were and its shadow with its position; run again, it goes on
// from that position, not from 0, and ends equal to a fresh replay.
func TestShadowRebuildResumesAfterAKill(t *testing.T) {
	e := apitest.New(t)
	ctx := context.Background()
	seedMix(t, e)
	caughtUp(t, e.Pool)
	var liveAccounts int
	require.NoError(t, e.Pool.QueryRow(ctx, `SELECT count(*) FROM rm_accounts`).Scan(&liveAccounts))

	killCtx, kill := context.WithCancel(ctx)
	o := shadowOptions(e, 50)
	o.Progress = func(p postgres.RebuildProgress) {
		if p.Phase == postgres.PhaseBuild && p.Done >= 150 {
			kill()
		}
	}
	_, err := postgres.ShadowRebuild(killCtx, o)
	require.ErrorIs(t, err, context.Canceled)

	var recorded int64
	var shadowAccounts int
	require.NoError(t, e.Pool.QueryRow(ctx, `SELECT position FROM rebuild_progress WHERE schema_name = 'rebuild'`).Scan(&recorded))
	require.NoError(t, e.Pool.QueryRow(ctx, `SELECT count(*) FROM rebuild.rm_accounts`).Scan(&shadowAccounts))
	require.Positive(t, recorded)
	require.Less(t, shadowAccounts, liveAccounts, "the shadow was left half built")
	var nowLive int
	require.NoError(t, e.Pool.QueryRow(ctx, `SELECT count(*) FROM rm_accounts`).Scan(&nowLive))
	require.Equal(t, liveAccounts, nowLive, "the live tables are untouched")

	o = shadowOptions(e, 50)
	var first atomic.Int64
	o.Progress = func(p postgres.RebuildProgress) { first.CompareAndSwap(0, int64(p.Done)) }
	sum, err := postgres.ShadowRebuild(ctx, o)
	require.NoError(t, err)
	require.True(t, sum.Resumed)
	require.Equal(t, recorded, sum.From.Position, "it went on from the recorded position")
	require.GreaterOrEqual(t, first.Load(), int64(200), "its first page counted the events already in the shadow")
	caughtUp(t, e.Pool)
	requireSameReadModels(t, replay(t, e.Pool, e.Registry), e.Pool)
}

type refusing struct{ calls int }

func (r *refusing) Check(_ context.Context, schema string, at eventstore.Position) error {
	r.calls++
	return fmt.Errorf("schema %s at %d: rm_accounts differs", schema, at.Position)
}

// A checker that finds the shadow wrong stops the swap: the live tables and checkpoints stay
// as they were, the shadow stays for inspection, and the next run goes on from it.
func TestShadowRebuildRefusesWhatTheCheckerRejects(t *testing.T) {
	e := apitest.New(t)
	ctx := context.Background()
	seedMix(t, e)
	caughtUp(t, e.Pool)
	checkpoint := func() (p int64) {
		require.NoError(t, e.Pool.QueryRow(ctx, `SELECT position FROM projection_checkpoints WHERE name = 'postgres.admin'`).Scan(&p))
		return p
	}
	before := checkpoint()
	var oid uint32
	require.NoError(t, e.Pool.QueryRow(ctx, `SELECT 'public.rm_accounts'::regclass::oid`).Scan(&oid))

	o := shadowOptions(e, 1000)
	c := &refusing{}
	o.Checker = c
	_, err := postgres.ShadowRebuild(ctx, o)
	require.ErrorIs(t, err, postgres.ErrShadowDiffers)
	require.Equal(t, 1, c.calls)
	var after uint32
	require.NoError(t, e.Pool.QueryRow(ctx, `SELECT 'public.rm_accounts'::regclass::oid`).Scan(&after))
	require.Equal(t, oid, after, "the live table was not swapped")
	require.Equal(t, before, checkpoint())
	var shadow int
	require.NoError(t, e.Pool.QueryRow(ctx, `SELECT count(*) FROM rebuild.rm_accounts`).Scan(&shadow))
	require.Positive(t, shadow)

	sum, err := postgres.ShadowRebuild(ctx, shadowOptions(e, 1000))
	require.NoError(t, err)
	require.True(t, sum.Resumed)
	require.NoError(t, e.Pool.QueryRow(ctx, `SELECT 'public.rm_accounts'::regclass::oid`).Scan(&after))
	require.NotEqual(t, oid, after, "swapped")
}
