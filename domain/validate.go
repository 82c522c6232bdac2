package domain

import (
	"fmt"
	"maps"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // time zone names validate the same on every host, with or without system tzdata
	"unicode"
	"unicode/utf8"
)

// Text limits. The API has none of its own; these keep a directory entry and
// a list row readable and bound what one request can store.
const (
	maxDescriptionLength = 1024
	maxDisplayNameLength = 256
)

// Public protocols.
const (
	ProtocolHTTP  = "http"
	ProtocolHTTPS = "https"
)

func checkTimeZone(tz string) string {
	if tz == "" {
		return "must not be empty"
	}
	// "Local" is whatever the server happens to run in, not a setting.
	if tz == "Local" {
		return "must be an IANA time zone name such as Europe/Rome"
	}
	if _, err := time.LoadLocation(tz); err != nil {
		return "unknown time zone (use an IANA name such as Europe/Rome)"
	}
	return ""
}

func checkProtocol(p string) string {
	if p != ProtocolHTTP && p != ProtocolHTTPS {
		return `must be "http" or "https"`
	}
	return ""
}

func checkPercent(p int) string {
	if p < 0 || p > 100 {
		return "must be between 0 and 100"
	}
	return ""
}

// MaxNumber is the largest count or size an object may hold: the largest integer an IEEE double
// holds exactly (2^53 - 1), so that events stay I-JSON and hash faithfully (RFC 8785), and any
// JSON client reads the value back unchanged. 9 PB is beyond any mailbox.
const MaxNumber = 1<<53 - 1

func checkNonNegative[T int | int64](v T) string {
	if v < 0 || int64(v) > MaxNumber {
		return "must be between 0 and 9007199254740991"
	}
	return ""
}

// checkText bounds free text and keeps control characters (other than line
// breaks and tabs in multi-line fields) out of LDAP entries and logs.
func checkText(s string, max int, multiline bool) string {
	if !utf8.ValidString(s) {
		return "must be valid UTF-8"
	}
	if len(s) > max {
		return fmt.Sprintf("must be at most %d bytes", max)
	}
	for _, r := range s {
		if multiline && (r == '\n' || r == '\r' || r == '\t') {
			continue
		}
		if unicode.IsControl(r) {
			return "must not contain control characters"
		}
	}
	return ""
}

// normalizeHostPort checks a relay host written host, host:port, IPv4[:port]
// or [IPv6][:port], and lower-cases it. "" (no relay) is valid. Single-label
// host names are allowed here: relays are often internal machines.
func normalizeHostPort(s string) (string, string) {
	if s == "" {
		return "", ""
	}
	host, port := s, ""
	bracketed := false
	switch {
	case strings.HasPrefix(s, "["):
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", "missing ']' after IPv6 address"
		}
		host, bracketed = s[1:end], true
		rest := s[end+1:]
		if rest != "" {
			if rest[0] != ':' {
				return "", "unexpected text after ']'"
			}
			port = rest[1:]
			if port == "" {
				return "", "port must not be empty"
			}
		}
	case strings.Count(s, ":") == 1:
		host, port, _ = strings.Cut(s, ":")
		if port == "" {
			return "", "port must not be empty"
		}
	case strings.Count(s, ":") > 1:
		return "", "IPv6 addresses must be written in brackets: [2001:db8::1]:25"
	}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || port[0] == '0' {
			return "", "port must be a number from 1 to 65535"
		}
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if bracketed != ip.Is6() {
			return "", "IPv6 addresses, and only they, go in brackets"
		}
		if ip.Zone() != "" {
			return "", "IPv6 zones are not allowed"
		}
		s = ip.String()
		if bracketed {
			s = "[" + s + "]"
		}
		if port != "" {
			s += ":" + port
		}
		return s, ""
	}
	if bracketed {
		return "", "not an IPv6 address"
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if msg := checkHostname(host); msg != "" {
		return "", msg
	}
	if port != "" {
		return host + ":" + port, ""
	}
	return host, ""
}

func checkHostname(h string) string {
	if h == "" {
		return "host must not be empty"
	}
	if len(h) > maxDomainLength {
		return fmt.Sprintf("host is longer than %d octets", maxDomainLength)
	}
	for _, l := range strings.Split(h, ".") {
		if l == "" || len(l) > maxLabelLength {
			return "host labels must be 1-63 characters"
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return "host labels must not start or end with a hyphen"
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return "host must be letters, digits, hyphens and dots (A-labels for IDNs)"
			}
		}
	}
	return ""
}

func checkLDAPURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "not a valid URL"
	}
	if u.Scheme != "ldap" && u.Scheme != "ldaps" {
		return "must start with ldap:// or ldaps://"
	}
	if u.Host == "" {
		return "must name a host"
	}
	if u.User != nil {
		return "must not contain credentials (use bind_dn and bind_password)"
	}
	return ""
}

// checkDN accepts an RFC 4514 distinguished name: comma-separated RDNs, each
// attr=value (multi-valued with '+'), backslash escapes honoured.
func checkDN(s string) string {
	if !utf8.ValidString(s) {
		return "must be valid UTF-8"
	}
	var rdns []string
	start := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 >= len(s) {
				return "ends with an unfinished escape"
			}
			i++
		case ',', '+':
			rdns = append(rdns, s[start:i])
			start = i + 1
		}
	}
	rdns = append(rdns, s[start:])
	for _, rdn := range rdns {
		attr, _, ok := strings.Cut(rdn, "=")
		attr = strings.TrimSpace(attr)
		if !ok || attr == "" || !isLDAPAttr(attr) {
			return "must be a DN such as ou=people,dc=example,dc=com"
		}
	}
	return ""
}

func isLDAPAttr(a string) bool {
	for i := 0; i < len(a); i++ {
		c := a[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == ';') {
			return false
		}
	}
	return true
}

// checkLDAPFilter parses an RFC 4515 filter. Parsing it here, rather than
// only counting parentheses, means a filter stored in an event will compile
// when the LDAP client uses it, so bad input fails at the API and not in a
// background sync.
func checkLDAPFilter(s string) string {
	if !utf8.ValidString(s) {
		return "must be valid UTF-8"
	}
	p := filterParser{s: s}
	if msg := p.filter(0); msg != "" {
		return msg
	}
	if p.i != len(s) {
		return "unexpected text after the closing parenthesis"
	}
	return ""
}

type filterParser struct {
	s string
	i int
}

// maxFilterDepth bounds recursion on hostile input.
const maxFilterDepth = 32

func (p *filterParser) peek() byte {
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

func (p *filterParser) filter(depth int) string {
	if depth > maxFilterDepth {
		return "nested too deeply"
	}
	if p.peek() != '(' {
		return "must be in parentheses, e.g. (uid=%u)"
	}
	p.i++
	switch p.peek() {
	case '&', '|':
		p.i++
		n := 0
		for p.peek() == '(' {
			if msg := p.filter(depth + 1); msg != "" {
				return msg
			}
			n++
		}
		if n == 0 {
			return "'&' and '|' need at least one filter"
		}
	case '!':
		p.i++
		if msg := p.filter(depth + 1); msg != "" {
			return msg
		}
	default:
		if msg := p.item(); msg != "" {
			return msg
		}
	}
	if p.peek() != ')' {
		return "unbalanced parentheses"
	}
	p.i++
	return ""
}

// item reads attr op value. Extensible matches (cn:dn:=x, :rule:=x) come out
// right because ':' is allowed in the attribute part and ":=" ends with '='.
func (p *filterParser) item() string {
	start := p.i
	for p.i < len(p.s) && (isLDAPAttr(p.s[p.i:p.i+1]) || p.s[p.i] == ':') {
		p.i++
	}
	if p.i == start {
		return "missing attribute name"
	}
	switch p.peek() {
	case '~', '>', '<':
		p.i++
		if p.peek() != '=' {
			return "expected '=' after '~', '>' or '<'"
		}
		p.i++
	case '=':
		p.i++
	default:
		return "expected an operator (=, ~=, >=, <=) after the attribute"
	}
	for p.i < len(p.s) {
		switch c := p.s[p.i]; c {
		case ')':
			return ""
		case '(', 0:
			return "values must escape '(' and NUL as \\28 and \\00"
		case '\\':
			if p.i+2 >= len(p.s) || !isHex(p.s[p.i+1]) || !isHex(p.s[p.i+2]) {
				return "'\\' must be followed by two hex digits"
			}
			p.i += 3
		default:
			p.i++
		}
	}
	return "unbalanced parentheses"
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// clearList validates a patch's Clear list against the settings that may be
// reset to inherit, and returns it as a set.
func clearList(clear []string, allowed []string, fe *fieldErrors) map[string]bool {
	set := make(map[string]bool, len(clear))
	for _, name := range clear {
		if !slices.Contains(allowed, name) {
			fe.add("clear", fmt.Sprintf("%q cannot be cleared (allowed: %s)", name, strings.Join(allowed, ", ")))
			continue
		}
		set[name] = true
	}
	return set
}

// sortedKeys lists the names in a Clear set in a stable order for events.
func sortedKeys(m map[string]bool) []string {
	if len(m) == 0 {
		return nil
	}
	return slices.Sorted(maps.Keys(m))
}

// clonePtr copies a pointer's target so state never shares memory with the
// event or command it came from.
func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

func eqPtr[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
