package domain

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// randomListHistory is a list's history as a real one goes: members added and removed a few at
// a time, renames, owners, and now and then a change that drops every member (made dynamic,
// made static, deleted and created again).
func randomListHistory(rnd *rand.Rand, n int) []Event {
	addr := Address{Local: "team", Domain: "example.com"}
	member := func() Address { return Address{Local: fmt.Sprintf("m%d", rnd.IntN(60)), Domain: "members.example"} }
	members := func() []Address {
		out := make([]Address, 1+rnd.IntN(3))
		for i := range out {
			out[i] = member()
		}
		return out
	}
	evs := []Event{ListCreated{Address: addr, DisplayName: "Team", Members: members()}}
	for len(evs) < n {
		switch x := rnd.IntN(20); {
		case x < 11:
			evs = append(evs, ListMembersAdded{Address: addr, Members: members()})
		case x < 16:
			evs = append(evs, ListMembersRemoved{Address: addr, Members: members()})
		case x == 16:
			name := fmt.Sprint("Team ", len(evs))
			evs = append(evs, ListUpdated{Address: addr, DisplayName: &name})
		case x == 17:
			evs = append(evs, ListOwnersAdded{Address: addr, Owners: members()})
		case x == 18:
			evs = append(evs, ListMadeDynamic{Address: addr, Dynamic: ListDynamic{MemberURL: "ldap:///ou=people??sub?(objectClass=person)"}},
				ListMadeStatic{Address: addr})
		default:
			evs = append(evs, ListDeleted{Address: addr}, ListCreated{Address: addr, Members: members()})
		}
	}
	return evs
}

// EvolveAll must leave exactly the state Evolve leaves, event by event.
func TestListEvolveAllEqualsEvolve(t *testing.T) {
	for seed := uint64(0); seed < 200; seed++ {
		rnd := rand.New(rand.NewPCG(seed, 7))
		evs := randomListHistory(rnd, 1+rnd.IntN(80))
		var want MailingList
		for _, ev := range evs {
			want = want.Evolve(ev)
		}
		cut := rnd.IntN(len(evs) + 1) // EvolveAll from a state part of the way
		var from MailingList
		for _, ev := range evs[:cut] {
			from = from.Evolve(ev)
		}
		require.Equal(t, want, from.EvolveAll(evs[cut:]), "seed %d, %d events, from %d", seed, len(evs), cut)
	}
}

// listGrownOneByOne is a list whose n members were added two at a time.
func listGrownOneByOne(n int) []Event {
	addr := Address{Local: "team", Domain: "example.com"}
	evs := []Event{ListCreated{Address: addr}}
	for i := 0; i < n; i += 2 {
		evs = append(evs, ListMembersAdded{Address: addr, Members: []Address{
			{Local: fmt.Sprintf("m%d-1", i), Domain: "members.example"}, {Local: fmt.Sprintf("m%d-2", i), Domain: "members.example"}}})
	}
	return evs
}

// BenchmarkListFold: folding a list of 2,000 members added two at a time, event by event
// (Evolve, the baseline) and at once (EvolveAll, what commands.Fold uses).
func BenchmarkListFold(b *testing.B) {
	evs := listGrownOneByOne(2000)
	b.Run("evolve", func(b *testing.B) {
		for b.Loop() {
			var l MailingList
			for _, ev := range evs {
				l = l.Evolve(ev)
			}
		}
	})
	b.Run("evolve-all", func(b *testing.B) {
		for b.Loop() {
			var l MailingList
			_ = l.EvolveAll(evs)
		}
	})
}
