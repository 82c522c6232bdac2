package commands

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"mailplane/domain"
	"mailplane/eventstore"
)

func resourceStream(a domain.Address) eventstore.Stream {
	return eventstore.Stream{ID: domain.ResourceStreamID(a), Type: domain.StreamTypeResource, Domain: a.Domain}
}

// ResourceView is a resource as a command left it, read in the command's own transaction.
type ResourceView struct {
	Resource domain.Resource
	Version  int
}

func resourceView(into **ResourceView) func(context.Context, pgx.Tx, domain.Resource, int) error {
	return func(_ context.Context, _ pgx.Tx, r domain.Resource, version int) error {
		if r.Exists() {
			*into = &ResourceView{Resource: r, Version: version}
		}
		return nil
	}
}

// CreateResource creates (or re-creates) a resource in the domain; its address is claimed as a
// list's is.
func (s *Service) CreateResource(ctx context.Context, req Request, domainName string, cmd domain.CreateResource) (Outcome, error) {
	if cmd.At.IsZero() {
		cmd.At = s.now()
	}
	addr, err := domain.ParseAddress(cmd.Address)
	if err != nil || addr.Domain != domainName {
		return Outcome{}, s.refuseCreate(ctx, req, domainName, nil, func(d domain.Domain, _ map[domain.Address]bool) error {
			cmd.Domain = d
			_, err := domain.Resource{}.Decide(cmd)
			return err
		})
	}
	var view *ResourceView
	out, err := run(ctx, s, req, step[domain.Resource]{
		stream: resourceStream(addr),
		with:   []string{domain.DomainStreamID(domainName)},
		decide: func(ctx context.Context, tx pgx.Tx, r domain.Resource, _ int) ([]domain.Event, error) {
			d, _, err := load[domain.Domain](ctx, s, tx, domain.DomainStreamID(domainName))
			if err != nil {
				return nil, err
			}
			cmd.Domain = d
			return r.Decide(cmd)
		},
		queue: func(b *pgx.Batch, r domain.Resource) func(context.Context, pgx.Tx) error {
			return s.queueClaim(b, r.Address, "resource", domain.ResourceStreamID(r.Address))
		},
		view: resourceView(&view),
	})
	out.Resource = view
	return out, err
}

// UpdateResource patches a resource.
func (s *Service) UpdateResource(ctx context.Context, req Request, addr domain.Address, cmd domain.UpdateResource) (Outcome, error) {
	return s.resourceCommand(ctx, req, addr, nil, func(_ context.Context, _ pgx.Tx, r domain.Resource) ([]domain.Event, error) {
		return r.Decide(cmd)
	}, nil)
}

// DeleteResource deletes a resource: its address and aliases are free again.
func (s *Service) DeleteResource(ctx context.Context, req Request, addr domain.Address) (Outcome, error) {
	return s.resourceCommand(ctx, req, addr, nil, func(_ context.Context, _ pgx.Tx, r domain.Resource) ([]domain.Event, error) {
		return r.Decide(domain.DeleteResource{})
	}, func(b *pgx.Batch) func(context.Context, pgx.Tx) error {
		queueRelease(b, domain.ResourceStreamID(addr), nil)
		return nil
	})
}

// AddResourceAlias gives a resource another address, in any domain that exists and takes new
// objects.
func (s *Service) AddResourceAlias(ctx context.Context, req Request, addr domain.Address, alias string) (Outcome, error) {
	parsed := domain.ParseAddresses([]string{alias})
	var with []string
	if len(parsed) == 1 {
		with = []string{domain.DomainStreamID(parsed[0].Domain)}
	}
	return s.resourceCommand(ctx, req, addr, with, func(ctx context.Context, tx pgx.Tx, r domain.Resource) ([]domain.Event, error) {
		cmd := domain.AddResourceAlias{Alias: alias}
		if len(parsed) == 1 {
			d, _, err := load[domain.Domain](ctx, s, tx, domain.DomainStreamID(parsed[0].Domain))
			if err != nil {
				return nil, err
			}
			cmd.AliasDomain = d
		}
		return r.Decide(cmd)
	}, func(b *pgx.Batch) func(context.Context, pgx.Tx) error {
		return s.queueClaim(b, parsed[0], "alias", domain.ResourceStreamID(addr))
	})
}

// RemoveResourceAlias takes an alias away from a resource.
func (s *Service) RemoveResourceAlias(ctx context.Context, req Request, addr, alias domain.Address) (Outcome, error) {
	return s.resourceCommand(ctx, req, addr, nil, func(_ context.Context, _ pgx.Tx, r domain.Resource) ([]domain.Event, error) {
		return r.Decide(domain.RemoveResourceAlias{Alias: alias})
	}, func(b *pgx.Batch) func(context.Context, pgx.Tx) error {
		queueRelease(b, domain.ResourceStreamID(addr), []domain.Address{alias})
		return nil
	})
}

// resourceCommand runs a command on an existing resource of a domain that accepts changes.
// queue, run only when the command appends, adds writes to the append's batch.
func (s *Service) resourceCommand(ctx context.Context, req Request, addr domain.Address, with []string,
	decide func(ctx context.Context, tx pgx.Tx, r domain.Resource) ([]domain.Event, error),
	queue func(b *pgx.Batch) func(context.Context, pgx.Tx) error,
) (Outcome, error) {
	var view *ResourceView
	st := step[domain.Resource]{
		stream: resourceStream(addr),
		with:   append([]string{domain.DomainStreamID(addr.Domain)}, with...),
		decide: func(ctx context.Context, tx pgx.Tx, r domain.Resource, _ int) ([]domain.Event, error) {
			if !r.Exists() {
				return nil, fmt.Errorf("resource %s: %w", addr, domain.ErrNotFound)
			}
			d, err := s.loadDomain(ctx, tx, addr.Domain)
			if err != nil {
				return nil, err
			}
			if err := d.CheckAcceptsChanges(); err != nil {
				return nil, err
			}
			return decide(ctx, tx, r)
		},
		view: resourceView(&view),
	}
	if queue != nil {
		st.queue = func(b *pgx.Batch, _ domain.Resource) func(context.Context, pgx.Tx) error { return queue(b) }
	}
	out, err := run(ctx, s, req, st)
	out.Resource = view
	return out, err
}
