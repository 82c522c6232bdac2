package workers

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"riverqueue.com/riverui"
)

// UIPrefix is the path River UI is served under.
const UIPrefix = "/riverui"

// UI returns River UI (its pages and its JSON API) for the jobs of client, served under
// UIPrefix; it runs its background caching until ctx ends. Who may see it is the caller's
// business: River UI has no authentication of its own, and its API can cancel, retry and
// delete jobs.
func UI(ctx context.Context, client *river.Client[pgx.Tx], logger *slog.Logger) (http.Handler, error) {
	h, err := riverui.NewHandler(&riverui.HandlerOpts{
		Endpoints: riverui.NewEndpoints(client, nil),
		Logger:    logger,
		Prefix:    UIPrefix,
		// Job arguments hold addresses and host names; shown on request, not in every list.
		JobListHideArgsByDefault: true,
	})
	if err != nil {
		return nil, fmt.Errorf("workers: river ui: %w", err)
	}
	if err := h.Start(ctx); err != nil {
		return nil, fmt.Errorf("workers: river ui: %w", err)
	}
	return h, nil
}
