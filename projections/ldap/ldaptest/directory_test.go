package ldaptest_test

import (
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/require"

	"mailplane/projections/ldap/ldaptest"
)

// New gives a test a base with the projection's containers, and removes it all at the end.
func TestNewGivesATestABaseOfItsOwn(t *testing.T) {
	t.Parallel()
	var base string
	t.Run("test", func(t *testing.T) {
		d := ldaptest.New(t)
		base = d.Base
		require.True(t, strings.HasSuffix(d.Base, ","+d.Env.Suffix), d.Base)
		require.Equal(t, "ou=accounts,"+d.Base, d.Container(ldaptest.Accounts))
		fixture(t, d)
		var dns []string
		for _, e := range d.Dump(t, d.Admin(t), d.Base) {
			dns = append(dns, e.DN)
		}
		// Tree order: the base, ou=accounts and the accounts, ou=domains and the domains, ...
		require.Equal(t, []string{d.Base, d.Container("accounts"), d.AccountDN("alice@example.test")}, dns[:3])
		for _, ou := range []string{"domains", "lists", "projections", "resources"} {
			require.Contains(t, dns, d.Container(ou))
		}
		require.Equal(t, d.Container("resources"), dns[len(dns)-2])
		require.Equal(t, d.ResourceDN("room@example.test"), dns[len(dns)-1])
		require.Contains(t, dns, d.AccountDN("alice@example.test"))
		require.Contains(t, dns, d.DomainDN("example.test"))
		require.Contains(t, dns, d.ListDN("team@example.test"))
		require.Contains(t, dns, d.ResourceDN("room@example.test"))
	})
	env := ldaptest.LoadEnv(t)
	conn, err := ldaptest.Dial(env.URL, env.Admin)
	require.NoError(t, err)
	defer conn.Close()
	left, err := ldaptest.Dump(conn, base)
	require.NoError(t, err)
	require.Empty(t, left)
}

// Dump gives entries in one canonical form, whatever the spelling they were written in.
func TestDumpIsCanonical(t *testing.T) {
	t.Parallel()
	d := ldaptest.New(t)
	dn := "MAIL=Ann@Example.Test , OU=accounts," + d.Base // as a careless writer might spell it
	d.Add(t, dn, map[string][]string{
		"objectclass":      {"mailplaneAccount", "inetOrgPerson", "inetLocalMailRecipient"},
		"MAIL":             {"Ann@Example.Test"},
		"cn":               {"Ann"},
		"SN":               {"Ann"},
		"mailLocalAddress": {"z@example.test", "a@example.test", "m@example.test"},
	})
	got := d.Dump(t, d.Admin(t), d.Container(ldaptest.Accounts))
	require.Len(t, got, 2)
	require.Equal(t, ldaptest.NewEntry(d.Container(ldaptest.Accounts), map[string][]string{
		"objectClass": {"organizationalUnit"}, "ou": {"accounts"},
	}), got[0])
	want := ldaptest.NewEntry(d.AccountDN("Ann@Example.Test"), map[string][]string{
		"objectClass":      {"inetOrgPerson", "inetLocalMailRecipient", "mailplaneAccount"},
		"mail":             {"Ann@Example.Test"},
		"cn":               {"Ann"},
		"sn":               {"Ann"},
		"mailLocalAddress": {"a@example.test", "m@example.test", "z@example.test"},
	})
	require.Equal(t, want, got[1], "got\n%s\nwant\n%s", got[1], want)
	require.Equal(t, "mail=Ann@Example.Test,ou=accounts,"+d.Base, got[1].DN)
	require.Equal(t, []string{"a@example.test", "m@example.test", "z@example.test"}, got[1].Get("MailLocalAddress"))

	// Two bases compare once the bases are taken off.
	other := ldaptest.New(t)
	other.Add(t, other.AccountDN("Ann@Example.Test"), map[string][]string{
		"objectClass":      {"inetOrgPerson", "inetLocalMailRecipient", "mailplaneAccount"},
		"mail":             {"Ann@Example.Test"},
		"cn":               {"Ann"},
		"sn":               {"Ann"},
		"mailLocalAddress": {"m@example.test", "z@example.test", "a@example.test"},
	})
	require.Equal(t,
		ldaptest.Relative(d.Dump(t, d.Admin(t), d.Base), d.Base),
		ldaptest.Relative(other.Dump(t, other.Admin(t), other.Base), other.Base))
	require.Equal(t, "mail=Ann@Example.Test,ou=accounts", ldaptest.Relative(got, d.Base)[1].DN)
	require.Equal(t, "ou=accounts", ldaptest.Relative(got, d.Base)[0].DN)
}

// Values with DN and filter metacharacters, leading and trailing spaces and non-ASCII
// letters make the DNs the helpers build, are found by the filters they build (and match
// nothing else), and come back from Dump as they went in: as cn (a directory string) and,
// for the ASCII ones, as mail (IA5: an account's address must be ASCII).
func TestSpecialCharactersRoundTrip(t *testing.T) {
	t.Parallel()
	d := ldaptest.New(t)
	conn := d.Admin(t)
	ascii := []string{
		`a+b@example.test`, `a,b@example.test`, `a=b@example.test`, `"a"@example.test`, `a\b@example.test`,
		`a*@example.test`, `(a)@example.test`, `#a@example.test`, `a#b@example.test`, ` a@example.test`,
		`a @example.test `, `  a;b<c>@example.test`, `*`, `\2a`, `a\00b`,
	}
	nonASCII := []string{`jürgen@bücher.example`, `用户@例子.测试`, ` é#+, `}
	type entry struct{ value, attr, dn string }
	var entries []entry
	for _, v := range append(ascii, nonASCII...) {
		entries = append(entries, entry{v, "cn", ldaptest.RDN("cn", v) + "," + d.Container(ldaptest.Resources)})
	}
	for _, v := range ascii {
		entries = append(entries, entry{v, "mail", d.AccountDN(v)})
	}
	for _, e := range entries {
		attrs := map[string][]string{"objectClass": {"inetOrgPerson"}, "cn": {e.value}, "sn": {e.value}}
		if e.attr == "mail" {
			attrs["cn"] = []string{"account"}
			attrs["mail"] = []string{e.value}
		}
		d.Add(t, e.dn, attrs)
	}

	dumped := append(d.Dump(t, conn, d.Container(ldaptest.Accounts))[1:], d.Dump(t, conn, d.Container(ldaptest.Resources))[1:]...)
	require.Len(t, dumped, len(entries))
	byDN := map[string]ldaptest.Entry{}
	for _, e := range dumped {
		byDN[e.DN] = e
	}
	for _, e := range entries {
		got, ok := byDN[e.dn]
		require.True(t, ok, "%q: %s not in the dump", e.value, e.dn)
		require.Equal(t, []string{e.value}, got.Get(e.attr), e.dn)

		parsed, err := ldap.ParseDN(e.dn)
		require.NoError(t, err)
		require.Equal(t, e.value, parsed.RDNs[0].Attributes[0].Value, e.dn)

		found := search(t, conn, d.Base, ldap.ScopeWholeSubtree, ldaptest.Eq(e.attr, e.value), e.attr)
		require.Len(t, found, 1, "%s=%q", e.attr, e.value)
		require.Equal(t, e.value, found[0].GetAttributeValue(e.attr))
		c, err := ldaptest.CanonicalDN(found[0].DN)
		require.NoError(t, err)
		require.Equal(t, e.dn, c)

		// The DN as the server spells it names the entry.
		require.Len(t, search(t, conn, found[0].DN, ldap.ScopeBaseObject, "(objectClass=*)", "1.1"), 1, "%q", e.value)
	}
}

// Wipe empties the projection's containers of the shared base and leaves the rest:
// the containers themselves, ou=services, other tests' bases.
func TestWipeLeavesServicesAndOtherBases(t *testing.T) {
	other := ldaptest.New(t)
	fixture(t, other)
	d := ldaptest.Shared(t)
	require.Equal(t, d.Env.Suffix, d.Base)
	admin := d.Admin(t)
	services := d.Dump(t, admin, "ou=services,"+d.Env.Suffix)
	require.Len(t, services, 4) // the ou, postfix, dovecot, replicator
	otherBefore := d.Dump(t, admin, other.Base)

	fixture(t, d)
	addCheckpoint(t, d)
	d.Wipe(t)

	for _, ou := range []string{ldaptest.Domains, ldaptest.Accounts, ldaptest.Lists, ldaptest.Resources, ldaptest.Projections} {
		got := d.Dump(t, admin, d.Container(ou))
		require.Len(t, got, 1, ou)
		require.Equal(t, d.Container(ou), got[0].DN)
	}
	require.Equal(t, services, d.Dump(t, admin, "ou=services,"+d.Env.Suffix))
	require.Equal(t, otherBefore, d.Dump(t, admin, other.Base))

	// Wipe makes a missing container.
	require.NoError(t, admin.Del(ldap.NewDelRequest(d.Container(ldaptest.Resources), nil)))
	d.Wipe(t)
	require.Len(t, d.Dump(t, admin, d.Container(ldaptest.Resources)), 1)
}
