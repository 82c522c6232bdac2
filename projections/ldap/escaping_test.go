package ldap_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	goldap "github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/require"

	"mailplane/api/apitest"
	"mailplane/projections/ldap/ldaptest"
)

// accountPath is an account's path in the API, the address escaped.
func accountPath(addr string) string { return "/api/v1/accounts/" + url.PathEscape(addr) }

// Addresses and names with the characters DNs and filters treat specially: what the API
// refuses it refuses with a 400 and nothing reaches the directory; what it accepts arrives
// exactly (DN, mail, uid, names) and Postfix and Dovecot find it, and only it, with their own
// escaped filters: a metacharacter never widens a lookup to other entries.
func TestSpecialCharactersRoundTripAndNeverWidenALookup(t *testing.T) {
	b := setup(t)
	e := b.e
	dom := e.CreateDomain(t, nil)
	const pw = "escaping-password-1"

	// Local parts RFC 5322 allows (atext) that DNs (+ = #) or filters (*) treat specially.
	locals := []string{"a+b=c", "#lead", "st*r", "*", "a|b&c!", "{x}~^", "o'neil", "100%", "$x?", "blank"}
	names := map[string]string{
		"a+b=c":  `Smith, John + "Jr" \ = * ( ) #1`,
		"#lead":  "  two leading spaces",
		"st*r":   "*)(mail=*",
		"*":      "Zoë 日本語 🙂",
		"a|b&c!": "#hash first",
		"{x}~^":  "trailing spaces  ",
		"o'neil": `\2a\00 not an escape`,
		"blank":  "   ",
	}
	addrs := map[string]string{}
	for _, l := range locals {
		body := map[string]any{"local_part": l, "password": pw}
		if n, ok := names[l]; ok {
			body["display_name"] = n
		}
		addrs[l] = e.CreateAccount(t, dom, body)
		require.Equal(t, l+"@"+dom, addrs[l])
	}
	// An internationalised domain: the directory, Postfix and Dovecot have its A-labels.
	idn := e.CreateDomain(t, map[string]any{"name": "bücher-" + apitest.Unique("") + ".example"})
	require.True(t, strings.HasPrefix(idn, "xn--"), idn)
	ines := e.CreateAccount(t, idn, map[string]any{"local_part": "ines", "display_name": "Inés Müller", "password": pw})
	require.Equal(t, "ines@"+idn, ines)
	// Aliases with metacharacters, and attributes full of filter syntax (they stay in the API:
	// the directory has no attribute for them).
	b.call(t, http.MethodPost, accountPath(addrs["a+b=c"])+"/aliases", map[string]any{"alias": "al*s@" + dom}, http.StatusCreated)
	b.call(t, http.MethodPost, accountPath(addrs["#lead"])+"/aliases", map[string]any{"alias": "x=y+z#@" + dom}, http.StatusCreated)
	b.call(t, http.MethodPatch, accountPath(addrs["st*r"]), map[string]any{"attributes": map[string]any{
		"note": "*)(mail=*", "filter": "(|(uid=*)(objectClass=*))", "dn": "mail=*,ou=accounts"}}, http.StatusOK)

	// What the API refuses, with a 400 naming the field, and nothing of it in the directory.
	for _, l := range []string{"a,b", `"quoted"`, `a\b`, "a(b)", "a)(uid=*", " lead", "trail ", "a b", "a\x00b",
		"ünï", "a<b>", "a;b", "a@b", ".dot", "two..dots", "nul\x00"} {
		r := e.Do(t, http.MethodPost, "/api/v1/domains/"+dom+"/accounts", e.AdminToken, map[string]any{"local_part": l, "password": pw})
		require.Equal(t, http.StatusBadRequest, r.Status, "local part %q: %s", l, r.Body)
		require.NotEmpty(t, r.FieldErrors(t), "local part %q", l)
	}
	for _, n := range []string{"nul\x00inside", "new\nline", "tab\there", "bell\a"} {
		r := e.Do(t, http.MethodPost, "/api/v1/domains/"+dom+"/accounts", e.AdminToken,
			map[string]any{"local_part": apitest.Unique("n"), "display_name": n})
		require.Equal(t, http.StatusBadRequest, r.Status, "display name %q: %s", n, r.Body)
		require.Equal(t, []string{"display_name"}, r.FieldErrors(t), "display name %q", n)
	}
	for _, a := range []string{"a)(uid=*@" + dom, "al,s@" + dom, `a\2a@` + dom, "ünï@" + dom} {
		r := e.Do(t, http.MethodPost, accountPath(addrs["st*r"])+"/aliases", e.AdminToken, map[string]any{"alias": a})
		require.Equal(t, http.StatusBadRequest, r.Status, "alias %q: %s", a, r.Body)
	}
	b.caughtUp(t)

	// Exactly what was accepted, at the DN both escapers agree on.
	all := b.d.Dump(t, b.d.Admin(t), b.d.Container(ldaptest.Accounts))
	for _, l := range locals {
		addr := addrs[l]
		got := b.entry(t, b.dit.Account(addr))
		require.NotNil(t, got, "%s at %s", addr, b.dit.Account(addr))
		canonical, err := ldaptest.CanonicalDN(b.d.AccountDN(addr))
		require.NoError(t, err)
		require.Equal(t, canonical, got.DN)
		parsed, err := goldap.ParseDN(got.DN)
		require.NoError(t, err)
		require.Equal(t, addr, parsed.RDNs[0].Attributes[0].Value, "the RDN's value is the address")
		require.Equal(t, []string{addr}, got.Get("mail"))
		require.Equal(t, []string{addr}, got.Get("uid"))
		if n, ok := names[l]; ok {
			require.Equal(t, []string{n}, got.Get("displayName"), "%s's display name", addr)
			cn := n
			if strings.TrimSpace(n) == "" {
				cn = addr // cn and sn are required: a blank name gives the address
			}
			require.Equal(t, []string{cn}, got.Get("cn"))
			require.Equal(t, []string{cn}, got.Get("sn"))
		}
	}
	require.Equal(t, []string{"al*s@" + dom}, b.entry(t, b.dit.Account(addrs["a+b=c"])).Get("mailLocalAddress"))
	require.Equal(t, []string{"x=y+z#@" + dom}, b.entry(t, b.dit.Account(addrs["#lead"])).Get("mailLocalAddress"))
	for _, entry := range all {
		for _, a := range entry.Attributes {
			for _, v := range a.Values {
				require.NotContains(t, v, "(objectClass=*)", "%s %s: an API attribute reached the directory", entry.DN, a.Name)
				require.NotContains(t, v, "mail=*,ou=accounts", "%s %s: an API attribute reached the directory", entry.DN, a.Name)
			}
		}
	}

	// Postfix: each address resolves to its own maildir; metacharacters match nothing else.
	mailboxes := []lookup{
		{"*@" + dom, dom + "/*/"}, // the account named "*", not every account
		{"s*@" + dom, ""},
		{"*r@" + dom, ""},
		{"a+b=c*@" + dom, ""},
		{"a)(mail=*@" + dom, ""},
		{"*)(objectClass=*@" + dom, ""},
		{"al*@" + dom, ""},
		{`st\2ar@` + dom, ""}, // an escape in the key is a backslash, not a star
	}
	for _, l := range locals {
		mailboxes = append(mailboxes, lookup{addrs[l], dom + "/" + l + "/"})
	}
	expectTable(t, b.d.Postmap(t, "virtual_mailbox_maps"), mailboxes...)
	expectTable(t, b.d.Postmap(t, "virtual_alias_maps"),
		lookup{"al*s@" + dom, addrs["a+b=c"]}, lookup{"x=y+z#@" + dom, addrs["#lead"]},
		lookup{"al*@" + dom, ""}, lookup{"*@" + dom, ""}, lookup{"*s@" + dom, ""}, lookup{"x=y+z*@" + dom, ""})
	expectTable(t, b.d.Postmap(t, "virtual_mailbox_domains"), lookup{dom, dom}, lookup{"*", ""}, lookup{"*" + dom[1:], ""},
		lookup{idn, idn})
	expectTable(t, b.d.Postmap(t, "virtual_mailbox_maps"), lookup{ines, idn + "/ines/"})
	require.Equal(t, []string{"Inés Müller"}, b.entry(t, b.dit.Account(ines)).Get("displayName"))
	require.Equal(t, []string{idn}, b.entry(t, b.dit.Domain(idn)).Get("associatedDomain"))

	// Dovecot: every account logs in with its password; a metacharacter in the user name finds
	// nobody but the account of that very name.
	var cases []authCase
	for _, l := range locals {
		cases = append(cases, authCase{addrs[l], pw, true})
	}
	cases = append(cases,
		authCase{ines, pw, true},
		authCase{"s*@" + dom, pw, false},
		authCase{"*)(mail=*", pw, false},
		authCase{"a+b=c)(|(mail=*@" + dom, pw, false},
		authCase{"al*s@" + dom, pw, false}, // an alias is no login
		authCase{"*@" + dom, "wrong-password-1", false},
	)
	dv := b.d.Dovecot(t)
	expectAuth(t, dv, cases...)
	for _, l := range locals {
		if strings.ContainsAny(l, "*?") {
			continue // doveadm user takes those for a mask
		}
		fields, found, err := dv.User(addrs[l])
		require.NoError(t, err)
		require.True(t, found, addrs[l])
		require.True(t, strings.HasSuffix(fields["home"], "/"+dom+"/"+l), "%s: home %s", addrs[l], fields["home"])
	}
}
