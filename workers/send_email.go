package workers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/riverqueue/river"

	"mailplane/commands"
	"mailplane/domain"
	"mailplane/eventstore"
)

// SendEmailArgs is one notification e-mail to send.
type SendEmailArgs struct {
	To      []string `json:"to"`
	Subject string   `json:"subject"`
	Body    string   `json:"body"`
	// Cause names what asked for the mail (e.g. an event position), for the logs and for
	// River's unique options.
	Cause string `json:"cause,omitempty"`
	// Record, when set, is the stream the mail's cause is an event of: once sent, the mail is
	// recorded there as a MailSent event (the job's outcome), and a mail recorded as sent is
	// not sent again.
	Record *MailRecord `json:"record,omitempty"`
}

// MailRecord names the stream a sent mail is recorded on.
type MailRecord struct {
	Stream     string `json:"stream"`
	StreamType string `json:"stream_type"`
	Domain     string `json:"domain,omitempty"`
}

// Kind implements river.JobArgs.
func (SendEmailArgs) Kind() string { return "send_email" }

// SendEmailWorker sends notification e-mails through the configured SMTP relay. A mail server
// that refuses or is away makes the job fail and River retry it with backoff (attempt⁴ seconds:
// 1 s, 16 s, 81 s, … for up to 25 attempts, some 18 days).
type SendEmailWorker struct {
	river.WorkerDefaults[SendEmailArgs]
	Mailer *Mailer
	// Commands records the mails of SendEmailArgs.Record; nil: such mail is sent unrecorded.
	Commands *commands.Service
}

// Work implements river.Worker.
func (w *SendEmailWorker) Work(ctx context.Context, job *river.Job[SendEmailArgs]) error {
	if len(job.Args.To) == 0 {
		return river.JobCancel(fmt.Errorf("send_email: no recipient"))
	}
	// The same Message-ID on every attempt: a copy the relay took without our hearing so is
	// the same message to mail clients.
	key := fmt.Sprintf("job-%d", job.ID)
	if job.Args.Cause != "" {
		sum := sha256.Sum256([]byte(job.Args.Cause))
		key = hex.EncodeToString(sum[:16])
	}
	rec := job.Args.Record
	if w.Commands == nil || job.Args.Cause == "" {
		rec = nil
	}
	if rec != nil {
		// Sent by an attempt whose answer was lost after it was recorded: done.
		if sent, err := w.Commands.MailSent(ctx, rec.Stream, job.Args.Cause); err != nil || sent {
			return err
		}
	}
	msg := Message{To: job.Args.To, Subject: job.Args.Subject, Body: job.Args.Body, MessageID: w.Mailer.MessageID("mailplane." + key)}
	if rec == nil {
		return w.Mailer.SendMessage(ctx, msg)
	}
	// The relay gets the whole message first; its end of data goes inside the transaction
	// that records MailSent, right before the commit. A kill between the relay's answer and
	// the record (the rescued job would send the mail again) can then only fall in the
	// commit's round trip, not in a whole command's.
	sending, err := w.Mailer.Begin(ctx, msg)
	if err != nil {
		return err
	}
	stream := eventstore.Stream{ID: rec.Stream, Type: rec.StreamType, Domain: rec.Domain}
	sent := domain.MailSent{Cause: job.Args.Cause, To: job.Args.To, Subject: job.Args.Subject, MessageID: msg.MessageID}
	var ended bool
	var endErr error
	out, err := w.Commands.RecordMailSentAtEnd(ctx, stream, sent, func(context.Context) error {
		ended = true
		endErr = sending.End()
		return endErr
	})
	switch {
	case !ended && err == nil && out.Version == 0:
		// The cause has no stream here to record it on: send it unrecorded.
		return sending.End()
	case !ended:
		// Recorded already by another attempt (nothing to append), or the record failed before
		// the end of data: either way the relay keeps nothing of this attempt.
		sending.Abort()
		return err
	case endErr != nil:
		return endErr // the relay refused or did not answer: rolled back, tried again later
	case err == nil:
		return nil
	}
	// The relay has the mail but the commit failed: failing the job now would send it again.
	// While the database is away (restarting, unreachable) the record is tried again here, for
	// a while, rather than left to a second run of the job.
	rctx := context.WithoutCancel(ctx)
	wait := 250 * time.Millisecond
	for deadline := time.Now().Add(recordMailSentFor); ; {
		_, err := w.Commands.RecordMailSent(rctx, stream, sent)
		if err == nil || !eventstore.Unavailable(err) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(wait)
		wait = min(2*wait, 5*time.Second)
	}
}

// recordMailSentFor is how long a sent mail's MailSent is retried while the database is away:
// well within River's rescue of a job left running (DefaultRescueStuckJobsAfter, 5
// min), which would send the mail again.
const recordMailSentFor = 2 * time.Minute
