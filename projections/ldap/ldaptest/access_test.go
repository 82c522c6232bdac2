package ldaptest_test

import (
	"testing"

	"github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/require"

	"mailplane/projections/ldap/ldaptest"
)

// search runs a search and returns its entries; a "no such object" gives none (slapd
// answers it for a base the client may not see).
func search(t *testing.T, conn *ldap.Conn, base string, scope int, filter string, attrs ...string) []*ldap.Entry {
	t.Helper()
	res, err := conn.Search(ldap.NewSearchRequest(base, scope, ldap.NeverDerefAliases, 0, 0, false, filter, attrs, nil))
	if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
		return nil
	}
	require.NoError(t, err, "search %s %s", base, filter)
	return res.Entries
}

// accessFixture adds an account with a password and a checkpoint below d.
func accessFixture(t *testing.T, d *ldaptest.Directory) {
	t.Helper()
	d.Add(t, d.AccountDN("alice@example.test"), map[string][]string{
		"objectClass":       {"inetOrgPerson", "inetLocalMailRecipient", "mailplaneAccount"},
		"mail":              {"alice@example.test"},
		"uid":               {"alice@example.test"},
		"cn":                {"Alice"},
		"sn":                {"Alice"},
		"mailplaneLogin":    {"TRUE"},
		"mailplaneDelivery": {"accept"},
		"userPassword":      {ldaptest.Argon2Password(alicePassword)},
	})
	addCheckpoint(t, d)
}

// addCheckpoint adds a projection's checkpoint below d.
func addCheckpoint(t *testing.T, d *ldaptest.Directory) {
	t.Helper()
	d.Add(t, d.CheckpointDN("ldap"), map[string][]string{
		"objectClass":         {"mailplaneProjection"},
		"cn":                  {"ldap"},
		"mailplaneCheckpoint": {"12345:678"},
	})
}

// Anonymous clients read the root DSE and the schema, and nothing of the data.
func TestAnonymousSeesOnlyRootDSEAndSchema(t *testing.T) {
	t.Parallel()
	d := ldaptest.New(t)
	accessFixture(t, d)
	anon := d.Reader(t, ldaptest.Credentials{})

	dse := search(t, anon, "", ldap.ScopeBaseObject, "(objectClass=*)", "namingContexts", "supportedExtension")
	require.Len(t, dse, 1)
	require.Equal(t, []string{d.Env.Suffix}, dse[0].GetAttributeValues("namingContexts"))

	schema := search(t, anon, "cn=Subschema", ldap.ScopeBaseObject, "(objectClass=*)", "objectClasses", "attributeTypes")
	require.Len(t, schema, 1)
	require.Contains(t, joined(schema[0].GetAttributeValues("objectClasses")), "NAME 'mailplaneProjection'")
	require.Contains(t, joined(schema[0].GetAttributeValues("attributeTypes")), "NAME 'mailplaneLogin'")

	for _, base := range []string{d.Env.Suffix, d.Base, d.Container(ldaptest.Accounts), d.AccountDN("alice@example.test"),
		"ou=services," + d.Env.Suffix, d.CheckpointDN("ldap")} {
		require.Empty(t, search(t, anon, base, ldap.ScopeWholeSubtree, "(objectClass=*)"), base)
	}
	// A filter on the password tells nothing either.
	require.Empty(t, search(t, anon, d.Env.Suffix, ldap.ScopeWholeSubtree, "(userPassword=*)"))
}

func joined(values []string) string {
	s := ""
	for _, v := range values {
		s += v + "\n"
	}
	return s
}

// Postfix and Dovecot read domains, accounts, lists and resources, but neither passwords,
// nor checkpoints, nor the services' entries, and write nothing.
func TestReadersReadMailDataOnly(t *testing.T) {
	t.Parallel()
	d := ldaptest.New(t)
	accessFixture(t, d)

	for name, c := range map[string]ldaptest.Credentials{"postfix": d.Env.Postfix, "dovecot": d.Env.Dovecot} {
		t.Run(name, func(t *testing.T) {
			conn := d.Reader(t, c)
			got := search(t, conn, d.Base, ldap.ScopeWholeSubtree, ldaptest.Eq("mail", "alice@example.test"), "*")
			require.Len(t, got, 1)
			require.Equal(t, "TRUE", got[0].GetAttributeValue("mailplaneLogin"))
			require.Empty(t, got[0].GetAttributeValues("userPassword"))
			require.Empty(t, search(t, conn, d.Base, ldap.ScopeWholeSubtree, "(userPassword=*)"))

			// The containers are readable, the checkpoints are not (at any base).
			require.Len(t, search(t, conn, d.Base, ldap.ScopeSingleLevel, "(objectClass=*)"), 4) // no ou=projections
			require.Empty(t, search(t, conn, d.Container(ldaptest.Projections), ldap.ScopeWholeSubtree, "(objectClass=*)"))
			require.Empty(t, search(t, conn, d.Base, ldap.ScopeWholeSubtree, "(mailplaneCheckpoint=*)"))
			require.Empty(t, search(t, conn, "ou=projections,"+d.Env.Suffix, ldap.ScopeWholeSubtree, "(objectClass=*)"))
			require.Empty(t, search(t, conn, "ou=services,"+d.Env.Suffix, ldap.ScopeWholeSubtree, "(objectClass=*)"))
			// From the suffix, only mail data.
			for _, e := range search(t, conn, d.Env.Suffix, ldap.ScopeWholeSubtree, "(objectClass=*)", "1.1") {
				parsed, err := ldap.ParseDN(e.DN)
				require.NoError(t, err)
				var ous []string
				for _, rdn := range parsed.RDNs {
					if rdn.Attributes[0].Type == "ou" {
						ous = append(ous, rdn.Attributes[0].Value)
					}
				}
				require.Subset(t, []string{"domains", "accounts", "lists", "resources"}, ous[:1], e.DN)
			}

			add := ldap.NewAddRequest(d.AccountDN("mallory@example.test"), nil)
			add.Attribute("objectClass", []string{"inetOrgPerson"})
			add.Attribute("mail", []string{"mallory@example.test"})
			add.Attribute("cn", []string{"m"})
			add.Attribute("sn", []string{"m"})
			require.True(t, ldap.IsErrorWithCode(conn.Add(add), ldap.LDAPResultInsufficientAccessRights))
			mod := ldap.NewModifyRequest(d.AccountDN("alice@example.test"), nil)
			mod.Replace("mailplaneLogin", []string{"FALSE"})
			require.True(t, ldap.IsErrorWithCode(conn.Modify(mod), ldap.LDAPResultInsufficientAccessRights))
		})
	}
}

// An account binds with its {ARGON2} password (this is what Dovecot's auth_bind does),
// until the projection removes the password; it cannot read its own entry or change it.
func TestAccountsBindWithTheirArgon2Password(t *testing.T) {
	t.Parallel()
	d := ldaptest.New(t)
	accessFixture(t, d)
	dn := d.AccountDN("alice@example.test")

	alice, err := ldaptest.Dial(d.URL, ldaptest.Credentials{DN: dn, Password: alicePassword})
	require.NoError(t, err)
	defer alice.Close()
	who, err := alice.WhoAmI(nil)
	require.NoError(t, err)
	require.Equal(t, "dn:"+dn, who.AuthzID)
	require.Empty(t, search(t, alice, dn, ldap.ScopeBaseObject, "(objectClass=*)"))
	mod := ldap.NewModifyRequest(dn, nil)
	mod.Replace("userPassword", []string{"{CLEARTEXT}x"})
	require.True(t, ldap.IsErrorWithCode(alice.Modify(mod), ldap.LDAPResultInsufficientAccessRights))

	_, err = ldaptest.Dial(d.URL, ldaptest.Credentials{DN: dn, Password: "wrong"})
	require.True(t, ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials), "%v", err)

	del := ldap.NewModifyRequest(dn, nil)
	del.Delete("userPassword", nil)
	require.NoError(t, d.Admin(t).Modify(del))
	_, err = ldaptest.Dial(d.URL, ldaptest.Credentials{DN: dn, Password: alicePassword})
	require.True(t, ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials), "%v", err)
}
