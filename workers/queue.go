package workers

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

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
