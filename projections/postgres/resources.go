package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"mailplane/domain"
	"mailplane/eventstore"
)

// projectResource keeps rm_resources and the resource's rows in rm_aliases.
func projectResource(ctx context.Context, tx pgx.Tx, e eventstore.RecordedEvent, ev domain.Event) error {
	address := strings.TrimPrefix(e.StreamID, domain.ResourceStreamID(domain.Address{})) // "resource-"
	r, skip, err := next[domain.Resource](ctx, tx, e, ev, `SELECT version, state FROM rm_resources WHERE address = $1`, address)
	if err != nil || skip {
		return err
	}
	state, err := json.Marshal(r)
	if err != nil {
		return err
	}
	createdAt := rowCreatedAt(r.CreatedAt, e)
	_, err = tx.Exec(ctx, `INSERT INTO rm_resources (address, domain, display_name, type, booking_policy, version, deleted,
			state, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		ON CONFLICT (address) DO UPDATE SET display_name = excluded.display_name, type = excluded.type,
			booking_policy = excluded.booking_policy, version = excluded.version, deleted = excluded.deleted,
			state = excluded.state, created_at = excluded.created_at, updated_at = excluded.updated_at
		WHERE rm_resources.version < excluded.version`,
		address, e.Domain, r.DisplayName, r.Type, r.BookingPolicy, e.Version, !r.Exists(), state, createdAt, e.RecordedAt)
	if err != nil {
		return err
	}
	switch x := ev.(type) {
	case domain.ResourceAliasAdded:
		_, err = tx.Exec(ctx, `INSERT INTO rm_aliases (alias, target, kind, domain) VALUES ($1, $2, 'resource', $3)
			ON CONFLICT (alias) DO UPDATE SET target = excluded.target, kind = excluded.kind, domain = excluded.domain`,
			x.Alias.String(), address, x.Alias.Domain)
	case domain.ResourceAliasRemoved:
		_, err = tx.Exec(ctx, `DELETE FROM rm_aliases WHERE kind = 'resource' AND alias = $1 AND target = $2`, x.Alias.String(), address)
	case domain.ResourceDeleted:
		_, err = tx.Exec(ctx, `DELETE FROM rm_aliases WHERE kind = 'resource' AND target = $1`, address)
	}
	return err
}

// ResourceRow is a resource.
type ResourceRow struct {
	Row
	Resource domain.Resource
}

// Resource returns one resource, or domain.ErrNotFound.
func (r *ReadModel) Resource(ctx context.Context, address string) (ResourceRow, error) {
	rows, err := r.resources(ctx, `WHERE address = $1 AND NOT deleted`, address)
	return oneRow(rows, err, "resource %q", address)
}

// ListResources returns a page of a domain's resources ordered by address.
func (r *ReadModel) ListResources(ctx context.Context, domainName string, q ListQuery) ([]ResourceRow, error) {
	return r.resources(ctx, `WHERE domain = $1 AND NOT deleted AND address > $2
		AND ($3 = '' OR address ILIKE $4 OR display_name ILIKE $4)
		ORDER BY address LIMIT $5`, domainName, q.After, q.Q, likePattern(q.Q), q.Limit)
}

func (r *ReadModel) resources(ctx context.Context, where string, args ...any) ([]ResourceRow, error) {
	rows, err := r.db.Query(ctx, `SELECT version, state, created_at, updated_at FROM rm_resources `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("read model: resources: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (ResourceRow, error) {
		var x ResourceRow
		var raw []byte
		if err := row.Scan(&x.Version, &raw, &x.CreatedAt, &x.UpdatedAt); err != nil {
			return x, err
		}
		x.Resource, err = decode[domain.Resource](raw, "resource")
		return x, err
	})
}
