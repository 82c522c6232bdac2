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

// projectList keeps rm_lists, rm_list_members and the list's rows in rm_aliases. The row's
// state is the list without its members, which are rows of rm_list_members: one event may add
// ten thousand of them, and a change of the list's settings then rewrites one small row.
func projectList(ctx context.Context, tx pgx.Tx, e eventstore.RecordedEvent, ev domain.Event) error {
	address := strings.TrimPrefix(e.StreamID, domain.ListStreamID(domain.Address{})) // "list-"
	l, skip, err := next[domain.MailingList](ctx, tx, e, ev, `SELECT version, state FROM rm_lists WHERE address = $1`, address)
	if err != nil || skip {
		return err
	}
	l.Members = nil // what Evolve added is written below, row by row
	var stmts []struct {
		sql  string
		args []any
	}
	add := func(sql string, args ...any) {
		stmts = append(stmts, struct {
			sql  string
			args []any
		}{sql, args})
	}
	switch x := ev.(type) {
	case domain.ListCreated:
		// A list created again starts without the old one's members (ListDeleted removed them).
		add(`INSERT INTO rm_list_members (list, member) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING`,
			address, addressStrings(x.Members))
	case domain.ListMembersAdded:
		add(`INSERT INTO rm_list_members (list, member) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING`,
			address, addressStrings(x.Members))
	case domain.ListMembersRemoved:
		add(`DELETE FROM rm_list_members WHERE list = $1 AND member = ANY($2)`, address, addressStrings(x.Members))
	case domain.ListMadeDynamic, domain.ListMadeStatic:
		add(`DELETE FROM rm_list_members WHERE list = $1`, address)
	case domain.ListAliasesAdded:
		add(`INSERT INTO rm_aliases (alias, target, kind, domain)
			SELECT a, $1, 'list', split_part(a, '@', 2) FROM unnest($2::text[]) AS a
			ON CONFLICT (alias) DO UPDATE SET target = excluded.target, kind = excluded.kind, domain = excluded.domain`,
			address, addressStrings(x.Aliases))
	case domain.ListAliasesRemoved:
		add(`DELETE FROM rm_aliases WHERE kind = 'list' AND target = $1 AND alias = ANY($2)`, address, addressStrings(x.Aliases))
	case domain.ListDeleted:
		add(`DELETE FROM rm_list_members WHERE list = $1`, address)
		add(`DELETE FROM rm_aliases WHERE kind = 'list' AND target = $1`, address)
	}
	for _, s := range stmts {
		if _, err := tx.Exec(ctx, s.sql, s.args...); err != nil {
			return err
		}
	}
	state, err := json.Marshal(l)
	if err != nil {
		return err
	}
	createdAt := rowCreatedAt(l.CreatedAt, e)
	_, err = tx.Exec(ctx, `INSERT INTO rm_lists (address, domain, display_name, dynamic, hide_in_gal, member_count,
			version, deleted, state, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, (SELECT count(*) FROM rm_list_members WHERE list = $1), $6, $7, $8, $9, $10)
		ON CONFLICT (address) DO UPDATE SET display_name = excluded.display_name, dynamic = excluded.dynamic,
			hide_in_gal = excluded.hide_in_gal, member_count = excluded.member_count, version = excluded.version,
			deleted = excluded.deleted, state = excluded.state, created_at = excluded.created_at,
			updated_at = excluded.updated_at
		WHERE rm_lists.version < excluded.version`,
		address, e.Domain, l.DisplayName, l.Dynamic != nil, l.HideInGAL, e.Version, !l.Exists(), state, createdAt, e.RecordedAt)
	return err
}

func addressStrings(as []domain.Address) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.String()
	}
	return out
}

// ListRow is a mailing list without its members (see ListMembers), and how many it has.
type ListRow struct {
	Row
	List        domain.MailingList
	MemberCount int
}

// List returns one mailing list, or domain.ErrNotFound.
func (r *ReadModel) List(ctx context.Context, address string) (ListRow, error) {
	rows, err := r.lists(ctx, `WHERE address = $1 AND NOT deleted`, address)
	return oneRow(rows, err, "list %q", address)
}

// ListLists returns a page of a domain's mailing lists ordered by address.
func (r *ReadModel) ListLists(ctx context.Context, domainName string, q ListQuery) ([]ListRow, error) {
	return r.lists(ctx, `WHERE domain = $1 AND NOT deleted AND address > $2
		AND ($3 = '' OR address ILIKE $4 OR display_name ILIKE $4)
		ORDER BY address LIMIT $5`, domainName, q.After, q.Q, likePattern(q.Q), q.Limit)
}

func (r *ReadModel) lists(ctx context.Context, where string, args ...any) ([]ListRow, error) {
	rows, err := r.db.Query(ctx, `SELECT version, state, member_count, created_at, updated_at FROM rm_lists `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("read model: lists: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (ListRow, error) {
		var l ListRow
		var raw []byte
		if err := row.Scan(&l.Version, &raw, &l.MemberCount, &l.CreatedAt, &l.UpdatedAt); err != nil {
			return l, err
		}
		l.List, err = decode[domain.MailingList](raw, "list")
		return l, err
	})
}

// ListMembers returns a page of a static list's members ordered by address (q.Q filters by
// substring, q.After is the last address of the previous page).
func (r *ReadModel) ListMembers(ctx context.Context, list string, q ListQuery) ([]string, error) {
	rows, err := r.db.Query(ctx, `SELECT member FROM rm_list_members WHERE list = $1 AND member > $2
		AND ($3 = '' OR member ILIKE $4) ORDER BY member LIMIT $5`, list, q.After, q.Q, likePattern(q.Q), q.Limit)
	if err != nil {
		return nil, fmt.Errorf("read model: list members: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}
