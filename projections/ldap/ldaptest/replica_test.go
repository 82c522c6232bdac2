package ldaptest_test

import (
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/require"

	"mailplane/projections/ldap/ldaptest"
)

// The syncrepl consumer gets what the provider gets, passwords and checkpoints included,
// within moments; it serves readers with the same access rules, and refers writes to
// the provider.
func TestReplicaFollowsTheProvider(t *testing.T) {
	t.Parallel()
	d := ldaptest.New(t)
	r := d.Replica(t)
	replica := r.Dial(t, r.URL, d.Env.Admin) // the rootdn reads everything on the consumer too

	fixture(t, d)
	addCheckpoint(t, d)
	start := time.Now()
	dn := d.CheckpointDN("ldap") // the last entry written
	for len(search(t, replica, dn, ldap.ScopeBaseObject, "(objectClass=*)")) == 0 {
		require.Less(t, time.Since(start), 5*time.Second, "%s did not reach the consumer", dn)
		time.Sleep(2 * time.Millisecond)
	}
	t.Logf("the last entry written reached the consumer %s later", time.Since(start).Round(time.Microsecond))
	d.WaitReplicated(t, 5*time.Second)
	want := d.Dump(t, d.Admin(t), d.Base)
	require.Equal(t, want, d.Dump(t, replica, d.Base))
	require.NotEmpty(t, want)

	// A change and a deletion follow.
	start = time.Now()
	alice := d.AccountDN("alice@example.test")
	mod := ldap.NewModifyRequest(alice, nil)
	mod.Replace("mailplaneLogin", []string{"FALSE"})
	mod.Delete("userPassword", nil)
	require.NoError(t, d.Admin(t).Modify(mod))
	require.NoError(t, d.Admin(t).Del(ldap.NewDelRequest(d.AccountDN("erin@example.test"), nil)))
	d.WaitReplicated(t, 5*time.Second)
	t.Logf("a modify and a delete reached the consumer in %s", time.Since(start).Round(time.Millisecond))
	require.Equal(t, d.Dump(t, d.Admin(t), d.Base), d.Dump(t, replica, d.Base))

	// Writes, even the rootdn's, are referred to the provider.
	add := ldap.NewAddRequest(d.AccountDN("new@example.test"), nil)
	add.Attribute("objectClass", []string{"inetOrgPerson"})
	add.Attribute("mail", []string{"new@example.test"})
	add.Attribute("cn", []string{"n"})
	add.Attribute("sn", []string{"n"})
	err := replica.Add(add)
	require.True(t, ldap.IsErrorWithCode(err, ldap.LDAPResultReferral), "%v", err)
	res, err := replica.ModifyWithResult(mod)
	require.True(t, ldap.IsErrorWithCode(err, ldap.LDAPResultReferral), "%v", err)
	require.Contains(t, res.Referral, d.Env.URL)

	// Readers: the same rules as on the provider, and the same answers.
	postfix := r.Reader(t, d.Env.Postfix)
	got := search(t, postfix, d.Base, ldap.ScopeWholeSubtree, ldaptest.Eq("mail", "alice@example.test"), "*", "userPassword")
	require.Len(t, got, 1)
	require.Equal(t, "FALSE", got[0].GetAttributeValue("mailplaneLogin"))
	require.Empty(t, search(t, postfix, d.Base, ldap.ScopeWholeSubtree, "(userPassword=*)"))
	require.Empty(t, search(t, postfix, d.Container(ldaptest.Projections), ldap.ScopeWholeSubtree, "(objectClass=*)"))
	require.Empty(t, search(t, r.Reader(t, ldaptest.Credentials{}), d.Base, ldap.ScopeWholeSubtree, "(objectClass=*)"))

	value, found, err := r.Postmap(t, "virtual_mailbox_maps").Query("dave@example.test")
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, "example.test/dave/", value)
	_, found, err = r.Postmap(t, "virtual_mailbox_maps").Query("erin@example.test")
	require.NoError(t, err)
	require.False(t, found)

	// Binds as accounts work on the consumer: it has the {ARGON2} hashes.
	dv := r.Dovecot(t)
	ok, err := dv.AuthTest("dave@example.test", davePassword)
	require.NoError(t, err)
	require.False(t, ok) // mailplaneLogin FALSE
	mod = ldap.NewModifyRequest(d.AccountDN("dave@example.test"), nil)
	mod.Replace("mailplaneLogin", []string{"TRUE"})
	require.NoError(t, d.Admin(t).Modify(mod))
	d.WaitReplicated(t, 5*time.Second)
	ok, err = dv.AuthTest("dave@example.test", davePassword)
	require.NoError(t, err)
	require.True(t, ok)
}
