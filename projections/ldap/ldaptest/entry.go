package ldaptest

import (
	"fmt"
	"slices"
	"strings"

	"github.com/go-ldap/ldap/v3"
)

// Entry is a directory entry in canonical form, so that two trees compare with ==
// (require.Equal): the DN canonical (CanonicalDN), attribute names in lower case and
// sorted, each attribute's values sorted. Operational attributes are never part of it.
type Entry struct {
	DN         string
	Attributes []Attribute
}

// Attribute is one attribute of an Entry.
type Attribute struct {
	Name   string
	Values []string
}

// NewEntry returns the entry with DN dn and the attributes attrs, in canonical form. It
// panics on a DN that does not parse: entries in tests are written by hand.
func NewEntry(dn string, attrs map[string][]string) Entry {
	c, err := CanonicalDN(dn)
	if err != nil {
		panic(fmt.Sprintf("ldaptest.NewEntry: %v", err))
	}
	e := Entry{DN: c}
	byName := map[string][]string{}
	for name, values := range attrs {
		n := strings.ToLower(name)
		byName[n] = append(byName[n], values...)
	}
	for name, values := range byName {
		if len(values) == 0 {
			continue
		}
		v := slices.Clone(values)
		slices.Sort(v)
		e.Attributes = append(e.Attributes, Attribute{Name: name, Values: v})
	}
	slices.SortFunc(e.Attributes, func(a, b Attribute) int { return strings.Compare(a.Name, b.Name) })
	return e
}

// entryFrom turns a search result into its canonical form.
func entryFrom(e *ldap.Entry) (Entry, error) {
	if _, err := CanonicalDN(e.DN); err != nil {
		return Entry{}, err
	}
	attrs := make(map[string][]string, len(e.Attributes))
	for _, a := range e.Attributes {
		attrs[a.Name] = append(attrs[a.Name], a.Values...)
	}
	return NewEntry(e.DN, attrs), nil
}

// Get returns the values of the attribute name (any case), or nil.
func (e Entry) Get(name string) []string {
	name = strings.ToLower(name)
	for _, a := range e.Attributes {
		if a.Name == name {
			return a.Values
		}
	}
	return nil
}

// String renders the entry as LDIF-like text, one "name: value" line per value, for
// failure messages and diffs.
func (e Entry) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "dn: %s\n", e.DN)
	for _, a := range e.Attributes {
		for _, v := range a.Values {
			fmt.Fprintf(&b, "%s: %q\n", a.Name, v)
		}
	}
	return b.String()
}

// CanonicalDN returns dn in one spelling per name: attribute types in lower case, values
// escaped as ldap.EscapeDN does (UTF-8 kept as is, no hex escapes for it), the types of a
// multi-valued RDN in sorted order, no spaces around separators. Two DNs that name the
// same entry give the same string, except where a matching rule ignores case in a value.
func CanonicalDN(dn string) (string, error) {
	parsed, err := ldap.ParseDN(dn)
	if err != nil {
		return "", fmt.Errorf("DN %q: %w", dn, err)
	}
	return formatDN(parsed), nil
}

func formatDN(d *ldap.DN) string {
	rdns := make([]string, len(d.RDNs))
	for i, rdn := range d.RDNs {
		rdns[i] = formatRDN(rdn)
	}
	return strings.Join(rdns, ",")
}

func formatRDN(rdn *ldap.RelativeDN) string {
	parts := make([]string, len(rdn.Attributes))
	for i, a := range rdn.Attributes {
		parts[i] = strings.ToLower(a.Type) + "=" + ldap.EscapeDN(a.Value)
	}
	slices.Sort(parts)
	return strings.Join(parts, "+")
}

// RDN returns the canonical "type=value" of one RDN, the value escaped.
func RDN(attrType, value string) string {
	return strings.ToLower(attrType) + "=" + ldap.EscapeDN(value)
}

// Relative returns the entries below base with base removed from the end of their DNs,
// to compare two trees written below different bases. base itself, whose RDN differs
// between the two, and entries outside base are left out.
func Relative(entries []Entry, base string) []Entry {
	b, err := ldap.ParseDN(base)
	if err != nil {
		panic(fmt.Sprintf("ldaptest.Relative: %v", err))
	}
	var out []Entry
	for _, e := range entries {
		d, err := ldap.ParseDN(e.DN)
		if err != nil || !b.AncestorOfFold(d) {
			continue
		}
		d.RDNs = d.RDNs[:len(d.RDNs)-len(b.RDNs)]
		r := e
		r.DN = formatDN(d)
		out = append(out, r)
	}
	return out
}

// sortEntries orders entries as a tree, depth first: each entry, then its subtree, siblings
// by RDN.
func sortEntries(entries []Entry) {
	key := func(dn string) []string {
		parts := splitDN(dn)
		slices.Reverse(parts)
		return parts
	}
	slices.SortFunc(entries, func(a, b Entry) int { return slices.Compare(key(a.DN), key(b.DN)) })
}

// splitDN splits a canonical DN into its RDNs.
func splitDN(dn string) []string {
	d, err := ldap.ParseDN(dn)
	if err != nil {
		return []string{dn}
	}
	out := make([]string, len(d.RDNs))
	for i, r := range d.RDNs {
		out[i] = formatRDN(r)
	}
	return out
}
