package workers

import (
	"context"
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
// that refuses or is away makes the job fail and River retry it with backoff.
type SendEmailWorker struct {
	river.WorkerDefaults[SendEmailArgs]
	Mailer *Mailer
}

// Work implements river.Worker.
func (w *SendEmailWorker) Work(ctx context.Context, job *river.Job[SendEmailArgs]) error {
	if len(job.Args.To) == 0 {
		return river.JobCancel(fmt.Errorf("send_email: no recipient"))
	}
	return w.Mailer.Send(ctx, job.Args.To, job.Args.Subject, job.Args.Body)
}
