package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"

	goldap "github.com/go-ldap/ldap/v3"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"mailplane/eventstore/eventstoretest"
	"mailplane/migrations/testdb"
	"mailplane/projections"
	"mailplane/projections/ldap"
	"mailplane/projections/ldap/ldaptest"
)

// `mailplane rebuild ldap` writes what the directory lacks and reports it; refuses while a
// process holds the projection's lock; --offline writes the LDIF and runs --load with it.
func TestRebuildLDAPCommand(t *testing.T) {
	ctx := context.Background()
	url := testdb.NewURL(t)
	t.Setenv("DATABASE_URL", url)
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	keyFile := filepath.Join(t.TempDir(), "master.key")
	require.NoError(t, os.WriteFile(keyFile, key, 0o600))
	t.Setenv("MAILPLANE_MASTER_KEY_FILE", keyFile)
	d := ldaptest.New(t)
	t.Setenv("MAILPLANE_LDAP_BASE_DN", d.Base)
	s := &served{}

	_, errOut, rc := s.cli(t, "admin", "bootstrap", "--email", "root@cli-rebuild.example", "--password", "root-password-1")
	require.Equal(t, 0, rc, errOut)
	out, errOut, rc := s.cli(t, "rebuild", "ldap")
	require.Equal(t, 0, rc, errOut)
	require.Regexp(t, `added +2\n`, out, "the domain and the admin")
	require.Contains(t, errOut, "ldap rebuild: write 2/2 operations", "stderr is no terminal: plain lines")
	dit := ldap.DIT{Base: d.Base}
	account := dit.Account("root@cli-rebuild.example")
	require.NoError(t, bind(t, d.Env.URL, account, "root-password-1"))

	require.NoError(t, d.Admin(t).Del(goldap.NewDelRequest(account, nil)))
	out, errOut, rc = s.cli(t, "rebuild", "ldap")
	require.Equal(t, 0, rc, errOut)
	require.Regexp(t, `added +1\n +`+regexp.QuoteMeta(account)+`\n`, out)

	out, errOut, rc = s.cli(t, "rebuild", "ldap", "--json")
	require.Equal(t, 0, rc, errOut)
	var sum map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &sum), out)
	require.Equal(t, float64(2), sum["unchanged"])
	require.Equal(t, float64(0), sum["added"])
	require.Equal(t, float64(1), sum["transactions"], "the checkpoint only")

	// A process that holds the projection's lock runs it: the rebuild refuses.
	pool, err := pgxpool.New(ctx, url)
	require.NoError(t, err)
	defer pool.Close()
	conn, err := pool.Acquire(ctx)
	require.NoError(t, err)
	var held bool
	require.NoError(t, conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, projections.LockKey(ldap.Name)).Scan(&held))
	require.True(t, held)
	_, errOut, rc = s.cli(t, "rebuild", "ldap")
	require.Equal(t, 1, rc)
	require.Contains(t, errOut, "a serve process runs the LDAP projection")
	_, err = conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, projections.LockKey(ldap.Name))
	require.NoError(t, err)
	conn.Release()

	_, errOut, rc = s.cli(t, "rebuild", "ldap", "--ldif", "x.ldif")
	require.Equal(t, 2, rc, errOut)

	// Offline, into a private slapd: --load runs scripts/ldap-load.sh with the file (slapadd
	// into a fresh folder while slapd runs); the swap follows with slapd stopped.
	srv := ldaptest.StartSlapd(t)
	t.Setenv("MAILPLANE_LDAP_URL", srv.URL)
	t.Setenv("MAILPLANE_LDAP_BIND_DN", srv.Env.Admin.DN)
	t.Setenv("MAILPLANE_LDAP_PASSWORD", srv.Env.Admin.Password)
	t.Setenv("MAILPLANE_LDAP_BASE_DN", srv.Env.Suffix)
	path := filepath.Join(t.TempDir(), "directory.ldif")
	script := filepath.Join(ldaptest.RepoRoot(t), "scripts", "ldap-load.sh")
	out, errOut, rc = s.cli(t, "rebuild", "ldap", "--offline", "--ldif", path, "--load", script+" "+srv.Conf)
	require.Equal(t, 0, rc, errOut)
	require.Contains(t, out, "2 entries from the events")
	require.Contains(t, errOut, "ldap-load: loaded "+path)
	srv.Stop(t)
	swap, err := exec.Command(script, "--swap", srv.Conf).CombinedOutput()
	require.NoError(t, err, "%s", swap)
	srv.Start(t)
	offline := ldap.DIT{Base: srv.Env.Suffix}
	require.NoError(t, bind(t, srv.URL, offline.Account("root@cli-rebuild.example"), "root-password-1"))
	out, errOut, rc = s.cli(t, "rebuild", "ldap")
	require.Equal(t, 0, rc, errOut)
	require.Contains(t, out, "the directory already held what the events say")
}

func bind(t *testing.T, url, dn, password string) error {
	t.Helper()
	conn, err := ldaptest.Dial(url, ldaptest.Credentials{})
	require.NoError(t, err)
	defer conn.Close()
	return conn.Bind(dn, password)
}

// `mailplane rebuild postgres` builds the read models in shadow tables and swaps them in: the
// summary says where it got to, stderr shows the progress, and the checkpoints move to where the
// shadow stood.
func TestRebuildPostgresCommand(t *testing.T) {
	ctx := context.Background()
	url := testdb.NewURL(t)
	t.Setenv("DATABASE_URL", url)
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	keyFile := filepath.Join(t.TempDir(), "master.key")
	require.NoError(t, os.WriteFile(keyFile, key, 0o600))
	t.Setenv("MAILPLANE_MASTER_KEY_FILE", keyFile)
	s := &served{}
	_, errOut, rc := s.cli(t, "admin", "bootstrap", "--email", "root@cli-pg-rebuild.example", "--password", "root-password-1")
	require.Equal(t, 0, rc, errOut)

	pool, err := pgxpool.New(ctx, url)
	require.NoError(t, err)
	defer pool.Close()
	// A rebuild reads only below the gap-safe horizon.
	eventstoretest.WaitBelowHorizon(t, pool)

	out, errOut, rc := s.cli(t, "rebuild", "postgres", "--json", "--page", "1")
	require.Equal(t, 0, rc, errOut)
	require.Contains(t, errOut, "postgres rebuild: build", "the progress, as plain lines (no terminal)")
	require.Regexp(t, `build \d+/\d+ events, \d+/s`, errOut, "rate")
	var sum map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &sum), out)
	require.Positive(t, sum["events"])
	require.Equal(t, false, sum["resumed"])
	require.Equal(t, true, sum["checked"], "readcheck accepted the shadow before the swap")
	rows := sum["rows"].(map[string]any)
	require.Contains(t, rows, "rm_accounts")
	require.Contains(t, rows, "gal_tokens")

	// The checkpoints are where the shadow stood (the gap-safe head: on a shared server another
	// database's open transaction can hold it back from the last event, which the projection
	// then takes up from there).
	head := sum["head"].(map[string]any)
	var atHead int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM projection_checkpoints c WHERE name IN ('postgres.admin', 'postgres.gal')
		AND c.position = $1`, int64(head["position"].(float64))).Scan(&atHead))
	require.Equal(t, 2, atHead)

	_, errOut, rc = s.cli(t, "rebuild", "postgres", "extra")
	require.Equal(t, 2, rc, errOut)
}
