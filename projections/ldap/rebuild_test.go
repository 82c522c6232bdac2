package ldap_test

import (
	"context"
	"net/http"
	"testing"

	goldap "github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/require"

	"mailplane/api/apitest"
	"mailplane/projections"
	"mailplane/projections/ldap"
	"mailplane/projections/ldap/ldaptest"
)

// history is a realistic stretch of commands: a COS with a quota and a later change of it,
// domains with an account quota, accounts with aliases and passwords, a locked account, a
// closed domain, a deleted account, an alias removed. It returns the addresses of an account
// with a password that may log in, and of its password.
func history(t *testing.T, b *bundle) (addr, password string) {
	t.Helper()
	e := b.e
	ok := func(r apitest.Response, want int) {
		t.Helper()
		require.Equal(t, want, r.Status, "%s", r.Body)
	}
	cos := apitest.Unique("gold")
	r := e.Do(t, http.MethodPost, "/api/v1/cos", e.AdminToken, map[string]any{"name": cos, "mail_quota_bytes": 7 << 20})
	ok(r, http.StatusCreated)

	dom := e.CreateDomain(t, map[string]any{"limits": map[string]any{"account_quota_bytes": 5 << 20}})
	addr = e.CreateAccount(t, dom, map[string]any{"local_part": "alice", "display_name": "Alice Liddell", "password": "wonderland-1"})
	for _, al := range []string{"al@" + dom, "a.liddell@" + dom} {
		r = e.Do(t, http.MethodPost, "/api/v1/accounts/"+addr+"/aliases", e.AdminToken, map[string]any{"alias": al})
		ok(r, http.StatusCreated)
	}
	// A new account takes its domain's account quota as its own; in a domain without one, the
	// COS's applies.
	plain := e.CreateDomain(t, nil)
	gold := e.CreateAccount(t, plain, map[string]any{"local_part": "bob", "display_name": "Bob Ærø", "password": "builder-22", "cos": cos})
	r = e.Do(t, http.MethodPost, "/api/v1/accounts/"+gold+"/aliases", e.AdminToken, map[string]any{"alias": "robert@" + plain})
	ok(r, http.StatusCreated)
	locked := e.CreateAccount(t, dom, map[string]any{"password": "locked-out-3"})
	r = e.Do(t, http.MethodPatch, "/api/v1/accounts/"+locked, e.AdminToken, map[string]any{"status": "locked"})
	ok(r, http.StatusOK)
	gone := e.CreateAccount(t, dom, map[string]any{"password": "soon-gone-4"})
	r = e.Do(t, http.MethodPost, "/api/v1/accounts/"+gone+"/aliases", e.AdminToken, map[string]any{"alias": "ghost@" + dom})
	ok(r, http.StatusCreated)
	r = e.Do(t, http.MethodDelete, "/api/v1/accounts/"+gone, e.AdminToken, nil)
	ok(r, http.StatusNoContent)
	r = e.Do(t, http.MethodDelete, "/api/v1/accounts/"+addr+"/aliases/a.liddell@"+dom, e.AdminToken, nil)
	ok(r, http.StatusNoContent)

	closed := e.CreateDomain(t, nil)
	e.CreateAccount(t, closed, map[string]any{"password": "closed-5", "cos": cos})
	e.CreateAccount(t, closed, nil)
	r = e.Do(t, http.MethodPost, "/api/v1/domains/"+closed+"/close", e.AdminToken, nil)
	ok(r, http.StatusOK)

	// The COS's quota changes: every account of that COS gets the new one.
	r = e.Do(t, http.MethodPatch, "/api/v1/cos/"+cos, e.AdminToken, map[string]any{"mail_quota_bytes": 9 << 20})
	ok(r, http.StatusOK)
	r = e.Do(t, http.MethodPatch, "/api/v1/accounts/"+addr, e.AdminToken, map[string]any{"display_name": "Alice"})
	ok(r, http.StatusOK)
	b.caughtUp(t)
	require.Equal(t, []string{"9437184"}, b.entry(t, b.dit.Account(gold)).Get("mailplaneQuota"), "the COS change reached the directory")
	return addr, "wonderland-1"
}

// rebuildOptions rebuild the directory below base with the bundle's events.
func (b *bundle) rebuildOptions(base string) ldap.RebuildOptions {
	return ldap.RebuildOptions{
		Directory: ldap.Config{URL: b.d.Env.URL, BindDN: b.d.Env.Admin.DN, Password: b.d.Env.Admin.Password, DIT: ldap.DIT{Base: base}},
		Pool:      b.e.Pool, Registry: b.e.Registry, Keyring: b.e.Keyring, Logger: quiet(), BatchOps: 7,
	}
}

func (b *bundle) rebuild(t *testing.T, base string) *ldap.RebuildSummary {
	t.Helper()
	sum, err := ldap.Rebuild(context.Background(), b.rebuildOptions(base))
	require.NoError(t, err)
	return sum
}

// tree is the directory below base as the rootdn reads it (userPassword included), relative to
// base, so that two bases compare.
func tree(t *testing.T, d *ldaptest.Directory, base string) []ldaptest.Entry {
	t.Helper()
	return ldaptest.Relative(d.Dump(t, d.Admin(t), base), base)
}

// A rebuild into an empty base ends entry by entry, attribute by attribute, passwords and
// checkpoint included, as the live projection left its own base; the live projection then goes
// on from the rebuilt checkpoint; and while it runs, a rebuild refuses.
func TestRebuildEqualsTheLiveProjection(t *testing.T) {
	b := setup(t)
	addr, pw := history(t, b)
	live := tree(t, b.d, b.d.Base)
	var passwords int
	for _, e := range live {
		passwords += len(e.Get("userPassword"))
	}
	require.Equal(t, 3, passwords, "alice, bob and the bootstrap admin may log in; the locked and closed accounts may not")
	b.stop()

	fresh := ldaptest.New(t)
	sum := b.rebuild(t, fresh.Base)
	require.Equal(t, live, tree(t, fresh, fresh.Base))
	require.Equal(t, sum.Entries, sum.Added)
	require.Zero(t, sum.Changed+sum.Deleted+sum.Unchanged)
	require.Greater(t, sum.Transactions, 1, "BatchOps 7 splits the adds")
	require.NoError(t, bind(t, fresh.Env.URL, ldap.DIT{Base: fresh.Base}.Account(addr), pw), "the rebuilt {ARGON2} hash binds")

	// Rebuilding what is already right changes nothing but the checkpoint.
	again := b.rebuild(t, fresh.Base)
	require.Zero(t, again.Differences())
	require.Equal(t, sum.Entries, again.Unchanged)
	require.Zero(t, again.Operations)
	require.Equal(t, 1, again.Transactions)

	// The projection takes over from the rebuilt checkpoint.
	cfg := ldap.Config{URL: b.d.Env.URL, BindDN: b.d.Env.Admin.DN, Password: b.d.Env.Admin.Password, DIT: ldap.DIT{Base: fresh.Base}}
	b.start(t, cfg)
	requireActive(t, b.p)
	_, err := ldap.Rebuild(context.Background(), b.rebuildOptions(fresh.Base))
	require.ErrorIs(t, err, projections.ErrRunning)

	dom := b.e.CreateDomain(t, nil)
	later := b.e.CreateAccount(t, dom, map[string]any{"password": "after-the-rebuild-6"})
	r := b.e.Do(t, http.MethodPatch, "/api/v1/accounts/"+addr, b.e.AdminToken, map[string]any{"display_name": "Alice L."})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	b.caughtUp(t)
	fb := &bundle{e: b.e, d: fresh, dit: ldap.DIT{Base: fresh.Base}}
	require.NotNil(t, fb.entry(t, fb.dit.Account(later)))
	require.Equal(t, []string{"Alice L."}, fb.entry(t, fb.dit.Account(addr)).Get("displayName"))
	b.stop()
	require.Zero(t, b.rebuild(t, fresh.Base).Differences(), "the projection went on from the rebuilt state")
}

// A rebuild repairs a directory someone changed by hand — an entry deleted, one added, values
// changed, a password replaced, an attribute the projection does not write, another object
// class — and its summary names each; what is outside the owned subtrees stays.
func TestRebuildRepairsATamperedDirectory(t *testing.T) {
	b := setup(t)
	addr, pw := history(t, b)
	want := tree(t, b.d, b.d.Base)
	b.stop()

	admin := b.d.Admin(t)
	var accounts []string
	for _, e := range b.d.Dump(t, admin, b.d.Container(ldaptest.Accounts)) {
		if len(e.Get("mail")) > 0 && e.Get("mail")[0] != addr {
			accounts = append(accounts, e.DN)
		}
	}
	require.GreaterOrEqual(t, len(accounts), 3)
	deleted, quota, described := accounts[0], accounts[1], accounts[2]
	require.NoError(t, admin.Del(goldap.NewDelRequest(deleted, nil)))
	intruder := ldaptest.RDN("mail", "intruder@nowhere.example") + "," + b.d.Container(ldaptest.Accounts)
	b.d.Add(t, intruder, map[string][]string{"objectClass": {"inetOrgPerson"}, "mail": {"intruder@nowhere.example"},
		"cn": {"x"}, "sn": {"x"}})
	child := ldaptest.RDN("cn", "note") + "," + quota
	b.d.Add(t, child, map[string][]string{"objectClass": {"organizationalRole"}, "cn": {"note"}})
	modify := func(dn string, f func(*goldap.ModifyRequest)) {
		r := goldap.NewModifyRequest(dn, nil)
		f(r)
		require.NoError(t, admin.Modify(r))
	}
	modify(quota, func(r *goldap.ModifyRequest) { r.Replace("mailplaneQuota", []string{"1"}) })
	modify(described, func(r *goldap.ModifyRequest) { r.Add("description", []string{"added by hand"}) })
	alice := b.dit.Account(addr)
	modify(alice, func(r *goldap.ModifyRequest) {
		r.Replace("userPassword", []string{ldaptest.Argon2Password("someone-elses")})
		r.Delete("objectClass", []string{"inetLocalMailRecipient"})
		r.Delete("mailLocalAddress", nil)
	})
	services := b.d.Container("services")
	b.d.Add(t, services, map[string][]string{"objectClass": {"organizationalUnit"}, "ou": {"services"}})
	b.d.Add(t, "cn=someone,"+services, map[string][]string{"objectClass": {"organizationalRole"}, "cn": {"someone"}})
	require.Error(t, bind(t, b.d.Env.URL, alice, pw))

	sum := b.rebuild(t, b.d.Base)
	require.Equal(t, 1, sum.Added)
	require.Equal(t, []string{deleted}, canonical(t, sum.AddedDNs))
	require.Equal(t, 2, sum.Deleted)
	require.ElementsMatch(t, []string{intruder, child}, canonical(t, sum.DeletedDNs))
	require.Equal(t, 3, sum.Changed)
	require.ElementsMatch(t, []string{
		b.dit.Account(addr) + ": objectClass",
		dnOf(t, quota) + ": mailplaneQuota",
		dnOf(t, described) + ": description",
	}, sum.ChangedDNs)
	require.Equal(t, sum.Entries-4, sum.Unchanged)

	got := tree(t, b.d, b.d.Base)
	var kept []ldaptest.Entry
	for _, e := range got {
		if e.DN == "cn=someone,ou=services" || e.DN == "ou=services" {
			kept = append(kept, e)
		}
	}
	require.Len(t, kept, 2, "entries outside the owned subtrees are not the rebuild's")
	require.Equal(t, want, without(got, kept))
	require.NoError(t, bind(t, b.d.Env.URL, alice, pw))

	// A password alone differs: it is compared as the rootdn reads it.
	modify(alice, func(r *goldap.ModifyRequest) {
		r.Replace("userPassword", []string{ldaptest.Argon2Password("someone-elses")})
	})
	sum = b.rebuild(t, b.d.Base)
	require.Equal(t, []string{b.dit.Account(addr) + ": userPassword"}, sum.ChangedDNs)
	require.NoError(t, bind(t, b.d.Env.URL, alice, pw))
}

// canonical turns DNs into ldaptest's canonical spelling.
func canonical(t *testing.T, dns []string) []string {
	t.Helper()
	out := make([]string, len(dns))
	for i, dn := range dns {
		out[i] = dnOf(t, dn)
	}
	return out
}

func dnOf(t *testing.T, dn string) string {
	t.Helper()
	c, err := ldaptest.CanonicalDN(dn)
	require.NoError(t, err)
	return c
}

func without(entries, drop []ldaptest.Entry) []ldaptest.Entry {
	var out []ldaptest.Entry
next:
	for _, e := range entries {
		for _, d := range drop {
			if e.DN == d.DN {
				continue next
			}
		}
		out = append(out, e)
	}
	return out
}
