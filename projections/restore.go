package projections

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// ForgetOrder, run in the transaction of eventstore.RewriteOrder after it, drops what the
// projections kept of the old order: every checkpoint (each projection is rebuilt from position
// 0 afterwards), and moves each stop's transaction id to the new one (xidMap is that table, old
// to new). Dead letters and skips are kept by position, which a restore does not change.
func ForgetOrder(ctx context.Context, tx pgx.Tx, xidMap string) error {
	m := pgx.Identifier{xidMap}.Sanitize()
	if _, err := tx.Exec(ctx, `UPDATE projection_stops s SET transaction_id = m.new FROM `+m+` m WHERE m.old = s.transaction_id`); err != nil {
		return fmt.Errorf("projections: stops after a restore: %w", err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM projection_checkpoints`); err != nil {
		return fmt.Errorf("projections: checkpoints after a restore: %w", err)
	}
	return nil
}
