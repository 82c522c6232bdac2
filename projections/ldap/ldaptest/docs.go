package ldaptest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var placeholder = regexp.MustCompile(`@[A-Z][A-Z_]*@`)

// Render copies the file src to dst with every @NAME@ replaced by values[NAME], and fails
// the test if src has a placeholder values lacks (a config in docs/ that grew one).
func Render(t testing.TB, src, dst string, values map[string]string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatalf("ldaptest: %v", err)
	}
	var missing []string
	out := placeholder.ReplaceAllStringFunc(string(b), func(m string) string {
		v, ok := values[strings.Trim(m, "@")]
		if !ok {
			missing = append(missing, m)
			return m
		}
		return v
	})
	if len(missing) > 0 {
		t.Fatalf("ldaptest: %s: no value for %s", src, strings.Join(missing, ", "))
	}
	if err := os.WriteFile(dst, []byte(out), 0o600); err != nil {
		t.Fatalf("ldaptest: %v", err)
	}
}

// RepoRoot returns the checkout's top folder: the nearest parent of the working directory
// (a package folder, under go test) with go.mod.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("ldaptest: no go.mod above the working directory")
		}
		dir = parent
	}
}

// findProgram looks name up on PATH, then in Debian's sbin folders (postmap and dovecot
// live in /usr/sbin, which a user's PATH may lack).
func findProgram(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s is not installed", name)
}
