package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"mailplane/domain"
	"mailplane/eventstore"
	"mailplane/migrations/testdb"
	"mailplane/projections"
	"mailplane/projections/postgres"
)

// A projection that stops on lost order makes /readyz answer 503 naming it, shows in /metrics
// and in `projections status`; an operator resumes it, skipping the event; dead letters keep
// /readyz at 503 until they are resolved. Every action is audited.
func TestStoppedProjectionReadinessMetricsAndOperatorCommands(t *testing.T) {
	srv := startServe(t)
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, srv.databaseURL)
	require.NoError(t, err)
	defer pool.Close()
	reg, err := registry()
	require.NoError(t, err)

	stream := eventstore.Stream{ID: domain.DomainStreamID("a.example"), Type: domain.StreamTypeDomain, Domain: "a.example"}
	_, err = eventstore.NewPostgres(pool, reg).Append(ctx, stream, eventstore.NoStream, eventstore.Metadata{Actor: "test"},
		domain.DomainCreated{Name: "a.example", UnicodeName: "a.example", Status: "active"})
	require.NoError(t, err)
	// Version 2 is missing: a hole in the stream.
	var gap int64
	require.NoError(t, pool.QueryRow(ctx, `INSERT INTO events
		(stream_id, stream_type, stream_version, domain, event_type, data, recorded_at, prev_hash, hash)
		VALUES ($1, 'domain', 3, 'a.example', 'DomainUpdated', '{"name":"a.example","description":"three"}', now(), '\x', '\x')
		RETURNING position`, stream.ID).Scan(&gap))

	var code int
	var body, ctype string
	require.Eventually(t, func() bool { code, ctype, body = srv.get("/readyz"); return code == http.StatusServiceUnavailable },
		30*time.Second, 20*time.Millisecond, body)
	require.Equal(t, "application/problem+json", ctype)
	var problem map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &problem))
	require.Equal(t, float64(http.StatusServiceUnavailable), problem["status"])
	require.Contains(t, problem["detail"], "postgres.admin")
	require.Contains(t, problem["detail"], "stopped")

	_, _, metrics := srv.get("/metrics")
	require.Contains(t, metrics, `mailplane_projection_stopped{projection="postgres.admin"} 1`)
	require.Contains(t, metrics, `mailplane_projection_lag_events{projection="postgres.admin"} 1`)
	require.Contains(t, metrics, `mailplane_projection_dead_letters{projection="postgres.admin"} 0`)

	out, errOut, rc := srv.cli(t, "projections", "status")
	require.Equal(t, 0, rc, errOut)
	require.Contains(t, out, "postgres.admin")
	require.Contains(t, out, "stopped")
	require.Contains(t, out, fmt.Sprintf("position %d", gap))
	require.Contains(t, out, "version gap")

	// Only the stop's own position may be skipped.
	_, errOut, rc = srv.cli(t, "projections", "resume", "postgres.admin", "--skip", fmt.Sprint(gap-1))
	require.Equal(t, 1, rc)
	require.Contains(t, errOut, fmt.Sprintf("stopped at position %d", gap))
	_, errOut, rc = srv.cli(t, "projections", "resume", "postgres.admin", "--skip", fmt.Sprint(gap), "--actor", "alice")
	require.Equal(t, 0, rc, errOut)
	require.Eventually(t, func() bool { code, _, body = srv.get("/readyz"); return code == http.StatusOK }, 30*time.Second, 20*time.Millisecond, body)
	require.Eventually(t, func() bool {
		_, _, metrics = srv.get("/metrics")
		return strings.Contains(metrics, `mailplane_projection_lag_events{projection="postgres.admin"} 0`)
	}, 30*time.Second, 20*time.Millisecond, "the projection caught up")
	require.Contains(t, metrics, `mailplane_projection_stopped{projection="postgres.admin"} 0`)
	var description string
	require.NoError(t, pool.QueryRow(ctx, `SELECT description FROM rm_domains WHERE name = 'a.example'`).Scan(&description))
	require.Empty(t, description, "the skipped event was not applied")

	// A dead letter (parked elsewhere) keeps the service unready until resolved.
	_, err = pool.Exec(ctx, `INSERT INTO projection_dead_letters (projection, position, stream_id, event_type, error, attempts)
		VALUES ('postgres.admin', 1, $1, 'DomainCreated', 'boom', 5), ('postgres.admin', 2, $1, 'DomainCreated', 'boom', 5)`, stream.ID)
	require.NoError(t, err)
	code, ctype, body = srv.get("/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Equal(t, "application/problem+json", ctype)
	require.Contains(t, body, "postgres.admin")
	require.Contains(t, body, "dead letter")
	out, _, rc = srv.cli(t, "projections", "status")
	require.Equal(t, 0, rc)
	require.Contains(t, out, "boom")
	_, errOut, rc = srv.cli(t, "projections", "resolve", "postgres.admin", "1", "--actor", "bob")
	require.Equal(t, 0, rc, errOut)
	_, errOut, rc = srv.cli(t, "projections", "resolve", "postgres.admin", "1", "--actor", "bob")
	require.Equal(t, 1, rc, "already resolved")
	require.Contains(t, errOut, "no unresolved dead letter")
	code, _, _ = srv.get("/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code, "one left")
	_, errOut, rc = srv.cli(t, "projections", "resolve", "postgres.admin", "--all")
	require.Equal(t, 0, rc, errOut)
	code, _, body = srv.get("/readyz")
	require.Equal(t, http.StatusOK, code, body)

	rows, err := pool.Query(ctx, `SELECT action, actor, detail->>'position' FROM projection_actions WHERE projection = 'postgres.admin' ORDER BY id`)
	require.NoError(t, err)
	var audit []string
	for rows.Next() {
		var action, actor string
		var position *string
		require.NoError(t, rows.Scan(&action, &actor, &position))
		p := "-"
		if position != nil {
			p = *position
		}
		audit = append(audit, action+" "+actor+" "+p)
	}
	require.NoError(t, rows.Err())
	require.Len(t, audit, 3)
	require.Equal(t, fmt.Sprintf("resume alice %d", gap), audit[0])
	require.Equal(t, "resolve bob 1", audit[1])
	require.True(t, strings.HasPrefix(audit[2], "resolve "), audit[2])
}

// served is a running `mailplane serve` on a fresh database.
type served struct {
	addr, databaseURL string
}

func (s *served) get(path string) (code int, contentType, body string) {
	resp, err := http.Get("http://" + s.addr + path)
	if err != nil {
		return 0, "", err.Error()
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), b.String()
}

// cli runs a mailplane command against the same database.
func (s *served) cli(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, &out, &errOut)
	return out.String(), errOut.String(), code
}

// startServe runs `mailplane serve` on a fresh database until the test ends and waits until it
// is ready. It sets DATABASE_URL, so its test cannot run in parallel.
func startServe(t *testing.T) *served {
	t.Helper()
	url := testdb.NewURL(t)
	t.Setenv("DATABASE_URL", url)
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	keyFile := filepath.Join(t.TempDir(), "master.key")
	require.NoError(t, os.WriteFile(keyFile, key, 0o600))
	t.Setenv("MAILPLANE_MASTER_KEY_FILE", keyFile)
	t.Setenv("MAILPLANE_POLICY_ADDR", "127.0.0.1:0")
	// The LDAP projection is tested in its own package; this one is about the Postgres ones.
	t.Setenv("MAILPLANE_LDAP_URL", "")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &served{addr: ln.Addr().String(), databaseURL: url}
	require.NoError(t, ln.Close())

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	stderr := &syncWriter{buf: &bytes.Buffer{}}
	go func() { done <- run(ctx, []string{"serve", "--addr", s.addr}, io.Discard, stderr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case c := <-done:
			if c != 0 {
				t.Errorf("serve ended with %d: %s", c, stderr.buf.String())
			}
		case <-time.After(30 * time.Second):
			t.Error("serve did not stop")
		}
	})
	var body string
	require.Eventually(t, func() bool {
		var code int
		code, _, body = s.get("/readyz")
		return code == http.StatusOK
	}, 30*time.Second, 50*time.Millisecond, body)
	return s
}

// `mailplane rebuild` empties the admin read model; replayed from position 0 it ends with no
// dead letter and no stop, as `projections status --json` reports.
func TestRebuildCommandReplaysWithoutDeadLettersOrStops(t *testing.T) {
	ctx := context.Background()
	url := testdb.NewURL(t)
	t.Setenv("DATABASE_URL", url)
	pool, err := pgxpool.New(ctx, url)
	require.NoError(t, err)
	defer pool.Close()
	reg, err := registry()
	require.NoError(t, err)
	store := eventstore.NewPostgres(pool, reg)
	for _, name := range []string{"a.example", "b.example"} {
		stream := eventstore.Stream{ID: domain.DomainStreamID(name), Type: domain.StreamTypeDomain, Domain: name}
		_, err := store.Append(ctx, stream, eventstore.NoStream, eventstore.Metadata{Actor: "test"},
			domain.DomainCreated{Name: name, UnicodeName: name, Status: "active"},
			domain.DomainUpdated{Name: name, Description: ptrTo("updated")})
		require.NoError(t, err)
	}
	project := func() {
		t.Helper()
		r, err := projections.NewRunner(pool, reg, slog.New(slog.DiscardHandler), projections.Config{PollInterval: 5 * time.Millisecond},
			postgres.NewAdmin(reg), postgres.NewGALEntries(reg, store))
		require.NoError(t, err)
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); _ = r.Run(runCtx) }()
		defer func() { cancel(); <-done }()
		require.Eventually(t, func() bool {
			infos, err := projections.Inspect(ctx, pool, postgres.AdminName, postgres.GALEntriesName)
			return err == nil && infos[0].LagEvents == 0 && infos[0].Position > 0 && infos[1].LagEvents == 0
		}, 30*time.Second, 5*time.Millisecond)
	}
	project()
	out, errOut, rc := (&served{}).cli(t, "rebuild", postgres.AdminName)
	require.Equal(t, 0, rc, errOut)
	require.Contains(t, out, "replays from position 0")
	var domains int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM rm_domains`).Scan(&domains))
	require.Zero(t, domains)
	project()
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM rm_domains WHERE description = 'updated'`).Scan(&domains))
	require.Equal(t, 2, domains)

	out, errOut, rc = (&served{}).cli(t, "projections", "status", "--json")
	require.Equal(t, 0, rc, errOut)
	var infos []map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &infos))
	require.Len(t, infos, 2)
	for i, name := range []string{postgres.AdminName, postgres.GALEntriesName} {
		require.Equal(t, name, infos[i]["name"])
		require.Equal(t, "running", infos[i]["state"])
		require.Nil(t, infos[i]["stopped"])
		require.Equal(t, float64(0), infos[i]["dead_letters"])
		require.Equal(t, float64(0), infos[i]["lag_events"])
	}
}

func ptrTo[T any](v T) *T { return &v }
