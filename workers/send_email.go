package workers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

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
	if err := w.Mailer.SendMessage(ctx, msg); err != nil {
		return err
	}
	if rec == nil {
		return nil
	}
	// Should this fail, the retry sends the mail again, with the same Message-ID.
	_, err := w.Commands.RecordMailSent(context.WithoutCancel(ctx), eventstore.Stream{ID: rec.Stream, Type: rec.StreamType, Domain: rec.Domain},
		domain.MailSent{Cause: job.Args.Cause, To: job.Args.To, Subject: job.Args.Subject, MessageID: msg.MessageID})
	return err
}
