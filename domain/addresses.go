package domain

import (
	"fmt"
	"slices"
	"strings"
)

// maxReportedPerField bounds the errors one list of addresses reports: a request with ten
// thousand bad members gets the first ones and a count, not a megabyte of problems.
const maxReportedPerField = 20

// compareAddresses orders addresses as their strings (local@domain) would sort, without
// building them: member lists are sorted on every load of a list's stream.
func compareAddresses(a, b Address) int {
	la, lb := len(a.Local), len(b.Local)
	n := min(la, lb)
	if c := strings.Compare(a.Local[:n], b.Local[:n]); c != 0 {
		return c
	}
	switch {
	case la == lb:
		return strings.Compare(a.Domain, b.Domain)
	case la < lb:
		// a continues with '@', b with the rest of its local part.
		return cmpByte('@', b.Local[n])
	default:
		return cmpByte(a.Local[n], '@')
	}
}

func cmpByte(x, y byte) int {
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

// sortedSet sorts addresses and drops duplicates, in place.
func sortedSet(as []Address) []Address {
	slices.SortFunc(as, compareAddresses)
	return slices.CompactFunc(as, func(x, y Address) bool { return x == y })
}

// containsSorted reports whether a sorted slice holds a.
func containsSorted(sorted []Address, a Address) bool {
	_, found := slices.BinarySearchFunc(sorted, a, compareAddresses)
	return found
}

// mergeSorted returns the union of two sorted sets as a new slice.
func mergeSorted(a, b []Address) []Address {
	out := make([]Address, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch c := compareAddresses(a[i], b[j]); {
		case c < 0:
			out = append(out, a[i])
			i++
		case c > 0:
			out = append(out, b[j])
			j++
		default:
			out = append(out, a[i])
			i, j = i+1, j+1
		}
	}
	out = append(out, a[i:]...)
	return append(out, b[j:]...)
}

// subtractSorted returns a without the addresses of the sorted set b, as a new slice.
func subtractSorted(a, b []Address) []Address {
	out := make([]Address, 0, len(a))
	for _, x := range a {
		if !containsSorted(b, x) {
			out = append(out, x)
		}
	}
	return out
}

func addressStrings(as []Address) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.String()
	}
	return out
}

// addressParser parses many addresses, normalising each distinct domain once: the members of
// a list mostly share a few domains, and IDNA normalisation is the costly part of a parse.
type addressParser struct {
	domains map[string]domainParse
}

type domainParse struct {
	ascii string
	msg   string
}

func (p *addressParser) parse(s string) (Address, string) {
	i := strings.LastIndexByte(s, '@')
	if i < 0 {
		return Address{}, "must be local-part@domain"
	}
	local, dom := strings.ToLower(s[:i]), s[i+1:]
	if msg := checkLocalPart(local); msg != "" {
		return Address{}, msg
	}
	if p.domains == nil {
		p.domains = map[string]domainParse{}
	}
	d, ok := p.domains[dom]
	if !ok {
		ascii, _, err := NormalizeDomainName(dom)
		if err != nil {
			d.msg = "domain: " + firstMessage(err)
		}
		d.ascii = ascii
		p.domains[dom] = d
	}
	if d.msg != "" {
		return Address{}, d.msg
	}
	if len(local)+1+len(d.ascii) > maxAddressLength {
		return Address{}, fmt.Sprintf("longer than %d octets", maxAddressLength)
	}
	return Address{Local: local, Domain: d.ascii}, ""
}

// addressList parses a list of addresses given for field, at most max of them (max < 0: any
// number), and returns them sorted without duplicates. Each bad one is reported as
// field[i] (the first few; then a count of the rest).
func addressList(fe *fieldErrors, p *addressParser, field string, in []string, max int) []Address {
	if max >= 0 && len(in) > max {
		fe.add(field, fmt.Sprintf("at most %d addresses at a time (got %d)", max, len(in)))
		return nil
	}
	out := make([]Address, 0, len(in))
	bad := 0
	for i, s := range in {
		a, msg := p.parse(s)
		if msg != "" {
			bad++
			if bad <= maxReportedPerField {
				fe.add(fmt.Sprintf("%s[%d]", field, i), msg)
			}
			continue
		}
		out = append(out, a)
	}
	if bad > maxReportedPerField {
		fe.add(field, fmt.Sprintf("%d more invalid addresses not listed", bad-maxReportedPerField))
	}
	return sortedSet(out)
}

// indexOf finds the position of a in the request's list, for a field error naming it.
func indexOf(p *addressParser, in []string, a Address) int {
	for i, s := range in {
		if b, msg := p.parse(s); msg == "" && b == a {
			return i
		}
	}
	return -1
}

// ParseAddresses parses addresses for callers that need them before a decision (to load the
// accounts or domains it reads); unparseable ones are left out, the decision reports them.
func ParseAddresses(in []string) []Address {
	var p addressParser
	out := make([]Address, 0, len(in))
	for _, s := range in {
		if a, msg := p.parse(s); msg == "" {
			out = append(out, a)
		}
	}
	return sortedSet(out)
}
