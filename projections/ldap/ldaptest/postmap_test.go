package ldaptest_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"mailplane/projections/ldap/ldaptest"
)

// lookup is one postmap query and what the table must answer ("" = not found).
type lookup struct{ key, want string }

func checkTable(t *testing.T, p *ldaptest.Postmap, lookups []lookup) {
	t.Helper()
	for _, l := range lookups {
		start := time.Now()
		got, found, err := p.Query(l.key)
		t.Logf("postmap -q %s: %q found=%v in %s", l.key, got, found, time.Since(start).Round(time.Millisecond))
		require.NoError(t, err, l.key)
		if l.want == "" {
			require.False(t, found, "%s resolved to %q", l.key, got)
			continue
		}
		require.True(t, found, "%s did not resolve", l.key)
		require.Equal(t, l.want, sortedList(got), l.key)
	}
}

// sortedList sorts a comma-separated result: list members come in no stable order.
func sortedList(s string) string {
	parts := strings.Split(s, ",")
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

// Each table in docs/postfix, rendered for a test's own base, answers what Postfix needs
// for each kind of entry, through Postfix's own LDAP client.
func TestPostfixTables(t *testing.T) {
	t.Parallel()
	d := ldaptest.New(t)
	fixture(t, d)

	t.Run("virtual_mailbox_domains", func(t *testing.T) {
		checkTable(t, d.Postmap(t, "virtual_mailbox_domains"), []lookup{
			{"example.test", "example.test"},
			// Deferred domains stay ours: recipient_access defers their mail.
			{"defer.test", "defer.test"},
			{"else.test", ""},
			{"EXAMPLE.TEST", "example.test"},
			{"*", ""},
		})
	})
	t.Run("virtual_mailbox_maps", func(t *testing.T) {
		checkTable(t, d.Postmap(t, "virtual_mailbox_maps"), []lookup{
			{"alice@example.test", "example.test/alice/"},
			{"Alice@Example.Test", "example.test/alice/"},
			{"erin@example.test", "example.test/erin/"},
			{"dave@example.test", "example.test/dave/"}, // locked: no login, but its mail arrives
			{"room@example.test", "example.test/room/"}, // a resource is a mailbox too
			{"st*r@example.test", "example.test/st*r/"},
			{"bob@example.test", ""},   // bounce
			{"carol@example.test", ""}, // defer: recipient_access answers first
			{"frank@defer.test", ""},
			{"al@example.test", ""},   // an alias: virtual_alias_maps
			{"team@example.test", ""}, // a list
			{"nobody@example.test", ""},
			{"*@example.test", ""},
			{"s*@example.test", ""},
			{"*", ""},
		})
	})
	t.Run("virtual_alias_maps", func(t *testing.T) {
		checkTable(t, d.Postmap(t, "virtual_alias_maps"), []lookup{
			{"al@example.test", "alice@example.test"},
			{"alice.smith@example.test", "alice@example.test"},
			{"conf-room@example.test", "room@example.test"},
			{"caro@example.test", "carol@example.test"}, // deferred, not bounced: recipient_access defers it
			{"team@example.test", "alice@example.test,erin@example.test,someone@else.test"},
			{"team-alias@example.test", "alice@example.test,erin@example.test,someone@else.test"},
			// memberURL: the accounts that accept mail.
			{"all@example.test", "alice@example.test,dave@example.test,erin@example.test,st*r@example.test"},
			{"bobby@example.test", ""},    // its account bounces
			{"old-list@example.test", ""}, // a list that bounces
			{"alice@example.test", ""},    // an address is not its own alias
			{"nobody@example.test", ""},
			{"*@example.test", ""},
			{"*", ""},
		})
	})
	const deferred = "DEFER 4.2.1 mailbox temporarily unavailable"
	t.Run("recipient_access", func(t *testing.T) {
		checkTable(t, d.Postmap(t, "recipient_access"), []lookup{
			{"carol@example.test", deferred},
			{"caro@example.test", deferred},
			{"frank@defer.test", deferred},
			{"defer.test", deferred}, // Postfix asks for the domain after the address
			{"alice@example.test", ""},
			{"al@example.test", ""},
			{"bob@example.test", ""},
			{"example.test", ""},
			{"team@example.test", ""},
			{"nobody@defer.test", ""}, // the domain answers for it (key defer.test)
			{"*", ""},
		})
	})
	t.Run("transport_maps", func(t *testing.T) {
		const retry = "retry:4.2.1 mailbox temporarily unavailable"
		checkTable(t, d.Postmap(t, "transport_maps"), []lookup{
			{"carol@example.test", retry},
			{"frank@defer.test", retry},
			{"defer.test", retry},
			{"alice@example.test", ""},
			{"example.test", ""},
		})
	})
	t.Run("many keys at once", func(t *testing.T) {
		p := d.Postmap(t, "virtual_mailbox_maps")
		keys := []string{"alice@example.test", "bob@example.test", "erin@example.test", "nobody@example.test"}
		start := time.Now()
		got, err := p.QueryAll(keys...)
		t.Logf("postmap -q - with %d keys: %s", len(keys), time.Since(start).Round(time.Millisecond))
		require.NoError(t, err)
		require.Equal(t, map[string]string{
			"alice@example.test": "example.test/alice/",
			"erin@example.test":  "example.test/erin/",
		}, got)
	})
}

// A lookup that fails is an error (Postfix defers the mail), not a "not found" (which
// bounces it).
func TestPostmapTellsFailuresFromNotFound(t *testing.T) {
	t.Parallel()
	d := ldaptest.New(t)
	fixture(t, d)

	for name, p := range map[string]*ldaptest.Postmap{
		"wrong password": ldaptest.NewPostmap(t, "virtual_mailbox_maps", d.URL, d.Base,
			ldaptest.Credentials{DN: d.Env.Postfix.DN, Password: "wrong"}),
		// Anonymous users see nothing but the root DSE: slapd says "no such object".
		"anonymous": ldaptest.NewPostmap(t, "virtual_mailbox_maps", d.URL, d.Base, ldaptest.Credentials{}),
		"no server": ldaptest.NewPostmap(t, "virtual_mailbox_maps", "ldap://127.0.0.1:1/", d.Base, d.Env.Postfix),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			_, found, err := p.Query("alice@example.test")
			t.Logf("a failed postmap -q: %s", time.Since(start).Round(time.Millisecond))
			require.ErrorIs(t, err, ldaptest.ErrQuery)
			require.False(t, found)
		})
	}
	_, err := ldaptest.NewPostmap(t, "virtual_mailbox_maps", d.URL, d.Base,
		ldaptest.Credentials{DN: d.Env.Postfix.DN, Password: "wrong"}).QueryAll("alice@example.test", "nobody@example.test")
	require.ErrorIs(t, err, ldaptest.ErrQuery)

	_, found, err := d.Postmap(t, "virtual_mailbox_maps").Query("nobody@example.test")
	require.NoError(t, err)
	require.False(t, found)
}
