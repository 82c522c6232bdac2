package readcheck_test

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"mailplane/api"
	"mailplane/api/apitest"
	"mailplane/readcheck"
)

// BenchmarkCheck100k checks the read models of about 100,000 events (accounts, aliases in and
// out of their domain, lists with members) and, in the same iteration, reads the same events
// raw: COPY events TO STDOUT and SELECT count(*). events-folded counts the events both folds
// took (the admin one all of them, the GAL one those up to its checkpoint). It reports each one's time and the check's
// ratio to the COPY (the machine is shared: only the ratio means something).
//
//	scripts/test.sh ./readcheck -run '^$' -bench BenchmarkCheck100k -benchtime 3x
func BenchmarkCheck100k(b *testing.B) {
	ctx := context.Background()
	e := apitest.NewWith(b, apitest.Options{MaxConns: 32, Config: api.Config{ReadYourWritesTimeout: time.Minute}})
	dom := e.CreateDomain(b, nil)
	other := e.CreateDomain(b, nil)
	e.SeedDomain(b, dom, apitest.Seed{Accounts: 55000, Aliases: 36000, Other: other, Lists: 100, MembersPerList: 50})
	var events int64
	require.NoError(b, e.Pool.QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&events))
	// The admin projection must have them all; the GAL entries' projection (seven tokens an
	// account, slower) is compared wherever its checkpoint stands when the admin one is done.
	b.Logf("%d events; waiting for the admin projection", events)
	require.Eventually(b, func() bool {
		var done bool
		require.NoError(b, e.Pool.QueryRow(ctx, `SELECT count(*) = 1 FROM projection_checkpoints c
			WHERE name = 'postgres.admin'
			  AND (c.transaction_id, c.position) >= (SELECT transaction_id, position FROM events
				ORDER BY transaction_id DESC, position DESC LIMIT 1)`).Scan(&done))
		return done
	}, 40*time.Minute, 100*time.Millisecond)
	e.StopProjections()
	conn, err := e.Pool.Acquire(ctx)
	require.NoError(b, err)
	defer conn.Release()

	var copyT, countT, checkT time.Duration
	var folded int64
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		_, err := conn.Conn().PgConn().CopyTo(ctx, io.Discard, `COPY events TO STDOUT`)
		require.NoError(b, err)
		copyT += time.Since(start)

		start = time.Now()
		var n int64
		require.NoError(b, conn.QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&n))
		countT += time.Since(start)

		start = time.Now()
		rep, err := readcheck.Check(ctx, e.Pool, "public")
		require.NoError(b, err)
		checkT += time.Since(start)
		require.True(b, rep.OK(), "%+v", rep.Tables)
		folded = rep.Checkpoints[0].Events + rep.Checkpoints[1].Events
		if b.N > 1 {
			b.Logf("folded %d admin events and %d GAL events", rep.Checkpoints[0].Events, rep.Checkpoints[1].Events)
		}
	}
	n := float64(b.N)
	b.ReportMetric(copyT.Seconds()/n, "copy-s/op")
	b.ReportMetric(countT.Seconds()/n, "count-s/op")
	b.ReportMetric(checkT.Seconds()/n, "check-s/op")
	b.ReportMetric(float64(events)*n/checkT.Seconds(), "check-events/s")
	b.ReportMetric(float64(folded), "events-folded")
	b.ReportMetric(checkT.Seconds()/copyT.Seconds(), "check/copy")
}

// BenchmarkCheckFold100k is BenchmarkCheck100k without waiting for the projections (on a loaded
// machine they take longer than the benchmark may): the projections are stopped at once and
// both checkpoints set to the head, so that the check folds all of the events and merges every
// expected row with tables that hold few. It measures the fold and the comparison's expected
// side; the tables' own reads are what it leaves out. It reports as BenchmarkCheck100k.
//
//	scripts/test.sh ./readcheck -run '^$' -bench BenchmarkCheckFold100k -benchtime 3x
func BenchmarkCheckFold100k(b *testing.B) {
	ctx := context.Background()
	e := apitest.NewWith(b, apitest.Options{MaxConns: 32, Config: api.Config{ReadYourWritesTimeout: time.Minute}})
	dom := e.CreateDomain(b, nil)
	other := e.CreateDomain(b, nil)
	e.StopProjections()
	e.SeedDomain(b, dom, apitest.Seed{Accounts: 55000, Aliases: 36000, Other: other, Lists: 100, MembersPerList: 50})
	var events int64
	require.NoError(b, e.Pool.QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&events))
	_, err := e.Pool.Exec(ctx, `UPDATE projection_checkpoints c SET (transaction_id, position) =
		(SELECT transaction_id, position FROM events ORDER BY transaction_id DESC, position DESC LIMIT 1)
		WHERE name IN ('postgres.admin', 'postgres.gal')`)
	require.NoError(b, err)
	conn, err := e.Pool.Acquire(ctx)
	require.NoError(b, err)
	defer conn.Release()

	var copyT, countT, checkT time.Duration
	var folded, differences int64
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		_, err := conn.Conn().PgConn().CopyTo(ctx, io.Discard, `COPY events TO STDOUT`)
		require.NoError(b, err)
		copyT += time.Since(start)

		start = time.Now()
		var n int64
		require.NoError(b, conn.QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&n))
		countT += time.Since(start)

		start = time.Now()
		rep, err := readcheck.Check(ctx, e.Pool, "public")
		require.NoError(b, err)
		checkT += time.Since(start)
		folded = rep.Checkpoints[0].Events + rep.Checkpoints[1].Events
		differences = 0
		for _, t := range rep.Tables {
			differences += t.Differences
		}
	}
	n := float64(b.N)
	b.ReportMetric(copyT.Seconds()/n, "copy-s/op")
	b.ReportMetric(countT.Seconds()/n, "count-s/op")
	b.ReportMetric(checkT.Seconds()/n, "check-s/op")
	b.ReportMetric(float64(events)*n/checkT.Seconds(), "check-events/s")
	b.ReportMetric(float64(folded), "events-folded")
	b.ReportMetric(float64(differences), "rows-missing")
	b.ReportMetric(checkT.Seconds()/copyT.Seconds(), "check/copy")
}
