package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"mailplane/api/apitest"
)

func TestDomainCommands(t *testing.T) {
	c := newCLI(t)
	name := apitest.Unique("books") + ".example"

	// Flags may come after the name.
	r := c.run(t, "domain", "create", name, "--description", "Book club", "--time-zone", "Europe/Berlin",
		"--max-accounts", "10", "--account-quota", "1073741824", "--status", "maintenance").ok(t)
	require.Equal(t, []string{"FIELD", "VALUE"}, r.rows()[0])
	require.Equal(t, []string{"name", name}, r.row(t, "name"))
	v, src := r.effective(t, "time_zone")
	require.Equal(t, []string{"Europe/Berlin", "domain"}, []string{v, src})

	// The API holds what the flags said, and nothing the flags did not say.
	d := c.get(t, "/api/v1/domains/"+name)
	require.Equal(t, "Book club", d["description"])
	require.Equal(t, "maintenance", d["status"])
	require.Equal(t, "Europe/Berlin", d["time_zone"])
	require.Nil(t, d["public_protocol"], "not given, so inherited")
	limits := d["limits"].(map[string]any)
	require.Equal(t, float64(10), limits["max_accounts"])
	require.Equal(t, float64(1<<30), limits["account_quota_bytes"])

	t.Run("Show", func(t *testing.T) {
		r := c.run(t, "domain", "show", name).ok(t)
		require.Equal(t, "Book club", r.row(t, "description")[1])
		require.Equal(t, "10", r.row(t, "limits.max_accounts")[1])
		require.Equal(t, "0", r.row(t, "counts.accounts")[1])
		require.Equal(t, "-", r.row(t, "public_protocol")[1], "unset shows as -")
		v, src := r.effective(t, "public_protocol")
		require.Equal(t, []string{"https", "global"}, []string{v, src})
		v, src = r.effective(t, "account_quota_bytes")
		require.Equal(t, []string{"1073741824", "domain"}, []string{v, src})

		j := c.run(t, "domain", "show", "--json", name).ok(t).json(t)
		require.Equal(t, name, j["name"])
		require.Equal(t, "domain", j["sources"].(map[string]any)["time_zone"])
	})

	t.Run("List", func(t *testing.T) {
		r := c.run(t, "domain", "list").ok(t)
		require.Equal(t, []string{"NAME", "STATUS", "ACCOUNTS", "DEFAULT COS", "DESCRIPTION"}, r.rows()[0])
		require.Equal(t, []string{name, "maintenance", "0", "default", "Book club"}, r.row(t, name))
		require.Equal(t, "active", r.row(t, "mailplane.test")[1])

		r = c.run(t, "domain", "list", "--status", "maintenance").ok(t)
		require.Len(t, r.rows(), 2, r.stdout)
		require.Equal(t, name, r.rows()[1][0])

		j := c.run(t, "domain", "list", "--json", "--q", name[:len(name)-len(".example")]).ok(t).json(t)
		items := j["items"].([]any)
		require.Len(t, items, 1)
		require.Equal(t, name, items[0].(map[string]any)["name"])
		require.Contains(t, j, "next_cursor")
	})
}

func TestDomainListAllFollowsCursors(t *testing.T) {
	c := newCLI(t)
	prefix := apitest.Unique("page")
	var want []string
	for i := range 5 {
		name := fmt.Sprintf("%s-%d.example", prefix, i)
		c.api.CreateDomain(t, map[string]any{"name": name})
		want = append(want, name)
	}
	names := func(r result) []string {
		var got []string
		for _, row := range r.rows()[1:] {
			got = append(got, row[0])
		}
		return got
	}

	// One page, and a note on stderr saying how to get the rest.
	r := c.run(t, "domain", "list", "--q", prefix, "--limit", "2").ok(t)
	require.Equal(t, want[:2], names(r))
	require.Contains(t, r.stderr, "more items: add --all, or --cursor ")

	// --cursor continues where the page ended.
	cursor := r.stderr[len("more items: add --all, or --cursor "):]
	r = c.run(t, "domain", "list", "--q", prefix, "--limit", "2", "--cursor", cursor[:len(cursor)-1]).ok(t)
	require.Equal(t, want[2:4], names(r))

	// --all walks three pages.
	r = c.run(t, "domain", "list", "--q", prefix, "--limit", "2", "--all").ok(t)
	require.Equal(t, want, names(r))
	require.Empty(t, r.stderr)

	j := c.run(t, "domain", "list", "--q", prefix, "--limit", "2", "--all", "--json").ok(t).json(t)
	require.Len(t, j["items"], 5)
	require.Nil(t, j["next_cursor"])
}

func TestDomainHistoryCommand(t *testing.T) {
	c := newCLI(t)
	name := apitest.Unique("hist") + ".example"
	c.run(t, "domain", "create", name).ok(t)
	c.run(t, "account", "create", "ann@"+name, "--display-name", "Ann").ok(t)

	r := c.run(t, "domain", "history", name).ok(t)
	require.Equal(t, []string{"POSITION", "RECORDED", "STREAM", "VERSION", "TYPE", "ACTOR", "SESSION"}, r.rows()[0])
	require.Len(t, r.rows(), 3, r.stdout)
	require.Equal(t, "DomainCreated", r.rows()[1][4])
	require.Equal(t, "account-ann@"+name, r.rows()[2][2])
	require.Equal(t, apitest.AdminEmail, r.rows()[2][5])
	require.Len(t, r.rows()[2][6], 24, "the CLI's login session")

	// The same filters, and an object's own history.
	c.run(t, "account", "set", "ann@"+name, "display_name=Ann B.").ok(t)
	r = c.run(t, "account", "history", "ann@"+name, "--actor", strings.ToUpper(apitest.AdminEmail)).ok(t)
	require.Len(t, r.rows(), 3, r.stdout)
	require.Equal(t, []string{"AccountCreated", "AccountUpdated"}, []string{r.rows()[1][4], r.rows()[2][4]})
	r = c.run(t, "domain", "history", name, "--session-id", r.rows()[1][6], "--ip", "127.0.0.1", "--json").ok(t)
	require.Len(t, r.json(t)["items"], 3)
	require.Len(t, c.run(t, "domain", "history", name, "--ip", "10.9.9.9", "--json").ok(t).json(t)["items"], 0)
	c.run(t, "account", "history", "nobody@"+name).fails(t, 1)

	r = c.run(t, "domain", "history", name, "--type", "AccountCreated", "--json").ok(t)
	items := r.json(t)["items"].([]any)
	require.Len(t, items, 1)
	require.Equal(t, "Ann", items[0].(map[string]any)["data"].(map[string]any)["display_name"])

	r = c.run(t, "domain", "history", name, "--limit", "1", "--all").ok(t)
	require.Len(t, r.rows(), 4, "every page")

	c.run(t, "domain", "history", name, "--after", "not-a-time").fails(t, 1)
	c.run(t, "domain", "show", name, "--as-of", "2000-01-01T00:00:00Z").fails(t, 1)
}

func TestDomainCloseAndDelete(t *testing.T) {
	c := &cliEnv{api: apitest.NewWith(t, apitest.Options{Workers: &apitest.Workers{NoACME: true}}), dir: filepath.Join(t.TempDir(), "mailplane")}
	t.Setenv("MAILPLANE_CONFIG_DIR", c.dir)
	t.Setenv("MAILPLANE_API_URL", "")
	c.run(t, "login", "--url", c.api.URL, "--email", apitest.AdminEmail, "--password", apitest.AdminPassword).ok(t)
	name := c.api.CreateDomain(t, nil)
	for i := 0; i < 3; i++ {
		c.api.CreateAccount(t, name, nil)
	}

	r := c.run(t, "domain", "close", name).ok(t)
	require.Equal(t, "closed", r.row(t, "status")[1])

	// Without --yes it only says what would go, and removes nothing.
	r = c.run(t, "domain", "delete", name).fails(t, 1)
	require.Contains(t, r.stderr, "would take 3 accounts, 0 lists")
	require.Equal(t, "closed", c.get(t, "/api/v1/domains/"+name)["status"])

	r = c.run(t, "domain", "delete", name, "--yes").ok(t)
	require.Equal(t, "removed domain "+name+" (4 objects)\n", r.stdout)
	require.Contains(t, r.stderr, "removing "+name+": 4/4 objects")
	require.Eventually(t, func() bool {
		return c.run(t, "domain", "show", name).code != 0
	}, time.Minute, 20*time.Millisecond)
	r = c.run(t, "domain", "delete", name, "--yes").fails(t, 1)
	require.Contains(t, r.stderr, "404")
}
