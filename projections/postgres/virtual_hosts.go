package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"mailplane/domain"
)

// VirtualHostRow is a virtual host with its certificate (without the private key).
type VirtualHostRow struct {
	Row
	VirtualHost domain.VirtualHost
}

// VirtualHost returns one virtual host of a domain, or domain.ErrNotFound.
func (r *ReadModel) VirtualHost(ctx context.Context, domainName, host string) (VirtualHostRow, error) {
	rows, err := r.virtualHosts(ctx, `WHERE domain = $1 AND host = $2 AND NOT deleted`, domainName, host)
	return oneRow(rows, err, "virtual host %q of %s", host, domainName)
}

// ListVirtualHosts returns a page of a domain's virtual hosts ordered by host name.
func (r *ReadModel) ListVirtualHosts(ctx context.Context, domainName string, q ListQuery) ([]VirtualHostRow, error) {
	return r.virtualHosts(ctx, `WHERE domain = $1 AND NOT deleted AND host > $2
		AND ($3 = '' OR host ILIKE $4 OR state->>'UnicodeHost' ILIKE $4)
		ORDER BY host LIMIT $5`, domainName, q.After, q.Q, likePattern(q.Q), q.Limit)
}

// DueRenewal is an ACME certificate the renewal job should renew.
type DueRenewal struct {
	Domain, Host string
}

// DueRenewals lists the virtual hosts whose ACME certificate is due for renewal at now, with no
// issuance in flight (or only an abandoned one) and no failed renewal still backing off,
// soonest expiry first.
func (r *ReadModel) DueRenewals(ctx context.Context, now time.Time, limit int) ([]DueRenewal, error) {
	rows, err := r.db.Query(ctx, `SELECT domain, host FROM rm_virtual_hosts
		WHERE NOT deleted AND source = 'acme' AND renewal_due_at <= $1
			AND (issuing_since IS NULL OR issuing_since <= $2)
			AND (next_attempt_at IS NULL OR next_attempt_at <= $1)
		ORDER BY not_after, domain, host LIMIT $3`, now, now.Add(-domain.IssuanceAbandonedAfter), limit)
	if err != nil {
		return nil, fmt.Errorf("read model: due renewals: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (DueRenewal, error) {
		var d DueRenewal
		return d, row.Scan(&d.Domain, &d.Host)
	})
}

func (r *ReadModel) virtualHosts(ctx context.Context, where string, args ...any) ([]VirtualHostRow, error) {
	rows, err := r.db.Query(ctx, `SELECT version, state, created_at, updated_at FROM rm_virtual_hosts `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("read model: virtual hosts: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (VirtualHostRow, error) {
		var v VirtualHostRow
		var raw []byte
		if err := row.Scan(&v.Version, &raw, &v.CreatedAt, &v.UpdatedAt); err != nil {
			return v, err
		}
		v.VirtualHost, err = decode[domain.VirtualHost](raw, "virtual host")
		return v, err
	})
}
