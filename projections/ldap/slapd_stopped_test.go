package ldap_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"mailplane/api/apitest"
	"mailplane/projections"
	"mailplane/projections/ldap"
	"mailplane/projections/ldap/ldaptest"
)

// slapd itself stopped while 500 commands go through the API: the API takes every one, the
// projection's lag shows, and once slapd runs again the projection catches up by itself with
// nothing missing — the directory then equals a rebuild of the events into an empty base.
func TestSlapdStoppedFor500CommandsThenRestarted(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	srv := ldaptest.StartSlapd(t)
	d := srv.Directory(t)
	b := &bundle{e: e, d: d, dit: ldap.DIT{Base: d.Base}}
	cfg := ldap.Config{URL: srv.URL, BindDN: srv.Env.Admin.DN, Password: srv.Env.Admin.Password, DIT: b.dit}
	o := b.options(cfg)
	p, stop := b.run(t, o)
	dom := e.CreateDomain(t, nil)
	b.caughtUp(t)

	srv.Stop(t)
	var wg sync.WaitGroup
	errs := make(chan error, 500)
	for w := 0; w < 5; w++ {
		wg.Go(func() {
			for i := w; i < 500; i += 5 {
				var r apitest.Response
				switch i % 5 {
				case 0, 1, 2:
					r = e.Do(t, http.MethodPost, "/api/v1/domains/"+dom+"/accounts", e.AdminToken,
						map[string]any{"local_part": fmt.Sprintf("u%03d", i), "password": "outage-pass-1"})
					if r.Status != http.StatusCreated {
						errs <- fmt.Errorf("create %d: %d %s", i, r.Status, r.Body)
					}
				case 3:
					r = e.Do(t, http.MethodPatch, "/api/v1/domains/"+dom, e.AdminToken, map[string]any{"description": fmt.Sprint(i)})
					if r.Status != http.StatusOK {
						errs <- fmt.Errorf("patch %d: %d %s", i, r.Status, r.Body)
					}
				case 4:
					r = e.Do(t, http.MethodPost, "/api/v1/cos", e.AdminToken, map[string]any{"name": fmt.Sprintf("c%03d", i), "mail_quota_bytes": i << 20})
					if r.Status != http.StatusCreated {
						errs <- fmt.Errorf("cos %d: %d %s", i, r.Status, r.Body)
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err, "the API takes commands while slapd is away")
	}
	infos, err := projections.Inspect(context.Background(), e.Pool, ldap.Name)
	require.NoError(t, err)
	require.GreaterOrEqual(t, infos[0].LagEvents, int64(500), "the lag shows")
	require.Nil(t, infos[0].Stopped, "an unreachable directory is waited for, not a stop")
	active, lastErr := p.Active()
	require.True(t, active)
	require.NotEmpty(t, lastErr, "the projection says why it waits")

	srv.Start(t)
	start := time.Now()
	b.caughtUp(t)
	t.Logf("caught up %s after slapd came back", time.Since(start).Round(time.Millisecond))

	// Nothing missing: the live directory equals a rebuild of every event into a fresh base.
	stop()
	rebuilt := "ou=rebuilt," + srv.Env.Suffix
	ro := b.rebuildOptions(rebuilt)
	ro.Directory = ldap.Config{URL: srv.URL, BindDN: srv.Env.Admin.DN, Password: srv.Env.Admin.Password, DIT: ldap.DIT{Base: rebuilt}}
	_, err = ldap.Rebuild(context.Background(), ro)
	require.NoError(t, err)
	live := ldaptest.Relative(d.Dump(t, d.Admin(t), b.dit.OU(ldap.OUAccounts)), b.dit.OU(ldap.OUAccounts))
	again := ldaptest.Relative(d.Dump(t, d.Admin(t), ldap.DIT{Base: rebuilt}.OU(ldap.OUAccounts)), ldap.DIT{Base: rebuilt}.OU(ldap.OUAccounts))
	require.Equal(t, again, live)
	require.Len(t, live, 1+300+1, "the unit, its keeper and 300 accounts (the admin's domain has its own)")
}
