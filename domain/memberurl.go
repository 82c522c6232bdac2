package domain

import (
	"fmt"
	"net/url"
	"strings"
	"unicode/utf8"
)

// Scopes a dynamic list's query may have: the accounts' entries sit one level below the
// directory's accounts node, so both find the same entries.
const (
	ScopeSub = "sub"
	ScopeOne = "one"
)

const maxMemberURLLength = 2048

// MemberURL is a dynamic list's query, parsed from its RFC 4516 LDAP URL. The URL names no
// host and no base DN: it runs against the platform's own directory, below the accounts, which
// the directory's writer puts in (docs/directory.md: ldap:///ou=accounts,BASE?mail?SCOPE?FILTER).
type MemberURL struct {
	Scope  string // ScopeSub or ScopeOne
	Filter string // RFC 4515, percent-decoded
}

// ParseMemberURL accepts ldap:///??sub?(filter) and ldap:///??one?(filter), with an empty
// attribute list or "mail" (what the directory writes): no host, no base DN, no extensions.
// Its errors are single-field validation errors on "dynamic.member_url" that say what to fix.
//
// The filter is checked here by the package's own RFC 4515 parser; callers that have an LDAP
// client library should also compile it with that and report its verdict through the
// command's FilterProblem, so that what is accepted is what the directory will run.
func ParseMemberURL(s string) (MemberURL, error) {
	bad := func(format string, args ...any) (MemberURL, error) {
		return MemberURL{}, Invalid("dynamic.member_url", fmt.Sprintf(format, args...))
	}
	switch {
	case s == "":
		return bad("required: an LDAP URL such as ldap:///??sub?(department=sales)")
	case len(s) > maxMemberURLLength:
		return bad("must be at most %d bytes", maxMemberURLLength)
	case !utf8.ValidString(s):
		return bad("must be valid UTF-8")
	}
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return bad("not an LDAP URL: write ldap:///??sub?(filter)")
	}
	if !strings.EqualFold(scheme, "ldap") {
		return bad("must start with ldap:/// (the query runs on the platform's own directory, not over %s)", scheme)
	}
	hostport, rest, _ := strings.Cut(rest, "/")
	if hostport != "" {
		return bad("must not name a host (%q): the query always runs against the platform's own directory; write ldap:///??sub?(filter)", hostport)
	}
	parts := strings.Split(rest, "?")
	if len(parts) > 4 {
		return bad("extensions are not supported (found %q after the filter)", strings.Join(parts[4:], "?"))
	}
	for len(parts) < 4 {
		parts = append(parts, "")
	}
	dn, attrs, scope, filter := parts[0], parts[1], parts[2], parts[3]
	if dn != "" {
		return bad("must not name a base DN (%q): members are searched among the platform's accounts; write ldap:///??sub?(filter)", unescapeForMessage(dn))
	}
	if a, err := url.PathUnescape(attrs); err != nil {
		return bad("attributes: bad percent-encoding")
	} else if a != "" && !strings.EqualFold(a, "mail") {
		return bad("attributes must be empty or mail, not %q: the members are the entries' mail addresses", a)
	}
	switch strings.ToLower(scope) {
	case ScopeSub, ScopeOne:
		scope = strings.ToLower(scope)
	case "":
		return bad("scope is required: sub or one (ldap:///??sub?(filter))")
	default:
		return bad("scope must be sub or one, not %q", scope)
	}
	f, err := url.PathUnescape(filter)
	if err != nil {
		return bad("filter: bad percent-encoding")
	}
	if f == "" {
		return bad("filter is required: ldap:///??%s?(filter)", scope)
	}
	if msg := checkLDAPFilter(f); msg != "" {
		return bad("filter %s: %s", f, msg)
	}
	return MemberURL{Scope: scope, Filter: f}, nil
}

// String is the URL in the form the platform stores: ldap:///??SCOPE?FILTER, the filter
// percent-encoded where RFC 4516 requires it.
func (m MemberURL) String() string {
	return "ldap:///??" + m.Scope + "?" + escapeURLFilter(m.Filter)
}

// escapeURLFilter percent-encodes what may not appear raw in an LDAP URL's filter: '%', '?',
// '#', spaces and anything outside printable ASCII. The filter's own operators stay readable.
func escapeURLFilter(f string) string {
	var b strings.Builder
	for i := 0; i < len(f); i++ {
		c := f[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("%?#", c) >= 0 {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func unescapeForMessage(s string) string {
	if u, err := url.PathUnescape(s); err == nil {
		return u
	}
	return s
}
