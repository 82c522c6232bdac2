package workers

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"mailplane/commands"
	"mailplane/domain"
)

// QuotaWarningArgs is one crossing of a warning line to warn of: queued by the usage batch (or
// the limit change) that found it, in the same transaction.
type QuotaWarningArgs struct {
	Scope       string `json:"scope" river:"unique"`
	Name        string `json:"name" river:"unique"`
	Domain      string `json:"domain"`
	Crossing    int64  `json:"crossing" river:"unique"`
	UsedBytes   int64  `json:"used_bytes"`
	LimitBytes  int64  `json:"limit_bytes"`
	WarnPercent int    `json:"warn_percent"`
}

// Kind implements river.JobArgs.
func (QuotaWarningArgs) Kind() string { return "quota_warning" }

// QuotaWarningWorker records a crossing's warning (QuotaWarningSent) and queues its e-mail, in
// one transaction; a retry after a lost answer records nothing twice (the stream knows the
// crossings warned of), and the mail job is unique per crossing.
type QuotaWarningWorker struct {
	river.WorkerDefaults[QuotaWarningArgs]
	Commands *commands.Service
}

// Work implements river.Worker.
func (w *QuotaWarningWorker) Work(ctx context.Context, job *river.Job[QuotaWarningArgs]) error {
	a := job.Args
	_, err := w.Commands.SendQuotaWarning(ctx, domain.QuotaCrossing{Scope: a.Scope, Name: a.Name, Domain: a.Domain,
		Crossing: a.Crossing, UsedBytes: a.UsedBytes, LimitBytes: a.LimitBytes, WarnPercent: a.WarnPercent})
	return err
}

// QuotaWarnings implements commands.Jobs and postgres.QuotaJobs: a quota_warning job per
// crossing, unique per (scope, name, crossing).
func (q Queue) QuotaWarnings(ctx context.Context, tx pgx.Tx, crossings []domain.QuotaCrossing) error {
	for _, x := range crossings {
		_, err := Enqueue(ctx, tx, q.Inserter, QuotaWarningArgs{Scope: x.Scope, Name: x.Name, Domain: x.Domain, Crossing: x.Crossing,
			UsedBytes: x.UsedBytes, LimitBytes: x.LimitBytes, WarnPercent: x.WarnPercent},
			&river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}}, JobMeta{Domain: x.Domain, RequestedBy: commands.QuotaActor})
		if err != nil {
			return err
		}
	}
	return nil
}
