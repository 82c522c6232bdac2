package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestListCommands(t *testing.T) {
	c := newCLI(t)
	dom := c.api.CreateDomain(t, nil)
	owner := c.api.CreateAccount(t, dom, nil)
	addr := "team@" + dom

	r := c.run(t, "list", "create", addr, "--display-name", "The Team", "--member", "a@x.example,b@x.example",
		"--member", "c@x.example", "--owner", owner, "--allowed-sender", "boss@x.example", "--subscription-policy", "reject").ok(t)
	require.Equal(t, addr, r.row(t, "address")[1])
	require.Equal(t, "3", r.row(t, "member_count")[1])
	l := c.get(t, "/api/v1/lists/"+addr)
	require.Equal(t, "The Team", l["display_name"])
	require.Equal(t, []any{owner}, l["owners"])
	require.Equal(t, []any{"boss@x.example"}, l["allowed_senders"])
	require.Equal(t, "reject", l["subscription_policy"])

	t.Run("ShowAndList", func(t *testing.T) {
		r := c.run(t, "list", "show", addr).ok(t)
		require.Equal(t, "The Team", r.row(t, "display_name")[1])
		require.Equal(t, owner, r.row(t, "owners")[1])
		j := c.run(t, "list", "show", addr, "--json").ok(t).json(t)
		require.Equal(t, addr, j["address"])
		r = c.run(t, "list", "list", dom).ok(t)
		require.Equal(t, []string{"ADDRESS", "DISPLAY NAME", "MEMBERS", "DYNAMIC", "OWNERS", "HIDDEN"}, r.rows()[0])
		require.Equal(t, []string{addr, "The Team", "3", "-", owner, "false"}, r.row(t, addr))
	})

	t.Run("Members", func(t *testing.T) {
		r := c.run(t, "list", "members", "add", addr, "d@x.example", "E@x.example").ok(t)
		require.Equal(t, "added 2 members to "+addr+"\n", r.stdout)
		r = c.run(t, "list", "members", "remove", addr, "a@x.example").ok(t)
		require.Equal(t, "removed 1 members from "+addr+"\n", r.stdout)
		r = c.run(t, "list", "members", "list", addr).ok(t)
		require.Equal(t, [][]string{{"MEMBER"}, {"b@x.example"}, {"c@x.example"}, {"d@x.example"}, {"e@x.example"}}, r.rows())

		// From a file, more than one request holds: the CLI sends them in turn.
		var lines []string
		for i := 0; i < 10005; i++ {
			lines = append(lines, fmt.Sprintf("f%05d@y.example", i))
		}
		file := filepath.Join(t.TempDir(), "members.txt")
		require.NoError(t, os.WriteFile(file, []byte("# new members\n"+strings.Join(lines, "\n")+"\n\n"), 0o600))
		r = c.run(t, "list", "members", "add", addr, "--file", file).ok(t)
		require.Equal(t, "added 10005 members to "+addr+"\n", r.stdout)
		require.Equal(t, float64(10009), c.get(t, "/api/v1/lists/"+addr)["member_count"])
		r = c.run(t, "list", "members", "remove", addr, "--file", file, "--json").ok(t)
		require.Equal(t, float64(4), r.json(t)["member_count"])

		r = c.run(t, "list", "members", "add", addr, "not-an-address").fails(t, 1)
		require.Contains(t, r.stderr, "mailplane list members add: 400 Bad Request")
		require.Contains(t, r.stderr, "members[0]")
		c.run(t, "list", "members", "add", addr).fails(t, 2)
	})

	t.Run("Owners", func(t *testing.T) {
		other := c.api.CreateAccount(t, dom, nil)
		c.run(t, "list", "owners", "add", addr, other).ok(t)
		require.ElementsMatch(t, []any{owner, other}, c.get(t, "/api/v1/lists/"+addr)["owners"])
		c.run(t, "list", "owners", "remove", addr, owner).ok(t)
		require.Equal(t, []any{other}, c.get(t, "/api/v1/lists/"+addr)["owners"])
		r := c.run(t, "list", "owners", "add", addr, "nobody@"+dom).fails(t, 1)
		require.Contains(t, r.stderr, "owners are accounts")
	})

	t.Run("SetAndAliases", func(t *testing.T) {
		r := c.run(t, "list", "set", addr, "description=Everyone", "allowed_senders=x@x.example, y@x.example", "hide_in_gal=true").ok(t)
		require.Equal(t, "Everyone", r.row(t, "description")[1])
		l := c.get(t, "/api/v1/lists/"+addr)
		require.Equal(t, []any{"x@x.example", "y@x.example"}, l["allowed_senders"])
		require.Equal(t, true, l["hide_in_gal"])
		c.run(t, "list", "set", addr, "allowed_senders=", "subscription_policy=").ok(t)
		l = c.get(t, "/api/v1/lists/"+addr)
		require.Equal(t, []any{}, l["allowed_senders"])
		require.Equal(t, "approval", l["subscription_policy"])
		c.run(t, "list", "set", addr, "colour=red").fails(t, 2)

		c.run(t, "list", "aliases", "add", addr, "all@"+dom, "everyone@"+dom).ok(t)
		require.Equal(t, []any{"all@" + dom, "everyone@" + dom}, c.get(t, "/api/v1/lists/"+addr)["aliases"])
		r = c.run(t, "account", "create", "all@"+dom).fails(t, 1)
		require.Contains(t, r.stderr, "409 Conflict")
		c.run(t, "list", "aliases", "remove", addr, "all@"+dom).ok(t)
		require.Equal(t, []any{"everyone@" + dom}, c.get(t, "/api/v1/lists/"+addr)["aliases"])
	})

	t.Run("DynamicAndStatic", func(t *testing.T) {
		r := c.run(t, "list", "dynamic", addr, "ldap:///??sub?(l=Rome)").fails(t, 1)
		require.Contains(t, r.stderr, "409 Conflict")
		r = c.run(t, "list", "dynamic", addr, "ldap://h/??sub?(l=Rome)").fails(t, 1)
		require.Contains(t, r.stderr, "must not name a host")
		r = c.run(t, "list", "dynamic", addr, "ldap:///??sub?(l=Rome)", "--drop-members").ok(t)
		require.Equal(t, "ldap:///??sub?(l=Rome)", r.row(t, "dynamic.member_url")[1])
		r = c.run(t, "list", "members", "list", addr).fails(t, 1)
		require.Contains(t, r.stderr, "501 Not Implemented")
		r = c.run(t, "list", "static", addr).ok(t)
		require.Equal(t, "0", r.row(t, "member_count")[1])

		dyn := "sales@" + dom
		r = c.run(t, "list", "create", dyn, "--member-url", "ldap:///??one?(department=sales)", "--hide-in-gal").ok(t)
		require.Equal(t, "one", r.row(t, "dynamic.scope")[1])
	})

	t.Run("Delete", func(t *testing.T) {
		r := c.run(t, "list", "delete", addr).ok(t)
		require.Equal(t, "deleted list "+addr+"\n", r.stdout)
		r = c.run(t, "list", "show", addr).fails(t, 1)
		require.Contains(t, r.stderr, "mailplane list show: 404 Not Found")
		c.run(t, "list", "create", "not-an-address").fails(t, 2)
	})
}
