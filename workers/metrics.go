package workers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"mailplane/eventstore"
)

// Run outcomes, the outcome label of the run metrics.
const (
	RunSucceeded = "succeeded"
	// RunErrored: the run failed and River will try again.
	RunErrored = "errored"
	// RunFailed: the run failed for good (its last attempt, or the worker gave up: JobCancel).
	RunFailed = "failed"
	// RunSnoozed: the worker asked to be run again later (a removal between its slices).
	RunSnoozed = "snoozed"
)

// JobMetrics are the Prometheus metrics of the jobs, per kind: how many are in each state now
// (read from River's table at scrape time, so every process reports the same and a process that
// only inserts jobs reports them too), and, for the jobs this process works, how many runs
// ended how and how long they took (counted around each run by River middleware, so no run is
// missed the way a dropped subscription event would be).
type JobMetrics struct {
	db     eventstore.DBTX
	logger *slog.Logger
	jobs   *prometheus.Desc
	up     *prometheus.Desc
	runs   *prometheus.CounterVec
	took   *prometheus.HistogramVec
}

// NewJobMetrics returns the metrics; register them, and give Middleware to the working client.
func NewJobMetrics(db eventstore.DBTX, logger *slog.Logger) *JobMetrics {
	return &JobMetrics{
		db:     db,
		logger: logger,
		jobs: prometheus.NewDesc("mailplane_jobs",
			"Jobs per kind in each state (queued, running, retrying, succeeded, failed, cancelled), as the jobs API names "+
				"them; finished jobs count while River keeps them (24 h).", []string{"kind", "state"}, nil),
		up: prometheus.NewDesc("mailplane_jobs_status_up", "1 if the jobs could be counted for this scrape.", nil, nil),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mailplane_job_runs_total",
			Help: "Job runs this process finished, per kind and outcome (succeeded, errored: tried again, failed: for good, snoozed).",
		}, []string{"kind", "outcome"}),
		took: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "mailplane_job_run_duration_seconds",
			Help:    "How long runs of the jobs this process works took, per kind and outcome.",
			Buckets: []float64{.005, .025, .1, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}, []string{"kind", "outcome"}),
	}
}

// Describe implements prometheus.Collector.
func (m *JobMetrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.jobs
	ch <- m.up
	m.runs.Describe(ch)
	m.took.Describe(ch)
}

// Collect implements prometheus.Collector.
func (m *JobMetrics) Collect(ch chan<- prometheus.Metric) {
	m.runs.Collect(ch)
	m.took.Collect(ch)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counts, err := countJobs(ctx, m.db)
	if err != nil {
		// A metric rather than a failed scrape, which would hide every other metric.
		m.logger.Error("job metrics", "err", err)
		ch <- prometheus.MustNewConstMetric(m.up, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(m.up, prometheus.GaugeValue, 1)
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(m.jobs, prometheus.GaugeValue, float64(n), k.kind, k.state)
	}
}

type kindState struct{ kind, state string }

// countJobs counts River's jobs per kind and API state. Every state of every kind seen is
// reported, zeros included, so that a rate or an alert on a state does not see the series
// vanish when it empties.
func countJobs(ctx context.Context, db eventstore.DBTX) (map[kindState]int64, error) {
	rows, err := db.Query(ctx, `SELECT kind, state::text, (state = 'cancelled' AND errors IS NOT NULL
			AND errors[array_length(errors, 1)]->>'error' LIKE $1) AS gave_up,
			(state = 'available' AND errors IS NOT NULL) AS again, count(*)
		FROM river_job GROUP BY 1, 2, 3, 4`, jobCancelPrefix+"%")
	if err != nil {
		return nil, fmt.Errorf("workers: count jobs: %w", err)
	}
	defer rows.Close()
	counts := map[kindState]int64{}
	for rows.Next() {
		var kind, state string
		var gaveUp, again bool
		var n int64
		if err := rows.Scan(&kind, &state, &gaveUp, &again, &n); err != nil {
			return nil, fmt.Errorf("workers: count jobs: %w", err)
		}
		for _, s := range []string{JobQueued, JobRunning, JobRetrying, JobSucceeded, JobFailed, JobCancelled} {
			counts[kindState{kind, s}] += 0
		}
		// The same naming as Lookup: a job River gave up on, or one whose worker gave up,
		// failed; one due again after a failure is retrying.
		s := stateOf(rivertype.JobState(state))
		switch {
		case gaveUp:
			s = JobFailed
		case again:
			s = JobRetrying
		}
		counts[kindState{kind, s}] += n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("workers: count jobs: %w", err)
	}
	return counts, nil
}

// Middleware counts and times each run; give it to the working River client.
func (m *JobMetrics) Middleware() rivertype.Middleware { return &runMetrics{m: m} }

type runMetrics struct {
	river.MiddlewareDefaults
	m *JobMetrics
}

// Work implements rivertype.WorkerMiddleware.
func (r *runMetrics) Work(ctx context.Context, job *rivertype.JobRow, doInner func(context.Context) error) (err error) {
	start := time.Now()
	outcome := runOutcome(job, errPanicked) // unless doInner returns: River recovers a panic as the attempt's error
	defer func() {
		r.m.runs.WithLabelValues(job.Kind, outcome).Inc()
		r.m.took.WithLabelValues(job.Kind, outcome).Observe(time.Since(start).Seconds())
	}()
	err = doInner(ctx)
	outcome = runOutcome(job, err)
	return err
}

var errPanicked = errors.New("workers: the job panicked")

// runOutcome names how a run ended. job.Attempt counts this run; at MaxAttempts River discards
// the job instead of trying again.
func runOutcome(job *rivertype.JobRow, err error) string {
	var cancel *rivertype.JobCancelError
	var snooze *rivertype.JobSnoozeError
	switch {
	case err == nil:
		return RunSucceeded
	case errors.As(err, &snooze):
		return RunSnoozed
	case errors.As(err, &cancel), job.Attempt >= job.MaxAttempts:
		return RunFailed
	}
	return RunErrored
}
