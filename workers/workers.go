// Package workers holds mailplane's River jobs: the slow work done outside requests (sending
// mail, issuing and renewing certificates, quota warnings; GAL resyncs later). Each job kind
// has its own file with its XArgs and XWorker. Jobs issue commands (package commands) and
// commands queue jobs through Queue; nothing here imports api.
package workers

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"time"

	"github.com/go-acme/lego/v4/acme"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"mailplane/commands"
	"mailplane/eventstore"
	"mailplane/projections/postgres"
)

// Config is what the workers need from the outside world.
type Config struct {
	Mailer MailerConfig
	// Anchors records the event store's signed anchors; nil leaves the anchor job out.
	Anchors *eventstore.Anchors
	// AnchorFile, when set, receives a copy of every anchor (JSON lines).
	AnchorFile string
	// IdempotencyTTL is how long idempotency records are kept (default 24 h).
	IdempotencyTTL time.Duration
	// MaxWorkers per queue (default 10).
	MaxWorkers int
	// FetchCooldown bounds how soon a new job is picked up (default 50ms).
	FetchCooldown time.Duration
	// Commands is the write side the certificate jobs record their outcomes with; nil leaves
	// them out.
	Commands *commands.Service
	// Issuer obtains ACME certificates (an *ACME); nil: issuance jobs record that ACME is not
	// configured.
	Issuer Issuer
	// Challenges are the pending HTTP-01 challenges; the renewal job expires stale ones.
	Challenges *HTTPChallenges
	// Now is the clock the renewal job finds due certificates with, and the GAL schedule due
	// resyncs (default time.Now).
	Now func() time.Time
	// RemovalBatch and RemovalSlice tune the domain-removal job (RemoveDomainWorker).
	RemovalBatch int
	RemovalSlice time.Duration
	RemovalGrace time.Duration
	// RescueStuckJobsAfter is how long a job may run before River gives it to another process,
	// taking its worker's own timeout into account (default DefaultRescueStuckJobsAfter). It is
	// what bounds the wait before a removal whose process died goes on.
	RescueStuckJobsAfter time.Duration
	// GALTLS is the TLS client configuration of GAL resyncs over ldaps:// or StartTLS (nil: the
	// system's roots).
	GALTLS *tls.Config
	// GALPageSize is the page size of a resync's paged search (default GALPageSize).
	GALPageSize uint32
	// Metrics, when set, counts and times every run this client works.
	Metrics *JobMetrics
	// ID is the River client's id (River's default, the host and the time, when empty); a
	// process that runs a LeaderWatch gives it NewClientID's.
	ID string
}

// DefaultRescueStuckJobsAfter is River's rescue horizon here: River's own default (an hour)
// would leave a domain half removed for an hour after a crash. The rescuer still leaves alone a
// job whose worker's Timeout has not run out, so long jobs are not rescued early.
const DefaultRescueStuckJobsAfter = 5 * time.Minute

// NewClient returns a River client. With run false it only inserts jobs (an API-only process);
// with run true it also works them once started.
func NewClient(pool *pgxpool.Pool, logger *slog.Logger, cfg Config, run bool) (*river.Client[pgx.Tx], error) {
	if cfg.FetchCooldown <= 0 {
		cfg.FetchCooldown = 50 * time.Millisecond
	}
	// An inserting client wakes the working ones with at most one notification per queue and
	// FetchCooldown (River coalesces the rest, which then wait for the 1 s poll): the same bound
	// on both sides.
	if cfg.RescueStuckJobsAfter <= 0 {
		cfg.RescueStuckJobsAfter = DefaultRescueStuckJobsAfter
	}
	rc := &river.Config{ID: cfg.ID, Logger: logger, FetchCooldown: cfg.FetchCooldown, RescueStuckJobsAfter: cfg.RescueStuckJobsAfter}
	if cfg.RescueStuckJobsAfter < time.Minute {
		// River's default JobTimeout (a minute) may not exceed the rescue horizon.
		rc.JobTimeout = cfg.RescueStuckJobsAfter
	}
	if run {
		if cfg.MaxWorkers <= 0 {
			cfg.MaxWorkers = 10
		}
		ws := river.NewWorkers()
		mailer, err := NewMailer(cfg.Mailer)
		if err != nil {
			return nil, err
		}
		if err := river.AddWorkerSafely(ws, &SendEmailWorker{Mailer: mailer, Commands: cfg.Commands}); err != nil {
			return nil, fmt.Errorf("workers: %w", err)
		}
		if cfg.IdempotencyTTL <= 0 {
			cfg.IdempotencyTTL = eventstore.DefaultIdempotencyTTL
		}
		if err := river.AddWorkerSafely(ws, &ExpireIdempotencyKeysWorker{Pool: pool, TTL: cfg.IdempotencyTTL}); err != nil {
			return nil, fmt.Errorf("workers: %w", err)
		}
		rc.PeriodicJobs = append(rc.PeriodicJobs, periodic("expire_idempotency_keys", time.Hour, ExpireIdempotencyKeysArgs{}))
		if cfg.Anchors != nil {
			if err := river.AddWorkerSafely(ws, &RecordAnchorWorker{Anchors: cfg.Anchors, File: cfg.AnchorFile, Logger: logger}); err != nil {
				return nil, fmt.Errorf("workers: %w", err)
			}
			rc.PeriodicJobs = append(rc.PeriodicJobs, periodic("record_anchor", AnchorInterval, RecordAnchorArgs{}))
		}
		if cfg.Commands != nil {
			issuer := cfg.Issuer
			if issuer == nil {
				issuer = noIssuer{}
			}
			if err := river.AddWorkerSafely(ws, &QuotaWarningWorker{Commands: cfg.Commands}); err != nil {
				return nil, fmt.Errorf("workers: %w", err)
			}
			if err := river.AddWorkerSafely(ws, &IssueCertificateWorker{Commands: cfg.Commands, Issuer: issuer}); err != nil {
				return nil, fmt.Errorf("workers: %w", err)
			}
			if err := river.AddWorkerSafely(ws, &RenewCertificatesWorker{Commands: cfg.Commands, Reads: postgres.NewReadModel(pool),
				Challenges: cfg.Challenges, Logger: logger, Now: cfg.Now}); err != nil {
				return nil, fmt.Errorf("workers: %w", err)
			}
			rc.PeriodicJobs = append(rc.PeriodicJobs, periodic("renew_certificates", RenewInterval, RenewCertificatesArgs{}))
			if err := river.AddWorkerSafely(ws, &RetireDKIMKeyWorker{Commands: cfg.Commands}); err != nil {
				return nil, fmt.Errorf("workers: %w", err)
			}
			if err := river.AddWorkerSafely(ws, &ImportAccountsWorker{Commands: cfg.Commands, Pool: pool}); err != nil {
				return nil, fmt.Errorf("workers: %w", err)
			}
			if err := river.AddWorkerSafely(ws, &RemoveDomainWorker{Commands: cfg.Commands, Batch: cfg.RemovalBatch,
				Slice: cfg.RemovalSlice, Grace: cfg.RemovalGrace}); err != nil {
				return nil, fmt.Errorf("workers: %w", err)
			}
			if err := river.AddWorkerSafely(ws, &ResyncGALWorker{Commands: cfg.Commands, Pool: pool, TLS: cfg.GALTLS,
				PageSize: cfg.GALPageSize}); err != nil {
				return nil, fmt.Errorf("workers: %w", err)
			}
			if err := river.AddWorkerSafely(ws, &ScheduleGALResyncsWorker{Commands: cfg.Commands, Reads: postgres.NewReadModel(pool),
				Now: cfg.Now}); err != nil {
				return nil, fmt.Errorf("workers: %w", err)
			}
			rc.PeriodicJobs = append(rc.PeriodicJobs, periodic("schedule_gal_resyncs", GALScheduleInterval, ScheduleGALResyncsArgs{}))
		}
		if cfg.Metrics != nil {
			rc.Middleware = append(rc.Middleware, cfg.Metrics.Middleware())
		}
		rc.Workers = ws
		rc.Queues = map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: cfg.MaxWorkers}}
	}
	c, err := river.NewClient(riverpgxv5.New(pool), rc)
	if err != nil {
		return nil, fmt.Errorf("workers: river client: %w", err)
	}
	return c, nil
}

// periodic is a job the River leader inserts every interval (and once when it is elected);
// unique per interval, so that two leaders in a hand-over cannot queue it twice.
func periodic(id string, every time.Duration, args river.JobArgs) *river.PeriodicJob {
	return river.NewPeriodicJob(river.PeriodicInterval(every), func() (river.JobArgs, *river.InsertOpts) {
		return args, &river.InsertOpts{UniqueOpts: river.UniqueOpts{ByPeriod: every}}
	}, &river.PeriodicJobOpts{ID: id, RunOnStart: true})
}

// noIssuer stands in when ACME is not configured: every request fails, saying so.
type noIssuer struct{}

func (noIssuer) Obtain(context.Context, string, string) (commands.IssuedCertificate, error) {
	return commands.IssuedCertificate{}, &acme.ProblemDetails{HTTPStatus: 400, Type: "urn:mailplane:acme-not-configured",
		Detail: "this mailplane has no ACME CA configured (MAILPLANE_ACME_DIRECTORY)"}
}
