package commands

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"mailplane/domain"
)

// queueClaims queues the claims of several addresses for owner in one statement (see
// queueClaim); the returned function reports, once the batch ran, the first address that was
// someone else's already. Addresses owner holds already count as claimed.
func (s *Service) queueClaims(b *pgx.Batch, addrs []domain.Address, kind, owner string) func(context.Context, pgx.Tx) error {
	if len(addrs) == 0 {
		return func(context.Context, pgx.Tx) error { return nil }
	}
	list := make([]string, len(addrs))
	for i, a := range addrs {
		list[i] = a.String()
	}
	claimed := int64(0)
	b.Queue(`INSERT INTO address_claims (address, kind, owner, domain)
		SELECT a, $2, $3, split_part(a, '@', 2) FROM unnest($1::text[]) AS a
		ON CONFLICT (address) DO NOTHING`, list, kind, owner).
		Exec(func(tag pgconn.CommandTag) error { claimed = tag.RowsAffected(); return nil })
	return func(ctx context.Context, tx pgx.Tx) error {
		if claimed == int64(len(list)) {
			return nil
		}
		var addr, holder string
		err := tx.QueryRow(ctx, `SELECT address, owner FROM address_claims WHERE address = ANY($1) AND owner <> $2
			ORDER BY address LIMIT 1`, list, owner).Scan(&addr, &holder)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		return &AddressTakenError{Address: addr, Owner: holder}
	}
}

// queueRelease queues freeing the given addresses of owner (all of them when addrs is nil).
func queueRelease(b *pgx.Batch, owner string, addrs []domain.Address) {
	if addrs == nil {
		b.Queue(`DELETE FROM address_claims WHERE owner = $1`, owner)
		return
	}
	if len(addrs) == 0 {
		return
	}
	b.Queue(`DELETE FROM address_claims WHERE owner = $1 AND address = ANY($2)`, owner, addressStrings(addrs))
}

func addressStrings(as []domain.Address) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.String()
	}
	return out
}

// accountsAmong reports which of the addresses are accounts, from the claims the account
// commands write in their own transactions: current whatever the read models' lag, and one
// query however many accounts.
func accountsAmong(ctx context.Context, tx pgx.Tx, addrs []domain.Address) (map[domain.Address]bool, error) {
	out := map[domain.Address]bool{}
	if len(addrs) == 0 {
		return out, nil
	}
	rows, err := tx.Query(ctx, `SELECT address FROM address_claims WHERE kind = 'account' AND address = ANY($1)`,
		addressStrings(addrs))
	if err != nil {
		return nil, err
	}
	found, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	for _, f := range found {
		if a, err := domain.ParseAddress(f); err == nil {
			out[a] = true
		}
	}
	return out, nil
}
