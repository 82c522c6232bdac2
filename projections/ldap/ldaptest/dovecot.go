package ldaptest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Dovecot is a private Dovecot 2.3 of one test, configured with docs/dovecot (rendered
// for a directory): authentication and user lookups only, no protocol, nothing listening
// on the network; doveadm talks to it over the sockets in its own base_dir. It runs as
// root with the package's dovecot and dovenull users, or as the user running the test.
type Dovecot struct {
	// Dir holds its configuration (Dir/dovecot.conf, Dir/conf/...), sockets and log.
	Dir     string
	conf    string
	doveadm string
}

// Dovecot starts a private Dovecot for d: d.URL, d.Base, cn=dovecot as the reader. It is
// stopped when the test ends.
func (d *Directory) Dovecot(t testing.TB) *Dovecot {
	t.Helper()
	return StartDovecot(t, d.URL, d.Base, d.Env.Dovecot)
}

// StartDovecot renders docs/dovecot/dovecot.conf and dovecot-ldap.conf.ext with url, base
// and bind, starts Dovecot with them, and stops it when the test ends.
func StartDovecot(t testing.TB, url, base string, bind Credentials) *Dovecot {
	t.Helper()
	bin, err := findProgram("dovecot")
	if err != nil {
		t.Fatalf("ldaptest: %v (scripts/stack.sh up installs dovecot-core and dovecot-ldap)", err)
	}
	doveadm, err := findProgram("doveadm")
	if err != nil {
		t.Fatalf("ldaptest: %v", err)
	}
	// Not t.TempDir(): its path, with the test's name in it, can exceed the 108 bytes of
	// a unix socket's address.
	dir, err := os.MkdirTemp("", "dovecot")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	// The auth process runs as dovecot (as root) and must reach its files.
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	confDir := filepath.Join(dir, "conf")
	vmail := filepath.Join(dir, "vmail")
	for _, p := range []string{confDir, vmail} {
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mailUID, mailGID := "65534", "65534"
	if os.Geteuid() != 0 {
		// The userdb's uid must be the process's own when not root.
		mailUID, mailGID = strconv.Itoa(os.Geteuid()), strconv.Itoa(os.Getegid())
	}
	docs := filepath.Join(RepoRoot(t), "docs", "dovecot")
	Render(t, filepath.Join(docs, "dovecot.conf"), filepath.Join(confDir, "mailplane.conf"),
		map[string]string{"CONF_DIR": confDir})
	Render(t, filepath.Join(docs, "dovecot-ldap.conf.ext"), filepath.Join(confDir, "dovecot-ldap.conf.ext"),
		map[string]string{
			"LDAP_URL": url, "BASE": base, "BIND_DN": bind.DN, "BIND_PW": bind.Password,
			"VMAIL": vmail, "VMAIL_UID": mailUID, "VMAIL_GID": mailGID,
		})
	if err := os.Symlink("dovecot-ldap.conf.ext", filepath.Join(confDir, "dovecot-ldap-userdb.conf.ext")); err != nil {
		t.Fatal(err)
	}

	conf := filepath.Join(dir, "dovecot.conf")
	var b strings.Builder
	fmt.Fprintf(&b, `# ldaptest: a private Dovecot for one test, around docs/dovecot/dovecot.conf.
base_dir = %[1]s/run
state_dir = %[1]s/state
log_path = %[1]s/dovecot.log
protocols =
listen = 127.0.0.1
ssl = no
auth_verbose = yes
# Failures answer after at least 0.5 s anyway (Dovecot's check interval), not 2 s.
auth_failure_delay = 0
`, dir)
	if os.Geteuid() != 0 {
		u, err := user.Current()
		if err != nil {
			t.Fatal(err)
		}
		g, err := user.LookupGroupId(u.Gid)
		if err != nil {
			t.Fatal(err)
		}
		// Without root, Dovecot cannot switch to its users nor chroot anvil.
		fmt.Fprintf(&b, `default_internal_user = %[1]s
default_internal_group = %[2]s
default_login_user = %[1]s
service anvil {
  chroot =
}
`, u.Username, g.Name)
	} else {
		for _, name := range []string{"dovecot", "dovenull"} {
			if _, err := user.Lookup(name); err != nil {
				t.Fatalf("ldaptest: user %s: %v (it comes with dovecot-core)", name, err)
			}
		}
	}
	fmt.Fprintf(&b, "!include %s\n", filepath.Join(confDir, "mailplane.conf"))
	if err := os.WriteFile(conf, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}

	dv := &Dovecot{Dir: dir, conf: conf, doveadm: doveadm}
	cmd := exec.Command(bin, "-F", "-c", conf)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// Its own process group, so that the cleanup stops the master and its children at once.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("ldaptest: starting dovecot: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		// SIGTERM takes the master 2.4-2.9 s; SIGKILL to the group is instant, and a
		// new instance never reuses this base_dir.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		if t.Failed() {
			t.Logf("ldaptest: dovecot log (%s):\n%s%s", dir, out.String(), dv.Log())
		}
	})

	socket := filepath.Join(dir, "run", "auth-userdb")
	deadline := time.Now().Add(time.Minute)
	for {
		if c, err := net.Dial("unix", socket); err == nil {
			c.Close()
			break
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("ldaptest: dovecot exited while starting (%v):\n%s%s", err, out.String(), dv.Log())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("ldaptest: dovecot did not open %s within 10 s:\n%s%s", socket, out.String(), dv.Log())
		}
		time.Sleep(5 * time.Millisecond)
	}
	return dv
}

// Log returns Dovecot's log so far.
func (dv *Dovecot) Log() string {
	b, _ := os.ReadFile(filepath.Join(dv.Dir, "dovecot.log"))
	return string(b)
}

// Doveadm runs doveadm against this Dovecot and returns its output and exit code (0 on
// success); err only when it could not run.
func (dv *Dovecot) Doveadm(args ...string) (stdout, stderr string, code int, err error) {
	cmd := exec.Command(dv.doveadm, append([]string{"-c", dv.conf}, args...)...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return o.String(), e.String(), exit.ExitCode(), nil
	}
	if err != nil {
		return "", "", -1, fmt.Errorf("doveadm: %w", err)
	}
	return o.String(), e.String(), 0, nil
}

// doveadm's exit codes (sysexits.h).
const (
	exitNoUser = 67 // EX_NOUSER: no such user
	exitNoPerm = 77 // EX_NOPERM: authentication failed (75, EX_TEMPFAIL, is an error)
)

// AuthTest checks user's password as IMAP would (doveadm auth test: the passdb only).
// ok is false for a wrong password or a user the passdb does not find (or may not log
// in); err is a failure to decide, such as the directory being unreachable (temp_fail).
// It asks for no auth penalty, so failures do not slow the next attempts down.
func (dv *Dovecot) AuthTest(user, password string) (ok bool, err error) {
	out, errOut, code, err := dv.Doveadm("auth", "test", "-x", "service=imap", "-x", "no-penalty", user, password)
	if err != nil {
		return false, err
	}
	switch {
	case code == 0:
		return true, nil
	case code == exitNoPerm && !strings.Contains(out, "code=temp_fail"):
		return false, nil
	default:
		return false, fmt.Errorf("doveadm auth test %s: exit %d: %s%s", user, code, out, errOut)
	}
}

// User looks user up in the userdb (doveadm user) and returns its fields (uid, gid, home,
// mail, quota_rule, ...). found is false when the userdb has no such user. A name with *
// or ? is refused: doveadm takes it for a mask and iterates (Users).
func (dv *Dovecot) User(user string) (fields map[string]string, found bool, err error) {
	if strings.ContainsAny(user, "*?") {
		return nil, false, fmt.Errorf("doveadm user %q: * and ? make it a mask", user)
	}
	out, errOut, code, err := dv.Doveadm("user", user)
	if err != nil {
		return nil, false, err
	}
	switch code {
	case 0:
	case exitNoUser:
		return nil, false, nil
	default:
		return nil, false, fmt.Errorf("doveadm user %s: exit %d: %s%s", user, code, out, errOut)
	}
	fields = map[string]string{}
	for i, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		k, v, _ := strings.Cut(line, "\t")
		if i == 0 && k == "field" && v == "value" {
			continue // the header
		}
		fields[k] = v
	}
	return fields, true, nil
}

// Users returns every user the userdb iterates over (doveadm user '*'), in its order.
func (dv *Dovecot) Users() ([]string, error) {
	out, errOut, code, err := dv.Doveadm("user", "*")
	if err != nil {
		return nil, err
	}
	if code != 0 {
		return nil, fmt.Errorf("doveadm user '*': exit %d: %s%s", code, out, errOut)
	}
	var users []string
	for _, line := range strings.Split(out, "\n") {
		if line != "" {
			users = append(users, line)
		}
	}
	return users, nil
}
