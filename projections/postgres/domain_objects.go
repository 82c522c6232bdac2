package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// DomainObjects are the objects that removing a domain would take.
type DomainObjects struct {
	Accounts []string `json:"accounts"`
	// Aliases in the domain, and aliases elsewhere of the domain's accounts, lists and resources.
	Aliases      []string `json:"aliases"`
	Lists        []string `json:"lists"`
	Resources    []string `json:"resources"`
	VirtualHosts []string `json:"virtual_hosts"`
}

// DomainObjects lists everything that belongs to the domain.
func (r *ReadModel) DomainObjects(ctx context.Context, name string) (DomainObjects, error) {
	o := DomainObjects{}
	for _, q := range []struct {
		into  *[]string
		query string
	}{
		{&o.Accounts, `SELECT address FROM rm_accounts WHERE domain = $1 AND NOT deleted ORDER BY address`},
		{&o.Lists, `SELECT address FROM rm_lists WHERE domain = $1 AND NOT deleted ORDER BY address`},
		{&o.Resources, `SELECT address FROM rm_resources WHERE domain = $1 AND NOT deleted ORDER BY address`},
		{&o.VirtualHosts, `SELECT host FROM rm_virtual_hosts WHERE domain = $1 AND NOT deleted ORDER BY host`},
		{&o.Aliases, `SELECT alias FROM rm_aliases
			WHERE domain = $1
				OR kind = 'account' AND target IN (SELECT address FROM rm_accounts WHERE domain = $1 AND NOT deleted)
				OR kind = 'list' AND target IN (SELECT address FROM rm_lists WHERE domain = $1 AND NOT deleted)
				OR kind = 'resource' AND target IN (SELECT address FROM rm_resources WHERE domain = $1 AND NOT deleted)
			ORDER BY alias`},
	} {
		rows, err := r.db.Query(ctx, q.query, name)
		if err != nil {
			return o, fmt.Errorf("read model: %w", err)
		}
		if *q.into, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return o, err
		}
	}
	return o, nil
}
