package ldaptest_test

import (
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/require"

	"mailplane/projections/ldap/ldaptest"
)

// docs/dovecot checks passwords by binding as the account ({ARGON2} hashes), and lets in
// only accounts whose mailplaneLogin is TRUE.
func TestDovecotAuthentication(t *testing.T) {
	t.Parallel()
	d := ldaptest.New(t)
	fixture(t, d)
	start := time.Now()
	dv := d.Dovecot(t)
	t.Logf("dovecot started in %s", time.Since(start).Round(time.Millisecond))

	cases := []struct {
		name, user, password string
		ok                   bool
	}{
		{"right password", "alice@example.test", alicePassword, true},
		{"any case", "ALICE@Example.Test", alicePassword, true},
		{"another account", "erin@example.test", erinPassword, true},
		{"wrong password", "alice@example.test", "wrong-pw", false},
		{"another's password", "alice@example.test", erinPassword, false},
		{"empty password", "alice@example.test", "", false},
		{"unknown user", "nobody@example.test", alicePassword, false},
		{"an alias is no login", "al@example.test", alicePassword, false},
		// Its password is right, but mailplaneLogin is FALSE.
		{"locked account", "dave@example.test", davePassword, false},
		{"closed account", "bob@example.test", "", false},
		{"a filter metacharacter", "*@example.test", alicePassword, false},
		{"a filter in the name", "*)(mail=*", alicePassword, false},
	}
	// Every failure takes Dovecot 0.5 s at least: ask all at once.
	type result struct {
		ok  bool
		err error
		in  time.Duration
	}
	results := make([]result, len(cases))
	var wg sync.WaitGroup
	for i, c := range cases {
		wg.Go(func() {
			start := time.Now()
			ok, err := dv.AuthTest(c.user, c.password)
			results[i] = result{ok, err, time.Since(start)}
		})
	}
	wg.Wait()
	for i, c := range cases {
		r := results[i]
		t.Logf("auth test %s (%s): %v in %s", c.user, c.name, r.ok, r.in.Round(time.Millisecond))
		require.NoError(t, r.err, c.name)
		require.Equal(t, c.ok, r.ok, c.name)
	}

	// The projection removes userPassword when an account may no longer log in.
	conn := d.Admin(t)
	del := ldap.NewModifyRequest(d.AccountDN("alice@example.test"), nil)
	del.Delete("userPassword", nil)
	require.NoError(t, conn.Modify(del))
	ok, err := dv.AuthTest("alice@example.test", alicePassword)
	require.NoError(t, err)
	require.False(t, ok)

	// And sets mailplaneLogin to FALSE: no auth cache lets the old answer linger.
	mod := ldap.NewModifyRequest(d.AccountDN("erin@example.test"), nil)
	mod.Replace("mailplaneLogin", []string{"FALSE"})
	require.NoError(t, conn.Modify(mod))
	ok, err = dv.AuthTest("erin@example.test", erinPassword)
	require.NoError(t, err)
	require.False(t, ok)
}

// The userdb of docs/dovecot: every account and resource whose mail is not bounced, with
// its home where Postfix delivers (virtual_mailbox_maps' %d/%u/) and its quota from
// mailplaneQuota.
func TestDovecotUsers(t *testing.T) {
	t.Parallel()
	d := ldaptest.New(t)
	fixture(t, d)
	dv := d.Dovecot(t)
	vmail := filepath.Join(dv.Dir, "vmail")

	start := time.Now()
	alice, found, err := dv.User("alice@example.test")
	t.Logf("doveadm user: %s", time.Since(start).Round(time.Millisecond))
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, filepath.Join(vmail, "example.test", "alice"), alice["home"])
	require.Equal(t, "maildir:~/", alice["mail"])
	require.Equal(t, "*:bytes=1073741824", alice["quota_rule"])

	// Locked: no login, but a mailbox.
	dave, found, err := dv.User("dave@example.test")
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, "*:bytes=0", dave["quota_rule"]) // 0 is unlimited

	erin, found, err := dv.User("erin@example.test")
	require.NoError(t, err)
	require.True(t, found)
	require.NotContains(t, erin, "quota_rule") // no mailplaneQuota: unlimited

	room, found, err := dv.User("room@example.test")
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, filepath.Join(vmail, "example.test", "room"), room["home"])

	for _, user := range []string{"bob@example.test", "nobody@example.test", "al@example.test", "team@example.test"} {
		_, found, err := dv.User(user)
		require.NoError(t, err, user)
		require.False(t, found, user)
	}

	users, err := dv.Users()
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"alice@example.test", "carol@example.test", "dave@example.test", "erin@example.test",
		"st*r@example.test", "frank@defer.test", "room@example.test"}, users)
}

// A directory Dovecot cannot reach is an error (Dovecot answers temp_fail), not a refusal.
func TestDovecotTellsFailuresFromRefusals(t *testing.T) {
	t.Parallel()
	env := ldaptest.LoadEnv(t)
	dv := ldaptest.StartDovecot(t, "ldap://127.0.0.1:1/", env.Suffix, env.Dovecot)
	start := time.Now()
	_, err := dv.AuthTest("alice@example.test", alicePassword)
	t.Logf("auth test without a directory: %s", time.Since(start).Round(time.Millisecond))
	require.Error(t, err)
	require.Contains(t, err.Error(), "temp_fail")
	_, _, err = dv.User("alice@example.test")
	require.Error(t, err)
}
