package api_test

import (
	"context"
	"io/fs"
	"net/http"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"mailplane/api/apitest"
	"mailplane/api/commands"
	"mailplane/domain"
	"mailplane/eventstore"
	"mailplane/migrations"
)

// The write side answers "who uses this COS" from cos_references, which the commands keep in
// their own transactions; these tests hold it against what the events say.

var testReq = commands.Request{Meta: eventstore.Metadata{Actor: "test"}}

// Every command that sets, changes or clears a COS reference leaves cos_references exactly as the
// events say, and one that does not change a reference does not write it.
func TestCOSReferencesFollowEveryChange(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	check := func(step string) {
		t.Helper()
		require.Equal(t, cosReferencesFromEvents(t, e), cosReferences(t, e.Pool), "after %s", step)
	}
	check("bootstrap")
	buildCOSHistory(t, e, check)
}

// The migration's backfill, run over the events of a history built with the current commands,
// gives the table the commands maintained.
func TestCOSReferencesBackfillFromEvents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := apitest.New(t)
	backfill := func() map[string]string {
		t.Helper()
		tx, err := e.Pool.Begin(ctx)
		require.NoError(t, err)
		defer func() { _ = tx.Rollback(ctx) }()
		_, err = tx.Exec(ctx, `DELETE FROM cos_references`)
		require.NoError(t, err)
		_, err = tx.Exec(ctx, backfillSQL(t))
		require.NoError(t, err)
		return cosReferences(t, tx)
	}
	// Before the global configuration was ever set, its default is the built-in one.
	require.Equal(t, map[string]string{"global:default_cos": domain.DefaultCOSName}, backfill())

	buildCOSHistory(t, e, func(string) {})
	maintained := cosReferences(t, e.Pool)
	require.Equal(t, cosReferencesFromEvents(t, e), maintained)
	require.Len(t, maintained, 3, "the history leaves an account, a domain and the global default referring: %v", maintained)
	require.Equal(t, maintained, backfill())

	// Events the commands never write but Evolve gives a meaning (a set and a clear of the
	// reference in one event: the clear is applied last) are read the way Evolve reads them.
	oddDomain := apitest.Unique("odd") + ".example"
	odd, err := domain.ParseAddress("odd@" + oddDomain)
	require.NoError(t, err)
	a, b := "cos-a", "cos-b"
	_, err = e.Store.Append(ctx, eventstore.Stream{ID: domain.DomainStreamID(oddDomain), Type: domain.StreamTypeDomain, Domain: oddDomain},
		eventstore.NoStream, testReq.Meta, domain.DomainCreated{Name: oddDomain, UnicodeName: oddDomain, DefaultCOS: &a, Status: "active"},
		domain.DomainUpdated{Name: oddDomain, DefaultCOS: &b, Cleared: []string{"default_cos"}})
	require.NoError(t, err)
	_, err = e.Store.Append(ctx, eventstore.Stream{ID: domain.AccountStreamID(odd), Type: domain.StreamTypeAccount, Domain: oddDomain},
		eventstore.NoStream, testReq.Meta, domain.AccountCreated{Address: odd, COS: &a, Status: "active"},
		domain.AccountUpdated{Address: odd, COS: &b, Cleared: []string{"cos"}})
	require.NoError(t, err)
	fromEvents := cosReferencesFromEvents(t, e)
	require.NotContains(t, fromEvents, odd.String())
	require.NotContains(t, fromEvents, "domain:"+oddDomain)
	require.Equal(t, fromEvents, backfill())
}

// buildCOSHistory runs every kind of change to a COS reference through the API, calling check
// after each.
func buildCOSHistory(t *testing.T, e *apitest.Env, check func(step string)) {
	t.Helper()
	ctx := context.Background()
	ok := func(r apitest.Response, status int) {
		t.Helper()
		require.Equal(t, status, r.Status, "%s", r.Body)
	}
	gold, silver := apitest.Unique("gold-"), apitest.Unique("silver-")
	for _, n := range []string{gold, silver} {
		ok(e.Do(t, http.MethodPost, cosPath, e.AdminToken, map[string]any{"name": n}), http.StatusCreated)
	}
	patch := func(path string, body map[string]any) {
		ok(e.Do(t, http.MethodPatch, path, e.AdminToken, body), http.StatusOK)
	}

	d1 := e.CreateDomain(t, map[string]any{"default_cos": gold})
	check("a domain created with a default COS")
	d2 := e.CreateDomain(t, nil)
	check("a domain created without")
	u1 := e.CreateAccount(t, d2, map[string]any{"cos": gold})
	check("an account created with a COS")
	u2 := e.CreateAccount(t, d2, nil)
	check("an account created without")

	patch("/api/v1/accounts/"+u2, map[string]any{"cos": silver})
	check("assign")
	patch("/api/v1/accounts/"+u1, map[string]any{"cos": silver})
	check("reassign")
	patch("/api/v1/accounts/"+u1, map[string]any{"cos": nil})
	check("unassign")

	writes := cosReferenceWrites(t, e.Pool)
	patch("/api/v1/accounts/"+u2, map[string]any{"display_name": "Someone Else", "cos": silver})
	patch("/api/v1/accounts/"+u1, map[string]any{"display_name": "No COS", "mail_quota_bytes": 1 << 20})
	require.Equal(t, writes, cosReferenceWrites(t, e.Pool), "updates that keep the COS do not write its reference")
	check("updates that keep the COS")

	ok(e.Do(t, http.MethodDelete, "/api/v1/accounts/"+u2, e.AdminToken, nil), http.StatusNoContent)
	check("delete an account with a COS")
	addr, err := domain.ParseAddress(u2)
	require.NoError(t, err)
	_, err = e.Commands.CreateAccount(ctx, testReq, domain.CreateAccount{Address: addr}, commands.Credentials{})
	require.NoError(t, err)
	check("re-create it without")
	patch("/api/v1/accounts/"+u2, map[string]any{"cos": gold})
	check("assign the re-created account")

	patch("/api/v1/domains/"+d1, map[string]any{"default_cos": silver})
	check("change a domain's default")
	patch("/api/v1/domains/"+d2, map[string]any{"default_cos": gold})
	check("set a domain's default")
	patch("/api/v1/domains/"+d1, map[string]any{"default_cos": nil})
	check("clear a domain's default")
	ok(e.Do(t, http.MethodPost, "/api/v1/domains/"+d2+"/close", e.AdminToken, nil), http.StatusOK)
	check("close a domain: its objects and their references stay")

	patch(configPath, map[string]any{"default_cos": gold})
	check("change the global default")
	patch(configPath, map[string]any{"default_cos": nil})
	check("clear the global default")
	patch(configPath, map[string]any{"default_cos": silver})
	check("set the global default again")

	u3 := e.CreateAccount(t, d1, map[string]any{"cos": silver})
	ok(e.Do(t, http.MethodDelete, "/api/v1/accounts/"+u3, e.AdminToken, nil), http.StatusNoContent)
	check("an account created with a COS and deleted")
}

// cosReferences reads the table: referrer → COS.
func cosReferences(t *testing.T, q eventstore.DBTX) map[string]string {
	t.Helper()
	rows, err := q.Query(context.Background(), `SELECT referrer, cos FROM cos_references`)
	require.NoError(t, err)
	defer rows.Close()
	refs := map[string]string{}
	for rows.Next() {
		var who, cos string
		require.NoError(t, rows.Scan(&who, &cos))
		refs[who] = cos
	}
	require.NoError(t, rows.Err())
	return refs
}

// cosReferencesFromEvents folds every account, domain and configuration stream with the
// domain's own Evolve and returns what each live account, each domain and the global
// configuration refer to: an answer that depends neither on the table nor on the migration's
// SQL. It reads the streams as committed (not in the gap-safe global order, which stops short of
// what transactions still open may yet write before it).
func cosReferencesFromEvents(t *testing.T, e *apitest.Env) map[string]string {
	t.Helper()
	ctx := context.Background()
	rows, err := e.Pool.Query(ctx, `SELECT DISTINCT stream_id, stream_type FROM events WHERE stream_type = ANY($1)`,
		[]string{domain.StreamTypeAccount, domain.StreamTypeDomain, domain.StreamTypeConfig})
	require.NoError(t, err)
	streams := map[string]string{}
	for rows.Next() {
		var id, typ string
		require.NoError(t, rows.Scan(&id, &typ))
		streams[id] = typ
	}
	require.NoError(t, rows.Err())
	refs := map[string]string{"global:default_cos": domain.DefaultCOSName}
	for id, typ := range streams {
		events, err := e.Store.Load(ctx, id, eventstore.LoadOptions{})
		require.NoError(t, err)
		switch typ {
		case domain.StreamTypeAccount:
			a, err := commands.Fold[domain.Account](e.Store.Registry(), events)
			require.NoError(t, err)
			if a.Exists() && a.COS != nil {
				refs[a.Address.String()] = *a.COS
			}
		case domain.StreamTypeDomain:
			d, err := commands.Fold[domain.Domain](e.Store.Registry(), events)
			require.NoError(t, err)
			if d.DefaultCOS != nil {
				refs["domain:"+d.Name] = *d.DefaultCOS
			}
		case domain.StreamTypeConfig:
			g, err := commands.Fold[domain.GlobalConfig](e.Store.Registry(), events)
			require.NoError(t, err)
			refs["global:default_cos"] = g.WithDefaults().DefaultCOS
		}
	}
	return refs
}

// backfillSQL is the statement of the migration that fills cos_references from the events.
func backfillSQL(t *testing.T) string {
	t.Helper()
	b, err := fs.ReadFile(migrations.Files(), "00006_cos_references.sql")
	require.NoError(t, err)
	up, _, found := strings.Cut(string(b), "-- +goose Down")
	require.True(t, found)
	i := strings.Index(up, "INSERT INTO cos_references")
	require.GreaterOrEqual(t, i, 0, "the migration has no backfill")
	stmt, _, found := strings.Cut(up[i:], ";")
	require.True(t, found)
	return stmt
}

// reportStats makes every idle connection of the pool report its table statistics. A backend
// reports them when it goes idle, but at most once a second unless asked to: asked, it does so
// before it reads its next statement.
func reportStats(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	for _, c := range pool.AcquireAllIdle(ctx) {
		_, err := c.Exec(ctx, `SELECT pg_stat_force_next_flush()`)
		if err == nil {
			_, err = c.Exec(ctx, `SELECT 1`)
		}
		c.Release()
		require.NoError(t, err)
	}
}

// cosReferenceWrites counts the rows ever inserted, updated or deleted in cos_references.
func cosReferenceWrites(t *testing.T, pool *pgxpool.Pool) int64 {
	t.Helper()
	reportStats(t, pool)
	var n int64
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT n_tup_ins + n_tup_upd + n_tup_del
		FROM pg_stat_user_tables WHERE relname = 'cos_references'`).Scan(&n))
	return n
}
