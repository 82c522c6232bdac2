package workers

import (
	"context"
	"time"

	"github.com/riverqueue/river"

	"mailplane/commands"
	"mailplane/projections/postgres"
)

// ScheduleGALResyncsArgs queues the resync of every GAL whose polling interval has passed since
// its last resync. A periodic job (GALScheduleInterval): one job looks at every domain, rather
// than one periodic job per domain, because River keeps its periodic jobs in memory, fixed
// when the client starts, while domains and their intervals change at any time.
type ScheduleGALResyncsArgs struct{}

// Kind implements river.JobArgs.
func (ScheduleGALResyncsArgs) Kind() string { return "schedule_gal_resyncs" }

// GALScheduleInterval is how often due resyncs are looked for: the shortest polling interval
// allowed (60 s), so that none waits much longer than its own interval.
const GALScheduleInterval = time.Minute

// galScheduleBatch bounds the resyncs one run queues; the next run queues the rest.
const galScheduleBatch = 1000

// ScheduleGALResyncsWorker reads the due GALs from the read model and queues their resync jobs
// (unique per domain, so one still queued or running is not queued again).
type ScheduleGALResyncsWorker struct {
	river.WorkerDefaults[ScheduleGALResyncsArgs]
	Commands *commands.Service
	Reads    *postgres.ReadModel
	// Now is the clock due times are compared with (default time.Now).
	Now func() time.Time
}

// Work implements river.Worker.
func (w *ScheduleGALResyncsWorker) Work(ctx context.Context, _ *river.Job[ScheduleGALResyncsArgs]) error {
	now := time.Now
	if w.Now != nil {
		now = w.Now
	}
	cfg, _, err := w.Reads.GlobalConfig(ctx)
	if err != nil {
		return err
	}
	global := time.Duration(cfg.GALPollingIntervalSeconds) * time.Second
	due, err := w.Reads.DueGALResyncs(ctx, now(), global, galScheduleBatch)
	if err != nil {
		return err
	}
	return w.Commands.ScheduleGALResyncs(ctx, due)
}
