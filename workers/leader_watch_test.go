package workers_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"mailplane/migrations/testdb"
	"mailplane/workers"
)

// A River leader whose process is gone (its liveness lock free) is resigned for, as River would
// resign itself, with the notification that wakes the other electors; a leader whose process
// lives, and one of another build (no mailplane id, no lock), are left alone.
func TestLeaderWatchResignsForAGoneLeader(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testdb.New(t)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))

	w, err := workers.StartLeaderWatch(ctx, pool, workers.NewClientID(), logger)
	require.NoError(t, err)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { w.Run(runCtx); w.Close(); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	listener, err := pool.Acquire(ctx)
	require.NoError(t, err)
	t.Cleanup(listener.Release)
	_, err = listener.Exec(ctx, `LISTEN "public.river_leadership"`)
	require.NoError(t, err)

	setLeader := func(id string) {
		t.Helper()
		_, err := pool.Exec(ctx, `DELETE FROM river_leader`)
		require.NoError(t, err)
		_, err = pool.Exec(ctx, `INSERT INTO river_leader (name, leader_id, elected_at, expires_at)
			VALUES ('default', $1, now(), now() + interval '15 seconds')`, id)
		require.NoError(t, err)
	}
	leaderIs := func(id string) bool {
		var n int
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM river_leader WHERE leader_id = $1`, id).Scan(&n))
		return n == 1
	}

	// Another live process leads: it holds its lock, nothing happens.
	otherID := workers.NewClientID() + "-other"
	other, err := workers.StartLeaderWatch(ctx, pool, otherID, logger)
	require.NoError(t, err)
	setLeader(otherID)
	require.Never(t, func() bool { return !leaderIs(otherID) }, 5*workers.LeaderWatchEvery, workers.LeaderWatchEvery/5,
		"a leader whose process lives keeps its term")

	// Its process dies: its session, and with it the lock, goes.
	other.Close()
	require.Eventually(t, func() bool { return !leaderIs(otherID) }, 30*time.Second, 20*time.Millisecond,
		"the term of a leader whose process is gone is deleted")
	waitCtx, stop := context.WithTimeout(ctx, 30*time.Second)
	defer stop()
	n, err := listener.Conn().WaitForNotification(waitCtx)
	require.NoError(t, err, "the electors are told")
	var payload struct {
		Action   string `json:"action"`
		LeaderID string `json:"leader_id"`
	}
	require.NoError(t, json.Unmarshal([]byte(n.Payload), &payload))
	require.Equal(t, "resigned", payload.Action)
	require.Equal(t, otherID, payload.LeaderID)

	// A leader of an older build holds no liveness lock: it is not deposed for that.
	setLeader("vm_2026_12_01T10_00_00_000000")
	require.Never(t, func() bool { return !leaderIs("vm_2026_12_01T10_00_00_000000") }, 5*workers.LeaderWatchEvery, workers.LeaderWatchEvery/5,
		"a leader without a mailplane client id is left to River's lease")
}
