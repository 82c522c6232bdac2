package eventstoretest

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
)

// WaitBelowHorizon waits until every event in pool's database is below the gap-safe horizon,
// the oldest transaction in flight. Anchors and rebuilds rightly stop short of events above it,
// and transaction ids are cluster-wide: on a shared test server another database's open
// transaction can hold the horizon back for seconds (seen in full CI runs).
func WaitBelowHorizon(t testing.TB, pool *pgxpool.Pool) {
	t.Helper()
	require.Eventually(t, func() bool {
		var below bool
		require.NoError(t, pool.QueryRow(context.Background(),
			`SELECT coalesce(max(transaction_id) < pg_snapshot_xmin(pg_current_snapshot()), true) FROM events`).Scan(&below))
		return below
	}, time.Minute, 10*time.Millisecond, "the events get below the gap-safe horizon")
}
