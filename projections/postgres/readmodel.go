package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"mailplane/domain"
	"mailplane/eventstore"
)

// ReadModel answers queries from the admin projection's tables.
type ReadModel struct {
	db eventstore.DBTX
}

// NewReadModel returns the queries over db.
func NewReadModel(db eventstore.DBTX) *ReadModel { return &ReadModel{db: db} }

// ListQuery selects a page of a list.
type ListQuery struct {
	// Q filters by substring of the name or display name (case-insensitive).
	Q string
	// Status filters by exact status.
	Status string
	// Limit is the page size.
	Limit int
	// After is the last key of the previous page.
	After string
}

// Row is what every read-model row carries beside its state.
type Row struct {
	Version   int
	CreatedAt time.Time
	UpdatedAt time.Time
}

// oneRow is the row a lookup by key found, or domain.ErrNotFound when it found none (what and
// args name the key in the error).
func oneRow[T any](rows []T, err error, what string, args ...any) (T, error) {
	var zero T
	if err != nil {
		return zero, err
	}
	if len(rows) == 0 {
		return zero, fmt.Errorf(what+": %w", append(args, domain.ErrNotFound)...)
	}
	return rows[0], nil
}

// DomainRow is a domain with its counts.
type DomainRow struct {
	Row
	Domain domain.Domain
	Counts Counts
}

// Counts are the objects in a domain.
type Counts struct {
	Accounts  int `json:"accounts"`
	Lists     int `json:"lists"`
	Resources int `json:"resources"`
	Aliases   int `json:"aliases"`
}

// AccountRow is an account.
type AccountRow struct {
	Row
	Account domain.Account
}

// COSRow is a class of service.
type COSRow struct {
	Row
	COS domain.COS
}

// likePattern escapes q for ILIKE '%q%'.
func likePattern(q string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(q) + "%"
}

func decode[S any](raw []byte, what string) (S, error) {
	var s S
	if err := json.Unmarshal(raw, &s); err != nil {
		return s, fmt.Errorf("read model: %s: %w", what, err)
	}
	return s, nil
}

// GlobalConfig returns the global configuration (the built-in defaults when never set) and its
// version.
func (r *ReadModel) GlobalConfig(ctx context.Context) (domain.GlobalConfig, int, error) {
	var version int
	var raw []byte
	err := r.db.QueryRow(ctx, `SELECT version, state FROM rm_config WHERE id = 1`).Scan(&version, &raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.DefaultGlobalConfig(), 0, nil
	}
	if err != nil {
		return domain.GlobalConfig{}, 0, fmt.Errorf("read model: config: %w", err)
	}
	g, err := decode[domain.GlobalConfig](raw, "config")
	return g.WithDefaults(), version, err
}

// COS returns one class of service, or domain.ErrNotFound.
func (r *ReadModel) COS(ctx context.Context, name string) (COSRow, error) {
	rows, err := r.cos(ctx, `WHERE name = $1 AND NOT deleted`, name)
	return oneRow(rows, err, "class of service %q", name)
}

// ListCOS returns a page of classes of service ordered by name.
func (r *ReadModel) ListCOS(ctx context.Context, q ListQuery) ([]COSRow, error) {
	return r.cos(ctx, `WHERE NOT deleted AND name > $1 AND ($2 = '' OR name ILIKE $3 OR state->>'Description' ILIKE $3)
		ORDER BY name LIMIT $4`, q.After, q.Q, likePattern(q.Q), q.Limit)
}

// AllCOS returns every class of service by name.
func (r *ReadModel) AllCOS(ctx context.Context) (map[string]domain.COS, error) {
	rows, err := r.cos(ctx, `WHERE NOT deleted`)
	if err != nil {
		return nil, err
	}
	out := make(map[string]domain.COS, len(rows))
	for _, c := range rows {
		out[c.COS.Name] = c.COS
	}
	return out, nil
}

func (r *ReadModel) cos(ctx context.Context, where string, args ...any) ([]COSRow, error) {
	rows, err := r.db.Query(ctx, `SELECT version, state, created_at, updated_at FROM rm_cos `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("read model: cos: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (COSRow, error) {
		var c COSRow
		var raw []byte
		if err := row.Scan(&c.Version, &raw, &c.CreatedAt, &c.UpdatedAt); err != nil {
			return c, err
		}
		c.COS, err = decode[domain.COS](raw, "cos")
		return c, err
	})
}

// Domain returns one domain with its counts, or domain.ErrNotFound.
func (r *ReadModel) Domain(ctx context.Context, name string) (DomainRow, error) {
	rows, err := r.domains(ctx, `WHERE name = $1`, name)
	return oneRow(rows, err, "domain %q", name)
}

// DomainSettings returns a domain's state without counting its objects (cheap), or
// domain.ErrNotFound.
func (r *ReadModel) DomainSettings(ctx context.Context, name string) (domain.Domain, error) {
	var raw []byte
	err := r.db.QueryRow(ctx, `SELECT state FROM rm_domains WHERE name = $1`, name).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.Domain{}, fmt.Errorf("domain %q: %w", name, domain.ErrNotFound)
	}
	if err != nil {
		return domain.Domain{}, fmt.Errorf("read model: domain: %w", err)
	}
	return decode[domain.Domain](raw, "domain")
}

// ListDomains returns a page of domains ordered by name, of the named ones alone when only is
// not nil.
func (r *ReadModel) ListDomains(ctx context.Context, q ListQuery, only []string) ([]DomainRow, error) {
	return r.domains(ctx, `WHERE d.name > $1 AND ($2 = '' OR d.status = $2)
		AND ($3 = '' OR d.name ILIKE $4 OR d.unicode_name ILIKE $4 OR d.description ILIKE $4)
		AND ($6::text[] IS NULL OR d.name = ANY($6))
		ORDER BY d.name LIMIT $5`, q.After, q.Status, q.Q, likePattern(q.Q), q.Limit, only)
}

func (r *ReadModel) domains(ctx context.Context, where string, args ...any) ([]DomainRow, error) {
	rows, err := r.db.Query(ctx, `SELECT d.version, d.state, d.created_at, d.updated_at,
		(SELECT count(*) FROM rm_accounts a WHERE a.domain = d.name AND NOT a.deleted),
		(SELECT count(*) FROM rm_lists l WHERE l.domain = d.name AND NOT l.deleted),
		(SELECT count(*) FROM rm_resources r WHERE r.domain = d.name AND NOT r.deleted),
		(SELECT count(*) FROM rm_aliases l WHERE l.domain = d.name)
		FROM rm_domains d `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("read model: domains: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (DomainRow, error) {
		var d DomainRow
		var raw []byte
		if err := row.Scan(&d.Version, &raw, &d.CreatedAt, &d.UpdatedAt, &d.Counts.Accounts, &d.Counts.Lists, &d.Counts.Resources,
			&d.Counts.Aliases); err != nil {
			return d, err
		}
		d.Domain, err = decode[domain.Domain](raw, "domain")
		return d, err
	})
}

// Account returns one account, or domain.ErrNotFound.
func (r *ReadModel) Account(ctx context.Context, address string) (AccountRow, error) {
	rows, err := r.accounts(ctx, `WHERE address = $1 AND NOT deleted`, address)
	return oneRow(rows, err, "account %q", address)
}

// ListAccounts returns a page of a domain's accounts ordered by address.
func (r *ReadModel) ListAccounts(ctx context.Context, domainName string, q ListQuery) ([]AccountRow, error) {
	return r.accounts(ctx, `WHERE domain = $1 AND NOT deleted AND address > $2 AND ($3 = '' OR status = $3)
		AND ($4 = '' OR address ILIKE $5 OR display_name ILIKE $5)
		ORDER BY address LIMIT $6`, domainName, q.After, q.Status, q.Q, likePattern(q.Q), q.Limit)
}

func (r *ReadModel) accounts(ctx context.Context, where string, args ...any) ([]AccountRow, error) {
	rows, err := r.db.Query(ctx, `SELECT version, state, created_at, updated_at FROM rm_accounts `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("read model: accounts: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (AccountRow, error) {
		var a AccountRow
		var raw []byte
		if err := row.Scan(&a.Version, &raw, &a.CreatedAt, &a.UpdatedAt); err != nil {
			return a, err
		}
		a.Account, err = decode[domain.Account](raw, "account")
		return a, err
	})
}
