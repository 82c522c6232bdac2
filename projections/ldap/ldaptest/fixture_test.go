package ldaptest_test

import (
	"testing"

	"mailplane/projections/ldap/ldaptest"
)

// Passwords of the fixture's accounts.
const (
	alicePassword = "alice-pw-1"
	erinPassword  = "erin-pw-1"
	davePassword  = "dave-pw-1"
)

// fixture writes by hand, in d, the entries the LDAP projection will write (docs/directory.md),
// one of each case the readers tell apart:
//
//	example.test   active, accept
//	  alice        active: login, accept, quota 1 GiB, aliases al@ and alice.smith@
//	  bob          closed: no login, bounce, alias bobby@
//	  carol        maintenance: no login, defer, alias caro@
//	  dave         locked: no login, accept, quota 0 (unlimited); it has a password, which
//	               the projection would not write, so that mailplaneLogin alone refuses it
//	  erin         active: login, accept, no quota attribute
//	  st*r         active: accept (a filter metacharacter in the address)
//	  room         resource: accept, alias conf-room@
//	  team         static list (alice, erin, someone@else.test), alias team-alias@
//	  all          dynamic list: every account of ou=accounts that accepts mail
//	  old-list     static list, bounce
//	defer.test     maintenance, defer
//	  frank        active, but defer and no login through its domain
func fixture(t *testing.T, d *ldaptest.Directory) {
	t.Helper()
	domain := func(name, status, delivery string) {
		d.Add(t, d.DomainDN(name), map[string][]string{
			"objectClass":       {"domain", "domainRelatedObject", "mailplaneDomainEntry"},
			"dc":                {name},
			"associatedDomain":  {name},
			"mailplaneDomain":   {name},
			"mailplaneStatus":   {status},
			"mailplaneDelivery": {delivery},
		})
	}
	type account struct {
		addr, status, login, delivery, quota, password string
		aliases                                        []string
	}
	addAccount := func(a account) {
		attrs := map[string][]string{
			"objectClass":       {"inetOrgPerson", "inetLocalMailRecipient", "mailplaneAccount"},
			"mail":              {a.addr},
			"uid":               {a.addr},
			"cn":                {a.addr},
			"sn":                {a.addr},
			"displayName":       {a.addr},
			"mailplaneDomain":   {domainOf(a.addr)},
			"mailplaneStatus":   {a.status},
			"mailplaneCOS":      {"default"},
			"mailplaneLogin":    {a.login},
			"mailplaneDelivery": {a.delivery},
		}
		if a.quota != "" {
			attrs["mailplaneQuota"] = []string{a.quota}
		}
		if len(a.aliases) > 0 {
			attrs["mailLocalAddress"] = a.aliases
		}
		if a.password != "" {
			attrs["userPassword"] = []string{ldaptest.Argon2Password(a.password)}
		}
		d.Add(t, d.AccountDN(a.addr), attrs)
	}

	domain("example.test", "active", "accept")
	domain("defer.test", "maintenance", "defer")
	addAccount(account{addr: "alice@example.test", status: "active", login: "TRUE", delivery: "accept",
		quota: "1073741824", password: alicePassword, aliases: []string{"al@example.test", "alice.smith@example.test"}})
	addAccount(account{addr: "bob@example.test", status: "closed", login: "FALSE", delivery: "bounce",
		quota: "1073741824", aliases: []string{"bobby@example.test"}})
	addAccount(account{addr: "carol@example.test", status: "maintenance", login: "FALSE", delivery: "defer",
		aliases: []string{"caro@example.test"}})
	addAccount(account{addr: "dave@example.test", status: "locked", login: "FALSE", delivery: "accept", quota: "0",
		password: davePassword})
	addAccount(account{addr: "erin@example.test", status: "active", login: "TRUE", delivery: "accept", password: erinPassword})
	addAccount(account{addr: "st*r@example.test", status: "active", login: "FALSE", delivery: "accept"})
	addAccount(account{addr: "frank@defer.test", status: "active", login: "FALSE", delivery: "defer"})

	d.Add(t, d.ResourceDN("room@example.test"), map[string][]string{
		"objectClass":       {"inetOrgPerson", "inetLocalMailRecipient", "mailplaneResource"},
		"mail":              {"room@example.test"},
		"uid":               {"room@example.test"},
		"cn":                {"Room 1"},
		"sn":                {"Room 1"},
		"mailLocalAddress":  {"conf-room@example.test"},
		"mailplaneDomain":   {"example.test"},
		"mailplaneStatus":   {"active"},
		"mailplaneKind":     {"location"},
		"mailplaneDelivery": {"accept"},
	})
	staticList := func(addr, delivery string, aliases, members []string) {
		d.Add(t, d.ListDN(addr), map[string][]string{
			"objectClass":       {"nisMailAlias", "inetLocalMailRecipient", "mailplaneList"},
			"cn":                {addr},
			"mail":              {addr},
			"mailLocalAddress":  append([]string{addr}, aliases...),
			"rfc822MailMember":  members,
			"mailplaneDomain":   {domainOf(addr)},
			"mailplaneStatus":   {"active"},
			"mailplaneDelivery": {delivery},
		})
	}
	staticList("team@example.test", "accept", []string{"team-alias@example.test"},
		[]string{"alice@example.test", "erin@example.test", "someone@else.test"})
	staticList("old-list@example.test", "bounce", nil, []string{"alice@example.test"})
	d.Add(t, d.ListDN("all@example.test"), map[string][]string{
		"objectClass":        {"groupOfURLs", "inetLocalMailRecipient", "mailplaneList"},
		"cn":                 {"all@example.test"},
		"mail":               {"all@example.test"},
		"mailLocalAddress":   {"all@example.test"},
		"memberURL":          {"ldap:///" + d.Container(ldaptest.Accounts) + "?mail?one?(&(objectClass=mailplaneAccount)(mailplaneDelivery=accept))"},
		"mailplaneDomain":    {"example.test"},
		"mailplaneHideInGAL": {"FALSE"},
		"mailplaneStatus":    {"active"},
		"mailplaneDelivery":  {"accept"},
	})
}

func domainOf(addr string) string {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == '@' {
			return addr[i+1:]
		}
	}
	return ""
}
