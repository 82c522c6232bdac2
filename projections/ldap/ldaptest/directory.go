package ldaptest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// The containers the projection writes below its base DN (docs/directory.md).
const (
	Domains     = "domains"
	Accounts    = "accounts"
	Lists       = "lists"
	Resources   = "resources"
	Projections = "projections"
)

// containers are the ou entries below a base that Wipe empties and New creates.
var containers = []string{Domains, Accounts, Lists, Resources, Projections}

// Directory is the part of the dev stack's directory that a test works in: a base DN with
// the projection's containers (ou=domains, accounts, lists, resources, projections) below
// it. New gives a test a base of its own, so tests run in parallel, in one package or
// many; Shared gives it the real suffix.
//
// Readers (Reader, Postmap, Dovecot) connect to URL: the provider, or a consumer after
// Replica. Writes (Admin) always go to the provider.
type Directory struct {
	Env Env
	// Base is the base DN the projection under test is given (its BaseDN setting).
	Base string
	// URL is where readers connect.
	URL string
}

// New gives the test a base of its own, ou=t-<random>,SUFFIX, with the projection's
// containers below it, and removes the whole subtree when the test ends. The readers'
// access (docs/directory.md) is the same there as below the suffix, so Postfix and
// Dovecot work with Base as their @BASE@.
func New(t testing.TB) *Directory {
	t.Helper()
	env := LoadEnv(t)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "t-" + hex.EncodeToString(b)
	d := &Directory{Env: env, Base: RDN("ou", name) + "," + env.Suffix, URL: env.URL}
	conn := d.Admin(t)
	d.add(t, conn, d.Base, map[string][]string{"objectClass": {"organizationalUnit"}, "ou": {name}})
	t.Cleanup(func() {
		if err := deleteBelow(conn, d.Base, true); err != nil {
			t.Errorf("ldaptest: removing %s: %v", d.Base, err)
		}
	})
	for _, ou := range containers {
		d.add(t, conn, d.Container(ou), map[string][]string{"objectClass": {"organizationalUnit"}, "ou": {ou}})
	}
	return d
}

// Shared gives the test the directory's own suffix as its base, with the projection's
// subtrees wiped (Wipe). It holds a lock (a file under MAILPLANE_DEV_DIR) until the test
// ends, so that one test at a time, in any package, works there. It wipes what a running
// `mailplane serve` projected too: prefer New.
func Shared(t testing.TB) *Directory {
	t.Helper()
	env := LoadEnv(t)
	dir := env.DevDir
	if dir == "" {
		dir = os.TempDir()
	}
	lock := filepath.Join(dir, "ldaptest-shared.lock")
	f, err := os.OpenFile(lock, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatalf("ldaptest: %v", err)
	}
	// The lock belongs to this open file, so tests of one process exclude each other too.
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		t.Fatalf("ldaptest: locking %s: %v", lock, err)
	}
	t.Cleanup(func() { f.Close() })
	d := &Directory{Env: env, Base: env.Suffix, URL: env.URL}
	d.Wipe(t)
	return d
}

// Replica returns the directory as the syncrepl consumer serves it: readers connect there.
// It fails the test when the stack runs no consumer.
func (d *Directory) Replica(t testing.TB) *Directory {
	t.Helper()
	if d.Env.ReplicaURL == "" {
		t.Fatal("ldaptest: MAILPLANE_LDAP_REPLICA_URL is not set: `go tool task test` starts the consumer (or MAILPLANE_LDAP_REPLICA=1 scripts/stack.sh up)")
	}
	r := *d
	r.URL = d.Env.ReplicaURL
	return &r
}

// Container returns the DN of ou=NAME below the base (NAME: Domains, Accounts, ...).
func (d *Directory) Container(name string) string { return RDN("ou", name) + "," + d.Base }

// DomainDN returns the DN of the domain with the ASCII name ascii.
func (d *Directory) DomainDN(ascii string) string {
	return RDN("dc", ascii) + "," + d.Container(Domains)
}

// AccountDN returns the DN of the account with the address addr.
func (d *Directory) AccountDN(addr string) string {
	return RDN("mail", addr) + "," + d.Container(Accounts)
}

// ListDN returns the DN of the list with the address addr.
func (d *Directory) ListDN(addr string) string { return RDN("mail", addr) + "," + d.Container(Lists) }

// ResourceDN returns the DN of the resource with the address addr.
func (d *Directory) ResourceDN(addr string) string {
	return RDN("mail", addr) + "," + d.Container(Resources)
}

// CheckpointDN returns the DN of the checkpoint entry of the projection named name.
func (d *Directory) CheckpointDN(name string) string {
	return RDN("cn", name) + "," + d.Container(Projections)
}

// Eq returns the filter (attr=value), value escaped.
func Eq(attr, value string) string { return "(" + attr + "=" + ldap.EscapeFilter(value) + ")" }

// Admin returns a connection to the provider bound as the rootdn, closed when the test
// ends.
func (d *Directory) Admin(t testing.TB) *ldap.Conn {
	t.Helper()
	return d.Dial(t, d.Env.URL, d.Env.Admin)
}

// Reader returns a connection to URL bound as c (d.Env.Postfix, d.Env.Dovecot, an account),
// or anonymous for the zero Credentials.
func (d *Directory) Reader(t testing.TB, c Credentials) *ldap.Conn {
	t.Helper()
	return d.Dial(t, d.URL, c)
}

// Dial connects to url and binds as c (anonymous for the zero Credentials); the
// connection is closed when the test ends.
func (d *Directory) Dial(t testing.TB, url string, c Credentials) *ldap.Conn {
	t.Helper()
	conn, err := Dial(url, c)
	if err != nil {
		t.Fatalf("ldaptest: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// Dial connects to url and binds as c, or stays anonymous for the zero Credentials.
func Dial(url string, c Credentials) (*ldap.Conn, error) {
	conn, err := ldap.DialURL(url, ldap.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}))
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", url, err)
	}
	conn.SetTimeout(30 * time.Second)
	if c.DN != "" {
		if err := conn.Bind(c.DN, c.Password); err != nil {
			conn.Close()
			return nil, fmt.Errorf("binding to %s as %s: %w", url, c.DN, err)
		}
	}
	return conn, nil
}

// Add adds the entry dn with attrs as the rootdn, on the provider.
func (d *Directory) Add(t testing.TB, dn string, attrs map[string][]string) {
	t.Helper()
	d.add(t, d.Admin(t), dn, attrs)
}

func (d *Directory) add(t testing.TB, conn *ldap.Conn, dn string, attrs map[string][]string) {
	t.Helper()
	req := ldap.NewAddRequest(dn, nil)
	names := make([]string, 0, len(attrs))
	for name := range attrs {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		req.Attribute(name, attrs[name])
	}
	if err := conn.Add(req); err != nil {
		t.Fatalf("ldaptest: adding %s: %v", dn, err)
	}
}

// Dump returns every entry at and below base that conn may read, in canonical form (see
// Entry), in tree order (each entry, then its subtree). The rootdn (Admin) reads
// everything, userPassword too.
func (d *Directory) Dump(t testing.TB, conn *ldap.Conn, base string) []Entry {
	t.Helper()
	entries, err := Dump(conn, base)
	if err != nil {
		t.Fatalf("ldaptest: %v", err)
	}
	return entries
}

// Dump returns every entry at and below base that conn may read, in canonical form, in tree
// order; none if base does not exist (or conn may not see it).
func Dump(conn *ldap.Conn, base string) ([]Entry, error) {
	res, err := conn.SearchWithPaging(ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
		0, 0, false, "(objectClass=*)", []string{"*"}, nil), 1000)
	if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("dumping %s: %w", base, err)
	}
	out := make([]Entry, 0, len(res.Entries))
	for _, e := range res.Entries {
		c, err := entryFrom(e)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	sortEntries(out)
	return out, nil
}

// Wipe removes everything below the containers of the base: domains, accounts, lists,
// resources, and the checkpoints below ou=projections. The containers stay, and are made
// if missing; nothing else (ou=services, say) is touched.
func (d *Directory) Wipe(t testing.TB) {
	t.Helper()
	conn := d.Admin(t)
	for _, ou := range containers {
		dn := d.Container(ou)
		if err := deleteBelow(conn, dn, false); err != nil {
			t.Fatalf("ldaptest: wiping %s: %v", dn, err)
		}
		err := conn.Add(func() *ldap.AddRequest {
			r := ldap.NewAddRequest(dn, nil)
			r.Attribute("objectClass", []string{"organizationalUnit"})
			r.Attribute("ou", []string{ou})
			return r
		}())
		if err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultEntryAlreadyExists) {
			t.Fatalf("ldaptest: adding %s: %v", dn, err)
		}
	}
}

// deleteBelow deletes every entry below dn, deepest first, and dn itself if self. A
// missing dn is not an error.
func deleteBelow(conn *ldap.Conn, dn string, self bool) error {
	res, err := conn.SearchWithPaging(ldap.NewSearchRequest(dn, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
		0, 0, false, "(objectClass=*)", []string{"1.1"}, nil), 1000)
	if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
		return nil
	}
	if err != nil {
		return err
	}
	type victim struct {
		dn    string
		depth int
	}
	var victims []victim
	for _, e := range res.Entries {
		parsed, err := ldap.ParseDN(e.DN)
		if err != nil {
			return err
		}
		victims = append(victims, victim{e.DN, len(parsed.RDNs)})
	}
	if len(victims) == 0 {
		return nil
	}
	slices.SortFunc(victims, func(a, b victim) int { return b.depth - a.depth })
	top := victims[len(victims)-1].depth // dn itself is the shallowest
	var errs []error
	for _, v := range victims {
		if v.depth == top && !self {
			continue
		}
		if err := conn.Del(ldap.NewDelRequest(v.dn, nil)); err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
			errs = append(errs, fmt.Errorf("deleting %s: %w", v.dn, err))
		}
	}
	return errors.Join(errs...)
}

// WaitReplicated waits until the consumer has everything the provider has (their
// contextCSN values are equal), failing the test after timeout.
func (d *Directory) WaitReplicated(t testing.TB, timeout time.Duration) {
	t.Helper()
	if d.Env.ReplicaURL == "" {
		t.Fatal("ldaptest: no consumer runs (MAILPLANE_LDAP_REPLICA_URL is not set)")
	}
	provider := d.Dial(t, d.Env.URL, d.Env.Admin)
	replica := d.Dial(t, d.Env.ReplicaURL, d.Env.Admin)
	deadline := time.Now().Add(timeout)
	for {
		p, perr := contextCSN(provider, d.Env.Suffix)
		r, rerr := contextCSN(replica, d.Env.Suffix)
		if perr == nil && rerr == nil && p != "" && p == r {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("ldaptest: the consumer %s is not in sync with %s after %s: contextCSN %q (%v), provider %q (%v)",
				d.Env.ReplicaURL, d.Env.URL, timeout, r, rerr, p, perr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func contextCSN(conn *ldap.Conn, suffix string) (string, error) {
	res, err := conn.Search(ldap.NewSearchRequest(suffix, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"contextCSN"}, nil))
	if err != nil {
		return "", err
	}
	if len(res.Entries) != 1 {
		return "", fmt.Errorf("%s: %d entries", suffix, len(res.Entries))
	}
	v := slices.Clone(res.Entries[0].GetAttributeValues("contextCSN"))
	slices.Sort(v)
	return strings.Join(v, " "), nil
}
