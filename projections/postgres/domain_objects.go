package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// DomainObjects are the objects that removing a domain would take.
type DomainObjects struct {
	Accounts []string `json:"accounts"`
	// Aliases in the domain, and aliases elsewhere of the domain's accounts.
	Aliases      []string `json:"aliases"`
	Lists        []string `json:"lists"`
	Resources    []string `json:"resources"`
	VirtualHosts []string `json:"virtual_hosts"`
}

// DomainObjects lists everything that belongs to the domain.
func (r *ReadModel) DomainObjects(ctx context.Context, name string) (DomainObjects, error) {
	o := DomainObjects{Lists: []string{}, Resources: []string{}}
	rows, err := r.db.Query(ctx, `SELECT address FROM rm_accounts WHERE domain = $1 AND NOT deleted ORDER BY address`, name)
	if err != nil {
		return o, fmt.Errorf("read model: %w", err)
	}
	if o.Accounts, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		return o, err
	}
	rows, err = r.db.Query(ctx, `SELECT alias FROM rm_aliases
		WHERE domain = $1 OR target IN (SELECT address FROM rm_accounts WHERE domain = $1 AND NOT deleted)
		ORDER BY alias`, name)
	if err != nil {
		return o, fmt.Errorf("read model: %w", err)
	}
	if o.Aliases, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		return o, err
	}
	rows, err = r.db.Query(ctx, `SELECT host FROM rm_virtual_hosts WHERE domain = $1 AND NOT deleted ORDER BY host`, name)
	if err != nil {
		return o, fmt.Errorf("read model: %w", err)
	}
	o.VirtualHosts, err = pgx.CollectRows(rows, pgx.RowTo[string])
	return o, err
}
