package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// ForgetOrder, run in the transaction of eventstore.RewriteOrder, drops what the Postgres read
// models kept of the old cluster's transaction ids: a shadow rebuild's recorded position (the
// rebuild starts afresh) and the crossing marks of the usage rows, which tell a statement its
// own crossings by comparing with the current transaction's id — an old id could be a new
// transaction's.
func ForgetOrder(ctx context.Context, tx pgx.Tx) error {
	for _, q := range []string{
		`DELETE FROM rebuild_progress`,
		`DROP SCHEMA IF EXISTS ` + pgx.Identifier{ShadowSchema}.Sanitize() + ` CASCADE`,
		`UPDATE mailbox_usage SET crossed_xact = NULL WHERE crossed_xact IS NOT NULL`,
		`UPDATE domain_usage SET crossed_xact = NULL WHERE crossed_xact IS NOT NULL`,
	} {
		if _, err := tx.Exec(ctx, q); err != nil {
			return fmt.Errorf("postgres: after a restore: %w", err)
		}
	}
	return nil
}
