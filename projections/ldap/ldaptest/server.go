package ldaptest

import (
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// Server is a private slapd of one test, configured like the dev stack's provider
// (projections/ldap/schema/slapd.conf.tmpl, rendered as scripts/stack.sh renders it): the same
// schema, indexes, access rules and syncprov, with a suffix entry, the six organisational
// units and the three service entries (cn=postfix, cn=dovecot, cn=replicator) below it. Unlike
// the dev stack's directory, a test may stop it, start it again (same port, same database),
// or replace its database: what tests of an unreachable directory or of an offline load need.
type Server struct {
	// URL is where it listens (ldap://127.0.0.1:PORT/), across restarts.
	URL string
	// Dir is its instance folder: Conf, the database in DB, the pid file and the log.
	Dir  string
	Conf string
	DB   string
	// Env describes it as LoadEnv describes the dev stack's: Suffix, the rootdn as Admin,
	// and the readers. ReplicaURL and DevDir are empty.
	Env Env

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	log     *bytes.Buffer
	stopped bool
}

// SlapdOptions change what StartSlapd makes.
type SlapdOptions struct {
	// Suffix is the database's suffix (default dc=mailplane,dc=test). Lower case: the access
	// rules match it as a regular expression against normalized DNs.
	Suffix string
	// Empty leaves the database empty: no suffix entry, no units, no services (for a test
	// that loads a whole database itself).
	Empty bool
}

// StartSlapd starts a private slapd with the dev stack's configuration and the entries
// scripts/stack.sh makes, and stops it when the test ends.
func StartSlapd(t testing.TB) *Server { return StartSlapdWith(t, SlapdOptions{}) }

// StartSlapdWith starts a private slapd with options.
func StartSlapdWith(t testing.TB, o SlapdOptions) *Server {
	t.Helper()
	if o.Suffix == "" {
		o.Suffix = "dc=mailplane,dc=test"
	}
	if o.Suffix != strings.ToLower(o.Suffix) {
		t.Fatalf("ldaptest: suffix %q must be lower case", o.Suffix)
	}
	bin, err := findProgram("slapd")
	if err != nil {
		t.Fatalf("ldaptest: %v (scripts/stack.sh up installs slapd)", err)
	}
	dir := t.TempDir()
	s := &Server{Dir: dir, Conf: filepath.Join(dir, "slapd.conf"), DB: filepath.Join(dir, "db")}
	if err := os.Mkdir(s.DB, 0o700); err != nil {
		t.Fatal(err)
	}
	admin := Credentials{DN: "cn=admin," + o.Suffix, Password: secret()}
	s.Env = Env{Suffix: o.Suffix, Admin: admin,
		Postfix: Credentials{DN: "cn=postfix,ou=services," + o.Suffix, Password: secret()},
		Dovecot: Credentials{DN: "cn=dovecot,ou=services," + o.Suffix, Password: secret()}}
	replicator := Credentials{DN: "cn=replicator,ou=services," + o.Suffix, Password: secret()}
	port, err := freePort()
	if err != nil {
		t.Fatalf("ldaptest: %v", err)
	}
	s.URL = fmt.Sprintf("ldap://127.0.0.1:%d/", port)
	s.Env.URL = s.URL
	renderSlapdConf(t, s.Conf, map[string]string{
		"SYSTEM_SCHEMA_DIR": envOr("LDAP_SYSTEM_SCHEMA_DIR", "/etc/ldap/schema"),
		"SCHEMA_DIR":        filepath.Join(RepoRoot(t), "projections", "ldap", "schema"),
		"MODULE_PATH":       envOr("LDAP_MODULE_PATH", "/usr/lib/ldap"),
		"DIR":               dir,
		"SUFFIX":            o.Suffix,
		"ROOTPW":            SSHA(admin.Password),
		// Only the replica's lines and the header's comments name these.
		"PROVIDER_URL":  s.URL,
		"REPLICATOR_PW": replicator.Password,
	})
	if err := s.start(bin); err != nil {
		t.Fatalf("ldaptest: %v", err)
	}
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("ldaptest: stopping slapd: %v", err)
		}
		if t.Failed() {
			t.Logf("ldaptest: slapd log (%s):\n%s", dir, s.Log())
		}
	})
	if o.Empty {
		return s
	}
	conn, err := Dial(s.URL, admin)
	if err != nil {
		t.Fatalf("ldaptest: %v", err)
	}
	defer conn.Close()
	rdn, _, _ := strings.Cut(o.Suffix, ",")
	typ, val, _ := strings.Cut(rdn, "=")
	base := map[string][]string{"objectClass": {"dcObject", "organization"}, "dc": {val}, "o": {val}}
	if typ != "dc" {
		base = map[string][]string{"objectClass": {"organization"}, typ: {val}}
	}
	entries := []struct {
		dn    string
		attrs map[string][]string
	}{{o.Suffix, base}}
	for _, ou := range append(append([]string{}, containers...), "services") {
		entries = append(entries, struct {
			dn    string
			attrs map[string][]string
		}{"ou=" + ou + "," + o.Suffix, map[string][]string{"objectClass": {"organizationalUnit"}, "ou": {ou}}})
	}
	for _, svc := range []struct {
		c    Credentials
		desc string
	}{{s.Env.Postfix, "Postfix"}, {s.Env.Dovecot, "Dovecot"}, {replicator, "syncrepl consumers"}} {
		name := strings.TrimPrefix(strings.SplitN(svc.c.DN, ",", 2)[0], "cn=")
		entries = append(entries, struct {
			dn    string
			attrs map[string][]string
		}{svc.c.DN, map[string][]string{"objectClass": {"organizationalRole", "simpleSecurityObject"},
			"cn": {name}, "description": {svc.desc}, "userPassword": {SSHA(svc.c.Password)}}})
	}
	for _, e := range entries {
		req := ldap.NewAddRequest(e.dn, nil)
		for k, v := range e.attrs {
			req.Attribute(k, v)
		}
		if err := conn.Add(req); err != nil {
			t.Fatalf("ldaptest: adding %s: %v", e.dn, err)
		}
	}
	return s
}

// Directory returns the server's suffix as a test's directory (like Shared, without a lock:
// the server is the test's own). Readers connect to URL.
func (s *Server) Directory(t testing.TB) *Directory {
	t.Helper()
	return &Directory{Env: s.Env, Base: s.Env.Suffix, URL: s.URL}
}

// Stop stops slapd (SIGTERM; mdb needs nothing more) and waits until it has exited. The
// database stays; Start starts it again.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	if err := s.stop(); err != nil {
		t.Fatalf("ldaptest: stopping slapd: %v", err)
	}
}

// Kill stops slapd with SIGKILL, as a crash would.
func (s *Server) Kill(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-exited
	s.mu.Lock()
	s.cmd = nil
	s.mu.Unlock()
}

// Start starts slapd again on the same port with the same configuration and database, and
// waits until it answers.
func (s *Server) Start(t testing.TB) {
	t.Helper()
	bin, err := findProgram("slapd")
	if err != nil {
		t.Fatal(err)
	}
	// The port was ours; someone may take it while slapd is down, so try a few times.
	for attempt := 0; ; attempt++ {
		err = s.start(bin)
		if err == nil || attempt == 20 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("ldaptest: %v", err)
	}
}

// Load replaces the database with the LDIF file as an operator does (docs/directory.md):
// scripts/ldap-load.sh loads it with slapadd -q into a fresh folder while slapd still runs, then
// slapd is stopped, the folders are swapped (ldap-load.sh --swap) and slapd starts again. It
// returns the script's output; a failed load leaves the database and slapd as they were.
func (s *Server) Load(t testing.TB, ldif string) (string, error) {
	t.Helper()
	script := filepath.Join(RepoRoot(t), "scripts", "ldap-load.sh")
	out, err := exec.Command(script, s.Conf, ldif).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w: %s", script, err, out)
	}
	s.Stop(t)
	swap, err := exec.Command(script, "--swap", s.Conf).CombinedOutput()
	out = append(out, swap...)
	if err != nil {
		s.Start(t)
		return string(out), fmt.Errorf("%s --swap: %w: %s", script, err, swap)
	}
	s.Start(t)
	return string(out), nil
}

// Running reports whether slapd runs.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd != nil
}

// Log returns what slapd wrote on stderr (errors only: it runs with -d none).
func (s *Server) Log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.log == nil {
		return ""
	}
	return s.log.String()
}

func (s *Server) start(bin string) error {
	s.mu.Lock()
	if s.cmd != nil {
		s.mu.Unlock()
		return nil
	}
	log := &bytes.Buffer{}
	cmd := exec.Command(bin, "-d", "none", "-f", s.Conf, "-h", s.URL)
	cmd.Stdout, cmd.Stderr = &lockedWriter{mu: &s.mu, w: log}, &lockedWriter{mu: &s.mu, w: log}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		s.mu.Unlock()
		return fmt.Errorf("starting slapd: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	s.cmd, s.exited, s.log = cmd, exited, log
	s.mu.Unlock()

	deadline := time.Now().Add(time.Minute)
	for {
		conn, err := ldap.DialURL(s.URL, ldap.DialWithDialer(&net.Dialer{Timeout: time.Second}))
		if err == nil {
			_, err = conn.Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
				"(objectClass=*)", []string{"1.1"}, nil))
			conn.Close()
			if err == nil {
				return nil
			}
		}
		select {
		case <-exited:
			s.mu.Lock()
			s.cmd = nil
			s.mu.Unlock()
			return fmt.Errorf("slapd -f %s -h %s exited while starting: %s", s.Conf, s.URL, s.Log())
		default:
		}
		if time.Now().After(deadline) {
			_ = s.stop()
			return fmt.Errorf("slapd did not answer at %s within 15 s: %s", s.URL, s.Log())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (s *Server) stop() error {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.mu.Unlock()
	if cmd == nil {
		return nil
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
		s.mu.Lock()
		s.cmd = nil
		s.mu.Unlock()
		return errors.New("slapd ignored SIGTERM for 10 s; killed it")
	}
	s.mu.Lock()
	s.cmd = nil
	s.mu.Unlock()
	return nil
}

// lockedWriter lets slapd's output and Log share the buffer.
type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// renderSlapdConf renders the template for the provider role, as scripts/stack.sh does:
// the "#provider: " lines kept, the "#replica: " ones dropped, the placeholders replaced.
func renderSlapdConf(t testing.TB, dst string, values map[string]string) {
	t.Helper()
	src := filepath.Join(RepoRoot(t), "projections", "ldap", "schema", "slapd.conf.tmpl")
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatalf("ldaptest: %v", err)
	}
	var out strings.Builder
	var missing []string
	for _, line := range strings.SplitAfter(string(b), "\n") {
		if strings.HasPrefix(line, "#replica: ") {
			continue
		}
		line = strings.TrimPrefix(line, "#provider: ")
		out.WriteString(placeholder.ReplaceAllStringFunc(line, func(m string) string {
			v, ok := values[strings.Trim(m, "@")]
			if !ok {
				missing = append(missing, m)
				return m
			}
			return v
		}))
	}
	if len(missing) > 0 {
		t.Fatalf("ldaptest: %s: no value for %s", src, strings.Join(missing, ", "))
	}
	if err := os.WriteFile(dst, []byte(out.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

// SSHA returns password as a salted SHA-1 userPassword value ({SSHA}), as slappasswd makes
// them: what the dev stack gives the rootdn and the services.
func SSHA(password string) string {
	salt := make([]byte, 8)
	_, _ = rand.Read(salt)
	h := sha1.New()
	h.Write([]byte(password))
	h.Write(salt)
	return "{SSHA}" + base64.StdEncoding.EncodeToString(append(h.Sum(nil), salt...))
}

func secret() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
