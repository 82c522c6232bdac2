package domain

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func createdList(t *testing.T, cmd CreateList) MailingList {
	t.Helper()
	if cmd.At.IsZero() {
		cmd.At = t0
	}
	if !cmd.Domain.Exists() {
		cmd.Domain = activeDomain(t)
	}
	events, err := MailingList{}.Decide(cmd)
	require.NoError(t, err)
	require.Len(t, events, 1)
	return MailingList{}.Evolve(events[0])
}

func decideOne(t *testing.T, l MailingList, cmd ListCommand) (MailingList, Event) {
	t.Helper()
	events, err := l.Decide(cmd)
	require.NoError(t, err)
	require.Len(t, events, 1)
	return l.Evolve(events[0]), events[0]
}

func TestCreateList(t *testing.T) {
	t.Parallel()
	d := activeDomain(t)
	ann := mustAddr(t, "ann@example.com")
	events, err := MailingList{}.Decide(CreateList{
		Address: "Team@Example.COM", DisplayName: "Team", Description: "line one\nline two",
		Members:        []string{"zed@elsewhere.example", "Ann@example.com", "ann@EXAMPLE.com"},
		Owners:         []string{"ann@example.com"},
		AllowedSenders: []string{"boss@elsewhere.example"},
		HideInGAL:      true, At: t0, Domain: d, Accounts: map[Address]bool{ann: true},
	})
	require.NoError(t, err)
	team := mustAddr(t, "team@example.com")
	require.Equal(t, []Event{ListCreated{
		Address: team, DisplayName: "Team", Description: "line one\nline two",
		Members:            []Address{ann, mustAddr(t, "zed@elsewhere.example")},
		Owners:             []Address{ann},
		AllowedSenders:     []Address{mustAddr(t, "boss@elsewhere.example")},
		SubscriptionPolicy: DefaultSubscriptionPolicy, UnsubscriptionPolicy: DefaultUnsubscriptionPolicy,
		HideInGAL: true, CreatedAt: t0,
	}}, events, "normalised, sorted, duplicates dropped, policies defaulted")
	l := MailingList{}.Evolve(events[0])
	require.True(t, l.Exists())
	require.True(t, l.IsOwner(ann))
	require.True(t, l.HasMember(ann))
	require.Nil(t, l.Dynamic)

	_, err = l.Decide(CreateList{Address: "team@example.com", At: t0, Domain: d})
	require.ErrorIs(t, err, ErrAlreadyExists)

	_, err = MailingList{}.Decide(CreateList{Address: "x@example.com", At: t0})
	require.ErrorIs(t, err, ErrNotFound, "the domain comes first")

	for _, status := range []string{StatusClosed, StatusSuspended} {
		closed := d
		closed.Status = status
		_, err = MailingList{}.Decide(CreateList{Address: "x@example.com", At: t0, Domain: closed})
		require.ErrorIs(t, err, ErrDomainUnavailable, status)
	}
	for _, status := range []string{StatusLocked, StatusMaintenance} {
		other := d
		other.Status = status
		_, err = MailingList{}.Decide(CreateList{Address: "x@example.com", At: t0, Domain: other})
		require.NoError(t, err, status)
	}
}

func TestCreateListValidation(t *testing.T) {
	t.Parallel()
	d := activeDomain(t)
	_, err := MailingList{}.Decide(CreateList{
		Address: "x@other.example", DisplayName: "bad\x00", Description: strings.Repeat("x", 2000),
		Members: []string{"ok@a.example", "bad..x@a.example"}, Owners: []string{"nobody@example.com"},
		AllowedSenders: []string{"@"}, SubscriptionPolicy: "maybe", UnsubscriptionPolicy: "later", Domain: d,
	})
	requireFields(t, err, "address", "display_name", "description", "members[1]", "owners[0]",
		"allowed_senders[0]", "subscription_policy", "unsubscription_policy", "at")

	_, err = MailingList{}.Decide(CreateList{Address: "", At: t0, Domain: d})
	requireFields(t, err, "address")
	_, err = MailingList{}.Decide(CreateList{Address: "l@example.com", Members: []string{"L@example.com"}, At: t0, Domain: d})
	requireFields(t, err, "members[0]")

	// A dynamic list has no explicit members.
	_, err = MailingList{}.Decide(CreateList{Address: "l@example.com", Members: []string{"a@example.com"},
		Dynamic: &DynamicInput{MemberURL: "ldap:///??sub?(a=b)"}, At: t0, Domain: d})
	requireFields(t, err, "members")

	// Too many members at once, and many bad ones: a count, not ten thousand errors.
	many := make([]string, MaxListChange+1)
	for i := range many {
		many[i] = fmt.Sprintf("m%d@example.org", i)
	}
	_, err = MailingList{}.Decide(CreateList{Address: "l@example.com", Members: many, At: t0, Domain: d})
	requireFields(t, err, "members")
	bad := make([]string, 500)
	for i := range bad {
		bad[i] = "bad"
	}
	_, err = MailingList{}.Decide(CreateList{Address: "l@example.com", Members: bad, At: t0, Domain: d})
	var ve ValidationError
	require.ErrorAs(t, err, &ve)
	require.Len(t, ve.Errors, maxReportedPerField+1)
	require.Equal(t, "members", ve.Errors[maxReportedPerField].Field)
	require.Contains(t, ve.Errors[maxReportedPerField].Message, "480 more")
}

func TestListMembers(t *testing.T) {
	t.Parallel()
	l := createdList(t, CreateList{Address: "team@example.com", Members: []string{"a@example.com"}})
	many := make([]string, MaxListChange)
	for i := range many {
		many[i] = fmt.Sprintf("Member%05d@Elsewhere.Example", i)
	}
	l, ev := decideOne(t, l, AddListMembers{Members: append(many[1:], "a@example.com")})
	added := ev.(ListMembersAdded)
	require.Len(t, added.Members, MaxListChange-1, "one event for the whole request, without those already members")
	require.Len(t, l.Members, MaxListChange)
	require.True(t, l.HasMember(mustAddr(t, "member09999@elsewhere.example")))

	events, err := l.Decide(AddListMembers{Members: []string{"a@example.com"}})
	require.NoError(t, err)
	require.Empty(t, events, "nothing new: no event")

	_, err = l.Decide(AddListMembers{Members: append(many, "one-too-many@example.com")})
	requireFields(t, err, "members")
	_, err = l.Decide(RemoveListMembers{Members: append(many, "one-too-many@example.com")})
	requireFields(t, err, "members")
	_, err = l.Decide(AddListMembers{})
	requireFields(t, err, "members")
	_, err = l.Decide(AddListMembers{Members: []string{"ok@example.com", "TEAM@example.com"}})
	requireFields(t, err, "members[1]")

	l, ev = decideOne(t, l, RemoveListMembers{Members: []string{"a@example.com", "not-a-member@example.com"}})
	require.Equal(t, []Address{mustAddr(t, "a@example.com")}, ev.(ListMembersRemoved).Members)
	require.False(t, l.HasMember(mustAddr(t, "a@example.com")))
	events, err = l.Decide(RemoveListMembers{Members: []string{"a@example.com"}})
	require.NoError(t, err)
	require.Empty(t, events)
	_, err = l.Decide(RemoveListMembers{Members: []string{"a@example.com"}, Require: true})
	require.ErrorIs(t, err, ErrNotFound)
	_, err = l.Decide(RemoveListMembers{Members: []string{"bad"}})
	requireFields(t, err, "members[0]")

	_, err = MailingList{}.Decide(AddListMembers{Members: []string{"a@example.com"}})
	require.ErrorIs(t, err, ErrNotFound)
}

func TestListOwnersAndAliases(t *testing.T) {
	t.Parallel()
	ann, bob := mustAddr(t, "ann@example.com"), mustAddr(t, "bob@example.com")
	l := createdList(t, CreateList{Address: "team@example.com"})
	accounts := map[Address]bool{ann: true, bob: true}
	l, _ = decideOne(t, l, AddListOwners{Owners: []string{"ann@example.com", "BOB@example.com"}, Accounts: accounts})
	require.Equal(t, []Address{ann, bob}, l.Owners)
	_, err := l.Decide(AddListOwners{Owners: []string{"carol@example.com"}, Accounts: accounts})
	requireFields(t, err, "owners[0]")
	l, _ = decideOne(t, l, RemoveListOwners{Owners: []string{"ann@example.com"}})
	require.Equal(t, []Address{bob}, l.Owners)
	_, err = l.Decide(RemoveListOwners{Owners: []string{"ann@example.com"}, Require: true})
	require.ErrorIs(t, err, ErrNotFound)

	d := activeDomain(t)
	other := createdDomain(t, CreateDomain{Name: "other.example"})
	closed := createdDomain(t, CreateDomain{Name: "closed.example", Status: StatusClosed})
	domains := map[string]Domain{d.Name: d, other.Name: other, closed.Name: closed}
	l, ev := decideOne(t, l, AddListAliases{Aliases: []string{"all@example.com", "team@other.example"}, Domains: domains})
	require.Len(t, ev.(ListAliasesAdded).Aliases, 2)
	_, err = l.Decide(AddListAliases{Aliases: []string{"team@example.com", "x@missing.example"}, Domains: domains})
	requireFields(t, err, "aliases[0]", "aliases[1]")
	_, err = l.Decide(AddListAliases{Aliases: []string{"x@closed.example"}, Domains: domains})
	require.ErrorIs(t, err, ErrDomainUnavailable)
	_, err = l.Decide(AddListMembers{Members: []string{"all@example.com"}})
	requireFields(t, err, "members[0]")
	l, _ = decideOne(t, l, AddListMembers{Members: []string{"m@example.com"}})
	_, err = l.Decide(AddListAliases{Aliases: []string{"m@example.com"}, Domains: domains})
	requireFields(t, err, "aliases[0]")
	l, _ = decideOne(t, l, RemoveListAliases{Aliases: []string{"all@example.com"}})
	require.Equal(t, []Address{mustAddr(t, "team@other.example")}, l.Aliases)
}

func TestListDynamicMode(t *testing.T) {
	t.Parallel()
	l := createdList(t, CreateList{Address: "team@example.com", Members: []string{"a@example.com"}})
	in := DynamicInput{MemberURL: "ldap:///?mail?SUB?(department=sales%20team)"}
	_, err := l.Decide(MakeListDynamic{Dynamic: in})
	require.ErrorIs(t, err, ErrConflict, "members are not dropped by surprise")
	l, ev := decideOne(t, l, MakeListDynamic{Dynamic: in, DropMembers: true})
	require.Equal(t, ListMadeDynamic{Address: l.Address, DroppedMembers: 1, Dynamic: ListDynamic{
		MemberURL: "ldap:///??sub?(department=sales%20team)", Scope: "sub", Filter: "(department=sales team)"}}, ev)
	require.Empty(t, l.Members)
	events, err := l.Decide(MakeListDynamic{Dynamic: in})
	require.NoError(t, err)
	require.Empty(t, events, "the same query again changes nothing")

	_, err = l.Decide(AddListMembers{Members: []string{"a@example.com"}})
	requireFields(t, err, "members")
	_, err = l.Decide(MakeListDynamic{Dynamic: DynamicInput{MemberURL: "ldap:///??sub?(a=b)", FilterProblem: "bad"}})
	requireFields(t, err, "dynamic.member_url")

	// Subscription settings stay editable; owners are allowed.
	l, _ = decideOne(t, l, UpdateList{SubscriptionPolicy: ptr(PolicyReject)})
	require.Equal(t, PolicyReject, l.SubscriptionPolicy)

	l, _ = decideOne(t, l, MakeListStatic{})
	require.Nil(t, l.Dynamic)
	_, err = l.Decide(MakeListStatic{})
	require.ErrorIs(t, err, ErrNotFound)
}

func TestUpdateList(t *testing.T) {
	t.Parallel()
	l := createdList(t, CreateList{Address: "team@example.com", AllowedSenders: []string{"a@example.com"}})
	events, err := l.Decide(UpdateList{DisplayName: ptr(""), AllowedSenders: []string{"A@example.com"},
		SubscriptionPolicy: ptr(DefaultSubscriptionPolicy), HideInGAL: ptr(false)})
	require.NoError(t, err)
	require.Empty(t, events, "no change")
	l, ev := decideOne(t, l, UpdateList{AllowedSenders: []string{}, UnsubscriptionPolicy: ptr(PolicyApproval), HideInGAL: ptr(true)})
	require.Equal(t, ListUpdated{Address: l.Address, AllowedSenders: []Address{}, UnsubscriptionPolicy: ptr(PolicyApproval),
		HideInGAL: ptr(true)}, ev)
	require.Empty(t, l.AllowedSenders)
	require.True(t, l.HideInGAL)
	_, err = l.Decide(UpdateList{DisplayName: ptr("\x01"), SubscriptionPolicy: ptr("no"), AllowedSenders: []string{"x"}})
	requireFields(t, err, "display_name", "subscription_policy", "allowed_senders[0]")

	l, _ = decideOne(t, l, DeleteList{})
	require.False(t, l.Exists())
	_, err = l.Decide(UpdateList{DisplayName: ptr("x")})
	require.ErrorIs(t, err, ErrNotFound)
}

func TestListReplayFromJSONGivesTheSameState(t *testing.T) {
	t.Parallel()
	d := activeDomain(t)
	ann := mustAddr(t, "ann@example.com")
	cmds := []ListCommand{
		CreateList{Address: "team@example.com", Members: []string{"z@x.example", "a@x.example"}, At: t0, Domain: d},
		AddListMembers{Members: []string{"m@x.example", "b@x.example"}},
		RemoveListMembers{Members: []string{"z@x.example"}},
		AddListOwners{Owners: []string{"ann@example.com"}, Accounts: map[Address]bool{ann: true}},
		AddListAliases{Aliases: []string{"all@example.com"}, Domains: map[string]Domain{d.Name: d}},
		UpdateList{AllowedSenders: []string{"ann@example.com"}, HideInGAL: ptr(true)},
		MakeListDynamic{Dynamic: DynamicInput{MemberURL: "ldap:///??one?(a=b)"}, DropMembers: true},
		MakeListStatic{},
		AddListMembers{Members: []string{"q@x.example"}},
	}
	var live, replayed MailingList
	for _, cmd := range cmds {
		events, err := live.Decide(cmd)
		require.NoError(t, err, "%T", cmd)
		for _, e := range events {
			live = live.Evolve(e)
			data, err := json.Marshal(e)
			require.NoError(t, err)
			back := reflect.New(reflect.TypeOf(e))
			require.NoError(t, json.Unmarshal(data, back.Interface()))
			replayed = replayed.Evolve(back.Elem().Interface().(Event))
		}
	}
	require.Equal(t, live, replayed)
	require.Equal(t, []Address{mustAddr(t, "q@x.example")}, live.Members)
}

func TestCompareAddressesMatchesStrings(t *testing.T) {
	t.Parallel()
	as := []Address{{"a", "x.example"}, {"a.b", "x.example"}, {"ab", "a.example"}, {"a", "b.example"},
		{"a-", "x.example"}, {"a~", "x.example"}, {"a", "x.exampl"}, {"", ""}}
	for _, a := range as {
		for _, b := range as {
			require.Equal(t, strings.Compare(a.String(), b.String()), compareAddresses(a, b), "%s vs %s", a, b)
		}
	}
}

func TestAddressParserMatchesParseAddress(t *testing.T) {
	t.Parallel()
	var p addressParser
	for _, s := range []string{"Ann@Example.COM", "a@b", "x@münchen.example", "a..b@x.example", "@x.example", "a@",
		"a@-x.example", "\"q\"@x.example", strings.Repeat("a", 65) + "@x.example", "a@" + strings.Repeat("b", 250) + ".example"} {
		want, err := ParseAddress(s)
		got, msg := p.parse(s)
		if err != nil {
			require.Equal(t, firstMessage(err), msg, s)
			continue
		}
		require.Empty(t, msg, s)
		require.Equal(t, want, got, s)
	}
}
