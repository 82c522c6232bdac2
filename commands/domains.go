package commands

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"mailplane/domain"
	"mailplane/eventstore"
)

func domainStream(name string) eventstore.Stream {
	return eventstore.Stream{ID: domain.DomainStreamID(name), Type: domain.StreamTypeDomain, Domain: name}
}

// CreateDomain creates a domain; bindPassword, if any, is sealed with the domain's key before
// it goes into the event. It returns the domain's ASCII name.
func (s *Service) CreateDomain(ctx context.Context, req Request, cmd domain.CreateDomain, bindPassword string) (string, Outcome, error) {
	ascii, _, err := domain.NormalizeDomainName(cmd.Name)
	if err != nil {
		// Let the decision report every bad field, the name among them.
		_, err = domain.Domain{}.Decide(cmd)
		return "", Outcome{}, err
	}
	if bindPassword != "" {
		if cmd.Auth.BindPasswordSecret, err = s.keys.Seal(ctx, ascii, []byte(bindPassword)); err != nil {
			return "", Outcome{}, err
		}
	}
	var before *string
	out, err := run(ctx, s, req, step[domain.Domain]{
		stream: domainStream(ascii),
		decide: func(ctx context.Context, tx pgx.Tx, d domain.Domain, _ int) ([]domain.Event, error) {
			before = d.DefaultCOS
			if cmd.DefaultCOS != nil {
				if cmd.COSExists, err = s.assignCOS(ctx, tx, *cmd.DefaultCOS); err != nil {
					return nil, err
				}
			}
			return d.Decide(cmd)
		},
		queue: func(b *pgx.Batch, d domain.Domain) func(context.Context, pgx.Tx) error {
			queueCOSReference(b, domainCOSReferrer(ascii), before, d.DefaultCOS)
			return nil
		},
	})
	return ascii, out, err
}

// UpdateDomain patches a domain. A non-nil bindPassword replaces the external directory's bind
// password ("" removes it).
func (s *Service) UpdateDomain(ctx context.Context, req Request, name string, cmd domain.UpdateDomain, bindPassword *string) (Outcome, error) {
	if bindPassword != nil {
		sealed := ""
		if *bindPassword != "" {
			var err error
			if sealed, err = s.keys.Seal(ctx, name, []byte(*bindPassword)); err != nil {
				return Outcome{}, err
			}
		}
		if cmd.Auth == nil {
			cmd.Auth = &domain.AuthPatch{}
		}
		cmd.Auth.BindPasswordSecret = &sealed
	}
	var before *string
	return run(ctx, s, req, step[domain.Domain]{
		stream: domainStream(name),
		decide: func(ctx context.Context, tx pgx.Tx, d domain.Domain, _ int) ([]domain.Event, error) {
			if !d.Exists() {
				return nil, fmt.Errorf("domain %q: %w", name, domain.ErrNotFound)
			}
			before = d.DefaultCOS
			if cmd.DefaultCOS != nil {
				var err error
				if cmd.COSExists, err = s.assignCOS(ctx, tx, *cmd.DefaultCOS); err != nil {
					return nil, err
				}
			}
			return d.Decide(cmd)
		},
		queue: func(b *pgx.Batch, d domain.Domain) func(context.Context, pgx.Tx) error {
			queueCOSReference(b, domainCOSReferrer(name), before, d.DefaultCOS)
			return nil
		},
	})
}

// CloseDomain closes a domain: objects stay, logins and delivery stop. Its open sessions end.
// It keeps its default COS, and its accounts theirs: their references stay in cos_references.
func (s *Service) CloseDomain(ctx context.Context, req Request, name string) (Outcome, error) {
	return run(ctx, s, req, step[domain.Domain]{
		stream: domainStream(name),
		decide: func(_ context.Context, _ pgx.Tx, d domain.Domain, _ int) ([]domain.Event, error) {
			if !d.Exists() {
				return nil, fmt.Errorf("domain %q: %w", name, domain.ErrNotFound)
			}
			return d.Decide(domain.CloseDomain{})
		},
	})
}

// loadDomain returns a domain's state, or ErrNotFound.
func (s *Service) loadDomain(ctx context.Context, q eventstore.DBTX, name string) (domain.Domain, error) {
	d, _, err := load[domain.Domain](ctx, s, q, domain.DomainStreamID(name))
	if err != nil {
		return d, err
	}
	if !d.Exists() {
		return d, fmt.Errorf("domain %q: %w", name, domain.ErrNotFound)
	}
	return d, nil
}
