package migrations_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"mailplane/migrations"
	"mailplane/migrations/testdb"
)

// Several `mailplane serve` starting at once all migrate; none may fail or half-apply.
func TestConcurrentMigratorsAreSafe(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := emptyDatabase(t)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))

	// Connect first, then start all at once, so that they really overlap.
	pools := make([]*pgxpool.Pool, 6)
	for i := range pools {
		p, err := pgxpool.New(ctx, url)
		require.NoError(t, err)
		require.NoError(t, p.Ping(ctx))
		defer p.Close()
		pools[i] = p
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, len(pools))
	for _, p := range pools {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs <- migrations.Up(ctx, p, logger)
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}

	pool, err := pgxpool.New(ctx, url)
	require.NoError(t, err)
	defer pool.Close()
	pending, err := migrations.Pending(ctx, pool)
	require.NoError(t, err)
	require.False(t, pending)
	var river int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM river_migration`).Scan(&river))
	require.Positive(t, river)
	var tables int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM information_schema.tables
		WHERE table_name IN ('events', 'idempotency_keys', 'data_keys', 'projection_checkpoints', 'river_job')`).Scan(&tables))
	require.Equal(t, 5, tables)
}

// emptyDatabase creates an unmigrated database for this test.
func emptyDatabase(t *testing.T) string {
	ctx := context.Background()
	url := testdb.NewURL(t)
	// testdb's databases come migrated; empty this one's schema to start from nothing.
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, `DROP SCHEMA public CASCADE; CREATE SCHEMA public`)
	require.NoError(t, err)
	return url
}
