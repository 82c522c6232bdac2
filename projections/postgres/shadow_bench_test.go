package postgres_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"mailplane/api/apitest"
	"mailplane/domain"
	"mailplane/eventstore"
	"mailplane/projections/postgres"
)

func benchInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// seedHistory appends about n events of a realistic mix, in transactions of 1,000 streams:
// COS created and changed, domains created and changed, accounts created, renamed, some
// closed, half with an alias, some deleted, lists created with members added later.
func seedHistory(b *testing.B, e *apitest.Env, n int) int {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	var all []eventstore.StreamAppend
	count := 0
	add := func(s eventstore.Stream, evs ...domain.Event) {
		x := make([]eventstore.Event, len(evs))
		for i, ev := range evs {
			x[i] = ev
		}
		all = append(all, eventstore.StreamAppend{Stream: s, Expected: eventstore.NoStream, Events: x})
		count += len(evs)
	}
	str := func(s string) *string { return &s }
	var coses []string
	for i := 0; i < 20; i++ {
		name := fmt.Sprintf("bench-cos-%02d", i)
		coses = append(coses, name)
		q := int64(1 << 30)
		evs := []domain.Event{domain.COSCreated{Name: name, Description: "class " + name, MailQuotaBytes: &q}}
		for j := 0; j < 4; j++ {
			evs = append(evs, domain.COSUpdated{Name: name, Description: str(fmt.Sprintf("class %s v%d", name, j))})
		}
		add(eventstore.Stream{ID: domain.COSStreamID(name), Type: domain.StreamTypeCOS}, evs...)
	}
	var doms []string
	for i := 0; i < 100; i++ {
		name := fmt.Sprintf("bench%03d.example", i)
		doms = append(doms, name)
		evs := []domain.Event{domain.DomainCreated{Name: name, UnicodeName: name, Status: domain.StatusActive}}
		for j := 0; j < 4; j++ {
			evs = append(evs, domain.DomainUpdated{Name: name, Description: str(fmt.Sprintf("domain %s v%d", name, j))})
		}
		evs = append(evs, domain.DomainUpdated{Name: name, DefaultCOS: &coses[i%len(coses)]})
		add(eventstore.Stream{ID: domain.DomainStreamID(name), Type: domain.StreamTypeDomain, Domain: name}, evs...)
	}
	for i := 0; count < n; i++ {
		dom := doms[i%len(doms)]
		if i%200 == 199 {
			addr, err := domain.ParseAddress(fmt.Sprintf("list%06d@%s", i, dom))
			require.NoError(b, err)
			var members []domain.Address
			for j := 0; j < 5; j++ {
				m, _ := domain.ParseAddress(fmt.Sprintf("user%07d@%s", i-j*100-1, dom))
				members = append(members, m)
			}
			add(eventstore.Stream{ID: domain.ListStreamID(addr), Type: domain.StreamTypeList, Domain: dom},
				domain.ListCreated{Address: addr, DisplayName: "List " + addr.Local, SubscriptionPolicy: "approval", UnsubscriptionPolicy: "accept", CreatedAt: now},
				domain.ListMembersAdded{Address: addr, Members: members[:3]},
				domain.ListMembersAdded{Address: addr, Members: members[3:]},
				domain.ListUpdated{Address: addr, DisplayName: str("The list " + addr.Local)})
			continue
		}
		addr, err := domain.ParseAddress(fmt.Sprintf("user%07d@%s", i, dom))
		require.NoError(b, err)
		evs := []domain.Event{
			domain.AccountCreated{Address: addr, DisplayName: "User " + addr.Local, Status: domain.StatusActive, CreatedAt: now,
				Attributes: map[string]string{"givenName": "User", "sn": strconv.Itoa(i)}},
			domain.AccountUpdated{Address: addr, DisplayName: str("Renamed " + addr.Local)},
		}
		if i%2 == 0 {
			alias, _ := domain.ParseAddress(fmt.Sprintf("alias%07d@%s", i, dom))
			evs = append(evs, domain.AliasAdded{Address: addr, Alias: alias})
		}
		if i%5 == 0 {
			evs = append(evs, domain.AccountUpdated{Address: addr, Status: str(domain.StatusLocked)})
		}
		if i%20 == 3 {
			evs = append(evs, domain.AccountDeleted{Address: addr})
		}
		add(eventstore.Stream{ID: domain.AccountStreamID(addr), Type: domain.StreamTypeAccount, Domain: dom}, evs...)
	}
	meta := eventstore.Metadata{Actor: "bench:seed"}
	for start := 0; start < len(all); start += 1000 {
		chunk := all[start:min(start+1000, len(all))]
		require.NoError(b, pgx.BeginFunc(ctx, e.Pool, func(tx pgx.Tx) error {
			_, err := e.Store.AppendManyTx(ctx, tx, meta, chunk)
			return err
		}))
	}
	return count
}

// peakRSS is the process's peak resident set since the last resetPeakRSS, in bytes.
func peakRSS(b *testing.B) int64 {
	f, err := os.Open("/proc/self/status")
	require.NoError(b, err)
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			require.NoError(b, err)
			return kb * 1024
		}
	}
	b.Fatal("no VmHWM")
	return 0
}

func resetPeakRSS(b *testing.B) {
	runtime.GC()
	debug.FreeOSMemory()
	require.NoError(b, os.WriteFile("/proc/self/clear_refs", []byte("5"), 0))
}

// copyRead is the raw baseline: every event, in the rebuild's order, read with COPY.
func copyRead(b *testing.B, e *apitest.Env) time.Duration {
	ctx := context.Background()
	conn, err := e.Pool.Acquire(ctx)
	require.NoError(b, err)
	defer conn.Release()
	t := time.Now()
	_, err = conn.Conn().PgConn().CopyTo(ctx, io.Discard, `COPY (SELECT * FROM events ORDER BY transaction_id, position) TO STDOUT`)
	require.NoError(b, err)
	return time.Since(t)
}

// BenchmarkShadowRebuild rebuilds the Postgres read models of BENCH_REBUILD_EVENTS (default
// 1,000,000) events of a realistic mix through the shadow tables, against the raw COPY read of
// the same events in the same run; it reports events/s of both, their ratio and the process's
// peak RSS during the rebuild. The live projections are stopped first (they would spend the
// machine's two CPUs projecting the seed); the swap then moves their checkpoints to the head.
// (The API's latency is not measured here: with the projections stopped its reads wait for them.)
func BenchmarkShadowRebuild(b *testing.B) {
	n := benchInt("BENCH_REBUILD_EVENTS", 1_000_000)
	e := apitest.New(b)
	e.StopProjections()
	t := time.Now()
	seeded := seedHistory(b, e, n)
	b.Logf("seeded %d events in %.1fs", seeded, time.Since(t).Seconds())
	ctx := context.Background()
	_, err := e.Pool.Exec(ctx, `VACUUM ANALYZE events`)
	require.NoError(b, err)
	var total int
	require.NoError(b, e.Pool.QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&total))

	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		copy1 := copyRead(b, e)
		resetPeakRSS(b)
		o := shadowOptions(e, benchInt("BENCH_REBUILD_PAGE", 5000))
		start := time.Now()
		sum, err := postgres.ShadowRebuild(ctx, o)
		elapsed := time.Since(start)
		require.NoError(b, err)
		rss := peakRSS(b)
		copy2 := copyRead(b, e)
		copyRate := float64(total) / ((copy1 + copy2).Seconds() / 2)
		rate := float64(sum.Events) / elapsed.Seconds()
		b.ReportMetric(rate, "events/s")
		b.ReportMetric(copyRate, "copy-events/s")
		b.ReportMetric(rate/copyRate, "ratio")
		b.ReportMetric(float64(rss)/(1<<20), "peak-MB")
		b.Logf("rebuild: %d events in %.1fs (%.0f/s; build %.1fs, swap %.3fs with %d events); COPY read %.2fs and %.2fs (%.0f/s); ratio %.3f; peak RSS %d MB; rows %v",
			sum.Events, elapsed.Seconds(), rate, sum.Build.Seconds(), sum.SwapTime.Seconds(), sum.SwapEvents,
			copy1.Seconds(), copy2.Seconds(), copyRate, rate/copyRate, rss>>20, sum.Rows)
	}
}
