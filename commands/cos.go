package commands

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"mailplane/domain"
	"mailplane/eventstore"
)

func cosStream(name string) eventstore.Stream {
	return eventstore.Stream{ID: domain.COSStreamID(name), Type: domain.StreamTypeCOS}
}

// CreateCOS defines a class of service. It returns the normalised name.
func (s *Service) CreateCOS(ctx context.Context, req Request, cmd domain.CreateCOS) (string, Outcome, error) {
	name, err := domain.NormalizeCOSName(cmd.Name)
	if err != nil {
		// Let the decision report every bad field, the name among them.
		_, err = domain.COS{}.Decide(cmd)
		if len(req.Invalid) > 0 {
			err = withInvalid(req.Invalid, err)
		}
		return "", Outcome{}, err
	}
	out, err := run(ctx, s, req, step[domain.COS]{
		stream: cosStream(name),
		decide: func(_ context.Context, _ pgx.Tx, c domain.COS, _ int) ([]domain.Event, error) {
			return c.Decide(cmd)
		},
	})
	return name, out, err
}

// UpdateCOS patches a class of service.
func (s *Service) UpdateCOS(ctx context.Context, req Request, name string, cmd domain.UpdateCOS) (Outcome, error) {
	return run(ctx, s, req, step[domain.COS]{
		stream: cosStream(name),
		decide: func(_ context.Context, _ pgx.Tx, c domain.COS, _ int) ([]domain.Event, error) {
			if !c.Exists() {
				return nil, fmt.Errorf("class of service %q: %w", name, domain.ErrNotFound)
			}
			return c.Decide(cmd)
		},
	})
}

// DeleteCOS removes a class of service nobody uses.
func (s *Service) DeleteCOS(ctx context.Context, req Request, name string) (Outcome, error) {
	return run(ctx, s, req, step[domain.COS]{
		stream: cosStream(name),
		decide: func(ctx context.Context, tx pgx.Tx, c domain.COS, _ int) ([]domain.Event, error) {
			if !c.Exists() {
				return nil, fmt.Errorf("class of service %q: %w", name, domain.ErrNotFound)
			}
			// Wait out every command assigning this COS (they hold its lock shared); new ones
			// wait for this one and then find the COS gone.
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, cosLockKey(name)); err != nil {
				return nil, err
			}
			users, err := cosUsers(ctx, tx, name)
			if err != nil {
				return nil, err
			}
			return c.Decide(domain.DeleteCOS{InUseBy: users})
		},
	})
}

// The referrers cos_references keys its rows by, which the in-use refusal lists: an account's
// address, a domain's default COS and the global default COS.
const globalCOSReferrer = "global:default_cos"

func domainCOSReferrer(name string) string { return "domain:" + name }

// queueCOSReference queues, after a command's append, the write that keeps cos_references in
// step with what referrer refers to: before and after the command's events (nil: no COS). When
// the events leave the reference as it was, nothing is written. The row holds the new value, not
// a change to the old one, so it is right whatever it held; and the append's version check makes
// before the committed state.
func queueCOSReference(b *pgx.Batch, referrer string, before, after *string) {
	switch {
	case before == nil && after == nil, before != nil && after != nil && *before == *after:
	case after == nil:
		b.Queue(`DELETE FROM cos_references WHERE referrer = $1`, referrer)
	default:
		b.Queue(`INSERT INTO cos_references (referrer, cos) VALUES ($1, $2)
			ON CONFLICT (referrer) DO UPDATE SET cos = excluded.cos`, referrer, *after)
	}
}

// cosUsers lists what refers to a COS. DeleteCOS calls it holding the COS's lock exclusively:
// every command that gave something this COS (assignCOS, shared lock) has committed its
// reference by then, in the transaction of its events, and none can give it again until the
// deletion commits. Neither the read models' lag nor an event a projection parked changes the
// answer.
func cosUsers(ctx context.Context, tx pgx.Tx, name string) ([]string, error) {
	rows, err := tx.Query(ctx, `SELECT referrer FROM cos_references WHERE cos = $1 ORDER BY referrer`, name)
	if err != nil {
		return nil, fmt.Errorf("commands: users of COS %q: %w", name, err)
	}
	users, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("commands: users of COS %q: %w", name, err)
	}
	return users, nil
}
