package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"mailplane/domain"
)

// Recipient is what the read models say of an address mail is sent to: its domain's status, and
// the list it names (directly or through a list alias), if any.
type Recipient struct {
	// DomainStatus is the status of the address's domain ("" when no hosted domain has it).
	DomainStatus string
	// List is the list the address is or an alias of (nil otherwise).
	List *domain.MailingList
}

// Recipient looks an address up for the mail-flow policy (api/policy).
func (r *ReadModel) Recipient(ctx context.Context, address string) (Recipient, error) {
	var out Recipient
	addr, err := domain.ParseAddress(address)
	if err != nil {
		return out, nil // not an address anything here could be
	}
	err = r.db.QueryRow(ctx, `SELECT status FROM rm_domains WHERE name = $1`, addr.Domain).Scan(&out.DomainStatus)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return out, fmt.Errorf("read model: recipient %s: %w", address, err)
	}
	target := addr.String()
	var aliased string
	err = r.db.QueryRow(ctx, `SELECT target FROM rm_aliases WHERE alias = $1 AND kind = 'list'`, target).Scan(&aliased)
	switch {
	case err == nil:
		target = aliased
	case !errors.Is(err, pgx.ErrNoRows):
		return out, fmt.Errorf("read model: recipient %s: %w", address, err)
	}
	row, err := r.List(ctx, target)
	switch {
	case err == nil:
		out.List = &row.List
	case !errors.Is(err, domain.ErrNotFound):
		return out, err
	}
	return out, nil
}
