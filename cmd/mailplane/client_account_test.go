package main

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestAccountCommands(t *testing.T) {
	c := newCLI(t)
	dom := c.api.CreateDomain(t, nil)
	c.run(t, "cos", "create", "gold", "--quota", "5000000").ok(t)
	addr := "ann@" + dom

	r := c.run(t, "account", "create", addr, "--display-name", "Ann Example", "--cos", "gold",
		"--password", "ann-password-1", "--domain-admin").ok(t)
	require.Equal(t, addr, r.row(t, "address")[1])
	v, src := r.effective(t, "cos")
	require.Equal(t, []string{"gold", "account"}, []string{v, src})
	v, src = r.effective(t, "mail_quota_bytes")
	require.Equal(t, []string{"5000000", "cos:gold"}, []string{v, src})

	a := c.get(t, "/api/v1/accounts/"+addr)
	require.Equal(t, "Ann Example", a["display_name"])
	require.Equal(t, "gold", a["cos"])
	require.Equal(t, true, a["domain_admin"])
	require.Equal(t, false, a["global_admin"])
	require.Equal(t, true, a["has_password"])
	c.api.Login(t, addr, "ann-password-1") // the password went through

	t.Run("Show", func(t *testing.T) {
		r := c.run(t, "account", "show", addr).ok(t)
		require.Equal(t, "Ann Example", r.row(t, "display_name")[1])
		require.Equal(t, "gold", r.row(t, "cos")[1])
		require.Equal(t, "true", r.row(t, "domain_admin")[1])
		j := c.run(t, "account", "show", addr, "--json").ok(t).json(t)
		require.Equal(t, addr, j["address"])
		require.Equal(t, "account", j["sources"].(map[string]any)["cos"])
	})

	t.Run("Set", func(t *testing.T) {
		r := c.run(t, "account", "set", addr, "cos=", "display_name=Ann B", "mail_quota_bytes=2000",
			"status=locked", "attributes.dept=sales").ok(t)
		require.Equal(t, "-", r.row(t, "cos")[1], "the override is gone")
		v, src := r.effective(t, "cos")
		require.NotEqual(t, "account", src, "cos is inherited again")
		require.Equal(t, "default", v)
		v, src = r.effective(t, "mail_quota_bytes")
		require.Equal(t, []string{"2000", "account"}, []string{v, src})

		a := c.get(t, "/api/v1/accounts/"+addr)
		require.Contains(t, a, "cos")
		require.Nil(t, a["cos"])
		require.Equal(t, "Ann B", a["display_name"])
		require.Equal(t, "locked", a["status"])
		require.Equal(t, float64(2000), a["mail_quota_bytes"])
		require.Equal(t, map[string]any{"dept": "sales"}, a["attributes"])

		c.run(t, "account", "set", addr, "mail_quota_bytes=", "attributes.dept=", "global_admin=true", "domain_admin=false").ok(t)
		a = c.get(t, "/api/v1/accounts/"+addr)
		require.Nil(t, a["mail_quota_bytes"])
		require.Empty(t, a["attributes"])
		require.Equal(t, true, a["global_admin"])
		require.Equal(t, false, a["domain_admin"])

		// An unknown COS is the API's to refuse.
		r = c.run(t, "account", "set", addr, "cos=platinum").fails(t, 1)
		require.Contains(t, r.stderr, "mailplane account set: 4")
		require.Nil(t, c.get(t, "/api/v1/accounts/"+addr)["cos"])
	})

	t.Run("List", func(t *testing.T) {
		others := []string{c.api.CreateAccount(t, dom, nil), c.api.CreateAccount(t, dom, nil)}
		r := c.run(t, "account", "list", dom).ok(t)
		require.Equal(t, []string{"ADDRESS", "DISPLAY NAME", "STATUS", "COS", "QUOTA", "DOMAIN ADMIN", "GLOBAL ADMIN", "AUDITOR"}, r.rows()[0])
		require.Equal(t, []string{addr, "Ann B", "locked", "default"}, r.row(t, addr)[:4])
		require.Len(t, r.rows(), 4)

		r = c.run(t, "account", "list", dom, "--limit", "1", "--all").ok(t)
		var got []string
		for _, row := range r.rows()[1:] {
			got = append(got, row[0])
		}
		require.ElementsMatch(t, append([]string{addr}, others...), got)

		r = c.run(t, "account", "list", "--status", "locked", dom).ok(t)
		require.Len(t, r.rows(), 2)
		require.Equal(t, addr, r.rows()[1][0])
	})

	t.Run("Aliases", func(t *testing.T) {
		alias := "ann.b@" + dom
		r := c.run(t, "account", "alias", "add", addr, alias).ok(t)
		require.Equal(t, "added alias "+alias+" to "+addr+"\n", r.stdout)
		require.Equal(t, []any{alias}, c.get(t, "/api/v1/accounts/"+addr)["aliases"])
		require.Equal(t, alias, c.run(t, "account", "show", addr).ok(t).row(t, "aliases")[1])

		// The address is taken now.
		r = c.run(t, "account", "create", alias).fails(t, 1)
		require.Contains(t, r.stderr, "409 Conflict")

		c.run(t, "account", "alias", "remove", addr, alias).ok(t)
		require.Empty(t, c.get(t, "/api/v1/accounts/"+addr)["aliases"])
		r = c.run(t, "account", "alias", "remove", addr, alias).fails(t, 1)
		require.Contains(t, r.stderr, "404 Not Found")
	})

	t.Run("Delete", func(t *testing.T) {
		r := c.run(t, "account", "delete", addr).ok(t)
		require.Equal(t, "deleted account "+addr+"\n", r.stdout)
		r = c.run(t, "account", "show", addr).fails(t, 1)
		require.Contains(t, r.stderr, "mailplane account show: 404 Not Found")
	})
}

// An auditor is made, narrowed and widened again from the command line.
func TestAccountAuditorCommands(t *testing.T) {
	c := newCLI(t)
	dom := c.api.CreateDomain(t, nil)
	other := c.api.CreateDomain(t, nil)
	addr := "audit@" + dom
	c.run(t, "account", "create", addr, "--auditor", "--auditor-domains", dom+", "+other).ok(t)
	a := c.get(t, "/api/v1/accounts/"+addr)
	require.Equal(t, true, a["auditor"])
	require.ElementsMatch(t, []any{dom, other}, a["auditor_domains"])

	c.run(t, "account", "set", addr, "auditor_domains="+other).ok(t)
	require.Equal(t, []any{other}, c.get(t, "/api/v1/accounts/"+addr)["auditor_domains"])
	c.run(t, "account", "set", addr, "auditor_domains=").ok(t)
	require.Equal(t, []any{}, c.get(t, "/api/v1/accounts/"+addr)["auditor_domains"])

	// The API refuses the role together with an admin role.
	r := c.run(t, "account", "set", addr, "domain_admin=true").fails(t, 1)
	require.Contains(t, r.stderr, "auditor")
	c.run(t, "account", "set", addr, "auditor=false").ok(t)
	require.Equal(t, false, c.get(t, "/api/v1/accounts/"+addr)["auditor"])
}
