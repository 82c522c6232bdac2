// Package workers holds mailplane's River jobs: the slow work done outside requests (sending
// mail now; GAL resyncs, quota warnings and certificates later). Each job kind has its own file
// with its XArgs and XWorker.
package workers

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
)

// Config is what the workers need from the outside world.
type Config struct {
	Mailer MailerConfig
	// MaxWorkers per queue (default 10).
	MaxWorkers int
	// FetchCooldown bounds how soon a new job is picked up (default 50ms).
	FetchCooldown time.Duration
}

// NewClient returns a River client. With run false it only inserts jobs (an API-only process);
// with run true it also works them once started.
func NewClient(pool *pgxpool.Pool, logger *slog.Logger, cfg Config, run bool) (*river.Client[pgx.Tx], error) {
	rc := &river.Config{Logger: logger}
	if run {
		if cfg.MaxWorkers <= 0 {
			cfg.MaxWorkers = 10
		}
		if cfg.FetchCooldown <= 0 {
			cfg.FetchCooldown = 50 * time.Millisecond
		}
		ws := river.NewWorkers()
		mailer, err := NewMailer(cfg.Mailer)
		if err != nil {
			return nil, err
		}
		if err := river.AddWorkerSafely(ws, &SendEmailWorker{Mailer: mailer}); err != nil {
			return nil, fmt.Errorf("workers: %w", err)
		}
		rc.Workers = ws
		rc.FetchCooldown = cfg.FetchCooldown
		rc.Queues = map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: cfg.MaxWorkers}}
	}
	c, err := river.NewClient(riverpgxv5.New(pool), rc)
	if err != nil {
		return nil, fmt.Errorf("workers: river client: %w", err)
	}
	return c, nil
}
