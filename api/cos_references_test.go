package api_test

import (
	"context"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"mailplane/api/apitest"
	"mailplane/commands"
	"mailplane/domain"
	"mailplane/eventstore"
	"mailplane/migrations"
)

// The write side answers "who uses this COS" from cos_references, which the commands keep in
// their own transactions; these tests hold it against what the events say.

var testReq = commands.Request{Meta: eventstore.Metadata{Actor: "test"}}

// A COS that only an event the projection has not reached yet refers to cannot be deleted, and
// the check reads none of the backlog: its cost does not grow with how far behind the
// projection is.
func TestDeleteCOSUsedOnlyByAnUnprojectedEvent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := apitest.New(t)
	name := apitest.Unique("late-")
	require.Equal(t, http.StatusCreated, e.Do(t, http.MethodPost, cosPath, e.AdminToken, map[string]any{"name": name}).Status)
	filler := apitest.Unique("filler-")
	require.Equal(t, http.StatusCreated, e.Do(t, http.MethodPost, cosPath, e.AdminToken, map[string]any{"name": filler}).Status)
	dom := e.CreateDomain(t, nil)

	e.StopProjections()
	const backlog = 200
	touchCOS := func(n int) {
		for i := 0; i < n; i++ {
			d := fmt.Sprintf("backlog %d", i)
			_, err := e.Commands.UpdateCOS(ctx, testReq, filler, domain.UpdateCOS{Description: &d})
			require.NoError(t, err)
		}
	}
	// The one event that names the COS sits in the middle of the backlog.
	touchCOS(backlog / 2)
	addr, err := domain.ParseAddress(apitest.Unique("u") + "@" + dom)
	require.NoError(t, err)
	_, err = e.Commands.CreateAccount(ctx, testReq, domain.CreateAccount{Address: addr, COS: &name}, commands.Credentials{})
	require.NoError(t, err)
	touchCOS(backlog / 2)

	_, err = e.Reads.Account(ctx, addr.String())
	require.ErrorIs(t, err, domain.ErrNotFound, "the read model has not seen the account")
	var unprojected int
	require.NoError(t, e.Pool.QueryRow(ctx, `SELECT count(*) FROM events e WHERE (e.transaction_id, e.position) >
		(SELECT c.transaction_id, c.position FROM projection_checkpoints c WHERE c.name = 'postgres.admin')`).Scan(&unprojected))
	require.GreaterOrEqual(t, unprojected, backlog)

	// Other objects' references, as many as a real installation has, so that the planner
	// prefers the index to reading the table through.
	_, err = e.Pool.Exec(ctx, `INSERT INTO cos_references (referrer, cos)
		SELECT 'filler' || i || '@elsewhere.example', $1 FROM generate_series(1, 20000) i`, filler)
	require.NoError(t, err)
	_, err = e.Pool.Exec(ctx, `ANALYZE cos_references`)
	require.NoError(t, err)

	before := readStats(t, e.Pool)
	p := e.Do(t, http.MethodDelete, cosPath+"/"+name, e.AdminToken, nil).Problem(t, http.StatusConflict)
	after := readStats(t, e.Pool)
	require.Equal(t, []any{addr.String()}, p["users"])
	read := after.eventRows - before.eventRows
	t.Logf("the check read %d rows of events with %d unprojected", read, unprojected)
	// Loading the COS's own stream and appending to it read a handful of rows; a scan of the
	// unprojected events reads every one of them.
	require.Less(t, read, int64(40), "the in-use check read the backlog")
	require.Equal(t, int64(1), after.referenceIndexScans-before.referenceIndexScans, "one lookup in cos_references")
	require.Equal(t, before.referenceSeqScans, after.referenceSeqScans, "by its index")
}

// A COS named only by an event the projection parked (the read model never took it in) cannot
// be deleted.
func TestDeleteCOSUsedOnlyByAParkedEvent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := apitest.New(t)
	name := apitest.Unique("parked-")
	require.Equal(t, http.StatusCreated, e.Do(t, http.MethodPost, cosPath, e.AdminToken, map[string]any{"name": name}).Status)
	dom := e.CreateDomain(t, nil)
	account := e.CreateAccount(t, dom, nil)
	addr, err := domain.ParseAddress(account)
	require.NoError(t, err)

	// The read model refuses the change, so the projection retries it and then parks it. The
	// name is a COS name (letters, digits, '-'): safe to put in the statement.
	_, err = e.Pool.Exec(ctx, fmt.Sprintf(`CREATE FUNCTION refuse_cos() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF NEW.cos = '%s' THEN RAISE EXCEPTION 'test: the read model refuses COS %%', NEW.cos; END IF;
			RETURN NEW;
		END $$;
		CREATE TRIGGER refuse_cos BEFORE INSERT OR UPDATE ON rm_accounts FOR EACH ROW EXECUTE FUNCTION refuse_cos()`, name))
	require.NoError(t, err)
	out, err := e.Commands.PatchAccount(ctx, testReq, addr, commands.AccountPatch{Update: domain.UpdateAccount{COS: &name}})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		var n int
		require.NoError(t, e.Pool.QueryRow(ctx, `SELECT count(*) FROM projection_dead_letters WHERE position = $1`,
			out.Position.Position).Scan(&n))
		return n == 1
	}, 30*time.Second, 10*time.Millisecond, "the event is parked")
	var passed bool
	require.NoError(t, e.Pool.QueryRow(ctx, `SELECT (c.transaction_id, c.position) >= ($1::bigint::text::xid8, $2)
		FROM projection_checkpoints c WHERE c.name = 'postgres.admin'`,
		int64(out.Position.TransactionID), out.Position.Position).Scan(&passed))
	require.True(t, passed, "the projection moved past the parked event")
	row, err := e.Reads.Account(ctx, account)
	require.NoError(t, err)
	require.Nil(t, row.Account.COS, "the read model does not know the account uses the COS")

	p := e.Do(t, http.MethodDelete, cosPath+"/"+name, e.AdminToken, nil).Problem(t, http.StatusConflict)
	require.Equal(t, []any{account}, p["users"])
}

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

// Concurrent assignments of a COS (accounts created with it, accounts and domains switched to it,
// the global default) racing its deletion: either the deletion fails with 409 or nothing live
// refers to the COS afterwards.
func TestDeletingACOSRacingEveryKindOfAssignment(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	domains := []string{e.CreateDomain(t, nil), e.CreateDomain(t, nil)}
	var accounts []string
	for i := 0; i < 4; i++ {
		accounts = append(accounts, e.CreateAccount(t, domains[0], nil))
	}
	deleted := 0
	for round := 0; round < 20; round++ {
		name := apitest.Unique("contested-")
		require.Equal(t, http.StatusCreated, e.Do(t, http.MethodPost, cosPath, e.AdminToken, map[string]any{"name": name}).Status)
		var assign []func() int
		for _, a := range accounts {
			assign = append(assign, func() int {
				return e.Do(t, http.MethodPatch, "/api/v1/accounts/"+a, e.AdminToken, map[string]any{"cos": name}).Status
			})
		}
		for i := 0; i < 4; i++ {
			assign = append(assign, func() int {
				return e.Do(t, http.MethodPost, "/api/v1/domains/"+domains[1]+"/accounts", e.AdminToken,
					map[string]any{"local_part": apitest.Unique("u"), "cos": name}).Status
			})
		}
		for _, d := range domains {
			assign = append(assign, func() int {
				return e.Do(t, http.MethodPatch, "/api/v1/domains/"+d, e.AdminToken, map[string]any{"default_cos": name}).Status
			})
		}
		if round%4 == 0 {
			assign = append(assign, func() int {
				return e.Do(t, http.MethodPatch, configPath, e.AdminToken, map[string]any{"default_cos": name}).Status
			})
		}
		start := make(chan struct{})
		var wg sync.WaitGroup
		statuses := make([]int, len(assign))
		for i, f := range assign {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				time.Sleep(time.Duration(rand.IntN(10000)) * time.Microsecond)
				statuses[i] = f()
			}()
		}
		var del apitest.Response
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			// The assignments and the deletion start in random order.
			time.Sleep(time.Duration(rand.IntN(10000)) * time.Microsecond)
			del = e.Do(t, http.MethodDelete, cosPath+"/"+name, e.AdminToken, nil)
		}()
		close(start)
		wg.Wait()

		refs := cosReferencesFromEvents(t, e)
		var users []string
		for who, cos := range refs {
			if cos == name {
				users = append(users, who)
			}
		}
		t.Logf("round %d: delete %d, assignments %v, %d referrers now", round, del.Status, statuses, len(users))
		for _, s := range statuses {
			require.Contains(t, []int{http.StatusOK, http.StatusCreated, http.StatusBadRequest}, s,
				"round %d: an assignment either happened or found the COS gone", round)
		}
		switch del.Status {
		case http.StatusNoContent:
			deleted++
			require.Empty(t, users, "round %d: the COS was deleted while these refer to it", round)
		case http.StatusConflict:
			require.NotEmpty(t, del.JSON(t)["users"])
		default:
			t.Fatalf("round %d: delete answered %d: %s", round, del.Status, del.Body)
		}
		require.Equal(t, refs, cosReferences(t, e.Pool), "round %d", round)
	}
	t.Logf("%d of 20 deletions won", deleted)
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

// tableStats are counters PostgreSQL keeps for the database.
type tableStats struct {
	// eventRows is how many rows of events sequential and index scans have read.
	eventRows int64
	// referenceSeqScans and referenceIndexScans count the scans of cos_references.
	referenceSeqScans, referenceIndexScans int64
}

func readStats(t *testing.T, pool *pgxpool.Pool) tableStats {
	t.Helper()
	reportStats(t, pool)
	var s tableStats
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT
			(SELECT s.seq_tup_read + coalesce((SELECT sum(i.idx_tup_read) FROM pg_stat_user_indexes i WHERE i.relid = s.relid), 0)
				FROM pg_stat_user_tables s WHERE s.relname = 'events'),
			(SELECT seq_scan FROM pg_stat_user_tables WHERE relname = 'cos_references'),
			(SELECT coalesce(idx_scan, 0) FROM pg_stat_user_tables WHERE relname = 'cos_references')`).
		Scan(&s.eventRows, &s.referenceSeqScans, &s.referenceIndexScans))
	return s
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
