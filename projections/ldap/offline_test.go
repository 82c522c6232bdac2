package ldap_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"mailplane/api/apitest"
	"mailplane/projections"
	"mailplane/projections/ldap"
	"mailplane/projections/ldap/ldaptest"
)

// An offline rebuild writes the whole database as LDIF — base, units, services, checkpoint, the
// entries the events call for — and slapadd loads it into a fresh database that is swapped in:
// the directory is then, entry by entry and attribute by attribute (passwords included), what
// the live projection had made it, and the projection goes on from there.
func TestOfflineRebuildEqualsTheLiveProjection(t *testing.T) {
	t.Parallel()
	srv := ldaptest.StartSlapd(t)
	d := srv.Directory(t)
	b := &bundle{e: apitest.New(t), d: d, dit: ldap.DIT{Base: d.Base}}
	cfg := ldap.Config{URL: srv.URL, BindDN: srv.Env.Admin.DN, Password: srv.Env.Admin.Password, DIT: b.dit}
	b.start(t, cfg)
	addr, pw := history(t, b)
	live := d.Dump(t, d.Admin(t), d.Base)
	b.stop()

	o := b.rebuildOptions(d.Base) // d.Env is the private server's
	path := filepath.Join(t.TempDir(), "directory.ldif")
	var loadOut string
	sum, err := ldap.RebuildOffline(context.Background(), o, path, func(_ context.Context, path string) error {
		var err error
		loadOut, err = srv.Load(t, path)
		return err
	})
	require.NoError(t, err)
	require.True(t, sum.Loaded)
	require.Contains(t, loadOut, "is the new database")
	require.Equal(t, live, d.Dump(t, d.Admin(t), d.Base))
	require.NoError(t, bind(t, srv.URL, b.dit.Account(addr), pw))
	ldif, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, sum.Bytes, int64(len(ldif)))
	require.Contains(t, string(ldif), "dn: cn=postfix,ou=services,"+d.Base, "the services are copied from the directory")
	// Bob's display name is not ASCII: base64, as LDIF wants it.
	require.Contains(t, string(ldif), "displayName:: ")
	info, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm(), "it holds password hashes")

	// The projection goes on from the loaded checkpoint.
	b.start(t, cfg)
	later := b.e.CreateAccount(t, b.e.CreateDomain(t, nil), nil)
	b.caughtUp(t)
	require.NotNil(t, b.entry(t, b.dit.Account(later)))
	b.stop()
	require.Zero(t, b.rebuild(t, d.Base).Differences())

	// While the projection runs, the offline rebuild refuses too.
	b.start(t, cfg)
	requireActive(t, b.p)
	_, err = ldap.RebuildOffline(context.Background(), o, path, nil)
	require.ErrorIs(t, err, projections.ErrRunning)
}

// A failed load leaves the database as it was, and slapd serving it.
func TestLoadOfABrokenLDIFLeavesTheDatabase(t *testing.T) {
	t.Parallel()
	srv := ldaptest.StartSlapd(t)
	d := srv.Directory(t)
	before := d.Dump(t, d.Admin(t), d.Base)
	path := filepath.Join(t.TempDir(), "broken.ldif")
	require.NoError(t, os.WriteFile(path, []byte("dn: "+d.Base+"\nobjectClass: dcObject\nobjectClass: organization\ndc: mailplane\no: x\n\n"+
		"dn: ou=x,"+d.Base+"\nobjectClass: noSuchClass\nou: x\n\n"), 0o600))
	out, err := srv.Load(t, path)
	require.Error(t, err)
	require.Contains(t, out, "is untouched")
	require.True(t, srv.Running())
	require.Equal(t, before, d.Dump(t, d.Admin(t), d.Base))
	_, err = os.Stat(srv.DB + ".new")
	require.True(t, os.IsNotExist(err), "the half-loaded folder is gone")
}

// The offline rebuild replaces a database whole: a base below the suffix is refused.
func TestOfflineRebuildNeedsTheSuffix(t *testing.T) {
	b := setup(t)
	b.stop()
	_, err := ldap.RebuildOffline(context.Background(), b.rebuildOptions(b.d.Base), filepath.Join(t.TempDir(), "x.ldif"), nil)
	require.Error(t, err)
	require.True(t, strings.Contains(err.Error(), "not a database's suffix"), err.Error())
}

func requireActive(t *testing.T, p *ldap.Projection) {
	t.Helper()
	require.Eventually(t, func() bool { active, _ := p.Active(); return active }, time.Minute, 5*time.Millisecond)
}
