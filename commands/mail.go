package commands

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"mailplane/domain"
	"mailplane/eventstore"
)

// MailActor records sent mail.
const MailActor = "system:send_email"

// MailSent reports whether the mail for cause was recorded as sent on the stream.
func (s *Service) MailSent(ctx context.Context, streamID, cause string) (bool, error) {
	log, _, err := Load[domain.MailLog](ctx, s, streamID)
	return log.Sent[cause], err
}

// RecordMailSent records on stream that the mail for its cause went to the relay (the
// send_email job's outcome); once per cause.
func (s *Service) RecordMailSent(ctx context.Context, stream eventstore.Stream, m domain.MailSent) (Outcome, error) {
	return s.RecordMailSentAtEnd(ctx, stream, m, nil)
}

// RecordMailSentAtEnd records m as RecordMailSent does, in a transaction that commits only if
// end returns nil. end is the relay taking the mail (the end of its DATA): it runs after the
// append, just before the commit, so that the relay's answer and the record are one round trip
// apart (the commit's), and a process killed in between sends the mail again only if it dies
// in that round trip. end is not called when there is nothing to record: the Outcome's Version
// is then 0 if the stream does not exist, or the stream's version if the mail is recorded
// already. A nil end records at once.
func (s *Service) RecordMailSentAtEnd(ctx context.Context, stream eventstore.Stream, m domain.MailSent, end func(context.Context) error) (Outcome, error) {
	if m.At.IsZero() {
		m.At = s.now()
	} else {
		m.At = m.At.UTC().Truncate(time.Microsecond)
	}
	return run(ctx, s, Request{Meta: eventstore.Metadata{Actor: MailActor, CausationID: m.Cause}}, step[domain.MailLog]{
		stream: stream,
		decide: func(_ context.Context, _ pgx.Tx, log domain.MailLog, version int) ([]domain.Event, error) {
			if version == 0 {
				return nil, nil // no such stream: the mail's cause is not an event here
			}
			return log.Decide(domain.RecordMailSent{Mail: m})
		},
		beforeCommit: end,
	})
}
