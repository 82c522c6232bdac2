package domain

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseMemberURL(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in, scope, filter, stored string
	}{
		{"ldap:///??sub?(department=sales)", "sub", "(department=sales)", "ldap:///??sub?(department=sales)"},
		{"LDAP:///?mail?one?(&(objectClass=*)(cn=a%20b))", "one", "(&(objectClass=*)(cn=a b))", "ldap:///??one?(&(objectClass=*)(cn=a%20b))"},
		{"ldap:///?MAIL?Sub?(|(l=Rome)(l=Milan))", "sub", "(|(l=Rome)(l=Milan))", "ldap:///??sub?(|(l=Rome)(l=Milan))"},
		{"ldap:///??sub?(q=%3F)", "sub", "(q=?)", "ldap:///??sub?(q=%3F)"},
	} {
		m, err := ParseMemberURL(c.in)
		require.NoError(t, err, c.in)
		require.Equal(t, MemberURL{Scope: c.scope, Filter: c.filter}, m, c.in)
		require.Equal(t, c.stored, m.String(), c.in)
		again, err := ParseMemberURL(m.String())
		require.NoError(t, err)
		require.Equal(t, m, again, "the stored form parses to the same query")
	}

	for _, c := range []struct{ in, want string }{
		{"", "required"},
		{"department=sales", "not an LDAP URL"},
		{"http:///??sub?(a=b)", "must start with ldap:///"},
		{"ldaps:///??sub?(a=b)", "must start with ldap:///"},
		{"ldap://ldap.example.com/??sub?(a=b)", "must not name a host"},
		{"ldap://:389/??sub?(a=b)", "must not name a host"},
		{"ldap:///ou=people,dc=example,dc=com??sub?(a=b)", "must not name a base DN"},
		{"ldap:///?cn,mail?sub?(a=b)", "attributes must be empty or mail"},
		{"ldap:///??base?(a=b)", "scope must be sub or one"},
		{"ldap:///???(a=b)", "scope is required"},
		{"ldap:///??sub?", "filter is required"},
		{"ldap:///??sub", "filter is required"},
		{"ldap:///??sub?(a=b", "unbalanced parentheses"},
		{"ldap:///??sub?a=b", "must be in parentheses"},
		{"ldap:///??sub?(=b)", "missing attribute name"},
		{"ldap:///??sub?(a=b)?x-ext", "extensions are not supported"},
		{"ldap:///??sub?(a=%zz)", "bad percent-encoding"},
		{"ldap:///??sub?(a=\xff)", "UTF-8"},
		{"ldap:///??sub?" + strings.Repeat("(", 3000), "at most"},
		{"ldap:///??sub?" + strings.Repeat("(!", 40) + "(a=b)" + strings.Repeat(")", 40), "nested too deeply"},
	} {
		_, err := ParseMemberURL(c.in)
		var ve ValidationError
		require.ErrorAs(t, err, &ve, c.in)
		require.Equal(t, "dynamic.member_url", ve.Errors[0].Field)
		require.Contains(t, ve.Errors[0].Message, c.want, c.in)
	}
}
