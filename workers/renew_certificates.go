package workers

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/riverqueue/river"

	"mailplane/commands"
	"mailplane/domain"
	"mailplane/projections/postgres"
)

// RenewCertificatesArgs looks for ACME certificates due for renewal (domain.RenewBefore before
// expiry) and starts their renewal. A periodic job (RenewInterval).
type RenewCertificatesArgs struct{}

// Kind implements river.JobArgs.
func (RenewCertificatesArgs) Kind() string { return "renew_certificates" }

// RenewInterval is how often due certificates are looked for. Renewal starts 30 days before
// expiry, so an hour late is no matter; a failed renewal's backoff (an hour at first) is kept
// by the domain, and this is how often it is looked at.
const RenewInterval = time.Hour

// renewBatch bounds the renewals one run starts; the next run starts the rest.
const renewBatch = 500

// RenewCertificatesWorker starts the renewal of each due certificate: StartRenewal records the
// request and queues its issue_certificate job in one transaction, or does nothing when the
// certificate is no longer due or a failed renewal still backs off. It reads the read model
// to find them; the command decides on the stream.
type RenewCertificatesWorker struct {
	river.WorkerDefaults[RenewCertificatesArgs]
	Commands   *commands.Service
	Reads      *postgres.ReadModel
	Challenges *HTTPChallenges
	Logger     *slog.Logger
	// Now is the clock due dates are compared with (default time.Now).
	Now func() time.Time
}

// Work implements river.Worker.
func (w *RenewCertificatesWorker) Work(ctx context.Context, _ *river.Job[RenewCertificatesArgs]) error {
	now := time.Now
	if w.Now != nil {
		now = w.Now
	}
	if w.Challenges != nil {
		if err := w.Challenges.ExpireChallenges(ctx); err != nil {
			return err
		}
	}
	due, err := w.Reads.DueRenewals(ctx, now(), renewBatch)
	if err != nil {
		return err
	}
	var errs []error
	for _, d := range due {
		out, err := w.Commands.StartRenewal(ctx, d.Domain, d.Host)
		switch {
		case errors.Is(err, domain.ErrDomainUnavailable):
			w.Logger.Info("certificate renewal skipped: the domain is suspended", "domain", d.Domain, "host", d.Host)
		case err != nil:
			w.Logger.Error("certificate renewal not started", "domain", d.Domain, "host", d.Host, "err", err)
			errs = append(errs, err)
		case out.JobID != 0:
			w.Logger.Info("certificate renewal started", "domain", d.Domain, "host", d.Host, "job", out.JobID)
		}
	}
	// A run that failed for some is retried by River; StartRenewal does nothing for those it
	// started already.
	return errors.Join(errs...)
}
