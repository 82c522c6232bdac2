package domain

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/text/unicode/norm"
)

const (
	maxDomainLength  = 253
	maxLabelLength   = 63
	maxLocalLength   = 64
	maxAddressLength = 254
)

// NormalizeDomainName turns a domain name given in Unicode or as A-labels,
// in any case, into its stored form (lower-case A-labels, which is also what
// stream ids and the directory use) and its Unicode form for display.
//
// It uses IDNA's registration profile rather than the lenient lookup one:
// these names are being created, so anything that would only resolve after
// mapping (full-width letters, ß folding and the like) is refused instead of
// silently changed. Case is folded and text NFC-normalised first because
// neither changes which name the user meant. A trailing dot is dropped;
// single-label names and all-numeric top-level labels (an IP address, not a
// mail domain) are refused.
func NormalizeDomainName(s string) (ascii, unicode string, err error) {
	if s == "" {
		return "", "", Invalid("name", "must not be empty")
	}
	if !utf8.ValidString(s) {
		return "", "", Invalid("name", "must be valid UTF-8")
	}
	s = norm.NFC.String(strings.ToLower(s))
	s = strings.TrimSuffix(s, ".")
	if s == "" {
		return "", "", Invalid("name", "must not be empty")
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" {
			return "", "", Invalid("name", "must not contain empty labels")
		}
		if strings.HasPrefix(l, "-") || strings.HasSuffix(l, "-") {
			return "", "", Invalid("name", fmt.Sprintf("label %q must not start or end with a hyphen", l))
		}
	}
	ascii, err = idna.Registration.ToASCII(s)
	if err != nil {
		return "", "", Invalid("name", "not a valid domain name: "+idnaReason(err))
	}
	labels := strings.Split(ascii, ".")
	if len(labels) < 2 {
		return "", "", Invalid("name", "must have at least two labels (example.com)")
	}
	for _, l := range labels {
		if len(l) > maxLabelLength {
			return "", "", Invalid("name", fmt.Sprintf("label %q is longer than %d octets", l, maxLabelLength))
		}
	}
	if len(ascii) > maxDomainLength {
		return "", "", Invalid("name", fmt.Sprintf("longer than %d octets", maxDomainLength))
	}
	if isDigits(labels[len(labels)-1]) {
		return "", "", Invalid("name", "top-level label must not be numeric")
	}
	unicode, err = idna.Registration.ToUnicode(ascii)
	if err != nil {
		return "", "", Invalid("name", "not a valid domain name: "+idnaReason(err))
	}
	if r, ok := disallowedRune(unicode); ok {
		return "", "", Invalid("name", fmt.Sprintf("%q is not allowed in domain names", r))
	}
	// An A-label with non-canonical Punycode decodes fine but would give the
	// same domain two spellings; only the canonical one is accepted.
	if again, err := idna.Registration.ToASCII(unicode); err != nil || again != ascii {
		return "", "", Invalid("name", "not a valid domain name: non-canonical A-label")
	}
	// An A-label can decode to capital letters that lowercase to something IDNA refuses
	// (xn--bbe is Cherokee capital U+13C8, whose small letter U+AB98 is disallowed): that
	// name's Unicode form would not be accepted back, so it is refused in both spellings.
	if norm.NFC.String(strings.ToLower(unicode)) != unicode {
		return "", "", Invalid("name", "not a valid domain name: its Unicode form has capital letters that do not lowercase to a valid name")
	}
	return ascii, unicode, nil
}

// disallowedRune approximates IDNA2008's PVALID set, which x/net/idna's
// UTS 46 tables do not enforce (they accept symbols and emoji, "NV8"):
// letters, combining marks, decimal digits, the hyphen, and the few
// context-checked characters real names use.
func disallowedRune(s string) (rune, bool) {
	for _, r := range s {
		switch {
		case r == '-' || r == '.':
		case unicode.IsLetter(r), unicode.IsMark(r), unicode.Is(unicode.Nd, r):
		case strings.ContainsRune("\u00b7\u0375\u05f3\u05f4\u30fb\u200c\u200d", r):
		default:
			return r, true
		}
	}
	return 0, false
}

// idnaReason drops the library's "idna: " prefix, which means nothing to an
// administrator.
func idnaReason(err error) string {
	return strings.TrimPrefix(err.Error(), "idna: ")
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Address is a normalised e-mail address: a lower-case dot-atom local part
// and a domain in A-label form. Build it with ParseAddress.
type Address struct {
	Local  string
	Domain string
}

// String returns local@domain, or "" for the zero Address.
func (a Address) String() string {
	if a == (Address{}) {
		return ""
	}
	return a.Local + "@" + a.Domain
}

// IsZero reports whether a is the empty address.
func (a Address) IsZero() bool { return a == (Address{}) }

// MarshalText encodes the address as local@domain, so it is a plain string in
// JSON events.
func (a Address) MarshalText() ([]byte, error) {
	return []byte(a.String()), nil
}

// UnmarshalText splits local@domain without validating it. Stored events must
// always decode even if the rules tighten later; input from outside goes
// through ParseAddress.
func (a *Address) UnmarshalText(b []byte) error {
	s := string(b)
	if s == "" {
		*a = Address{}
		return nil
	}
	i := strings.LastIndexByte(s, '@')
	if i < 0 {
		return fmt.Errorf("address %q has no @", s)
	}
	*a = Address{Local: strings.ToLower(s[:i]), Domain: strings.ToLower(s[i+1:])}
	return nil
}

// ParseAddress validates and normalises an e-mail address. The local part
// must be an RFC 5321 dot-atom of ASCII atext characters: quoted local parts
// and internationalised (SMTPUTF8) local parts are refused, because the
// directory, Postfix maps and most clients handle them badly. Mail systems
// treat local parts case-insensitively in practice, so it is lower-cased.
func ParseAddress(s string) (Address, error) {
	i := strings.LastIndexByte(s, '@')
	if i < 0 {
		return Address{}, Invalid("address", "must be local-part@domain")
	}
	local, dom := strings.ToLower(s[:i]), s[i+1:]
	if msg := checkLocalPart(local); msg != "" {
		return Address{}, Invalid("address", msg)
	}
	ascii, _, err := NormalizeDomainName(dom)
	if err != nil {
		return Address{}, Invalid("address", "domain: "+firstMessage(err))
	}
	if len(local)+1+len(ascii) > maxAddressLength {
		return Address{}, Invalid("address", fmt.Sprintf("longer than %d octets", maxAddressLength))
	}
	return Address{Local: local, Domain: ascii}, nil
}

// checkAddress re-validates an Address built by hand (commands take Address
// values, and a caller may have skipped ParseAddress).
func checkAddress(a Address) string {
	parsed, err := ParseAddress(a.String())
	if err != nil {
		return firstMessage(err)
	}
	if parsed != a {
		return "must be normalised (lower case, A-label domain)"
	}
	return ""
}

func checkLocalPart(l string) string {
	switch {
	case l == "":
		return "local part must not be empty"
	case strings.HasPrefix(l, `"`):
		return "quoted local parts are not supported"
	case len(l) > maxLocalLength:
		return fmt.Sprintf("local part is longer than %d octets", maxLocalLength)
	case strings.HasPrefix(l, ".") || strings.HasSuffix(l, "."):
		return "local part must not start or end with a dot"
	case strings.Contains(l, ".."):
		return "local part must not contain two dots in a row"
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if c >= 0x80 {
			return "local part must be ASCII"
		}
		if c != '.' && !isAtext(c) {
			return fmt.Sprintf("local part must not contain %q", c)
		}
	}
	return ""
}

// isAtext reports RFC 5322 atext: letters, digits and !#$%&'*+-/=?^_`{|}~.
func isAtext(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

var cosNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// NormalizeCOSName lower-cases a COS name and checks it. The caller needs it
// before loading the COS stream (COSStreamID takes the normalised name).
func NormalizeCOSName(s string) (string, error) {
	n := strings.ToLower(s)
	if !cosNameRE.MatchString(n) {
		return "", Invalid("name", "must be 1-64 characters of a-z, 0-9, '.', '_', '-', starting with a letter or digit")
	}
	return n, nil
}
