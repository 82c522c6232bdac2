package domain

import (
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// GAL entry kinds (API.md: account|list|resource|external).
const (
	GALKindAccount  = "account"
	GALKindList     = "list"
	GALKindResource = "resource"
	GALKindExternal = "external"
)

// Token weights: what a search token stands for, and so how a match on it ranks.
const (
	// GALTokenExact is a whole address, local part or display name: a query equal to one is
	// an exact match.
	GALTokenExact = 0
	// GALTokenAddress is the whole address: a query that is its prefix ranks next.
	GALTokenAddress = 1
	// GALTokenWord is one word of a name, display name or local part: a prefix of it ranks last.
	GALTokenWord = 2
)

// GALToken is one searchable key of a GAL entry.
type GALToken struct {
	Token  string
	Weight int
}

// maxGALTokenLen keeps tokens well inside a btree index row.
const maxGALTokenLen = 200

// foldSpecial are letters that do not decompose into a base letter and marks but that people
// type as the base letters anyway.
var foldSpecial = map[rune]string{
	'ß': "ss", 'ẞ': "ss", 'æ': "ae", 'Æ': "ae", 'œ': "oe", 'Œ': "oe", 'ø': "o", 'Ø': "o",
	'đ': "d", 'Đ': "d", 'ð': "d", 'Ð': "d", 'ł': "l", 'Ł': "l", 'þ': "th", 'Þ': "th", 'ı': "i",
}

// FoldGAL folds s for GAL search: lower case, without accents (NFD with the combining marks
// dropped, and the letters of foldSpecial spelled out), so that "Zoë" and "zoe" match alike.
// Queries and stored tokens are folded by this one function, in Go, so that they agree
// whatever the database's collation or extensions.
func FoldGAL(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range norm.NFD.String(s) {
		if unicode.Is(unicode.Mn, r) {
			continue
		}
		if f, ok := foldSpecial[r]; ok {
			b.WriteString(f)
			continue
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}

// GALWords splits folded text into the words a prefix search matches: runs of letters and
// digits.
func GALWords(folded string) []string {
	return strings.FieldsFunc(folded, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
}

// GALTokens returns the search tokens of an entry: its address (exact and address prefix), its
// local part and display name (exact), and the words of its local part, display name and
// other names (prefix of a word). A token appears once per weight.
func GALTokens(address, displayName string, names ...string) []GALToken {
	addr := FoldGAL(address)
	local, _, _ := strings.Cut(addr, "@")
	seen := map[GALToken]bool{}
	var out []GALToken
	add := func(t string, w int) {
		t = truncate(strings.TrimSpace(t))
		if k := (GALToken{Token: t, Weight: w}); t != "" && !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	add(addr, GALTokenExact)
	add(local, GALTokenExact)
	dn := strings.Join(strings.Fields(FoldGAL(displayName)), " ")
	add(dn, GALTokenExact)
	add(addr, GALTokenAddress)
	for _, w := range GALWords(local) {
		add(w, GALTokenWord)
	}
	for _, w := range GALWords(dn) {
		add(w, GALTokenWord)
	}
	for _, n := range names {
		for _, w := range GALWords(FoldGAL(n)) {
			add(w, GALTokenWord)
		}
	}
	return out
}

// truncate cuts a token to maxGALTokenLen bytes on a character boundary.
func truncate(t string) string {
	if len(t) <= maxGALTokenLen {
		return t
	}
	return strings.ToValidUTF8(t[:maxGALTokenLen], "")
}
