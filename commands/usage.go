package commands

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"mailplane/domain"
	"mailplane/eventstore"
	"mailplane/projections/postgres"
)

// UsageOutcome is what a batch of usage reports did.
type UsageOutcome struct {
	// Stored counts the reports stored.
	Stored int
	// Unknown lists the addresses that name no account; their reports were skipped.
	Unknown []string
	// Warnings counts the crossings this batch found, each queued as a warning.
	Warnings int
}

// ReportUsage stores a batch of the mail store's usage reports: checked whole (a bad report
// refuses the batch, nothing written), then one upsert that also moves the domains' totals and
// finds the warning lines crossed, and for each crossing a quota_warning job, all in one
// transaction. Usage is not an event (a measurement, rewritten every few minutes); the
// warnings it causes are, recorded by the job. A deadlock with a concurrent batch or a limit
// change (both lock usage rows, in the same order, but a batch may still meet a recheck
// between its rows) starts the batch over.
func (s *Service) ReportUsage(ctx context.Context, raw []domain.RawUsageReport) (UsageOutcome, error) {
	reports, err := domain.ParseUsageReports(raw)
	if err != nil {
		return UsageOutcome{}, err
	}
	if s.jobs == nil {
		return UsageOutcome{}, ErrNoJobs
	}
	// Roughly in the order the upsert locks its rows in (it sorts them itself, by the
	// database's collation): its sort then finds them in order.
	slices.SortFunc(reports, func(a, b domain.UsageReport) int {
		if c := strings.Compare(a.Address.Local, b.Address.Local); c != 0 {
			return c
		}
		return strings.Compare(a.Address.Domain, b.Address.Domain)
	})
	for attempt := 1; ; attempt++ {
		out, err := s.reportUsage(ctx, reports)
		var pgErr *pgconn.PgError
		if attempt < 5 && errors.As(err, &pgErr) && (pgErr.Code == "40P01" || pgErr.Code == "40001") {
			continue
		}
		return out, err
	}
}

func (s *Service) reportUsage(ctx context.Context, reports []domain.UsageReport) (UsageOutcome, error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return UsageOutcome{}, err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	// Before any read: a limit change in flight either finishes first or waits for this batch.
	if err := postgres.LockQuotaShared(ctx, tx); err != nil {
		return UsageOutcome{}, err
	}
	g, _, err := postgres.NewReadModel(tx).GlobalConfig(ctx)
	if err != nil {
		return UsageOutcome{}, err
	}
	res, err := postgres.StoreUsage(ctx, tx, g, reports, s.now())
	if err != nil {
		return UsageOutcome{}, err
	}
	if len(res.Crossings) > 0 {
		if err := s.jobs.QuotaWarnings(ctx, tx, res.Crossings); err != nil {
			return UsageOutcome{}, err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return UsageOutcome{}, fmt.Errorf("commands: usage: commit: %w", err)
	}
	unknown := res.Unknown
	if unknown == nil {
		unknown = []string{}
	}
	return UsageOutcome{Stored: res.Stored, Unknown: unknown, Warnings: len(res.Crossings)}, nil
}

// QuotaActor records quota warnings.
const QuotaActor = "system:quota_warning"

// SendQuotaWarning records the warning of a crossing on the account's (or domain's) stream and
// queues its e-mail in the same transaction: once per crossing, however often the job runs.
// An account is warned itself, with its domain's warning recipient beside it; a domain's total
// warns the domain's recipient, and nobody when it has none (nothing is recorded then). A
// crossing of an object deleted meanwhile warns nobody.
func (s *Service) SendQuotaWarning(ctx context.Context, x domain.QuotaCrossing) (Outcome, error) {
	if s.jobs == nil {
		return Outcome{}, ErrNoJobs
	}
	stream := domainStream(x.Domain)
	var addr domain.Address
	if x.Scope == domain.QuotaScopeAccount {
		a, err := domain.ParseAddress(x.Name)
		if err != nil {
			return Outcome{}, fmt.Errorf("quota warning for %q: %w", x.Name, err)
		}
		addr, stream = a, accountStream(a)
	}
	now := s.now()
	var mail Mail
	return run(ctx, s, Request{Meta: eventstore.Metadata{Actor: QuotaActor, CausationID: fmt.Sprintf("%s:quota:%d", stream.ID, x.Crossing)}}, step[domain.QuotaWarnings]{
		stream: stream,
		with:   []string{domain.DomainStreamID(x.Domain)},
		decide: func(ctx context.Context, tx pgx.Tx, q domain.QuotaWarnings, _ int) ([]domain.Event, error) {
			d, _, err := load[domain.Domain](ctx, s, tx, domain.DomainStreamID(x.Domain))
			if err != nil || !d.Exists() {
				return nil, err
			}
			var to []string
			if x.Scope == domain.QuotaScopeAccount {
				a, _, err := load[domain.Account](ctx, s, tx, stream.ID)
				if err != nil || !a.Exists() {
					return nil, err
				}
				to = append(to, addr.String())
			}
			if r := d.Limits.WarnRecipient; r != "" && !containsFold(to, r) {
				to = append(to, r)
			}
			cause := fmt.Sprintf("%s:quota:%d", stream.ID, x.Crossing)
			mail = quotaMail(x, d)
			mail.To, mail.Cause, mail.Stream, mail.RequestedBy = to, cause, stream, QuotaActor
			return q.Decide(domain.SendQuotaWarning{Crossing: x, To: to, Cause: cause, At: now})
		},
		after: func(ctx context.Context, tx pgx.Tx, _ domain.QuotaWarnings, _ []domain.Event) error {
			_, err := s.jobs.SendMail(ctx, tx, mail)
			return err
		},
	})
}
