package main

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCOSCommands(t *testing.T) {
	c := newCLI(t)
	r := c.run(t, "cos", "create", "Gold", "--description", "Paying customers", "--quota", "5000",
		"--feature", "imap=true", "--feature", "pop3=false", "--password-min-length", "12").ok(t)
	require.Equal(t, "gold", r.row(t, "name")[1])
	require.Equal(t, "true", r.row(t, "features.imap")[1])
	require.Equal(t, "false", r.row(t, "features.pop3")[1])
	require.Equal(t, "-", r.row(t, "session_lifetime_seconds")[1])
	v, src := r.effective(t, "session_lifetime_seconds")
	require.Equal(t, []string{"86400", "global"}, []string{v, src})
	v, _ = r.effective(t, "password_min_length")
	require.Equal(t, "12", v)
	v, _ = r.effective(t, "features.imap")
	require.Equal(t, "true", v)

	got := c.get(t, "/api/v1/cos/gold")
	require.Equal(t, "Paying customers", got["description"])
	require.Equal(t, float64(5000), got["mail_quota_bytes"])
	require.Equal(t, map[string]any{"imap": true, "pop3": false}, got["features"])
	require.Nil(t, got["quota_warn_percent"])

	t.Run("ShowAndList", func(t *testing.T) {
		r := c.run(t, "cos", "show", "gold").ok(t)
		require.Equal(t, "5000", r.row(t, "mail_quota_bytes")[1])
		require.Equal(t, "gold", c.run(t, "cos", "show", "gold", "--json").ok(t).json(t)["name"])

		r = c.run(t, "cos", "list").ok(t)
		require.Equal(t, []string{"gold", "5000", "-", "12", "-", "Paying customers"}, r.row(t, "gold"))
		require.Equal(t, "Default class of service", r.row(t, "default")[5], "bootstrap made the default COS")
		items := c.run(t, "cos", "list", "--json").ok(t).json(t)["items"].([]any)
		var names []any
		for _, it := range items {
			names = append(names, it.(map[string]any)["name"])
		}
		require.ElementsMatch(t, []any{"default", "gold"}, names)
	})

	t.Run("Set", func(t *testing.T) {
		c.run(t, "cos", "set", "gold", "features.calendar=true", "features.pop3=", "quota_warn_percent=80",
			"mail_quota_bytes=").ok(t)
		got := c.get(t, "/api/v1/cos/gold")
		require.Equal(t, map[string]any{"imap": true, "calendar": true}, got["features"])
		require.Equal(t, float64(80), got["quota_warn_percent"])
		require.Nil(t, got["mail_quota_bytes"])
		require.Equal(t, "Paying customers", got["description"], "untouched")
	})

	t.Run("Delete", func(t *testing.T) {
		dom := c.api.CreateDomain(t, nil)
		user := c.api.CreateAccount(t, dom, map[string]any{"cos": "gold"})
		r := c.run(t, "cos", "delete", "gold").fails(t, 1)
		require.Contains(t, r.stderr, "mailplane cos delete: 409 Conflict")
		require.Contains(t, r.stderr, "(/problems/in-use)")
		require.Regexp(t, `(?m)^  users: .*`+user, r.stderr)

		c.run(t, "cos", "create", "bronze").ok(t)
		r = c.run(t, "cos", "delete", "bronze").ok(t)
		require.Equal(t, "deleted COS bronze\n", r.stdout)
		r = c.run(t, "cos", "show", "bronze").fails(t, 1)
		require.Contains(t, r.stderr, "404 Not Found")
	})
}
