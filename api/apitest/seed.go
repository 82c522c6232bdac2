package apitest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"mailplane/commands"
	"mailplane/domain"
	"mailplane/eventstore"
)

// Seed is a large domain to fill quickly: the events the commands would append (decided by the
// domain package, appended many streams at a time) with the claims they would take, in
// transactions of a thousand streams. Creating twenty thousand accounts one request each would
// take minutes; what removal, projection and benchmark tests need is the state, not the path.
type Seed struct {
	Accounts int
	Lists    int
	// MembersPerList are taken from the domain's accounts, plus one address outside.
	MembersPerList int
	// Aliases are spread: half in the domain of its accounts, a quarter elsewhere (in Other)
	// for its accounts, a quarter in the domain for accounts of Other ("aliases pointing in").
	Aliases int
	// Other is the second domain the cross-domain aliases use (must exist when Aliases > 0).
	Other string
	// Passwords gives the first n accounts a sealed password hash (sealing costs a query each).
	Passwords int
}

// SeedResult names what was made.
type SeedResult struct {
	Accounts, Lists, Aliases []string
	// OtherAccounts are the accounts made in Other to own the aliases that point in.
	OtherAccounts []string
}

// SeedDomain fills an existing domain.
func (e *Env) SeedDomain(t testing.TB, name string, s Seed) SeedResult {
	t.Helper()
	ctx := context.Background()
	d, _, err := commands.Load[domain.Domain](ctx, e.Commands, domain.DomainStreamID(name))
	require.NoError(t, err)
	require.True(t, d.Exists(), "seed: domain %s", name)
	now := time.Now().UTC().Truncate(time.Microsecond)
	var res SeedResult

	type streamEvents struct {
		stream eventstore.Stream
		events []domain.Event
		claims [][3]string // address, kind, domain
	}
	var all []*streamEvents
	accounts := map[string]*streamEvents{}
	newAccount := func(dm domain.Domain, local string, password bool) string {
		addr, err := domain.ParseAddress(local + "@" + dm.Name)
		require.NoError(t, err)
		cmd := domain.CreateAccount{Address: addr, DisplayName: "Seeded " + local, At: now, Domain: dm}
		if password {
			cmd.PasswordSecret, err = e.Keyring.Seal(ctx, dm.Name, []byte("$argon2id$v=19$m=1024,t=1,p=1$c2VlZA$c2VlZGVkaGFzaA"))
			require.NoError(t, err)
		}
		evs, err := domain.Account{}.Decide(cmd)
		require.NoError(t, err)
		se := &streamEvents{stream: eventstore.Stream{ID: domain.AccountStreamID(addr), Type: domain.StreamTypeAccount, Domain: addr.Domain},
			events: evs, claims: [][3]string{{addr.String(), "account", addr.Domain}}}
		all = append(all, se)
		accounts[addr.String()] = se
		return addr.String()
	}
	for i := 0; i < s.Accounts; i++ {
		res.Accounts = append(res.Accounts, newAccount(d, fmt.Sprintf("user%06d", i), i < s.Passwords))
	}
	var other domain.Domain
	if s.Aliases > 0 {
		other, _, err = commands.Load[domain.Domain](ctx, e.Commands, domain.DomainStreamID(s.Other))
		require.NoError(t, err)
		require.True(t, other.Exists(), "seed: other domain %s", s.Other)
	}
	inward := s.Aliases / 4
	for i := 0; i < inward; i++ {
		res.OtherAccounts = append(res.OtherAccounts, newAccount(other, fmt.Sprintf("outside%06d", i), false))
	}
	addAlias := func(owner, alias string) {
		se := accounts[owner]
		al, err := domain.ParseAddress(alias)
		require.NoError(t, err)
		owned, err := domain.ParseAddress(owner)
		require.NoError(t, err)
		se.events = append(se.events, domain.AliasAdded{Address: owned, Alias: al})
		se.claims = append(se.claims, [3]string{al.String(), "alias", al.Domain})
		res.Aliases = append(res.Aliases, al.String())
	}
	for i := 0; i < s.Aliases-inward; i++ {
		require.NotEmpty(t, res.Accounts, "seed: aliases need accounts")
		owner := res.Accounts[i%len(res.Accounts)]
		if i%3 == 2 {
			addAlias(owner, fmt.Sprintf("away%06d@%s", i, other.Name))
		} else {
			addAlias(owner, fmt.Sprintf("alias%06d@%s", i, d.Name))
		}
	}
	for i := 0; i < inward; i++ {
		addAlias(res.OtherAccounts[i], fmt.Sprintf("in%06d@%s", i, d.Name))
	}
	for i := 0; i < s.Lists; i++ {
		addr := fmt.Sprintf("list%05d@%s", i, d.Name)
		var members []string
		for j := 0; j < s.MembersPerList && len(res.Accounts) > 0; j++ {
			members = append(members, res.Accounts[(i*s.MembersPerList+j)%len(res.Accounts)])
		}
		members = append(members, fmt.Sprintf("external%05d@elsewhere.invalid", i))
		evs, err := domain.MailingList{}.Decide(domain.CreateList{Address: addr, Members: members, At: now, Domain: d})
		require.NoError(t, err)
		a, _ := domain.ParseAddress(addr)
		all = append(all, &streamEvents{stream: eventstore.Stream{ID: domain.ListStreamID(a), Type: domain.StreamTypeList, Domain: d.Name},
			events: evs, claims: [][3]string{{addr, "list", d.Name}}})
		res.Lists = append(res.Lists, addr)
	}

	meta := eventstore.Metadata{Actor: "test:seed"}
	for start := 0; start < len(all); start += 1000 {
		chunk := all[start:min(start+1000, len(all))]
		err := pgx.BeginFunc(ctx, e.Pool, func(tx pgx.Tx) error {
			appends := make([]eventstore.StreamAppend, len(chunk))
			var addrs, kinds, owners, doms []string
			for i, se := range chunk {
				evs := make([]eventstore.Event, len(se.events))
				for j, ev := range se.events {
					evs[j] = ev
				}
				appends[i] = eventstore.StreamAppend{Stream: se.stream, Expected: eventstore.NoStream, Events: evs}
				for _, c := range se.claims {
					addrs, kinds, owners, doms = append(addrs, c[0]), append(kinds, c[1]), append(owners, se.stream.ID), append(doms, c[2])
				}
			}
			if _, err := e.Store.AppendManyTx(ctx, tx, meta, appends); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO address_claims (address, kind, owner, domain)
				SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])`, addrs, kinds, owners, doms)
			return err
		})
		require.NoError(t, err)
	}
	return res
}
