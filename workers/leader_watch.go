package workers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// River's elector (v0.51) re-elects every 5 s with a 15 s lease, and neither is configurable: a
// leader killed with SIGKILL resigns nothing, so the others wait for the lease to run out — 10
// to 21 s measured by scripts/chaos.sh (issue 13 wants 10 s at most). LeaderWatch shortens that
// without touching River's own election: every process that works jobs holds a session
// advisory lock named after its River client id for as long as it lives; Postgres drops the
// lock with the session, so a lock that can be taken means its holder is gone. Each process
// checks the leader every LeaderWatchEvery and, when the leader's lock is free, resigns for it
// as River itself would (the same DELETE and the same "resigned" notification), which wakes
// the other electors at once.
//
// Only leaders whose id has ClientIDPrefix are judged: a process of an older build holds no
// such lock, and would otherwise be deposed every second. A leader whose connection to
// Postgres broke while it lives is deposed too; it finds so at its next re-election (at most
// 5 s) and stops leading — the periodic jobs are unique per interval, so the overlap queues
// nothing twice.

// ClientIDPrefix starts the River client ids NewClientID makes.
const ClientIDPrefix = "mailplane:"

// LeaderWatchEvery is how often a process looks whether the River leader still lives.
const LeaderWatchEvery = 500 * time.Millisecond

// livenessLockClass is the first key of the two-key advisory locks LeaderWatch takes (the
// projections use one-key locks, a space of their own).
const livenessLockClass = 0x6d706c76 // "mplv"

// NewClientID returns a River client id unique to this process: the prefix, host, pid and a
// random part.
func NewClientID() string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s%s:%d:%s", ClientIDPrefix, host, os.Getpid(), hex.EncodeToString(b))
}

// LeaderWatch is one process's part of the watch: its liveness lock and its look at the leader.
type LeaderWatch struct {
	pool   *pgxpool.Pool
	id     string
	logger *slog.Logger
	conn   *pgxpool.Conn
}

// StartLeaderWatch takes this process's liveness lock (before River starts electing, so that a
// leader always holds one). Run then watches; Close releases the lock.
func StartLeaderWatch(ctx context.Context, pool *pgxpool.Pool, id string, logger *slog.Logger) (*LeaderWatch, error) {
	w := &LeaderWatch{pool: pool, id: id, logger: logger}
	if err := w.lock(ctx); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *LeaderWatch) lock(ctx context.Context) error {
	conn, err := w.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("workers: leader watch: %w", err)
	}
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, hashtext($2))`, livenessLockClass, w.id).Scan(&ok); err != nil {
		conn.Release()
		return fmt.Errorf("workers: leader watch: %w", err)
	}
	if !ok {
		conn.Release()
		return fmt.Errorf("workers: leader watch: the liveness lock of %s is held by another session", w.id)
	}
	w.conn = conn
	return nil
}

// Run watches until ctx ends. Errors are logged and the watch goes on: it only ever speeds up
// what River's lease does anyway.
func (w *LeaderWatch) Run(ctx context.Context) {
	t := time.NewTicker(LeaderWatchEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := w.keepLock(ctx); err != nil && ctx.Err() == nil {
			w.logger.Warn("leader watch: liveness lock", "err", err)
		}
		if err := w.check(ctx); err != nil && ctx.Err() == nil {
			w.logger.Warn("leader watch", "err", err)
		}
	}
}

// keepLock takes the lock again on a new session when the one holding it broke.
func (w *LeaderWatch) keepLock(ctx context.Context) error {
	if w.conn != nil {
		if err := w.conn.Ping(ctx); err == nil {
			return nil
		}
		w.conn.Release()
		w.conn = nil
	}
	return w.lock(ctx)
}

func (w *LeaderWatch) check(ctx context.Context) error {
	var leader string
	var elected time.Time
	err := w.pool.QueryRow(ctx, `SELECT leader_id, elected_at FROM river_leader WHERE name = 'default'`).Scan(&leader, &elected)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && (leader == w.id || !strings.HasPrefix(leader, ClientIDPrefix))) {
		return nil
	}
	if err != nil {
		return err
	}
	conn, err := w.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	var free bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, hashtext($2))`, livenessLockClass, leader).Scan(&free); err != nil {
		return err
	}
	if !free {
		return nil
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock($1, hashtext($2))`, livenessLockClass, leader); err != nil {
		return err
	}
	// River's own resignation (riverpgxv5 LeaderResign): delete that term, notify the electors.
	tag, err := conn.Exec(ctx, `
		WITH gone AS (SELECT * FROM river_leader WHERE leader_id = $1 AND elected_at = $2 FOR UPDATE),
		notified AS (SELECT pg_notify(current_schema() || '.river_leadership',
			json_build_object('leader_id', leader_id, 'action', 'resigned')::text) FROM gone)
		DELETE FROM river_leader USING notified WHERE river_leader.leader_id = $1 AND river_leader.elected_at = $2`, leader, elected)
	if err != nil {
		return err
	}
	if tag.RowsAffected() > 0 {
		w.logger.Info("leader watch: the River leader's process is gone: resigned for it", "leader", leader, "elected_at", elected)
	}
	return nil
}

// Close releases the liveness lock.
func (w *LeaderWatch) Close() {
	if w.conn != nil {
		_, _ = w.conn.Exec(context.Background(), `SELECT pg_advisory_unlock($1, hashtext($2))`, livenessLockClass, w.id)
		w.conn.Release()
		w.conn = nil
	}
}
