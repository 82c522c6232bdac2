package commands

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"github.com/stretchr/testify/require"
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"

	"mailplane/domain"
)

// Fuzz targets of what the commands read from outside themselves: import files and the
// filters of dynamic lists (seed corpora under testdata/fuzz/FuzzX; scripts/fuzz.sh runs them).

// checkImport reads data as format and checks what every import relies on: no panic, a file
// refused only with an ImportFileError, rows in file order with a line each, and the file's
// identity the SHA-256 of all of it.
func checkImport(t *testing.T, data []byte, format string) {
	var rows []ImportRow
	sum, err := readImport(bytes.NewReader(data), format, func(r ImportRow) error {
		rows = append(rows, r)
		return nil
	})
	if err != nil {
		var fe *ImportFileError
		if !errors.As(err, &fe) || fe.Reason == "" {
			t.Fatalf("error %v (%T) is not an ImportFileError with a reason", err, err)
		}
		var ve domain.ValidationError
		if !errors.As(err, &ve) {
			t.Fatalf("an unreadable file is not a validation error: %v", err)
		}
		return
	}
	want := sha256.Sum256(data)
	if sum != hex.EncodeToString(want[:]) {
		t.Fatalf("identity %s is not the SHA-256 of the file", sum)
	}
	lines := bytes.Count(data, []byte("\n")) + 1
	last := 0
	for _, r := range rows {
		if r.Line <= last || r.Line > lines {
			t.Fatalf("row at line %d after line %d (the file has %d)", r.Line, last, lines)
		}
		last = r.Line
		for k := range r.Attributes {
			if k == "" && format == ImportCSV {
				t.Fatalf("line %d: an attribute without a name", r.Line)
			}
		}
		if r.Problem != "" && format == ImportJSONL && (r.Address != "" || r.Password != nil) {
			t.Fatalf("line %d: a row with a problem keeps what it read: %+v", r.Line, r)
		}
	}
	// Reading is deterministic: the same file gives the same rows (a resumed import skips by
	// line number).
	n := 0
	_, _ = readImport(bytes.NewReader(data), format, func(r ImportRow) error {
		if n >= len(rows) || r.Line != rows[n].Line || r.Problem != rows[n].Problem || r.Address != rows[n].Address {
			t.Fatalf("second reading differs at row %d", n)
		}
		n++
		return nil
	})
	if n != len(rows) {
		t.Fatalf("second reading gave %d rows, the first %d", n, len(rows))
	}
}

func FuzzReadImportCSV(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) { checkImport(t, data, ImportCSV) })
}

func FuzzReadImportJSONL(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) { checkImport(t, data, ImportJSONL) })
}

// FuzzMemberURLFilter gives a dynamic list's filter both to the domain's own RFC 4515 parser
// and to the LDAP library the directory's readers use: the API refuses whatever either refuses
// (filterProblem), so what it accepts the directory can run, and the library never panics on it
// (filterProblem's recover is a last resort, not the plan).
func FuzzMemberURLFilter(f *testing.F) {
	f.Fuzz(func(t *testing.T, filter string) {
		u := "ldap:///??sub?" + escapeForURL(filter)
		m, err := domain.ParseMemberURL(u)
		if err != nil {
			return
		}
		compiled, err := ldap.CompileFilter(m.Filter)
		if err != nil {
			if filterProblem(u) == "" {
				t.Fatalf("%q: the library refuses it (%v) but filterProblem says nothing", m.Filter, err)
			}
			return
		}
		// What the API accepts, the directory is sent as written: it reads back as the same
		// filter. What does not read back ("(a=**)" reads back as "(a=)") the API refuses.
		p := filterProblem(u)
		back, err := ldap.DecompileFilter(compiled)
		if err != nil {
			t.Fatalf("%q: compiled filter does not decompile: %v", m.Filter, err)
		}
		again, err := ldap.CompileFilter(back)
		if err != nil {
			t.Fatalf("%q → %q does not compile again: %v", m.Filter, back, err)
		}
		same := bytes.Equal(again.Bytes(), compiled.Bytes())
		if same && p != "" {
			t.Fatalf("%q compiles and reads back, but filterProblem says %q", m.Filter, p)
		}
		if !same && p == "" {
			t.Fatalf("%q → %q compiles to another filter, and filterProblem says nothing", m.Filter, back)
		}
	})
}

// A filter whose compiled form reads back as another filter is refused with a problem that
// names both (the fuzz smoke found "(0=**)": an empty substring between two asterisks, which
// the LDAP library sends as a substring filter and reads back as an equality with "").
func TestFilterProblemRefusesWhatDoesNotReadBack(t *testing.T) {
	p := filterProblem("ldap:///??sub?(0=**)")
	require.Contains(t, p, `"(0=**)"`)
	require.Contains(t, p, `"(0=)"`)
	require.Empty(t, filterProblem("ldap:///??sub?(mail=*@example.test)"))
	require.Empty(t, filterProblem("ldap:///??sub?(&(objectClass=inetOrgPerson)(cn=a*b*c))"))
}

// escapeForURL percent-encodes what an LDAP URL's filter cannot hold raw.
func escapeForURL(f string) string {
	var b strings.Builder
	for i := 0; i < len(f); i++ {
		c := f[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("%?#", c) >= 0 {
			b.WriteString("%" + strings.ToUpper(hex.EncodeToString([]byte{c})))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
