package workers

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"mailplane/commands"
)

// Queue enqueues the jobs commands cause (commands.Jobs), each in the command's transaction
// with its job_progress row (Enqueue), unique per cause: the request id of an issuance, the
// cause of a mail.
type Queue struct {
	Inserter Inserter
}

var _ commands.Jobs = Queue{}

// IssueCertificate implements commands.Jobs.
func (q Queue) IssueCertificate(ctx context.Context, tx pgx.Tx, j commands.IssueCertificateJob) (int64, error) {
	row, err := Enqueue(ctx, tx, q.Inserter, IssueCertificateArgs{Domain: j.Domain, Host: j.Host, RequestID: j.RequestID,
		Chain: j.Chain, Renewal: j.Renewal},
		&river.InsertOpts{MaxAttempts: IssueCertificateAttempts, UniqueOpts: river.UniqueOpts{ByArgs: true}},
		JobMeta{Domain: j.Domain, RequestedBy: j.RequestedBy})
	if err != nil {
		return 0, err
	}
	return row.ID, nil
}

// SendMail implements commands.Jobs.
func (q Queue) SendMail(ctx context.Context, tx pgx.Tx, m commands.Mail) (int64, error) {
	args := SendEmailArgs{To: m.To, Subject: m.Subject, Body: m.Body, Cause: m.Cause}
	if m.Stream.ID != "" {
		args.Record = &MailRecord{Stream: m.Stream.ID, StreamType: m.Stream.Type, Domain: m.Stream.Domain}
	}
	row, err := Enqueue(ctx, tx, q.Inserter, args, &river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}},
		JobMeta{Domain: m.Stream.Domain, RequestedBy: m.RequestedBy})
	if err != nil {
		return 0, err
	}
	return row.ID, nil
}

// RemoveDomain implements commands.Jobs. A removal's job may take many attempts (it snoozes
// between slices of work), none of which should make River give up on it.
func (q Queue) RemoveDomain(ctx context.Context, tx pgx.Tx, j commands.RemoveDomainJob) (int64, error) {
	row, err := Enqueue(ctx, tx, q.Inserter, RemoveDomainArgs{Domain: j.Domain, Removal: j.Removal},
		&river.InsertOpts{MaxAttempts: RemoveDomainAttempts, UniqueOpts: river.UniqueOpts{ByArgs: true}},
		JobMeta{Domain: j.Domain, RequestedBy: j.RequestedBy})
	if err != nil {
		return 0, err
	}
	return row.ID, nil
}

// ResyncGAL implements commands.Jobs. The job is unique per domain while queued, running or
// waiting to retry; once it has finished, the next resync is a new job.
func (q Queue) ResyncGAL(ctx context.Context, tx pgx.Tx, j commands.ResyncGALJob) (int64, error) {
	row, err := Enqueue(ctx, tx, q.Inserter, ResyncGALArgs{Domain: j.Domain, Trigger: j.Trigger},
		&river.InsertOpts{MaxAttempts: ResyncGALAttempts, UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: []rivertype.JobState{
			rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRetryable,
			rivertype.JobStateRunning, rivertype.JobStateScheduled}}},
		JobMeta{Domain: j.Domain, RequestedBy: j.RequestedBy})
	if err != nil {
		return 0, err
	}
	return row.ID, nil
}

// RemoveDomainAttempts bounds the failed attempts of a removal (a snooze counts as none).
const RemoveDomainAttempts = 25
