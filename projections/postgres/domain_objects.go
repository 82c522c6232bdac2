package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// DomainObjects are the objects that removing a domain would take, one page of each kind, with
// the count of every kind.
type DomainObjects struct {
	Accounts []string `json:"accounts"`
	// Aliases in the domain, and aliases elsewhere of the domain's accounts, lists and resources.
	Aliases      []string `json:"aliases"`
	Lists        []string `json:"lists"`
	Resources    []string `json:"resources"`
	VirtualHosts []string `json:"virtual_hosts"`
	// Certificates are those of the domain's virtual hosts (they go with them).
	Certificates []DomainCertificate `json:"certificates"`
	Counts       ObjectCounts        `json:"counts"`
	// After is, for each kind whose page was full, the key its next page starts after.
	After map[string]string `json:"-"`
}

// DomainCertificate is a virtual host's certificate in a deletion preview.
type DomainCertificate struct {
	Host     string    `json:"host"`
	Source   string    `json:"source"`
	NotAfter time.Time `json:"not_after"`
}

// ObjectCounts counts every kind in a deletion preview, whatever the page.
type ObjectCounts struct {
	Accounts     int64 `json:"accounts"`
	Lists        int64 `json:"lists"`
	Resources    int64 `json:"resources"`
	Aliases      int64 `json:"aliases"`
	VirtualHosts int64 `json:"virtual_hosts"`
	Certificates int64 `json:"certificates"`
}

// Kinds of a deletion preview, as its cursor names them.
const (
	KindAccounts     = "accounts"
	KindLists        = "lists"
	KindResources    = "resources"
	KindAliases      = "aliases"
	KindVirtualHosts = "virtual_hosts"
	KindCertificates = "certificates"
)

// aliasesOf selects the aliases a removal takes: those in the domain and those elsewhere of its
// objects ($1 the domain).
const aliasesOf = `SELECT alias FROM rm_aliases
	WHERE domain = $1
		OR kind = 'account' AND target IN (SELECT address FROM rm_accounts WHERE domain = $1 AND NOT deleted)
		OR kind = 'list' AND target IN (SELECT address FROM rm_lists WHERE domain = $1 AND NOT deleted)
		OR kind = 'resource' AND target IN (SELECT address FROM rm_resources WHERE domain = $1 AND NOT deleted)`

// DomainObjects lists what belongs to the domain, up to limit of each kind (keyset pages: after
// holds, per kind, the key the page starts after; a kind absent from after starts at the
// beginning, and a kind mapped to "" is done and returns nothing). limit 0 means no limit.
func (r *ReadModel) DomainObjects(ctx context.Context, name string, limit int, after map[string]string) (DomainObjects, error) {
	o := DomainObjects{Accounts: []string{}, Aliases: []string{}, Lists: []string{}, Resources: []string{},
		VirtualHosts: []string{}, Certificates: []DomainCertificate{}, After: map[string]string{}}
	err := r.db.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM rm_accounts WHERE domain = $1 AND NOT deleted),
		(SELECT count(*) FROM rm_lists WHERE domain = $1 AND NOT deleted),
		(SELECT count(*) FROM rm_resources WHERE domain = $1 AND NOT deleted),
		(SELECT count(*) FROM (`+aliasesOf+`) a),
		(SELECT count(*) FROM rm_virtual_hosts WHERE domain = $1 AND NOT deleted),
		(SELECT count(*) FROM rm_virtual_hosts WHERE domain = $1 AND NOT deleted AND source IS NOT NULL)`, name).Scan(
		&o.Counts.Accounts, &o.Counts.Lists, &o.Counts.Resources, &o.Counts.Aliases, &o.Counts.VirtualHosts, &o.Counts.Certificates)
	if err != nil {
		return o, fmt.Errorf("read model: %w", err)
	}
	lim := int64(limit) + 1
	if limit <= 0 {
		lim = 1 << 62
	}
	for _, q := range []struct {
		kind  string
		into  *[]string
		query string
	}{
		{KindAccounts, &o.Accounts, `SELECT address FROM rm_accounts WHERE domain = $1 AND NOT deleted AND address > $2 ORDER BY address LIMIT $3`},
		{KindLists, &o.Lists, `SELECT address FROM rm_lists WHERE domain = $1 AND NOT deleted AND address > $2 ORDER BY address LIMIT $3`},
		{KindResources, &o.Resources, `SELECT address FROM rm_resources WHERE domain = $1 AND NOT deleted AND address > $2 ORDER BY address LIMIT $3`},
		{KindVirtualHosts, &o.VirtualHosts, `SELECT host FROM rm_virtual_hosts WHERE domain = $1 AND NOT deleted AND host > $2 ORDER BY host LIMIT $3`},
		{KindAliases, &o.Aliases, `SELECT alias FROM (` + aliasesOf + `) a WHERE alias > $2 ORDER BY alias LIMIT $3`},
	} {
		from, seen := after[q.kind]
		if seen && from == "" {
			continue
		}
		rows, err := r.db.Query(ctx, q.query, name, from, lim)
		if err != nil {
			return o, fmt.Errorf("read model: %w", err)
		}
		keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return o, err
		}
		if limit > 0 && len(keys) > limit {
			keys = keys[:limit]
			o.After[q.kind] = keys[limit-1]
		}
		*q.into = keys
	}
	if from, seen := after[KindCertificates]; !seen || from != "" {
		rows, err := r.db.Query(ctx, `SELECT host, source, not_after FROM rm_virtual_hosts
			WHERE domain = $1 AND NOT deleted AND source IS NOT NULL AND host > $2 ORDER BY host LIMIT $3`, name, from, lim)
		if err != nil {
			return o, fmt.Errorf("read model: %w", err)
		}
		certs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[DomainCertificate])
		if err != nil {
			return o, err
		}
		if limit > 0 && len(certs) > limit {
			certs = certs[:limit]
			o.After[KindCertificates] = certs[limit-1].Host
		}
		for i := range certs {
			certs[i].NotAfter = certs[i].NotAfter.UTC()
		}
		o.Certificates = certs
	}
	return o, nil
}
