package workers

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"mailplane/commands"
)

// ImportAccountsArgs applies an import's valid rows (POST /api/v1/domains/{domain}/imports):
// inserted with the import, unique by its id.
type ImportAccountsArgs struct {
	ImportID string `json:"import_id"`
	Domain   string `json:"domain"`
}

// Kind implements river.JobArgs.
func (ImportAccountsArgs) Kind() string { return "import_accounts" }

// DefaultImportSlice is how long one attempt of an import works before it snoozes.
const DefaultImportSlice = 10 * time.Second

// ImportAccountsWorker applies the rows in batches and records its progress (rows done,
// applied or failed, out of the file's rows). An attempt that dies (the process killed) leaves
// every row applied with its events or pending; River's rescuer hands the job to another
// attempt, which goes on with the pending ones. An attempt works for at most Slice and then
// snoozes to go on at once, so that its Timeout, which is also how long the rescuer leaves a
// dead attempt alone, stays short however long the file (it was an hour: an import whose
// process was killed stood still for that long).
type ImportAccountsWorker struct {
	river.WorkerDefaults[ImportAccountsArgs]
	Commands *commands.Service
	Pool     *pgxpool.Pool
	// Slice is how long one attempt works (default DefaultImportSlice).
	Slice time.Duration
}

func (w *ImportAccountsWorker) slice() time.Duration {
	if w.Slice > 0 {
		return w.Slice
	}
	return DefaultImportSlice
}

// Timeout implements river.Worker: a slice and the batch it ends in, with room to spare (a
// batch of 500 rows with passwords to hash takes seconds on a busy machine).
func (w *ImportAccountsWorker) Timeout(*river.Job[ImportAccountsArgs]) time.Duration {
	return 2*w.slice() + DefaultRemovalGrace
}

// Work implements river.Worker.
func (w *ImportAccountsWorker) Work(ctx context.Context, job *river.Job[ImportAccountsArgs]) error {
	err := w.Commands.RunImport(ctx, job.Args.ImportID, commands.RunImportOptions{
		Deadline: time.Now().Add(w.slice()),
		Progress: func(ctx context.Context, done, total int) error {
			return SetProgress(ctx, w.Pool, job.ID, int64(done), int64(total))
		},
	})
	if errors.Is(err, commands.ErrImportUnfinished) {
		return river.JobSnooze(0)
	}
	return err
}

// ImportAccounts implements commands.Jobs.
func (q Queue) ImportAccounts(ctx context.Context, tx pgx.Tx, j commands.ImportAccountsJob) (int64, error) {
	row, err := Enqueue(ctx, tx, q.Inserter, ImportAccountsArgs{ImportID: j.ImportID, Domain: j.Domain},
		&river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}}, JobMeta{Domain: j.Domain, RequestedBy: j.RequestedBy})
	if err != nil {
		return 0, err
	}
	return row.ID, nil
}
