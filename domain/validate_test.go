package domain

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestNormalizeHostPort(t *testing.T) {
	t.Parallel()
	ok := map[string]string{
		"":                       "",
		"relay.example.com":      "relay.example.com",
		"Relay.Example.COM:2525": "relay.example.com:2525",
		"relay":                  "relay",
		"relay.example.com.":     "relay.example.com",
		"192.0.2.1":              "192.0.2.1",
		"192.0.2.1:25":           "192.0.2.1:25",
		"[2001:DB8::1]":          "[2001:db8::1]",
		"[2001:db8::1]:587":      "[2001:db8::1]:587",
	}
	for in, want := range ok {
		got, msg := normalizeHostPort(in)
		require.Empty(t, msg, in)
		require.Equal(t, want, got, in)
	}
	for _, in := range []string{
		"relay.example.com:", "relay:0", "relay:65536", "relay:025", "relay:smtp",
		"2001:db8::1", "[2001:db8::1", "[2001:db8::1]x", "[192.0.2.1]", "[relay]",
		"-relay.example.com", "re_lay.example.com", "relay..example.com", "smtp://relay",
		"[fe80::1%eth0]", "relay example",
	} {
		_, msg := normalizeHostPort(in)
		require.NotEmpty(t, msg, in)
	}
}

func TestCheckLDAPFilter(t *testing.T) {
	t.Parallel()
	for _, f := range []string{
		"(uid=%u)",
		"(mail=*)",
		"(cn=)",
		"(&(objectClass=person)(|(mail=%n)(uid=%u)))",
		"(!(userAccountControl:1.2.840.113556.1.4.803:=2))",
		"(cn:dn:=John)",
		"(sn~=smith)",
		"(age>=21)",
		"(cn=a\\28b\\29)",
		"(sAMAccountName=%u)",
	} {
		require.Empty(t, checkLDAPFilter(f), f)
	}
	for _, f := range []string{
		"", "uid=%u", "(uid=%u", "uid=%u)", "((uid=%u))", "(uid=%u))", "(uid=%u)(cn=x)",
		"(&)", "(!)", "(=x)", "(uid)", "(uid~x)", "(cn=a(b)", "(cn=a\\2)", "(cn=a\\zz)",
		"(&(a=1)", "(" + string(rune(0)) + ")",
	} {
		require.NotEmpty(t, checkLDAPFilter(f), f)
	}
	deep := ""
	for range 40 {
		deep += "(!"
	}
	deep += "(a=b)"
	for range 40 {
		deep += ")"
	}
	require.Equal(t, "nested too deeply", checkLDAPFilter(deep))
}

func TestCheckDNAndLDAPURL(t *testing.T) {
	t.Parallel()
	for _, dn := range []string{"dc=example,dc=com", "cn=Admin, ou=People, dc=example, dc=com", "cn=a\\,b,dc=x", "cn=a+uid=b,dc=x", "1.2.3.4=x"} {
		require.Empty(t, checkDN(dn), dn)
	}
	for _, dn := range []string{"example.com", "dc=example,", "=x", "cn=x,dc", "cn=x\\", "c n=x"} {
		require.NotEmpty(t, checkDN(dn), dn)
	}
	for _, u := range []string{"ldap://ldap.example.com", "ldaps://ldap.example.com:636", "ldap://10.0.0.1:389/"} {
		require.Empty(t, checkLDAPURL(u), u)
	}
	for _, u := range []string{"http://ldap.example.com", "ldap://", "ldap.example.com", "ldap://user:pw@host", "ldap://%zz"} {
		require.NotEmpty(t, checkLDAPURL(u), u)
	}
}

func TestCheckTimeZoneAndText(t *testing.T) {
	t.Parallel()
	for _, tz := range []string{"UTC", "Europe/Rome", "America/Argentina/Buenos_Aires"} {
		require.Empty(t, checkTimeZone(tz), tz)
	}
	for _, tz := range []string{"", "Local", "Mars/Olympus", "europe/rome", "../etc/passwd"} {
		require.NotEmpty(t, checkTimeZone(tz), tz)
	}
	require.Empty(t, checkText("two\nlines", 100, true))
	require.NotEmpty(t, checkText("two\nlines", 100, false))
	require.NotEmpty(t, checkText("bell\a", 100, true))
	require.NotEmpty(t, checkText("\xff", 100, true))
	require.NotEmpty(t, checkText("toolong", 3, true))
}
