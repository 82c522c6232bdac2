package eventstore

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// RewriteSummary is what RewriteRestoredOrder did.
type RewriteSummary struct {
	Events       int64
	Transactions int64
	// MaxRewritten is the highest transaction id given out: every event now sorts before any
	// transaction the cluster starts.
	MaxRewritten uint64
	// Burned is how many transaction ids were used up first so that the cluster's counter
	// passed MaxRewritten (none unless the old order had more inversions than the new cluster
	// had transactions).
	Burned int64
	// Anchors is how many anchors were given their place in the rewritten order.
	Anchors int64
}

// XidRewriteTable is the temporary table (old xid8, new xid8) that RewriteOrder leaves for the
// rest of its transaction, for other tables holding events' transaction ids to be mapped with.
const XidRewriteTable = "xid_rewrite"

// descentsSQL numbers the events in the old (transaction_id, position) order with the smallest
// ids that keep it: walking that order, the id goes up by one only where the position goes down
// (an older transaction appended after a younger one). Between two such points positions
// ascend, so ordering by (new id, position) is the old order exactly; within one old
// transaction positions ascend too, so each old id gets one new id.
const descentsSQL = `SELECT transaction_id AS old, 1 + sum(CASE WHEN prev > position THEN 1 ELSE 0 END)
		OVER (ORDER BY transaction_id, position ROWS UNBOUNDED PRECEDING) AS new, position
	FROM (SELECT transaction_id, position, lag(position) OVER (ORDER BY transaction_id, position) AS prev FROM events) o`

// PrepareRewrite makes the cluster's transaction counter pass the ids RewriteOrder will give
// out, by starting (and committing) transactions that take an id, and returns how many it
// burned. Run it before RewriteOrder, outside its transaction.
func PrepareRewrite(ctx context.Context, pool *pgxpool.Pool) (int64, error) {
	var need int64
	if err := pool.QueryRow(ctx, `SELECT coalesce(max(new), 0) FROM (`+descentsSQL+`) d`).Scan(&need); err != nil {
		return 0, fmt.Errorf("eventstore: count the order's inversions: %w", err)
	}
	var burned int64
	for {
		var cur int64
		// Each statement is a transaction of its own that takes an id.
		if err := pool.QueryRow(ctx, `SELECT pg_current_xact_id()::text::bigint`).Scan(&cur); err != nil {
			return burned, err
		}
		if cur > need+1 {
			return burned, nil
		}
		burned++
	}
}

// RewriteOrder rewrites, in tx, the transaction ids of a logical restore's events (pg_dump
// into another cluster keeps the old cluster's ids, which new transactions would sort before, or
// after, at random) into small ids that keep the old order exactly and sort before anything the
// cluster will write (PrepareRewrite makes sure of it). The hash chains leave transaction ids
// out, so they still hold. Idempotency records follow their events; each anchor keeps its
// signed position and gets its place in the new order (Anchor.Order). The map of old to new
// ids stays in XidRewriteTable until tx ends. It refuses if the cluster's counter has not
// passed the ids it would give out.
func RewriteOrder(ctx context.Context, tx pgx.Tx, actor string) (RewriteSummary, error) {
	var sum RewriteSummary
	steps := []struct {
		what, sql string
	}{
		{"map", `CREATE TEMPORARY TABLE ` + XidRewriteTable + ` ON COMMIT DROP AS
			SELECT old, min(new)::text::xid8 AS new, count(DISTINCT new) AS n FROM (` + descentsSQL + `) d GROUP BY old`},
		{"check", `DO $$ BEGIN
			IF EXISTS (SELECT 1 FROM ` + XidRewriteTable + ` WHERE n > 1) THEN
				RAISE EXCEPTION 'a transaction''s events do not ascend by position';
			END IF;
			IF (SELECT max(new) FROM ` + XidRewriteTable + `) >= pg_current_xact_id() THEN
				RAISE EXCEPTION 'the cluster''s transaction counter has not passed the ids to give out (run PrepareRewrite)';
			END IF; END $$`},
		{"index", `CREATE UNIQUE INDEX ON ` + XidRewriteTable + ` (old)`},
		// Where each anchor's window ends in the new order: the last event at or before its
		// position in the old order (its own head event, unless that was deleted). Anchors
		// rewritten by an earlier restore end where that one put them.
		{"anchors", `UPDATE anchors a SET (order_transaction_id, order_position) = (
			SELECT m.new, e.position FROM events e JOIN ` + XidRewriteTable + ` m ON m.old = e.transaction_id
			WHERE (e.transaction_id, e.position) <= (coalesce(a.order_transaction_id, a.transaction_id), coalesce(a.order_position, a.position))
			ORDER BY e.transaction_id DESC, e.position DESC LIMIT 1)`},
		{"events", `UPDATE events e SET transaction_id = m.new FROM ` + XidRewriteTable + ` m
			WHERE m.old = e.transaction_id AND e.transaction_id <> m.new`},
		// A record whose events are gone (none should be) sorts before everything.
		{"idempotency", `UPDATE idempotency_keys k SET transaction_id = coalesce(
			(SELECT m.new FROM ` + XidRewriteTable + ` m WHERE m.old = k.transaction_id), '1'::xid8)`},
	}
	if _, err := tx.Exec(ctx, `ALTER TABLE events DISABLE TRIGGER events_append_only;
		ALTER TABLE anchors DISABLE TRIGGER anchors_append_only`); err != nil {
		return sum, fmt.Errorf("eventstore: rewrite order: %w", err)
	}
	for _, s := range steps {
		tag, err := tx.Exec(ctx, s.sql)
		if err != nil {
			return sum, fmt.Errorf("eventstore: rewrite order (%s): %w", s.what, err)
		}
		switch s.what {
		case "events":
			sum.Events = tag.RowsAffected()
		case "anchors":
			sum.Anchors = tag.RowsAffected()
		}
	}
	if _, err := tx.Exec(ctx, `ALTER TABLE events ENABLE TRIGGER events_append_only;
		ALTER TABLE anchors ENABLE TRIGGER anchors_append_only`); err != nil {
		return sum, fmt.Errorf("eventstore: rewrite order: %w", err)
	}
	var maxNew int64
	if err := tx.QueryRow(ctx, `SELECT count(*), coalesce(max(new)::text::bigint, 0) FROM `+XidRewriteTable).
		Scan(&sum.Transactions, &maxNew); err != nil {
		return sum, err
	}
	sum.MaxRewritten = uint64(maxNew)
	if _, err := tx.Exec(ctx, `INSERT INTO order_rewrites (events, transactions, max_rewritten, rewritten_by)
		VALUES ($1, $2, $3::bigint::text::xid8, $4)`, sum.Events, sum.Transactions, maxNew, actor); err != nil {
		return sum, fmt.Errorf("eventstore: record the rewrite: %w", err)
	}
	return sum, nil
}
