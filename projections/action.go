package projections

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// ErrNoActor means an operator action was asked for without saying who asks: every action is
// recorded with its actor.
var ErrNoActor = errors.New("projections: an operator action needs an actor")

// recordAction writes an operator's action on a projection to projection_actions, in the
// action's own transaction.
func recordAction(ctx context.Context, tx pgx.Tx, projection, action, actor string, detail map[string]any) error {
	doc, err := json.Marshal(detail)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO projection_actions (projection, action, actor, detail) VALUES ($1, $2, $3, $4)`,
		projection, action, actor, doc); err != nil {
		return fmt.Errorf("projections: record %s of %s: %w", action, projection, err)
	}
	return nil
}

func checkActor(actor string) error {
	if strings.TrimSpace(actor) == "" {
		return ErrNoActor
	}
	return nil
}
