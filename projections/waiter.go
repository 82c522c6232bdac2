package projections

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"mailplane/eventstore"
)

// Waiter lets a writer wait until projections have caught up with what it appended
// (read-your-writes). One poller serves all waiters, so many concurrent requests cost one small
// query per interval rather than one each.
type Waiter struct {
	pool     *pgxpool.Pool
	names    []string
	interval time.Duration

	mu      sync.Mutex
	waiters map[*waiter]struct{}
	polling bool
	// seen is the slowest checkpoint last read: a position at or before it needs no query.
	seen eventstore.Position
}

type waiter struct {
	pos  eventstore.Position
	done chan struct{}
	err  error // set before done closes, when the wait cannot end well
}

// ErrStopped means a projection waited for is stopped: it will not catch up until an operator
// resumes it, so nobody should wait for it.
var ErrStopped = errors.New("projections: the projection is stopped")

// NewWaiter returns a waiter on the named projections' checkpoints.
func NewWaiter(pool *pgxpool.Pool, interval time.Duration, names ...string) *Waiter {
	if interval <= 0 {
		interval = 2 * time.Millisecond
	}
	return &Waiter{pool: pool, names: names, interval: interval, waiters: make(map[*waiter]struct{})}
}

// Wait returns once every projection has handled the event at pos, or with ctx's error.
func (w *Waiter) Wait(ctx context.Context, pos eventstore.Position) error {
	if len(w.names) == 0 {
		return nil
	}
	wt := &waiter{pos: pos, done: make(chan struct{})}
	w.mu.Lock()
	if !w.seen.Less(pos) {
		w.mu.Unlock()
		return nil
	}
	w.waiters[wt] = struct{}{}
	if !w.polling {
		w.polling = true
		go w.poll()
	}
	w.mu.Unlock()
	select {
	case <-wt.done:
		return wt.err
	case <-ctx.Done():
		w.mu.Lock()
		delete(w.waiters, wt)
		w.mu.Unlock()
		return fmt.Errorf("projections: not caught up with position %d: %w", pos.Position, ctx.Err())
	}
}

// poll runs while anyone waits.
func (w *Waiter) poll() {
	for {
		min, stopped, err := w.slowest()
		w.mu.Lock()
		if err == nil && stopped != "" {
			for wt := range w.waiters {
				if min.Less(wt.pos) {
					wt.err = fmt.Errorf("%w: %s (mailplane projections status)", ErrStopped, stopped)
					close(wt.done)
					delete(w.waiters, wt)
				}
			}
		}
		if err == nil {
			if w.seen.Less(min) {
				w.seen = min
			}
			for wt := range w.waiters {
				if !min.Less(wt.pos) {
					close(wt.done)
					delete(w.waiters, wt)
				}
			}
		}
		if len(w.waiters) == 0 {
			w.polling = false
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
		time.Sleep(w.interval)
	}
}

// slowest returns the checkpoint of the projection furthest behind, and the name of one of them
// that is stopped, if any.
func (w *Waiter) slowest() (eventstore.Position, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var p eventstore.Position
	var n int
	var txid int64
	var stopped string
	err := w.pool.QueryRow(ctx, `SELECT count(*), coalesce(min(transaction_id)::text::bigint, 0),
		coalesce((array_agg(position ORDER BY transaction_id, position))[1], 0),
		coalesce((SELECT s.projection FROM projection_stops s WHERE s.projection = ANY($1) LIMIT 1), '')
		FROM projection_checkpoints WHERE name = ANY($1)`, w.names).Scan(&n, &txid, &p.Position, &stopped)
	if err != nil {
		return p, "", err
	}
	if n < len(w.names) {
		return eventstore.Position{}, stopped, nil // a projection that never ran has seen nothing
	}
	p.TransactionID = uint64(txid)
	return p, stopped, nil
}

// Lag counts the events the named projection has not handled yet, counting no further than
// limit (so a projection far behind costs a bounded query).
func Lag(ctx context.Context, pool *pgxpool.Pool, name string, limit int) (int, error) {
	var n int
	err := pool.QueryRow(ctx, `SELECT count(*) FROM (
		SELECT 1 FROM events e
		WHERE (e.transaction_id, e.position) > coalesce(
			(SELECT (c.transaction_id, c.position) FROM projection_checkpoints c WHERE c.name = $1),
			('0'::xid8, 0::bigint))
		LIMIT $2) s`, name, limit).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("projections: lag of %s: %w", name, err)
	}
	return n, nil
}
