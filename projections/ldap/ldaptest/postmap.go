package ldaptest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Postmap queries one of the Postfix LDAP tables in docs/postfix, rendered for a directory,
// with Postfix's own postmap: what Postfix would find for a key, through the same code.
type Postmap struct {
	// Path is the rendered table (postmap needs an absolute path: with a relative one it
	// quietly reads main.cf's parameters and asks localhost:389).
	Path    string
	confDir string
	bin     string
}

// Postmap renders docs/postfix/TABLE.cf (TABLE: "virtual_mailbox_maps", ...) for d:
// d.URL, d.Base, and cn=postfix as the reader.
func (d *Directory) Postmap(t testing.TB, table string) *Postmap {
	t.Helper()
	return NewPostmap(t, table, d.URL, d.Base, d.Env.Postfix)
}

// NewPostmap renders docs/postfix/TABLE.cf into a folder of the test with @LDAP_URL@,
// @BASE@, @BIND_DN@ and @BIND_PW@ replaced by url, base and bind.
func NewPostmap(t testing.TB, table string, url, base string, bind Credentials) *Postmap {
	t.Helper()
	bin, err := findProgram("postmap")
	if err != nil {
		t.Fatalf("ldaptest: %v (scripts/stack.sh up installs postfix and postfix-ldap)", err)
	}
	dir := t.TempDir()
	src := filepath.Join(RepoRoot(t), "docs", "postfix", table+".cf")
	path := filepath.Join(dir, table+".cf")
	Render(t, src, path, map[string]string{
		"LDAP_URL": url, "BASE": base, "BIND_DN": bind.DN, "BIND_PW": bind.Password,
	})
	// postmap reads main.cf (-c): an empty one, so that the system's (Debian installs
	// none with "No configuration") plays no part.
	mainCF := filepath.Join(dir, "main.cf")
	if err := os.WriteFile(mainCF, []byte("# ldaptest: defaults only\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Postfix waits, 0.3 s at a time, until its files are over a second old (they might
	// still be being written): backdate them, or the first query takes about 2 s.
	old := time.Now().Add(-time.Hour)
	for _, f := range []string{mainCF, path} {
		if err := os.Chtimes(f, old, old); err != nil {
			t.Fatal(err)
		}
	}
	return &Postmap{Path: path, confDir: dir, bin: bin}
}

// ErrQuery is returned when postmap reports a failed lookup ("query error": the directory
// is unreachable, refused the bind or the search). Postfix defers the mail then.
var ErrQuery = errors.New("postmap: query error")

// Query looks key up. found is false when the table has no value for it (postmap exits
// 1 and says nothing); an error is a failed lookup (exit 1 and "query error" on stderr,
// wrapped as ErrQuery) or anything else postmap wrote to stderr.
func (p *Postmap) Query(key string) (value string, found bool, err error) {
	if strings.ContainsAny(key, "\n\x00") {
		return "", false, fmt.Errorf("postmap: key %q: no newline or NUL", key)
	}
	out, found, err := p.run(nil, "-q", key)
	return strings.TrimSuffix(out, "\n"), found, err
}

// QueryAll looks every key up in one postmap run (-q -) and returns the values of those
// found.
func (p *Postmap) QueryAll(keys ...string) (map[string]string, error) {
	var in bytes.Buffer
	for _, k := range keys {
		if strings.ContainsAny(k, "\n\t\x00") {
			return nil, fmt.Errorf("postmap: key %q: no newline, tab or NUL", k)
		}
		in.WriteString(k + "\n")
	}
	out, _, err := p.run(&in, "-q", "-")
	if err != nil {
		return nil, err
	}
	values := map[string]string{}
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, "\t")
		if !ok {
			return nil, fmt.Errorf("postmap: unexpected output line %q", line)
		}
		values[k] = v
	}
	return values, nil
}

func (p *Postmap) run(stdin *bytes.Buffer, args ...string) (string, bool, error) {
	args = append([]string{"-c", p.confDir}, args...)
	args = append(args, "ldap:"+p.Path)
	cmd := exec.Command(p.bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if stdin != nil {
		cmd.Stdin = stdin
	}
	err := cmd.Run()
	msg := strings.TrimSpace(stderr.String())
	var exit *exec.ExitError
	switch {
	case err == nil && msg == "":
		return stdout.String(), true, nil
	case err == nil:
		return stdout.String(), true, fmt.Errorf("postmap %s: %s", strings.Join(args, " "), msg)
	case errors.As(err, &exit) && exit.ExitCode() == 1 && msg == "":
		return stdout.String(), false, nil
	case strings.Contains(msg, "query error"):
		return "", false, fmt.Errorf("%w: %s", ErrQuery, msg)
	default:
		return "", false, fmt.Errorf("postmap %s: %v: %s", strings.Join(args, " "), err, msg)
	}
}
