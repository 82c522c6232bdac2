package workers_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"mailplane/migrations/testdb"
	"mailplane/workers"
)

// Expired idempotency records are deleted; live ones stay.
func TestExpiredIdempotencyKeysAreDeleted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testdb.New(t)
	_, err := pool.Exec(ctx, `INSERT INTO idempotency_keys (scope, key, stream_id, first_version, last_version, transaction_id, last_position, created_at)
		SELECT 'a', 'old-' || i, 's', 1, 1, '1'::xid8, 1, now() - interval '25 hours' FROM generate_series(1, 2500) i
		UNION ALL SELECT 'a', 'new', 's', 1, 1, '1'::xid8, 1, now() - interval '23 hours'`)
	require.NoError(t, err)
	w := &workers.ExpireIdempotencyKeysWorker{Pool: pool, TTL: 24 * time.Hour}
	require.NoError(t, w.Work(ctx, nil))
	var keys []string
	rows, err := pool.Query(ctx, `SELECT key FROM idempotency_keys`)
	require.NoError(t, err)
	for rows.Next() {
		var k string
		require.NoError(t, rows.Scan(&k))
		keys = append(keys, k)
	}
	require.Equal(t, []string{"new"}, keys)
}
