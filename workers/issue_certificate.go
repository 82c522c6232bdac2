package workers

import (
	"context"
	"fmt"
	"time"

	"github.com/riverqueue/river"

	"mailplane/commands"
	"mailplane/eventstore"
)

// IssueCertificateArgs carries out one ACME request (a CertificateRequested event): inserted
// by the command that records it, unique by its request id.
type IssueCertificateArgs struct {
	Domain    string `json:"domain"`
	Host      string `json:"host"`
	RequestID string `json:"request_id"`
	Chain     string `json:"chain"`
	Renewal   bool   `json:"renewal"`
}

// Kind implements river.JobArgs.
func (IssueCertificateArgs) Kind() string { return "issue_certificate" }

// IssueCertificateAttempts bounds the tries of one request when the CA cannot be reached (River
// backs off between them: 1 s, 16 s, 81 s, 256 s).
const IssueCertificateAttempts = 5

// Issuer obtains certificates (an *ACME).
type Issuer interface {
	Obtain(ctx context.Context, host, chain string) (commands.IssuedCertificate, error)
}

// IssueCertificateWorker obtains the certificate and records the outcome as an event, with the
// e-mail that reports it, in one transaction: CertificateIssued, or CertificateIssuanceFailed
// with the errors to fix. A request the CA refused (a failed validation, a refused name) is
// not retried: trying again at once would fail the same way and count against the CA's limits;
// the job ends failed (River: cancelled) with the CA's error. A CA that cannot be reached is
// retried with backoff, and only the last attempt records the failure.
type IssueCertificateWorker struct {
	river.WorkerDefaults[IssueCertificateArgs]
	Commands *commands.Service
	Issuer   Issuer
}

// Timeout implements river.Worker: validation and issuance take seconds, polling a slow CA
// minutes.
func (w *IssueCertificateWorker) Timeout(*river.Job[IssueCertificateArgs]) time.Duration {
	return 5 * time.Minute
}

// Work implements river.Worker.
func (w *IssueCertificateWorker) Work(ctx context.Context, job *river.Job[IssueCertificateArgs]) error {
	a := job.Args
	pending, err := w.Commands.PendingIssuance(ctx, a.Domain, a.Host, a.RequestID)
	if err != nil {
		return err
	}
	if pending == nil {
		return nil // its outcome is recorded (an earlier attempt got that far), or the host is gone
	}
	req := commands.Request{Meta: eventstore.Metadata{Actor: "system:" + a.Kind(), CausationID: a.RequestID,
		RequestID: fmt.Sprintf("job-%d", job.ID)}}
	issued, err := w.Issuer.Obtain(ctx, a.Host, a.Chain)
	if err != nil {
		final := refused(err) || job.Attempt >= job.MaxAttempts
		if !final {
			return fmt.Errorf("issue certificate for %s (attempt %d of %d, retried): %w", a.Host, job.Attempt, job.MaxAttempts, err)
		}
		// Record with a context of its own: the job's may be what just ran out.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if _, rerr := w.Commands.RecordIssuanceFailure(rctx, req, a.Domain, a.Host, a.RequestID, acmeErrors(err)); rerr != nil {
			return fmt.Errorf("issue certificate for %s: %w (and recording the failure: %v)", a.Host, err, rerr)
		}
		return river.JobCancel(fmt.Errorf("issue certificate for %s: %w", a.Host, err))
	}
	if _, err := w.Commands.RecordCertificateIssued(ctx, req, a.Domain, a.Host, a.RequestID, issued); err != nil {
		// The certificate is lost with this attempt; the next one orders another (the CA
		// allows several per name and week).
		return fmt.Errorf("issue certificate for %s: record: %w", a.Host, err)
	}
	return nil
}
