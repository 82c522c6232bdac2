package commands

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/go-ldap/ldap/v3"
	"github.com/jackc/pgx/v5"

	"mailplane/domain"
	"mailplane/eventstore"
)

func listStream(a domain.Address) eventstore.Stream {
	return eventstore.Stream{ID: domain.ListStreamID(a), Type: domain.StreamTypeList, Domain: a.Domain}
}

// ListView is a mailing list as a command left it, read in the command's own transaction.
type ListView struct {
	List    domain.MailingList
	Version int
}

func listView(into **ListView) func(context.Context, pgx.Tx, domain.MailingList, int) error {
	return func(_ context.Context, _ pgx.Tx, l domain.MailingList, version int) error {
		if l.Exists() {
			*into = &ListView{List: l, Version: version}
		}
		return nil
	}
}

// filterProblem compiles a member URL's filter with the LDAP client library the directory's
// readers and writer use, and says what it found wrong ("" when it compiled, or when the URL
// does not parse: the decision reports that).
func filterProblem(memberURL string) (problem string) {
	m, err := domain.ParseMemberURL(memberURL)
	if err != nil {
		return ""
	}
	defer func() {
		if r := recover(); r != nil {
			problem = "the LDAP library cannot compile it"
		}
	}()
	compiled, err := ldap.CompileFilter(m.Filter)
	if err != nil {
		var le *ldap.Error
		if errors.As(err, &le) && le.Err != nil {
			err = le.Err
		}
		return strings.TrimPrefix(err.Error(), "ldap: ")
	}
	// What the directory is sent must be the filter written: an empty substring ("(a=**)") is
	// sent as a substring filter that reads back as "(a=)", another filter.
	back, err := ldap.DecompileFilter(compiled)
	if err != nil {
		return "the LDAP library cannot read it back"
	}
	again, err := ldap.CompileFilter(back)
	if err != nil || !bytes.Equal(again.Bytes(), compiled.Bytes()) {
		return fmt.Sprintf("%q is sent to the directory as %q, another filter: write it without empty parts", m.Filter, back)
	}
	return ""
}

// CreateList creates (or re-creates) a mailing list in the domain. Its address is claimed in
// the transaction of its event: no account, alias, list or resource has it.
func (s *Service) CreateList(ctx context.Context, req Request, domainName string, cmd domain.CreateList) (Outcome, error) {
	if cmd.At.IsZero() {
		cmd.At = s.now()
	}
	if cmd.Dynamic != nil {
		cmd.Dynamic.FilterProblem = filterProblem(cmd.Dynamic.MemberURL)
	}
	owners := domain.ParseAddresses(cmd.Owners)
	addr, err := domain.ParseAddress(cmd.Address)
	if err != nil || addr.Domain != domainName {
		// No stream to write to: let the decision report every bad field, the address among them.
		return Outcome{}, s.refuseCreate(ctx, req, domainName, owners, func(d domain.Domain, accounts map[domain.Address]bool) error {
			cmd.Domain, cmd.Accounts = d, accounts
			_, err := domain.MailingList{}.Decide(cmd)
			return err
		})
	}
	var view *ListView
	out, err := run(ctx, s, req, step[domain.MailingList]{
		stream: listStream(addr),
		with:   []string{domain.DomainStreamID(domainName)},
		decide: func(ctx context.Context, tx pgx.Tx, l domain.MailingList, _ int) ([]domain.Event, error) {
			d, _, err := load[domain.Domain](ctx, s, tx, domain.DomainStreamID(domainName))
			if err != nil {
				return nil, err
			}
			cmd.Domain = d
			if cmd.Accounts, err = accountsAmong(ctx, tx, owners); err != nil {
				return nil, err
			}
			return l.Decide(cmd)
		},
		queue: func(b *pgx.Batch, l domain.MailingList) func(context.Context, pgx.Tx) error {
			return s.queueClaim(b, l.Address, "list", domain.ListStreamID(l.Address))
		},
		view: listView(&view),
	})
	out.List = view
	return out, err
}

// refuseCreate answers a creation whose address names no stream: the domain must exist (404
// first), then decide reports every bad field, with those the caller could not read
// (req.Invalid). owners are those to look up among accounts.
func (s *Service) refuseCreate(ctx context.Context, req Request, domainName string, owners []domain.Address,
	decide func(domain.Domain, map[domain.Address]bool) error) error {
	d, err := s.loadDomain(ctx, s.pool, domainName)
	if err != nil {
		return err
	}
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	accounts, err := accountsAmong(ctx, tx, owners)
	if err != nil {
		return err
	}
	err = decide(d, accounts)
	if err == nil {
		err = domain.Invalid("address", "must be in domain "+domainName) // the caller's reason to refuse
	}
	if len(req.Invalid) > 0 {
		return withInvalid(req.Invalid, err)
	}
	return err
}

// UpdateList patches a list's settings.
func (s *Service) UpdateList(ctx context.Context, req Request, addr domain.Address, cmd domain.UpdateList) (Outcome, error) {
	return s.listCommand(ctx, req, addr, listStep{
		decide: func(_ context.Context, _ pgx.Tx, l domain.MailingList) ([]domain.Event, error) { return l.Decide(cmd) },
	})
}

// DeleteList deletes a list: its address and aliases are free again.
func (s *Service) DeleteList(ctx context.Context, req Request, addr domain.Address) (Outcome, error) {
	return s.listCommand(ctx, req, addr, listStep{
		decide: func(_ context.Context, _ pgx.Tx, l domain.MailingList) ([]domain.Event, error) {
			return l.Decide(domain.DeleteList{})
		},
		queue: func(b *pgx.Batch, _ []domain.Event) func(context.Context, pgx.Tx) error {
			queueRelease(b, domain.ListStreamID(addr), nil)
			return nil
		},
	})
}

// AddListMembers adds members to a static list: one event however many (up to
// domain.MaxListChange).
func (s *Service) AddListMembers(ctx context.Context, req Request, addr domain.Address, members []string) (Outcome, error) {
	return s.listCommand(ctx, req, addr, listStep{
		decide: func(_ context.Context, _ pgx.Tx, l domain.MailingList) ([]domain.Event, error) {
			return l.Decide(domain.AddListMembers{Members: members})
		},
	})
}

// RemoveListMembers removes members; with require, each must be a member (the one-address
// form).
func (s *Service) RemoveListMembers(ctx context.Context, req Request, addr domain.Address, members []string, require bool) (Outcome, error) {
	return s.listCommand(ctx, req, addr, listStep{
		decide: func(_ context.Context, _ pgx.Tx, l domain.MailingList) ([]domain.Event, error) {
			return l.Decide(domain.RemoveListMembers{Members: members, Require: require})
		},
	})
}

// AddListOwners adds owners; each must be an account of the platform.
func (s *Service) AddListOwners(ctx context.Context, req Request, addr domain.Address, owners []string) (Outcome, error) {
	return s.listCommand(ctx, req, addr, listStep{
		decide: func(ctx context.Context, tx pgx.Tx, l domain.MailingList) ([]domain.Event, error) {
			accounts, err := accountsAmong(ctx, tx, domain.ParseAddresses(owners))
			if err != nil {
				return nil, err
			}
			return l.Decide(domain.AddListOwners{Owners: owners, Accounts: accounts})
		},
	})
}

// RemoveListOwners removes owners, as RemoveListMembers does members.
func (s *Service) RemoveListOwners(ctx context.Context, req Request, addr domain.Address, owners []string, require bool) (Outcome, error) {
	return s.listCommand(ctx, req, addr, listStep{
		decide: func(_ context.Context, _ pgx.Tx, l domain.MailingList) ([]domain.Event, error) {
			return l.Decide(domain.RemoveListOwners{Owners: owners, Require: require})
		},
	})
}

// AddListAliases gives a list more addresses, in any domains that exist and take new objects;
// each is claimed in the transaction of the event.
func (s *Service) AddListAliases(ctx context.Context, req Request, addr domain.Address, aliases []string) (Outcome, error) {
	parsed := domain.ParseAddresses(aliases)
	var domains []string
	for _, a := range parsed {
		if id := domain.DomainStreamID(a.Domain); !slices.Contains(domains, id) {
			domains = append(domains, id)
		}
	}
	return s.listCommand(ctx, req, addr, listStep{
		with: domains,
		decide: func(ctx context.Context, tx pgx.Tx, l domain.MailingList) ([]domain.Event, error) {
			cmd := domain.AddListAliases{Aliases: aliases, Domains: map[string]domain.Domain{}}
			for _, a := range parsed {
				d, _, err := load[domain.Domain](ctx, s, tx, domain.DomainStreamID(a.Domain))
				if err != nil {
					return nil, err
				}
				cmd.Domains[a.Domain] = d
			}
			return l.Decide(cmd)
		},
		queue: func(b *pgx.Batch, events []domain.Event) func(context.Context, pgx.Tx) error {
			var added []domain.Address
			for _, e := range events {
				if ev, ok := e.(domain.ListAliasesAdded); ok {
					added = append(added, ev.Aliases...)
				}
			}
			return s.queueClaims(b, added, "alias", domain.ListStreamID(addr))
		},
	})
}

// RemoveListAliases takes aliases away; their addresses are free again.
func (s *Service) RemoveListAliases(ctx context.Context, req Request, addr domain.Address, aliases []string, require bool) (Outcome, error) {
	return s.listCommand(ctx, req, addr, listStep{
		decide: func(_ context.Context, _ pgx.Tx, l domain.MailingList) ([]domain.Event, error) {
			return l.Decide(domain.RemoveListAliases{Aliases: aliases, Require: require})
		},
		queue: func(b *pgx.Batch, events []domain.Event) func(context.Context, pgx.Tx) error {
			for _, e := range events {
				if ev, ok := e.(domain.ListAliasesRemoved); ok {
					queueRelease(b, domain.ListStreamID(addr), ev.Aliases)
				}
			}
			return nil
		},
	})
}

// MakeListDynamic turns a list dynamic (or gives it another query). Its filter is compiled
// with the LDAP library before it is accepted.
func (s *Service) MakeListDynamic(ctx context.Context, req Request, addr domain.Address, memberURL string, dropMembers bool) (Outcome, error) {
	in := domain.DynamicInput{MemberURL: memberURL, FilterProblem: filterProblem(memberURL)}
	return s.listCommand(ctx, req, addr, listStep{
		decide: func(_ context.Context, _ pgx.Tx, l domain.MailingList) ([]domain.Event, error) {
			return l.Decide(domain.MakeListDynamic{Dynamic: in, DropMembers: dropMembers})
		},
	})
}

// MakeListStatic turns a dynamic list static, without members.
func (s *Service) MakeListStatic(ctx context.Context, req Request, addr domain.Address) (Outcome, error) {
	return s.listCommand(ctx, req, addr, listStep{
		decide: func(_ context.Context, _ pgx.Tx, l domain.MailingList) ([]domain.Event, error) {
			return l.Decide(domain.MakeListStatic{})
		},
	})
}

// listStep is what a command on an existing list adds to listCommand's step.
type listStep struct {
	// with names streams the decision reads besides the list's and its domain's.
	with   []string
	decide func(ctx context.Context, tx pgx.Tx, l domain.MailingList) ([]domain.Event, error)
	// queue adds writes to the append's batch, given the events decided; may be nil.
	queue func(b *pgx.Batch, events []domain.Event) func(context.Context, pgx.Tx) error
}

// listCommand runs a command on an existing list of a domain that accepts changes.
func (s *Service) listCommand(ctx context.Context, req Request, addr domain.Address, ls listStep) (Outcome, error) {
	var view *ListView
	var events []domain.Event
	st := step[domain.MailingList]{
		stream: listStream(addr),
		with:   append([]string{domain.DomainStreamID(addr.Domain)}, ls.with...),
		decide: func(ctx context.Context, tx pgx.Tx, l domain.MailingList, _ int) ([]domain.Event, error) {
			if !l.Exists() {
				return nil, fmt.Errorf("list %s: %w", addr, domain.ErrNotFound)
			}
			d, err := s.loadDomain(ctx, tx, addr.Domain)
			if err != nil {
				return nil, err
			}
			if err := d.CheckAcceptsChanges(); err != nil {
				return nil, err
			}
			events, err = ls.decide(ctx, tx, l)
			return events, err
		},
		view: listView(&view),
	}
	if ls.queue != nil {
		st.queue = func(b *pgx.Batch, _ domain.MailingList) func(context.Context, pgx.Tx) error {
			return ls.queue(b, events)
		}
	}
	out, err := run(ctx, s, req, st)
	out.List = view
	return out, err
}
