package api_test

// BenchmarkDomainRemoval (docs/benchmarks.md, "removal"; scripts/bench.sh removal): a domain of
// MAILPLANE_BENCH_REMOVAL_ACCOUNTS accounts (default 20,000), a fortieth as many lists (500) of 20
// members and a quarter as many aliases (5,000: half in the domain, a quarter of its accounts
// elsewhere, a quarter of other accounts in it) is removed through DELETE and the remove_domain
// job (one worker, as a removal is one job). Reported:
//
//	s_end_to_end        DELETE until the job has succeeded (every object's event appended, the
//	                    domain removed and its key destroyed)
//	s_projected         DELETE until the admin read model has caught up with it
//	removal_events/s    the job's events / s_end_to_end
//	raw_events/s        the same number of events appended as 100-event batches (Append, one new
//	                    stream per batch, one writer like the job), measured in the same run just
//	                    before the removal and again just after it (the admin projection then
//	                    still busy with the removal's events, as it was during the removal): the
//	                    mean of the two, since the shared machine's load moves within a minute
//	ratio               removal_events/s / raw_events/s (target ≥ 0.5)

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"mailplane/api/apitest"
	"mailplane/domain"
	"mailplane/eventstore"
	"mailplane/projections"
)

func BenchmarkDomainRemoval(b *testing.B) {
	n := 20000
	if v := os.Getenv("MAILPLANE_BENCH_REMOVAL_ACCOUNTS"); v != "" {
		var err error
		n, err = strconv.Atoi(v)
		require.NoError(b, err)
	}
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		e := apitest.NewWith(b, apitest.Options{Workers: &apitest.Workers{}})
		dom := e.CreateDomain(b, nil)
		other := e.CreateDomain(b, nil)
		seeded := e.SeedDomain(b, dom, apitest.Seed{Accounts: n, Lists: max(n/40, 1), MembersPerList: 20, Aliases: max(n/4, 4), Other: other})
		waitProjected(b, e)

		// What the job will append: one event per object of the domain, one per alias of an
		// outside account in it, two for the domain (started, removed).
		events := len(seeded.Accounts) + len(seeded.Lists) + len(seeded.OtherAccounts) + 2
		rawBefore := rawBatchRate(b, e, events, "before")

		b.StartTimer()
		start := time.Now()
		r := e.Do(b, http.MethodDelete, "/api/v1/domains/"+dom, e.AdminToken, nil)
		require.Equal(b, http.StatusAccepted, r.Status, "%s", r.Body)
		jobPath := r.Header.Get("Location")
		for {
			j := e.Do(b, http.MethodGet, jobPath, e.AdminToken, nil).JSON(b)
			if j["state"] == "succeeded" {
				break
			}
			require.NotEqual(b, "failed", j["state"], "%v", j)
			time.Sleep(10 * time.Millisecond)
		}
		endToEnd := time.Since(start)
		b.StopTimer()
		rawAfter := rawBatchRate(b, e, events, "after")
		raw := (rawBefore + rawAfter) / 2
		waitProjected(b, e)
		projected := time.Since(start)

		var appended int
		require.NoError(b, e.Pool.QueryRow(ctx, `SELECT count(*) FROM events WHERE metadata->>'actor' = 'system:remove_domain'`).Scan(&appended))
		appended++ // DomainRemovalStarted is the request's
		require.Equal(b, events, appended)
		rate := float64(appended) / endToEnd.Seconds()
		b.ReportMetric(endToEnd.Seconds(), "s_end_to_end")
		b.ReportMetric(projected.Seconds(), "s_projected")
		b.ReportMetric(rate, "removal_events/s")
		b.ReportMetric(raw, "raw_events/s")
		b.ReportMetric(rate/raw, "ratio")
		b.ReportMetric(0, "ns/op")
		fmt.Fprintf(os.Stderr, "removal: %d accounts, %d lists, %d aliases: %d events in %.2fs (%.0f events/s), projected after %.2fs; "+
			"raw 100-event batches %.0f events/s (before %.0f, after %.0f); ratio %.2f\n",
			len(seeded.Accounts), len(seeded.Lists), len(seeded.Aliases), appended, endToEnd.Seconds(), rate, projected.Seconds(),
			raw, rawBefore, rawAfter, rate/raw)
	}
}

// rawBatchRate appends events (rounded up to hundreds) as 100-event batches, one new stream each,
// on one writer, and returns events/s. round names the streams apart.
func rawBatchRate(b *testing.B, e *apitest.Env, events int, round string) float64 {
	b.Helper()
	ctx := context.Background()
	batches := (events + 99) / 100
	evs := make([]eventstore.Event, 100)
	meta := eventstore.Metadata{Actor: "bench:raw", RequestID: "raw"}
	start := time.Now()
	for i := 0; i < batches; i++ {
		for j := range evs {
			evs[j] = domain.AccountDeleted{Address: domain.Address{Local: fmt.Sprintf("raw%06d", i*100+j), Domain: "raw.invalid"}}
		}
		_, err := e.Store.Append(ctx, eventstore.Stream{ID: fmt.Sprintf("bench-raw-%s-%06d", round, i), Type: "bench", Domain: "raw.invalid"},
			eventstore.NoStream, meta, evs...)
		require.NoError(b, err)
	}
	return float64(batches*100) / time.Since(start).Seconds()
}

func waitProjected(b testing.TB, e *apitest.Env) {
	b.Helper()
	head, err := e.Store.Head(context.Background())
	require.NoError(b, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	require.NoError(b, projections.NewWaiter(e.Pool, 10*time.Millisecond, "postgres.admin").Wait(ctx, head))
}
