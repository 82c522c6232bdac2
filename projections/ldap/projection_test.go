package ldap_test

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha512"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"mailplane/api/apitest"
	"mailplane/projections"
	"mailplane/projections/ldap"
	"mailplane/projections/ldap/ldaptest"
)

// bundle is the API under test with the LDAP projection following it into a base of its own.
type bundle struct {
	e   *apitest.Env
	d   *ldaptest.Directory
	dit ldap.DIT
	p   *ldap.Projection
	// stop ends the projection's run.
	stop func()
	// log is the projection's logger; nil is quiet().
	log *slog.Logger
}

func quiet() *slog.Logger {
	if os.Getenv("APITEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// failureLog keeps what the projection logs and shows it only when the test fails: a
// projection that falls behind or stops says why there, and nowhere else.
func failureLog(t *testing.T) *slog.Logger {
	if os.Getenv("APITEST_LOG") != "" {
		return quiet()
	}
	var mu sync.Mutex
	var buf bytes.Buffer
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		if t.Failed() && buf.Len() > 0 {
			t.Logf("the projection's log:\n%s", buf.String())
		}
	})
	return slog.New(slog.NewTextHandler(lockedWriter{&mu, &buf}, nil))
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func setup(t *testing.T) *bundle {
	t.Parallel()
	e := apitest.New(t)
	d := ldaptest.New(t)
	b := &bundle{e: e, d: d, dit: ldap.DIT{Base: d.Base}, log: failureLog(t)}
	b.start(t, ldap.Config{URL: d.Env.URL, BindDN: d.Env.Admin.DN, Password: d.Env.Admin.Password, DIT: b.dit})
	return b
}

func (b *bundle) options(cfg ldap.Config) ldap.Options {
	return ldap.Options{Directory: cfg, Pool: b.e.Pool, Registry: b.e.Registry, Keyring: b.e.Keyring,
		Logger: b.logger(), LockRetry: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}
}

func (b *bundle) logger() *slog.Logger {
	if b.log != nil {
		return b.log
	}
	return quiet()
}

func (b *bundle) start(t *testing.T, cfg ldap.Config) {
	p, err := ldap.New(b.options(cfg))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = p.Run(ctx) }()
	b.p = p
	b.stop = func() { cancel(); <-done }
	t.Cleanup(b.stop)
}

// caughtUp waits until the directory holds every event appended so far.
func (b *bundle) caughtUp(t *testing.T) {
	t.Helper()
	head, err := b.e.Store.Head(context.Background())
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	require.NoError(t, projections.NewWaiter(b.e.Pool, 5*time.Millisecond, ldap.Name).Wait(ctx, head))
}

// entry reads one projected entry (nil when absent).
func (b *bundle) entry(t *testing.T, dn string) *ldaptest.Entry {
	t.Helper()
	for _, e := range b.d.Dump(t, b.d.Admin(t), dn) {
		c, err := ldaptest.CanonicalDN(dn)
		require.NoError(t, err)
		if e.DN == c {
			return &e
		}
	}
	return nil
}

func bind(t *testing.T, url, dn, password string) error {
	t.Helper()
	conn, err := goldap.DialURL(url)
	require.NoError(t, err)
	defer conn.Close()
	return conn.Bind(dn, password)
}

// Create, change and delete of domains and accounts (with aliases and passwords) show in the
// directory as the entries docs/directory.md describes.
func TestDomainsAndAccountsFollowTheEvents(t *testing.T) {
	b := setup(t)
	e := b.e
	dom := e.CreateDomain(t, map[string]any{"limits": map[string]any{"account_quota_bytes": 5 << 20}})
	addr := e.CreateAccount(t, dom, map[string]any{"local_part": "alice", "display_name": "Alice Liddell", "password": "wonderland-1"})
	alias := "al@" + dom
	r := e.Do(t, http.MethodPost, "/api/v1/accounts/"+addr+"/aliases", e.AdminToken, map[string]any{"alias": alias})
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	b.caughtUp(t)

	d := b.entry(t, b.dit.Domain(dom))
	require.NotNil(t, d)
	require.Equal(t, []string{dom}, d.Get("associatedDomain"))
	require.Equal(t, []string{"active"}, d.Get("mailplaneStatus"))
	require.Equal(t, []string{"accept"}, d.Get("mailplaneDelivery"))

	a := b.entry(t, b.dit.Account(addr))
	require.NotNil(t, a)
	require.Equal(t, []string{addr}, a.Get("mail"))
	require.Equal(t, []string{addr}, a.Get("uid"))
	require.Equal(t, []string{"Alice Liddell"}, a.Get("displayName"))
	require.Equal(t, []string{alias}, a.Get("mailLocalAddress"))
	require.Equal(t, []string{"5242880"}, a.Get("mailplaneQuota"), "the domain's account quota, as the API's effective value")
	require.Equal(t, []string{"TRUE"}, a.Get("mailplaneLogin"))
	require.Equal(t, []string{"accept"}, a.Get("mailplaneDelivery"))
	require.Equal(t, []string{"default"}, a.Get("mailplaneCOS"))
	require.NoError(t, bind(t, b.d.Env.URL, b.dit.Account(addr), "wonderland-1"), "slapd verifies the {ARGON2} hash")
	require.Error(t, bind(t, b.d.Env.URL, b.dit.Account(addr), "wrong-password"))

	// A changed password binds at once; the old one no longer does.
	r = e.Do(t, http.MethodPatch, "/api/v1/accounts/"+addr, e.AdminToken, map[string]any{"password": "looking-glass-2", "display_name": "Alice"})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	b.caughtUp(t)
	require.NoError(t, bind(t, b.d.Env.URL, b.dit.Account(addr), "looking-glass-2"))
	require.Error(t, bind(t, b.d.Env.URL, b.dit.Account(addr), "wonderland-1"))
	require.Equal(t, []string{"Alice"}, b.entry(t, b.dit.Account(addr)).Get("cn"))

	// A locked account keeps receiving mail but cannot bind.
	r = e.Do(t, http.MethodPatch, "/api/v1/accounts/"+addr, e.AdminToken, map[string]any{"status": "locked"})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	b.caughtUp(t)
	a = b.entry(t, b.dit.Account(addr))
	require.Equal(t, []string{"FALSE"}, a.Get("mailplaneLogin"))
	require.Equal(t, []string{"accept"}, a.Get("mailplaneDelivery"))
	require.Error(t, bind(t, b.d.Env.URL, b.dit.Account(addr), "looking-glass-2"))
	r = e.Do(t, http.MethodPatch, "/api/v1/accounts/"+addr, e.AdminToken, map[string]any{"status": "active"})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)

	// Removing the alias, then closing the domain: its accounts bounce and cannot bind.
	r = e.Do(t, http.MethodDelete, "/api/v1/accounts/"+addr+"/aliases/"+alias, e.AdminToken, nil)
	require.Equal(t, http.StatusNoContent, r.Status, "%s", r.Body)
	r = e.Do(t, http.MethodPost, "/api/v1/domains/"+dom+"/close", e.AdminToken, nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	b.caughtUp(t)
	a = b.entry(t, b.dit.Account(addr))
	require.Nil(t, a.Get("mailLocalAddress"))
	require.Equal(t, []string{"bounce"}, a.Get("mailplaneDelivery"))
	require.Equal(t, []string{"FALSE"}, a.Get("mailplaneLogin"))
	require.Equal(t, []string{"bounce"}, b.entry(t, b.dit.Domain(dom)).Get("mailplaneDelivery"))
	require.Error(t, bind(t, b.d.Env.URL, b.dit.Account(addr), "looking-glass-2"))

	// A deleted account's entry goes.
	other := e.CreateDomain(t, nil)
	gone := e.CreateAccount(t, other, nil)
	b.caughtUp(t)
	require.NotNil(t, b.entry(t, b.dit.Account(gone)))
	require.Equal(t, http.StatusNoContent, e.Do(t, http.MethodDelete, "/api/v1/accounts/"+gone, e.AdminToken, nil).Status)
	b.caughtUp(t)
	require.Nil(t, b.entry(t, b.dit.Account(gone)))
}

// Imported hashes slapd verifies ({SSHA}, {SSHA512}) are written as they are; bcrypt, which it
// cannot verify, is left out until the account's first login through the API rehashes it.
func TestImportedPasswordHashes(t *testing.T) {
	b := setup(t)
	e := b.e
	dom := e.CreateDomain(t, nil)
	salted := func(sum func([]byte) []byte, scheme, pw string) string {
		salt := []byte("0123salt")
		return scheme + base64.StdEncoding.EncodeToString(append(sum(append([]byte(pw), salt...)), salt...))
	}
	ssha := e.CreateAccount(t, dom, map[string]any{"password_hash": salted(func(b []byte) []byte { s := sha1.Sum(b); return s[:] }, "{SSHA}", "sha-one-1")})
	ssha512 := e.CreateAccount(t, dom, map[string]any{"password_hash": salted(func(b []byte) []byte { s := sha512.Sum512(b); return s[:] }, "{SSHA512}", "sha-512-1")})
	hash, err := bcrypt.GenerateFromPassword([]byte("blowfish-1"), 4)
	require.NoError(t, err)
	bc := e.CreateAccount(t, dom, map[string]any{"password_hash": string(hash)})
	b.caughtUp(t)

	require.NoError(t, bind(t, b.d.Env.URL, b.dit.Account(ssha), "sha-one-1"))
	require.NoError(t, bind(t, b.d.Env.URL, b.dit.Account(ssha512), "sha-512-1"))
	require.Error(t, bind(t, b.d.Env.URL, b.dit.Account(bc), "blowfish-1"), "bcrypt is not written")
	require.Equal(t, []string{"TRUE"}, b.entry(t, b.dit.Account(bc)).Get("mailplaneLogin"))

	e.Login(t, bc, "blowfish-1") // verifies bcrypt, rehashes to argon2id
	require.Eventually(t, func() bool {
		b.caughtUp(t)
		return bind(t, b.d.Env.URL, b.dit.Account(bc), "blowfish-1") == nil
	}, 30*time.Second, 50*time.Millisecond)
}

// Deleting the only account (and the only domain) of the directory empties no unit: slapd
// 2.5.13 fails a transaction whose delete leaves a parent without children, which would stop
// the projection; the keeper entries keep every unit from ever being empty.
func TestDeletingTheLastEntryOfAUnit(t *testing.T) {
	b := setup(t)
	e := b.e
	dom := e.CreateDomain(t, nil)
	only := e.CreateAccount(t, dom, nil)
	b.caughtUp(t)
	require.NotNil(t, b.entry(t, b.dit.Account(only)))
	require.Equal(t, http.StatusNoContent, e.Do(t, http.MethodDelete, "/api/v1/accounts/"+only, e.AdminToken, nil).Status)
	b.caughtUp(t)
	require.Nil(t, b.entry(t, b.dit.Account(only)))
	infos, err := projections.Inspect(context.Background(), e.Pool, ldap.Name)
	require.NoError(t, err)
	require.Nil(t, infos[0].Stopped)
}
