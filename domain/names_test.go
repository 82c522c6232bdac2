package domain

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestNormalizeDomainName(t *testing.T) {
	t.Parallel()
	label63 := strings.Repeat("a", 63)
	// 4*63 + 3 dots = 255; trim to exactly 253 and 254 octets.
	long := strings.Join([]string{label63, label63, label63, label63}, ".")
	name253 := long[len(long)-253:]
	name254 := long[len(long)-254:]
	require.Len(t, name253, 253)

	ok := []struct{ in, ascii, unicode string }{
		{"example.com", "example.com", "example.com"},
		{"Example.COM", "example.com", "example.com"},
		{"example.com.", "example.com", "example.com"},
		{"mail.sub.example.co.uk", "mail.sub.example.co.uk", "mail.sub.example.co.uk"},
		{"Bücher.Example", "xn--bcher-kva.example", "bücher.example"},
		{"BÜCHER.example", "xn--bcher-kva.example", "bücher.example"},
		{"xn--bcher-kva.example", "xn--bcher-kva.example", "bücher.example"},
		{"XN--BCHER-KVA.EXAMPLE", "xn--bcher-kva.example", "bücher.example"},
		{"bu\u0308cher.example", "xn--bcher-kva.example", "bücher.example"}, // NFD input
		{"münchen.de", "xn--mnchen-3ya.de", "münchen.de"},
		{"straße.de", "xn--strae-oqa.de", "straße.de"}, // IDNA2008: ß is kept, not mapped to ss
		{"a-b.example", "a-b.example", "a-b.example"},
		{"ПРИМЕР.РФ", "xn--e1afmkfd.xn--p1ai", "пример.рф"},
		{"例え.jp", "xn--r8jz45g.jp", "例え.jp"},
		{"123.example", "123.example", "123.example"},
		{name253, name253, name253},
	}
	for _, tc := range ok {
		t.Run("ok/"+tc.in, func(t *testing.T) {
			t.Parallel()
			ascii, uni, err := NormalizeDomainName(tc.in)
			require.NoError(t, err)
			require.Equal(t, tc.ascii, ascii)
			require.Equal(t, tc.unicode, uni)
		})
	}

	bad := []struct{ name, in string }{
		{"empty", ""},
		{"dot only", "."},
		{"single label", "com"},
		{"single label trailing dot", "localhost."},
		{"leading hyphen", "-abc.com"},
		{"trailing hyphen", "abc-.com"},
		{"tld trailing hyphen", "abc.com-"},
		{"hyphens in 3rd and 4th position", "ab--cd.com"},
		{"empty label", "a..com"},
		{"leading dot", ".example.com"},
		{"two trailing dots", "example.com.."},
		{"label of 64", strings.Repeat("a", 64) + ".com"},
		{"254 octets", name254},
		{"space", "exa mple.com"},
		{"underscore", "ex_ample.com"},
		{"at sign", "ex@mple.com"},
		{"numeric tld", "1.2.3.4"},
		{"full-width letters", "ｅｘａｍｐｌｅ.com"},
		{"bad punycode", "xn--a.com"},
		{"invalid utf8", "ex\xffample.com"},
		{"symbol", "☃.example"},
		{"emoji", "i❤️.example"},
		{"punycode of a symbol", "xn--n3h.example"},
	}
	for _, tc := range bad {
		t.Run("bad/"+tc.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := NormalizeDomainName(tc.in)
			requireFields(t, err, "name")
		})
	}
}

func TestParseAddress(t *testing.T) {
	t.Parallel()
	local64 := strings.Repeat("l", 64)
	// A domain of exactly 189 octets: 3 labels of 61 + 2 dots + ".com" (4).
	dom189 := strings.Repeat("d", 61) + "." + strings.Repeat("e", 61) + "." + strings.Repeat("f", 61) + ".com"
	require.Len(t, dom189, 189)

	ok := []struct{ in, want string }{
		{"john@example.com", "john@example.com"},
		{"John.Doe@Example.COM", "john.doe@example.com"},
		{"user+tag@example.com", "user+tag@example.com"},
		{"a!#$%&'*+-/=?^_`{|}~z@example.com", "a!#$%&'*+-/=?^_`{|}~z@example.com"},
		{"x@Bücher.Example", "x@xn--bcher-kva.example"},
		{local64 + "@example.com", local64 + "@example.com"},
		{local64 + "@" + dom189, local64 + "@" + dom189}, // 254 octets
	}
	for _, tc := range ok {
		t.Run("ok/"+tc.in, func(t *testing.T) {
			t.Parallel()
			a, err := ParseAddress(tc.in)
			require.NoError(t, err)
			require.Equal(t, tc.want, a.String())
		})
	}

	bad := []struct{ name, in string }{
		{"no at", "john.example.com"},
		{"empty local", "@example.com"},
		{"empty domain", "john@"},
		{"quoted local", `"john doe"@example.com`},
		{"quoted local with at", `"a@b"@example.com`},
		{"leading dot", ".john@example.com"},
		{"trailing dot", "john.@example.com"},
		{"double dot", "jo..hn@example.com"},
		{"space", "jo hn@example.com"},
		{"parenthesis", "jo(hn@example.com"},
		{"comma", "jo,hn@example.com"},
		{"two ats", "a@b@example.com"},
		{"non-ascii local", "jöhn@example.com"},
		{"local of 65", local64 + "l@example.com"},
		{"255 octets", local64 + "@x" + dom189},
		{"single-label domain", "john@localhost"},
		{"bad domain", "john@-example.com"},
	}
	for _, tc := range bad {
		t.Run("bad/"+tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseAddress(tc.in)
			requireFields(t, err, "address")
		})
	}
}

func TestAddressText(t *testing.T) {
	t.Parallel()
	a := mustAddr(t, "Ann@Example.com")
	require.Equal(t, Address{Local: "ann", Domain: "example.com"}, a)
	require.False(t, a.IsZero())
	require.True(t, Address{}.IsZero())
	require.Equal(t, "", Address{}.String())

	b, err := json.Marshal(struct {
		A Address `json:"a"`
		Z Address `json:"z"`
	}{A: a})
	require.NoError(t, err)
	require.JSONEq(t, `{"a":"ann@example.com","z":""}`, string(b))

	var back struct {
		A Address `json:"a"`
		Z Address `json:"z"`
	}
	require.NoError(t, json.Unmarshal(b, &back))
	require.Equal(t, a, back.A)
	require.True(t, back.Z.IsZero())

	var bad Address
	require.Error(t, json.Unmarshal([]byte(`"no-at-sign"`), &bad))
}

func TestCheckAddressRefusesUnnormalised(t *testing.T) {
	t.Parallel()
	require.Empty(t, checkAddress(Address{Local: "a", Domain: "example.com"}))
	require.NotEmpty(t, checkAddress(Address{Local: "A", Domain: "example.com"}))
	require.NotEmpty(t, checkAddress(Address{Local: "a", Domain: "bücher.example"}))
	require.NotEmpty(t, checkAddress(Address{}))
}

func TestNormalizeCOSName(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"default":               "default",
		"Gold":                  "gold",
		"tier-1.mail_basic":     "tier-1.mail_basic",
		"0":                     "0",
		strings.Repeat("c", 64): strings.Repeat("c", 64),
	} {
		got, err := NormalizeCOSName(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got)
	}
	for _, in := range []string{"", "-gold", ".gold", "go ld", "gold/1", "göld", strings.Repeat("c", 65)} {
		_, err := NormalizeCOSName(in)
		requireFields(t, err, "name")
	}
}
