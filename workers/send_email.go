package workers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/riverqueue/river"
)

// SendEmailArgs is one notification e-mail to send.
type SendEmailArgs struct {
	To      []string `json:"to"`
	Subject string   `json:"subject"`
	Body    string   `json:"body"`
	// Cause names what asked for the mail (e.g. an event position), for the logs and for
	// River's unique options.
	Cause string `json:"cause,omitempty"`
}

// Kind implements river.JobArgs.
func (SendEmailArgs) Kind() string { return "send_email" }

// SendEmailWorker sends notification e-mails through the configured SMTP relay. A mail server
// that refuses or is away makes the job fail and River retry it with backoff (attempt⁴ seconds:
// 1 s, 16 s, 81 s, … for up to 25 attempts, some 18 days).
type SendEmailWorker struct {
	river.WorkerDefaults[SendEmailArgs]
	Mailer *Mailer
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
	return w.Mailer.SendMessage(ctx, Message{To: job.Args.To, Subject: job.Args.Subject, Body: job.Args.Body,
		MessageID: w.Mailer.MessageID("mailplane." + key)})
}
