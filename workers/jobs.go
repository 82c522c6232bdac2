package workers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"mailplane/eventstore"
)

// ErrJobNotFound means no job has that id.
var ErrJobNotFound = errors.New("workers: no such job")

// JobMeta says who asked for a job and for which domain.
type JobMeta struct {
	Domain      string
	RequestedBy string
}

// Inserter is what enqueues jobs: a River client (one that works jobs or an insert-only one).
type Inserter interface {
	InsertTx(ctx context.Context, tx pgx.Tx, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error)
}

// Enqueue inserts a job in the transaction that records its cause, with the row the jobs API
// shows beside River's (who asked, which domain, progress). A job already queued for the same
// cause (River's unique options) is returned instead; its row stays as first written.
func Enqueue(ctx context.Context, tx pgx.Tx, jobs Inserter, args river.JobArgs, opts *river.InsertOpts, meta JobMeta) (*rivertype.JobRow, error) {
	res, err := jobs.InsertTx(ctx, tx, args, opts)
	if err != nil {
		return nil, fmt.Errorf("workers: enqueue %s: %w", args.Kind(), err)
	}
	var domain *string
	if meta.Domain != "" {
		domain = &meta.Domain
	}
	if _, err := tx.Exec(ctx, `INSERT INTO job_progress (job_id, kind, domain, requested_by) VALUES ($1, $2, $3, $4)
		ON CONFLICT (job_id) DO NOTHING`, res.Job.ID, args.Kind(), domain, meta.RequestedBy); err != nil {
		return nil, fmt.Errorf("workers: enqueue %s: %w", args.Kind(), err)
	}
	return res.Job, nil
}

// SetProgress records how far a job has come (done out of total).
func SetProgress(ctx context.Context, db eventstore.DBTX, jobID, done, total int64) error {
	_, err := db.Exec(ctx, `UPDATE job_progress SET done = $2, total = $3, updated_at = now() WHERE job_id = $1`, jobID, done, total)
	if err != nil {
		return fmt.Errorf("workers: progress of job %d: %w", jobID, err)
	}
	return nil
}

// Job is a job as the API shows it.
type Job struct {
	ID          int64      `json:"id"`
	Kind        string     `json:"kind"`
	State       string     `json:"state"`
	Progress    Progress   `json:"progress"`
	Errors      []string   `json:"errors"`
	CreatedAt   time.Time  `json:"created_at"`
	FinishedAt  *time.Time `json:"finished_at"`
	Domain      string     `json:"-"`
	RequestedBy string     `json:"-"`
}

// Progress is how far a job has come.
type Progress struct {
	Done  int64 `json:"done"`
	Total int64 `json:"total"`
}

// Job states as the API names them.
const (
	JobQueued    = "queued"
	JobRunning   = "running"
	JobRetrying  = "retrying"
	JobSucceeded = "succeeded"
	JobFailed    = "failed"
	JobCancelled = "cancelled"
)

// stateOf names River's state for the API: a job waiting its turn is queued, one that failed
// and will be tried again is retrying, one River gave up on is failed.
func stateOf(s rivertype.JobState) string {
	switch s {
	case rivertype.JobStateRunning:
		return JobRunning
	case rivertype.JobStateRetryable:
		return JobRetrying
	case rivertype.JobStateCompleted:
		return JobSucceeded
	case rivertype.JobStateDiscarded:
		return JobFailed
	case rivertype.JobStateCancelled:
		return JobCancelled
	}
	return JobQueued
}

// jobCancelPrefix starts the error River records for a river.JobCancel(err).
const jobCancelPrefix = "JobCancelError: "

// Lookup returns a job: River's row and the jobs API's.
func Lookup(ctx context.Context, db eventstore.DBTX, id int64) (Job, error) {
	var j Job
	var domain *string
	var errs []rivertype.AttemptError
	var state string
	err := db.QueryRow(ctx, `SELECT j.id, j.kind, j.state::text, j.created_at, j.finalized_at, j.errors,
			coalesce(p.done, 0), coalesce(p.total, 0), p.domain, coalesce(p.requested_by, '')
		FROM river_job j LEFT JOIN job_progress p ON p.job_id = j.id WHERE j.id = $1`, id).Scan(
		&j.ID, &j.Kind, &state, &j.CreatedAt, &j.FinishedAt, &errs, &j.Progress.Done, &j.Progress.Total, &domain, &j.RequestedBy)
	if errors.Is(err, pgx.ErrNoRows) {
		return Job{}, fmt.Errorf("%w: %d", ErrJobNotFound, id)
	}
	if err != nil {
		return Job{}, fmt.Errorf("workers: job %d: %w", id, err)
	}
	j.State = stateOf(rivertype.JobState(state))
	// River makes a failed job due again soon "available" at once, skipping "retryable": it is
	// retrying all the same.
	if j.State == JobQueued && len(errs) > 0 {
		j.State = JobRetrying
	}
	// A worker that gives up for good (river.JobCancel: the work cannot succeed, say the CA
	// refused the request) leaves River's "cancelled" with its error, which River prefixes;
	// to the API that job failed. A job cancelled from outside has no such error.
	if j.State == JobCancelled && len(errs) > 0 && strings.HasPrefix(errs[len(errs)-1].Error, jobCancelPrefix) {
		j.State = JobFailed
	}
	j.CreatedAt = j.CreatedAt.UTC()
	if j.FinishedAt != nil {
		t := j.FinishedAt.UTC()
		j.FinishedAt = &t
	}
	if domain != nil {
		j.Domain = *domain
	}
	j.Errors = make([]string, len(errs))
	for i, e := range errs {
		j.Errors[i] = strings.TrimPrefix(e.Error, jobCancelPrefix)
	}
	return j, nil
}

// JobReader reads jobs for the jobs API.
type JobReader struct {
	DB eventstore.DBTX
}

// Lookup returns a job (see Lookup).
func (r JobReader) Lookup(ctx context.Context, id int64) (Job, error) { return Lookup(ctx, r.DB, id) }
