package ldap_test

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"mailplane/projections/ldap/ldaptest"
)

// authCase is one doveadm auth test and its expected outcome.
type authCase struct {
	user, password string
	ok             bool
}

// expectAuth runs the cases at once (every refusal costs Dovecot half a second) and requires
// each outcome.
func expectAuth(t *testing.T, dv *ldaptest.Dovecot, cases ...authCase) {
	t.Helper()
	type result struct {
		ok  bool
		err error
	}
	results := make([]result, len(cases))
	var wg sync.WaitGroup
	for i, c := range cases {
		wg.Go(func() {
			ok, err := dv.AuthTest(c.user, c.password)
			results[i] = result{ok, err}
		})
	}
	wg.Wait()
	for i, c := range cases {
		require.NoError(t, results[i].err, "%s", c.user)
		require.Equal(t, c.ok, results[i].ok, "doveadm auth test %s %q", c.user, c.password)
	}
}

// quotaRule is the userdb's quota_rule for an effective quota (docs/dovecot).
func quotaRule(bytes int64) string { return "*:bytes=" + strconv.FormatInt(bytes, 10) }

// effectiveQuota reads an account's effective.mail_quota_bytes through the API.
func (b *bundle) effectiveQuota(t *testing.T, addr string) int64 {
	t.Helper()
	eff, _ := b.call(t, http.MethodGet, "/api/v1/accounts/"+addr, nil, http.StatusOK).JSON(t)["effective"].(map[string]any)
	q, ok := eff["mail_quota_bytes"].(float64)
	require.True(t, ok, "%s: effective %v", addr, eff)
	return int64(q)
}

// expectUser requires Dovecot's userdb to know addr with the quota rule the API's effective
// quota gives (or not to know it).
func (b *bundle) expectUser(t *testing.T, dv *ldaptest.Dovecot, addr string, known bool) map[string]string {
	t.Helper()
	fields, found, err := dv.User(addr)
	require.NoError(t, err)
	require.Equal(t, known, found, "doveadm user %s", addr)
	if known {
		local, dom, _ := strings.Cut(addr, "@")
		require.True(t, strings.HasSuffix(fields["home"], "/"+dom+"/"+local), "%s: home %s", addr, fields["home"])
		require.Equal(t, quotaRule(b.effectiveQuota(t, addr)), fields["quota_rule"], "%s: the API's effective quota", addr)
	}
	return fields
}

// Dovecot, configured with docs/dovecot, logs in what the API says may log in, with the
// passwords the API set (a change works as soon as the projection has caught up), and gives
// each user the quota the API shows as effective, a COS change included.
func TestDovecotReadsTheProjectedDirectory(t *testing.T) {
	b := setup(t)
	e := b.e
	const (
		alicePW = "alice-password-1"
		davePW  = "dave-password-1"
		bobPW   = "bob-password-1"
		carolPW = "carol-password-1"
	)
	b.call(t, http.MethodPost, "/api/v1/cos", map[string]any{"name": "gold", "mail_quota_bytes": 2 << 30}, http.StatusCreated)
	dom := e.CreateDomain(t, map[string]any{"default_cos": "gold"})
	alice := e.CreateAccount(t, dom, map[string]any{"local_part": "alice", "password": alicePW})
	dave := e.CreateAccount(t, dom, map[string]any{"local_part": "dave", "password": davePW})
	bob := e.CreateAccount(t, dom, map[string]any{"local_part": "bob", "password": bobPW})
	own := e.CreateAccount(t, dom, map[string]any{"local_part": "own", "password": carolPW, "mail_quota_bytes": 5 << 20})
	plain := e.CreateAccount(t, e.CreateDomain(t, nil), map[string]any{"local_part": "plain", "password": carolPW})
	b.call(t, http.MethodPost, "/api/v1/accounts/"+alice+"/aliases", map[string]any{"alias": "al@" + dom}, http.StatusCreated)
	b.caughtUp(t)
	dv := b.d.Dovecot(t)

	expectAuth(t, dv,
		authCase{alice, alicePW, true},
		authCase{dave, davePW, true},
		authCase{bob, bobPW, true},
		authCase{plain, carolPW, true},
		authCase{alice, "wrong-password-1", false},
		authCase{alice, davePW, false}, // another's password
		authCase{alice, "", false},
		authCase{"al@" + dom, alicePW, false}, // an alias is no login
		authCase{"nobody@" + dom, alicePW, false},
	)
	for _, addr := range []string{alice, dave, bob, own, plain} {
		b.expectUser(t, dv, addr, true)
	}
	require.Equal(t, quotaRule(2<<30), b.expectUser(t, dv, alice, true)["quota_rule"], "the COS's quota")
	require.Equal(t, quotaRule(5<<20), b.expectUser(t, dv, own, true)["quota_rule"], "the account's own")

	// Locked: no login, but still a user (its mail is delivered). Closed: neither.
	b.call(t, http.MethodPatch, "/api/v1/accounts/"+dave, map[string]any{"status": "locked"}, http.StatusOK)
	b.call(t, http.MethodPatch, "/api/v1/accounts/"+bob, map[string]any{"status": "closed"}, http.StatusOK)
	// A new password works at once; the old one no longer does.
	b.call(t, http.MethodPatch, "/api/v1/accounts/"+alice, map[string]any{"password": "alice-password-2"}, http.StatusOK)
	b.caughtUp(t)
	expectAuth(t, dv,
		authCase{dave, davePW, false},
		authCase{bob, bobPW, false},
		authCase{alice, alicePW, false},
		authCase{alice, "alice-password-2", true},
	)
	b.expectUser(t, dv, dave, true)
	b.expectUser(t, dv, bob, false)

	// The COS's quota changes: every account that inherits it gets the new one, the account
	// with its own keeps it.
	b.call(t, http.MethodPatch, "/api/v1/cos/gold", map[string]any{"mail_quota_bytes": 3 << 30}, http.StatusOK)
	b.caughtUp(t)
	require.Equal(t, quotaRule(3<<30), b.expectUser(t, dv, alice, true)["quota_rule"])
	require.Equal(t, quotaRule(3<<30), b.expectUser(t, dv, dave, true)["quota_rule"])
	require.Equal(t, quotaRule(5<<20), b.expectUser(t, dv, own, true)["quota_rule"])
	// Without a quota of its own the COS passes the global default through.
	b.call(t, http.MethodPatch, "/api/v1/cos/gold", map[string]any{"mail_quota_bytes": nil}, http.StatusOK)
	b.call(t, http.MethodPatch, "/api/v1/config", map[string]any{"account_quota_bytes": 7 << 20}, http.StatusOK)
	b.caughtUp(t)
	require.Equal(t, quotaRule(7<<20), b.expectUser(t, dv, alice, true)["quota_rule"])
	b.expectUser(t, dv, plain, true) // the default COS, whatever it says

	// Unlocked, it logs in again; an account in a closed domain does not, nor is it a user.
	b.call(t, http.MethodPatch, "/api/v1/accounts/"+dave, map[string]any{"status": "active"}, http.StatusOK)
	b.call(t, http.MethodPost, "/api/v1/domains/"+dom+"/close", nil, http.StatusOK)
	b.caughtUp(t)
	expectAuth(t, dv, authCase{dave, davePW, false}, authCase{alice, "alice-password-2", false}, authCase{plain, carolPW, true})
	b.expectUser(t, dv, alice, false)
}
