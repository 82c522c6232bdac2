package domain

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// The fuzz targets of the names, addresses, LDAP URLs and certificates the API takes from
// outside. Their seed corpora are under testdata/fuzz/FuzzX (CR/LF, NUL, confusables, long
// labels, Punycode edge cases, PEM oddities); scripts/fuzz.sh runs them (go tool task fuzz).

// requireValidationError fails unless err is the domain's own validation error: bad input is a
// value the API can show field by field, never some other error or a panic.
func requireValidationError(t *testing.T, err error, field string) {
	t.Helper()
	var ve ValidationError
	if !errors.As(err, &ve) || len(ve.Errors) == 0 {
		t.Fatalf("error %v (%T) is not a ValidationError", err, err)
	}
	if field != "" && ve.Errors[0].Field != field {
		t.Fatalf("error on field %q, want %q: %v", ve.Errors[0].Field, field, err)
	}
}

// plainASCII reports whether s holds only printable ASCII without spaces: nothing that could
// end a header line, an LDIF value or a Postfix map entry.
func plainASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

func FuzzNormalizeDomainName(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		ascii, uni, err := NormalizeDomainName(s)
		if err != nil {
			requireValidationError(t, err, "name")
			return
		}
		if len(ascii) > maxDomainLength {
			t.Fatalf("%q: stored form %q is longer than %d", s, ascii, maxDomainLength)
		}
		labels := strings.Split(ascii, ".")
		if len(labels) < 2 {
			t.Fatalf("%q: stored form %q has fewer than two labels", s, ascii)
		}
		for _, l := range labels {
			if l == "" || len(l) > maxLabelLength || l[0] == '-' || l[len(l)-1] == '-' {
				t.Fatalf("%q: stored form %q has a bad label %q", s, ascii, l)
			}
			for i := 0; i < len(l); i++ {
				if c := l[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
					t.Fatalf("%q: stored form %q holds %q", s, ascii, c)
				}
			}
		}
		if !utf8.ValidString(uni) {
			t.Fatalf("%q: Unicode form %q is not UTF-8", s, uni)
		}
		// Both forms are names of the same domain: each normalises to the very same pair.
		for _, again := range []string{ascii, uni} {
			a2, u2, err := NormalizeDomainName(again)
			if err != nil || a2 != ascii || u2 != uni {
				t.Fatalf("%q → (%q, %q), but %q → (%q, %q, %v)", s, ascii, uni, again, a2, u2, err)
			}
		}
	})
}

func FuzzParseAddress(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAddress(s)
		var p addressParser
		b, msg := p.parse(s)
		// The bulk parser (list members) and the single one accept exactly the same addresses.
		if (err == nil) != (msg == "") || a != b {
			t.Fatalf("%q: ParseAddress → (%v, %v), the bulk parser → (%v, %q)", s, a, err, b, msg)
		}
		if err != nil {
			requireValidationError(t, err, "address")
			return
		}
		str := a.String()
		if !plainASCII(str) || len(str) > maxAddressLength || strings.Count(str, "@") != 1 {
			t.Fatalf("%q → %q: not a plain address of at most %d octets", s, str, maxAddressLength)
		}
		if again, err := ParseAddress(str); err != nil || again != a {
			t.Fatalf("%q → %q → (%v, %v)", s, str, again, err)
		}
		if msg := checkAddress(a); msg != "" {
			t.Fatalf("%q → %v: checkAddress says %s", s, a, msg)
		}
		text, _ := a.MarshalText()
		var back Address
		if err := back.UnmarshalText(text); err != nil || back != a {
			t.Fatalf("%q: its stored form %q reads back as (%v, %v)", s, text, back, err)
		}
	})
}

func FuzzParseMemberURL(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMemberURL(s)
		if err != nil {
			requireValidationError(t, err, "dynamic.member_url")
			return
		}
		if m.Scope != ScopeSub && m.Scope != ScopeOne {
			t.Fatalf("%q: scope %q", s, m.Scope)
		}
		if msg := checkLDAPFilter(m.Filter); msg != "" {
			t.Fatalf("%q: accepted filter %q fails the filter check: %s", s, m.Filter, msg)
		}
		stored := m.String()
		if !plainASCII(stored) {
			t.Fatalf("%q: stored form %q holds spaces or control characters", s, stored)
		}
		if again, err := ParseMemberURL(stored); err != nil || again != m {
			t.Fatalf("%q → %q → (%+v, %v), want %+v", s, stored, again, err, m)
		}
	})
}

// FuzzLDAPFilter checks the RFC 4515 parser that guards every filter an administrator
// gives (a dynamic list's, a GAL's or an external login's search_filter).
func FuzzLDAPFilter(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		if checkLDAPFilter(s) != "" {
			return
		}
		if !strings.HasPrefix(s, "(") || !strings.HasSuffix(s, ")") {
			t.Fatalf("%q accepted but not parenthesised", s)
		}
		// Balanced outside escapes: a filter that passes cannot close early and let text
		// after it pass for another filter.
		depth := 0
		for i := 0; i < len(s); i++ {
			switch s[i] {
			case '(':
				depth++
			case ')':
				depth--
				if depth == 0 && i != len(s)-1 {
					t.Fatalf("%q accepted, but its outer filter closes at %d", s, i)
				}
			}
			if depth < 0 {
				t.Fatalf("%q accepted with unbalanced parentheses", s)
			}
		}
		if strings.ContainsAny(s, "\x00") {
			t.Fatalf("%q accepted with a raw NUL (RFC 4515 wants \\00)", s)
		}
	})
}

// FuzzVerifyCertificate: whatever the texts hold, verification answers with problems, never a
// panic (the API would turn it into a 500), and what it accepts is stored in a form that
// verifies again. Seeds besides the corpus: a good certificate of the test PKI, and pieces of
// one in the wrong places.
func FuzzVerifyCertificate(f *testing.F) {
	p := getPKI(f)
	cert, key := p.leaf(f, leafOpts{})
	k := keyPEM(f, key)
	const host = "mail.example.com"
	f.Add(host, cert, p.interPEM, k)
	f.Add(host, k, cert, p.interPEM)
	f.Add(host, cert[:len(cert)/2], p.interPEM+p.rootPEM, k[10:])
	f.Add(host, "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n", "-----BEGIN EC PARAMETERS-----\n-----END EC PARAMETERS-----\n", "")
	now := certNow
	f.Fuzz(func(t *testing.T, host, certificate, chain, key string) {
		c := VerifyCertificate(host, CertificateFiles{Certificate: certificate, CAChain: chain, PrivateKey: key}, now)
		if c.Problems == nil {
			t.Fatal("Problems is nil, want an empty list at least")
		}
		if c.Valid != (len(c.Problems) == 0) {
			t.Fatalf("valid %v with problems %v", c.Valid, c.Problems)
		}
		for _, p := range c.Problems {
			if p.Code == "" || p.Message == "" {
				t.Fatalf("problem without code or message: %+v", p)
			}
		}
		if !c.Valid {
			if c.CertificatePEM != "" || c.PrivateKeyPEM != "" {
				t.Fatal("an invalid certificate carries what would be stored")
			}
			return
		}
		// What is stored reads back as what was checked.
		info, err := DescribeCertificate(c.CertificatePEM, c.ChainPEM)
		if err != nil {
			t.Fatalf("stored certificate does not describe: %v", err)
		}
		if info.Fingerprint != c.Info.Fingerprint || info.ChainLength != c.Info.ChainLength {
			t.Fatalf("stored certificate describes as %+v, checked %+v", info, c.Info)
		}
		b, _ := pem.Decode([]byte(c.PrivateKeyPEM))
		if b == nil {
			t.Fatal("stored private key is no PEM")
		}
		if _, err := x509.ParsePKCS8PrivateKey(b.Bytes); err != nil {
			t.Fatalf("stored private key: %v", err)
		}
		again := VerifyCertificate(host, CertificateFiles{Certificate: c.CertificatePEM, CAChain: c.ChainPEM, PrivateKey: c.PrivateKeyPEM}, now)
		if !again.Valid {
			t.Fatalf("the stored form no longer verifies: %v", again.Problems)
		}
	})
}

func FuzzSplitBundle(f *testing.F) {
	f.Fuzz(func(t *testing.T, bundle string) {
		certificate, chain := SplitBundle(bundle)
		blocks, _ := pemBlocks(bundle)
		got, _ := pemBlocks(certificate + chain)
		if len(got) != len(blocks) {
			t.Fatalf("%d blocks in, %d out", len(blocks), len(got))
		}
		if first, _ := pemBlocks(certificate); len(blocks) > 0 && len(first) != 1 {
			t.Fatalf("the certificate part holds %d blocks", len(first))
		}
		if _, err := DescribeCertificate(certificate, chain); err == nil && certificate == "" {
			t.Fatal("an empty certificate described")
		}
	})
}
