package ldap

import (
	"hash/fnv"
	"slices"
	"strings"

	goldap "github.com/go-ldap/ldap/v3"
)

// Entry is a directory entry as the projection wants it: its DN, its object classes and the
// attributes it manages, each attribute's values sorted. Two entries with the same content have
// the same canonical form, whatever order they were built in.
type Entry struct {
	DN      string
	Classes []string
	// Attrs maps an attribute name (as the schema spells it) to its values; no empty lists.
	Attrs map[string][]string
	// Secret, when set, names what userPassword is computed from (the sealed hash in the
	// events) without holding the password hash itself: it is opened only when the entry is
	// written, and what the projection remembers of an entry never holds it.
	Secret string
}

// set adds an attribute when it has values (LDAP refuses empty values).
func (e *Entry) set(name string, values ...string) {
	var vs []string
	for _, v := range values {
		if v != "" {
			vs = append(vs, v)
		}
	}
	if len(vs) == 0 {
		return
	}
	if e.Attrs == nil {
		e.Attrs = map[string][]string{}
	}
	slices.Sort(vs)
	e.Attrs[name] = slices.Compact(vs)
}

// Canonical is the entry in one line per attribute, sorted: what comparisons and the
// projection's memory of what it wrote use.
func (e Entry) Canonical() string {
	var b strings.Builder
	b.WriteString("dn: " + e.DN + "\n")
	classes := slices.Clone(e.Classes)
	slices.Sort(classes)
	for _, c := range classes {
		b.WriteString("objectClass: " + c + "\n")
	}
	names := make([]string, 0, len(e.Attrs))
	for n := range e.Attrs {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		for _, v := range e.Attrs[n] {
			b.WriteString(n + ": " + v + "\n")
		}
	}
	if e.Secret != "" {
		b.WriteString("userPassword;sealed: " + e.Secret + "\n")
	}
	return b.String()
}

// classKey names the entry's object classes, in order, for telling whether a modify can turn
// the directory's entry into this one.
func (e Entry) classKey() string {
	c := slices.Clone(e.Classes)
	slices.Sort(c)
	return strings.Join(c, ",")
}

// fingerprint is a short digest of the canonical form.
func (e Entry) fingerprint() uint64 {
	h := fnv.New64a()
	h.Write([]byte(e.Canonical()))
	return h.Sum64()
}

// kind is what sort of entry this is, by its subtree: the attributes each kind manages are the
// ones a modify replaces.
type kind struct {
	classes []string
	managed []string
}

var (
	domainKind = kind{
		classes: []string{"domain", "domainRelatedObject", "mailplaneDomainEntry"},
		managed: []string{"associatedDomain", "mailplaneDomain", "mailplaneStatus", "mailplaneDelivery"},
	}
	accountKind = kind{
		classes: []string{"inetOrgPerson", "inetLocalMailRecipient", "mailplaneAccount"},
		managed: []string{"uid", "cn", "sn", "displayName", "mailLocalAddress", "mailplaneDomain",
			"mailplaneStatus", "mailplaneCOS", "mailplaneQuota", "mailplaneLogin", "mailplaneDelivery", "userPassword"},
	}
)

var (
	// Lists: static ones are nisMailAlias (members as rfc822MailMember), dynamic ones
	// groupOfURLs (a memberURL Postfix follows); both structural, hence two kinds.
	staticListKind = kind{
		classes: []string{"nisMailAlias", "inetLocalMailRecipient", "mailplaneList"},
		managed: []string{"cn", "mailLocalAddress", "rfc822MailMember", "displayName", "description",
			"mailplaneDomain", "mailplaneHideInGAL", "mailplaneDelivery"},
	}
	dynamicListKind = kind{
		classes: []string{"groupOfURLs", "inetLocalMailRecipient", "mailplaneList"},
		managed: []string{"cn", "mailLocalAddress", "memberURL", "displayName", "description",
			"mailplaneDomain", "mailplaneHideInGAL", "mailplaneDelivery"},
	}
	resourceKind = kind{
		classes: []string{"inetOrgPerson", "inetLocalMailRecipient", "mailplaneResource"},
		managed: []string{"uid", "cn", "sn", "displayName", "mailLocalAddress", "l", "mailplaneDomain", "mailplaneKind",
			"mailplaneCapacity", "mailplaneBookingPolicy", "mailplaneMaxConflicts", "mailplaneNotify", "mailplaneDelivery"},
	}
)

// addRequest is the LDAP add of the entry, with the password hash given.
func (e Entry) addRequest(password string, controls []goldap.Control) *goldap.AddRequest {
	r := goldap.NewAddRequest(e.DN, controls)
	r.Attribute("objectClass", e.Classes)
	names := make([]string, 0, len(e.Attrs))
	for n := range e.Attrs {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		r.Attribute(n, e.Attrs[n])
	}
	if password != "" {
		r.Attribute("userPassword", []string{password})
	}
	return r
}

// modifyRequest replaces every attribute the entry's kind manages with the entry's values
// (none: the attribute goes), so that applying it twice, or onto whatever the entry held, leaves
// exactly the entry. The naming attribute and the object classes never change.
func (e Entry) modifyRequest(k kind, password string, controls []goldap.Control) *goldap.ModifyRequest {
	r := goldap.NewModifyRequest(e.DN, controls)
	for _, n := range k.managed {
		vs := e.Attrs[n]
		if n == "userPassword" && password != "" {
			vs = []string{password}
		}
		r.Replace(n, vs)
	}
	return r
}
