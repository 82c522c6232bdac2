// Package ldap is the LDAP projection: it keeps the directory Postfix and Dovecot read in step
// with the events (docs/directory.md). The directory is written by nothing else; its entries are
// computed from the events alone, so it can be thrown away and rebuilt identical at any time.
package ldap

import (
	"strings"

	goldap "github.com/go-ldap/ldap/v3"
)

// DIT names the entries under a base DN (docs/directory.md):
//
//	dc=<domain>,ou=domains,BASE        a hosted domain
//	mail=<address>,ou=accounts,BASE    an account, its aliases as mailLocalAddress
//	mail=<address>,ou=lists,BASE       a mailing list (next: lists and resources)
//	mail=<address>,ou=resources,BASE   a resource
//	cn=<projection>,ou=projections,BASE the projection's checkpoint
type DIT struct {
	Base string
}

// The organisational units the projection owns, under the base.
const (
	OUDomains     = "domains"
	OUAccounts    = "accounts"
	OULists       = "lists"
	OUResources   = "resources"
	OUProjections = "projections"
)

// OwnedOUs are the subtrees whose entries the projection computes; anything else under the base
// (ou=services with the readers' DNs) is not its to touch.
var OwnedOUs = []string{OUDomains, OUAccounts, OULists, OUResources}

// OU returns the DN of an organisational unit under the base.
func (d DIT) OU(name string) string { return "ou=" + name + "," + d.Base }

// Domain returns a domain entry's DN (the domain in its ASCII, lower-case form).
func (d DIT) Domain(name string) string {
	return "dc=" + goldap.EscapeDN(name) + "," + d.OU(OUDomains)
}

// Account returns an account entry's DN.
func (d DIT) Account(address string) string {
	return "mail=" + escapeDNValue(address) + "," + d.OU(OUAccounts)
}

// List returns a mailing list entry's DN.
func (d DIT) List(address string) string {
	return "mail=" + escapeDNValue(address) + "," + d.OU(OULists)
}

// Resource returns a resource entry's DN.
func (d DIT) Resource(address string) string {
	return "mail=" + escapeDNValue(address) + "," + d.OU(OUResources)
}

// Checkpoint returns the DN of a projection's checkpoint entry.
func (d DIT) Checkpoint(projection string) string {
	return "cn=" + escapeDNValue(projection) + "," + d.OU(OUProjections)
}

// escapeDNValue escapes an attribute value for a DN (RFC 4514). go-ldap's EscapeDN leaves '='
// alone, which RFC 4514 allows but some parsers trip over; it is escaped here too, so that
// every DN this package builds parses back to exactly the value it was built from.
func escapeDNValue(v string) string {
	return strings.ReplaceAll(goldap.EscapeDN(v), "=", `\=`)
}

// keeperName names an entry the projection keeps under each unit it owns, so that no unit ever
// loses its last child: slapd 2.5.13 fails a whole transaction (result 80, "mdb_delete:
// txn_commit failed: MDB_NOTFOUND") in which a delete leaves its parent without children. Readers
// never match it (an organizationalRole); rebuilds leave it alone.
const keeperName = "mailplane-keeper"

// Keeper returns the DN of a unit's keeper entry.
func (d DIT) Keeper(ou string) string { return "cn=" + keeperName + "," + d.OU(ou) }

// keeperAttrs are a keeper entry's attributes.
var keeperAttrs = map[string][]string{"cn": {keeperName},
	"description": {"keeps this unit from ever being empty (slapd 2.5.13: a transaction whose delete empties a parent fails)"}}
