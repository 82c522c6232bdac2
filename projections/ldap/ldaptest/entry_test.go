package ldaptest_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"mailplane/projections/ldap/ldaptest"
)

// CanonicalDN spells a name one way; the escaping it keeps is ldap.EscapeDN's, UTF-8
// included, so DNs built with RDN and those read back compare with ==.
func TestCanonicalDN(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"MAIL=a@b.test , OU=Accounts,DC=mailplane,DC=test": "mail=a@b.test,ou=Accounts,dc=mailplane,dc=test",
		`cn=a\2Cb,dc=test`:                 `cn=a\,b,dc=test`,
		`cn=a\,b,dc=test`:                  `cn=a\,b,dc=test`,
		`cn=\c3\a9t\c3\a9,dc=test`:         `cn=été,dc=test`,
		`cn=\ lead,dc=test`:                `cn=\ lead,dc=test`,
		`cn=trail\ ,dc=test`:               `cn=trail\ ,dc=test`,
		`cn=\#a,dc=test`:                   `cn=\#a,dc=test`,
		`cn=a#b,dc=test`:                   `cn=a#b,dc=test`,
		`sn=x+cn=y,dc=test`:                `cn=y+sn=x,dc=test`,
		`cn=a=b\+c\"d\\e\<f\>g\;h,dc=test`: `cn=a=b\+c\"d\\e\<f\>g\;h,dc=test`,
		"":                                 "",
	} {
		got, err := ldaptest.CanonicalDN(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
		again, err := ldaptest.CanonicalDN(got)
		require.NoError(t, err)
		require.Equal(t, got, again, "canonical twice")
	}
	require.Equal(t, `mail=\ a\,b\+c@x,ou=accounts`, ldaptest.RDN("MAIL", " a,b+c@x")+",ou=accounts")
	_, err := ldaptest.CanonicalDN("no equals sign")
	require.Error(t, err)
}

func TestEntryAndRelative(t *testing.T) {
	t.Parallel()
	e := ldaptest.NewEntry("CN=x,DC=test", map[string][]string{"ObjectClass": {"b", "a"}, "objectclass": {"c"}, "empty": nil})
	require.Equal(t, ldaptest.Entry{DN: "cn=x,dc=test", Attributes: []ldaptest.Attribute{
		{Name: "objectclass", Values: []string{"a", "b", "c"}},
	}}, e)
	require.Equal(t, []string{"a", "b", "c"}, e.Get("OBJECTCLASS"))
	require.Nil(t, e.Get("cn"))

	entries := []ldaptest.Entry{
		ldaptest.NewEntry("ou=t-1,dc=test", nil),
		ldaptest.NewEntry("ou=accounts,ou=t-1,dc=test", nil),
		ldaptest.NewEntry("mail=a@x,ou=accounts,ou=t-1,dc=test", nil),
		ldaptest.NewEntry("ou=t-2,dc=test", nil),
	}
	rel := ldaptest.Relative(entries, "OU=t-1, DC=test")
	require.Equal(t, []string{"ou=accounts", "mail=a@x,ou=accounts"}, []string{rel[0].DN, rel[1].DN})
	require.Len(t, rel, 2)
}
