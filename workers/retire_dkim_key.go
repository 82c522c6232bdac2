package workers

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"mailplane/commands"
)

// RetireDKIMKeyArgs retires a DKIM key a rotation replaced, once its grace period is over:
// inserted by the rotation, scheduled for that moment, unique per domain and selector.
type RetireDKIMKeyArgs struct {
	Domain   string `json:"domain"`
	Selector string `json:"selector"`
}

// Kind implements river.JobArgs.
func (RetireDKIMKeyArgs) Kind() string { return "retire_dkim_key" }

// RetireDKIMKeyWorker records the retirement. The decision checks the time itself, so a job
// that runs early (a clock skew between processes) snoozes until the key is due.
type RetireDKIMKeyWorker struct {
	river.WorkerDefaults[RetireDKIMKeyArgs]
	Commands *commands.Service
}

// Work implements river.Worker.
func (w *RetireDKIMKeyWorker) Work(ctx context.Context, job *river.Job[RetireDKIMKeyArgs]) error {
	keys, _, err := w.Commands.DKIMKeys(ctx, job.Args.Domain)
	if err != nil {
		return err
	}
	if k, ok := keys.Key(job.Args.Selector); ok && k.RetireAt != nil {
		if wait := time.Until(*k.RetireAt); wait > 0 {
			return river.JobSnooze(wait)
		}
	}
	_, err = w.Commands.RetireDKIMKey(ctx, job.Args.Domain, job.Args.Selector)
	return err
}

// RetireDKIMKey implements commands.Jobs.
func (q Queue) RetireDKIMKey(ctx context.Context, tx pgx.Tx, j commands.RetireDKIMKeyJob) (int64, error) {
	row, err := Enqueue(ctx, tx, q.Inserter, RetireDKIMKeyArgs{Domain: j.Domain, Selector: j.Selector},
		&river.InsertOpts{ScheduledAt: j.At, UniqueOpts: river.UniqueOpts{ByArgs: true}},
		JobMeta{Domain: j.Domain, RequestedBy: j.RequestedBy})
	if err != nil {
		return 0, err
	}
	return row.ID, nil
}
