package commands

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"mailplane/domain"
	"mailplane/eventstore"
)

func virtualHostStream(domainName, host string) eventstore.Stream {
	return eventstore.Stream{ID: domain.VirtualHostStreamID(domainName, host), Type: domain.StreamTypeVirtualHost, Domain: domainName}
}

// VirtualHostTakenError says a host name is a virtual host already (of this domain or another).
type VirtualHostTakenError struct {
	Host string
	// Here is true when it is one of the same domain's.
	Here bool
}

func (e *VirtualHostTakenError) Error() string {
	if e.Here {
		return fmt.Sprintf("%s is already a virtual host of this domain", e.Host)
	}
	// Another tenant's configuration is none of this one's business: say no more than that.
	return fmt.Sprintf("%s is already a virtual host of another domain", e.Host)
}

// Unwrap makes it a domain.ErrAlreadyExists.
func (e *VirtualHostTakenError) Unwrap() error { return domain.ErrAlreadyExists }

// NormalizeHost returns a virtual host name's stored form (domain name rules), or a
// ValidationError on "host".
func NormalizeHost(host string) (string, error) {
	ascii, _, err := domain.NormalizeDomainName(host)
	if err != nil {
		var ve domain.ValidationError
		if errors.As(err, &ve) {
			return "", domain.Invalid("host", ve.Errors[0].Message)
		}
		return "", err
	}
	return ascii, nil
}

// parentDomains are the names a host is or lies under that could be mail domains: the host
// itself and each parent with at least two labels.
func parentDomains(host string) []string {
	var out []string
	for name := host; strings.Count(name, ".") >= 1; {
		out = append(out, name)
		_, rest, _ := strings.Cut(name, ".")
		name = rest
	}
	return out
}

// AddVirtualHost adds a virtual host to a domain and claims its name across all domains. A name
// that is, or lies under, another mail domain hosted here is refused: that tenant's DNS points
// at this service, so a certificate for it could otherwise be obtained by someone else.
// It returns the host's stored form.
func (s *Service) AddVirtualHost(ctx context.Context, req Request, domainName, host string) (string, Outcome, error) {
	ascii, err := NormalizeHost(host)
	if err != nil {
		return "", Outcome{}, err
	}
	parents := parentDomains(ascii)
	with := []string{domain.DomainStreamID(domainName)}
	for _, p := range parents {
		if p != domainName {
			with = append(with, domain.DomainStreamID(p))
		}
	}
	out, err := run(ctx, s, req, step[domain.VirtualHost]{
		stream: virtualHostStream(domainName, ascii),
		with:   with,
		decide: func(ctx context.Context, tx pgx.Tx, v domain.VirtualHost, _ int) ([]domain.Event, error) {
			d, err := s.loadDomain(ctx, tx, domainName)
			if err != nil {
				return nil, err
			}
			if err := d.CheckAcceptsChanges(); err != nil {
				return nil, err
			}
			cmd := domain.AddVirtualHost{Domain: domainName, Host: ascii, At: s.now()}
			for _, p := range parents {
				if p == domainName {
					break // under its own domain: whatever lies above is not another tenant's
				}
				other, _, err := load[domain.Domain](ctx, s, tx, domain.DomainStreamID(p))
				if err != nil {
					return nil, err
				}
				if other.Exists() {
					cmd.OtherDomain = p
					break
				}
			}
			return v.Decide(cmd)
		},
		queue: func(b *pgx.Batch, v domain.VirtualHost) func(context.Context, pgx.Tx) error {
			claimed := false
			queueRemovalGuard(b, domainName)
			b.Queue(`INSERT INTO virtual_host_claims (host, domain, owner) SELECT $1, $2, $3
				WHERE NOT EXISTS (SELECT 1 FROM domain_removals WHERE domain = $2 AND finished_at IS NULL)
				ON CONFLICT (host) DO NOTHING`,
				ascii, domainName, domain.VirtualHostStreamID(domainName, ascii)).
				Exec(func(tag pgconn.CommandTag) error { claimed = tag.RowsAffected() == 1; return nil })
			return func(ctx context.Context, tx pgx.Tx) error {
				if claimed {
					return nil
				}
				var holder string
				err := tx.QueryRow(ctx, `SELECT domain FROM virtual_host_claims WHERE host = $1`, ascii).Scan(&holder)
				if errors.Is(err, pgx.ErrNoRows) {
					return fmt.Errorf("domain %s is being removed: %w", domainName, domain.ErrDomainUnavailable)
				}
				if err != nil {
					return err
				}
				return &VirtualHostTakenError{Host: ascii, Here: holder == domainName}
			}
		},
	})
	return ascii, out, err
}

// RemoveVirtualHost removes a virtual host with its certificate and frees its name. An ACME
// request in flight finds it gone and records nothing.
func (s *Service) RemoveVirtualHost(ctx context.Context, req Request, domainName, host string) (Outcome, error) {
	return s.virtualHostCommand(ctx, req, domainName, host, func(context.Context, pgx.Tx, domain.VirtualHost) (domain.VirtualHostCommand, error) {
		return domain.RemoveVirtualHost{}, nil
	}, func(ctx context.Context, tx pgx.Tx, _ domain.VirtualHost, _ []domain.Event) error {
		_, err := tx.Exec(ctx, `DELETE FROM virtual_host_claims WHERE host = $1 AND domain = $2`, host, domainName)
		return err
	})
}

// virtualHostCommand runs a command on an existing virtual host of a domain that accepts
// changes. cmd builds the command from the host's state (nil: nothing to do).
func (s *Service) virtualHostCommand(ctx context.Context, req Request, domainName, host string,
	cmd func(ctx context.Context, tx pgx.Tx, v domain.VirtualHost) (domain.VirtualHostCommand, error),
	after func(ctx context.Context, tx pgx.Tx, v domain.VirtualHost, events []domain.Event) error,
) (Outcome, error) {
	return s.onVirtualHost(ctx, req, domainName, host, true, cmd, after)
}

// recordOutcome runs a command that records what a job found. It skips the domain's status:
// a request made before the domain was suspended still gets its outcome, or it would stay in
// flight for good.
func (s *Service) recordOutcome(ctx context.Context, req Request, domainName, host string,
	cmd func(ctx context.Context, tx pgx.Tx, v domain.VirtualHost) (domain.VirtualHostCommand, error),
	after func(ctx context.Context, tx pgx.Tx, v domain.VirtualHost, events []domain.Event) error,
) (Outcome, error) {
	return s.onVirtualHost(ctx, req, domainName, host, false, cmd, after)
}

func (s *Service) onVirtualHost(ctx context.Context, req Request, domainName, host string, checkStatus bool,
	cmd func(ctx context.Context, tx pgx.Tx, v domain.VirtualHost) (domain.VirtualHostCommand, error),
	after func(ctx context.Context, tx pgx.Tx, v domain.VirtualHost, events []domain.Event) error,
) (Outcome, error) {
	return run(ctx, s, req, step[domain.VirtualHost]{
		stream: virtualHostStream(domainName, host),
		with:   []string{domain.DomainStreamID(domainName)},
		decide: func(ctx context.Context, tx pgx.Tx, v domain.VirtualHost, _ int) ([]domain.Event, error) {
			d, err := s.loadDomain(ctx, tx, domainName)
			if !checkStatus && (errors.Is(err, domain.ErrNotFound) || err == nil && !v.Exists()) {
				return nil, nil // gone meanwhile: an outcome has nothing left to record
			}
			if err != nil {
				return nil, err
			}
			if !v.Exists() {
				return nil, fmt.Errorf("virtual host %s of %s: %w", host, domainName, domain.ErrNotFound)
			}
			if checkStatus {
				if err := d.CheckAcceptsChanges(); err != nil {
					return nil, err
				}
			}
			c, err := cmd(ctx, tx, v)
			if err != nil || c == nil {
				return nil, err
			}
			return v.Decide(c)
		},
		after: after,
	})
}

// VirtualHost returns a virtual host's state straight from its stream (its sealed key
// included), or domain.ErrNotFound.
func (s *Service) VirtualHost(ctx context.Context, domainName, host string) (domain.VirtualHost, int, error) {
	v, version, err := Load[domain.VirtualHost](ctx, s, domain.VirtualHostStreamID(domainName, host))
	if err != nil {
		return v, 0, err
	}
	if !v.Exists() {
		return v, 0, fmt.Errorf("virtual host %s of %s: %w", host, domainName, domain.ErrNotFound)
	}
	return v, version, nil
}
