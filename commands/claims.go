package commands

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

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
	doms := map[string]bool{}
	for _, a := range addrs {
		doms[a.Domain] = true
	}
	// In name order, so that transactions claiming in the same domains take their guards alike.
	for _, d := range slices.Sorted(maps.Keys(doms)) {
		queueRemovalGuard(b, d)
	}
	b.Queue(`INSERT INTO address_claims (address, kind, owner, domain)
		SELECT a, $2, $3, split_part(a, '@', 2) FROM unnest($1::text[]) AS a
		WHERE NOT EXISTS (SELECT 1 FROM domain_removals r WHERE r.domain = split_part(a, '@', 2) AND r.finished_at IS NULL)
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
			return removingAmong(ctx, tx, list)
		}
		if err != nil {
			return err
		}
		return &AddressTakenError{Address: addr, Owner: holder}
	}
}

// queueRemovalGuard queues, ahead of a claim in the domain, a shared advisory lock that the
// removal's last transaction takes exclusively before it looks for what is left: a claim that
// got in before the removal began is then committed (and found) by the time the domain goes.
// An advisory lock takes no transaction id, so it may come anywhere in the transaction.
func queueRemovalGuard(b *pgx.Batch, domainName string) {
	b.Queue(`SELECT pg_advisory_xact_lock_shared($1)`, removalLockKey(domainName))
}

func removalLockKey(name string) int64 { return domainLockKey("removal " + name) }

// removingAmong explains claims refused because their domain is being removed (the claims'
// guard on domain_removals); nil if none of the addresses is in such a domain.
func removingAmong(ctx context.Context, tx pgx.Tx, list []string) error {
	var dom string
	err := tx.QueryRow(ctx, `SELECT r.domain FROM domain_removals r
		WHERE r.domain IN (SELECT split_part(a, '@', 2) FROM unnest($1::text[]) AS a) AND r.finished_at IS NULL
		ORDER BY r.domain LIMIT 1`, list).Scan(&dom)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	return fmt.Errorf("domain %s is being removed: %w", dom, domain.ErrDomainUnavailable)
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
