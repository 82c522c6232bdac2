package postgres_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"mailplane/domain"
	"mailplane/eventstore"
	"mailplane/migrations/testdb"
	"mailplane/projections"
	"mailplane/projections/postgres"
)

// crossingLog is a QuotaJobs that keeps what it is given.
type crossingLog struct {
	mu   sync.Mutex
	seen []domain.QuotaCrossing
}

func (l *crossingLog) QuotaWarnings(_ context.Context, _ pgx.Tx, xs []domain.QuotaCrossing) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seen = append(l.seen, xs...)
	return nil
}

func (l *crossingLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.seen)
}

// catchUp runs the admin projection until it has handled every event, then stops it.
func catchUp(t *testing.T, pool *pgxpool.Pool, reg *eventstore.Registry, admin *postgres.Admin) {
	t.Helper()
	r, err := projections.NewRunner(pool, reg, slog.New(slog.NewTextHandler(io.Discard, nil)),
		projections.Config{PollInterval: 5 * time.Millisecond}, admin)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Run(ctx) }()
	defer func() { cancel(); <-done }()
	var txid, pos int64
	require.NoError(t, pool.QueryRow(ctx, `SELECT transaction_id::text::bigint, position FROM events
		ORDER BY transaction_id DESC, position DESC LIMIT 1`).Scan(&txid, &pos))
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	require.NoError(t, projections.NewWaiter(pool, 5*time.Millisecond, admin.Name()).Wait(wctx,
		eventstore.Position{TransactionID: uint64(txid), Position: pos}))
}

// A limit lowered under the usage is a crossing when the projection takes it; a rebuild that
// replays the same events judges nothing again.
func TestUsageRecheckOnLimitsAndNotOnRebuild(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testdb.New(t)
	reg := registry(t)
	store := eventstore.NewPostgres(pool, reg)
	log := &crossingLog{}
	admin := postgres.NewAdmin(reg).WithQuotaWarnings(log)
	alice := domain.Address{Local: "alice", Domain: "q.example"}
	dstream := eventstore.Stream{ID: domain.DomainStreamID("q.example"), Type: domain.StreamTypeDomain, Domain: "q.example"}
	astream := eventstore.Stream{ID: domain.AccountStreamID(alice), Type: domain.StreamTypeAccount, Domain: "q.example"}
	app := func(s eventstore.Stream, v int, evs ...eventstore.Event) {
		t.Helper()
		_, err := store.Append(ctx, s, eventstore.Exact(v), eventstore.Metadata{Actor: "test"}, evs...)
		require.NoError(t, err)
	}
	app(dstream, 0, domain.DomainCreated{Name: "q.example", UnicodeName: "q.example", Status: "active",
		Auth: domain.AuthSettings{Mechanism: "internal"}, Limits: domain.DomainLimits{WarnPercent: ptr(90)}})
	app(astream, 0, domain.AccountCreated{Address: alice, Status: "active", MailQuotaBytes: ptr[int64](10_000), CreatedAt: time.Now()})
	catchUp(t, pool, reg, admin)

	g := domain.DefaultGlobalConfig()
	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	res, err := postgres.StoreUsage(ctx, tx, g, []domain.UsageReport{{Address: alice, UsedBytes: 5000}}, time.Now())
	require.NoError(t, err)
	require.NoError(t, tx.Commit(ctx))
	require.Equal(t, 1, res.Stored)
	require.Empty(t, res.Crossings)

	app(astream, 1, domain.AccountUpdated{Address: alice, MailQuotaBytes: ptr[int64](5200)}) // 96 %
	app(astream, 2, domain.AccountUpdated{Address: alice, MailQuotaBytes: ptr[int64](5100)}) // still over
	app(astream, 3, domain.AccountUpdated{Address: alice, MailQuotaBytes: ptr[int64](100_000)})
	app(dstream, 1, domain.DomainUpdated{Name: "q.example", Limits: &domain.LimitsPatch{WarnPercent: ptr(5)}}) // 5 % of 100,000
	catchUp(t, pool, reg, admin)
	require.Equal(t, 2, log.count())
	require.Equal(t, domain.QuotaCrossing{Scope: domain.QuotaScopeAccount, Name: "alice@q.example", Domain: "q.example",
		Crossing: 1, UsedBytes: 5000, LimitBytes: 5200, WarnPercent: 90}, log.seen[0])
	require.Equal(t, int64(2), log.seen[1].Crossing)

	// The rebuild replays limits of the past (5,200 bytes at 90 %, …): no warning for them.
	app(dstream, 2, domain.DomainUpdated{Name: "q.example", Limits: &domain.LimitsPatch{WarnPercent: ptr(90)}}) // re-arms
	catchUp(t, pool, reg, admin)
	require.Equal(t, 2, log.count())
	require.NoError(t, projections.Rebuild(ctx, pool, admin))
	catchUp(t, pool, reg, admin)
	require.Equal(t, 2, log.count(), "a rebuild warns of nothing")
	// After the rebuild, new limit changes are judged again.
	app(astream, 4, domain.AccountUpdated{Address: alice, MailQuotaBytes: ptr[int64](5000)})
	catchUp(t, pool, reg, admin)
	require.Equal(t, 3, log.count())
}

// A batch that races a limit change judges against the new limits, or the change's recheck sees
// the batch's usage: never the old limits after the recheck (which would re-arm a line the
// mailbox is over, and warn again at the next report).
func TestUsageBatchRacingALimitChange(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testdb.New(t)
	reg := registry(t)
	store := eventstore.NewPostgres(pool, reg)
	bob := domain.Address{Local: "bob", Domain: "r.example"}
	_, err := store.Append(ctx, eventstore.Stream{ID: domain.DomainStreamID("r.example"), Type: domain.StreamTypeDomain, Domain: "r.example"},
		eventstore.Exact(0), eventstore.Metadata{Actor: "test"}, domain.DomainCreated{Name: "r.example", UnicodeName: "r.example",
			Status: "active", Auth: domain.AuthSettings{Mechanism: "internal"}, Limits: domain.DomainLimits{WarnPercent: ptr(90)}})
	require.NoError(t, err)
	_, err = store.Append(ctx, eventstore.Stream{ID: domain.AccountStreamID(bob), Type: domain.StreamTypeAccount, Domain: "r.example"},
		eventstore.Exact(0), eventstore.Metadata{Actor: "test"},
		domain.AccountCreated{Address: bob, Status: "active", MailQuotaBytes: ptr[int64](10_000), CreatedAt: time.Now()})
	require.NoError(t, err)
	catchUp(t, pool, reg, postgres.NewAdmin(reg))
	g := domain.DefaultGlobalConfig()
	store1 := func(used int64) postgres.UsageResult {
		tx, err := pool.Begin(ctx)
		require.NoError(t, err)
		defer tx.Rollback(ctx)
		require.NoError(t, postgres.LockQuotaShared(ctx, tx))
		res, err := postgres.StoreUsage(ctx, tx, g, []domain.UsageReport{{Address: bob, UsedBytes: used}}, time.Now())
		require.NoError(t, err)
		require.NoError(t, tx.Commit(ctx))
		return res
	}
	require.Empty(t, store1(5000).Crossings)

	// The limit change, as the projection makes it: the read model, then the recheck.
	change, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer change.Rollback(ctx)
	require.NoError(t, postgres.LockQuotaExclusive(ctx, change))
	_, err = change.Exec(ctx, `UPDATE rm_accounts SET state = jsonb_set(state, '{MailQuotaBytes}', '5200') WHERE address = $1`, bob.String())
	require.NoError(t, err)
	xs, err := postgres.RecheckQuota(ctx, change, g, postgres.RecheckScope{Address: bob.String()})
	require.NoError(t, err)
	require.Len(t, xs, 1)
	done := make(chan postgres.UsageResult)
	go func() { done <- store1(5001) }()
	time.Sleep(300 * time.Millisecond) // the batch is under way, waiting for the change
	require.NoError(t, change.Commit(ctx))
	require.Empty(t, (<-done).Crossings)

	var over bool
	var crossings int64
	require.NoError(t, pool.QueryRow(ctx, `SELECT over_warn, crossings FROM mailbox_usage WHERE address = $1`, bob.String()).Scan(&over, &crossings))
	require.True(t, over, "still over the lowered line")
	require.Equal(t, int64(1), crossings)
	require.Empty(t, store1(5002).Crossings, "no second warning")
}
