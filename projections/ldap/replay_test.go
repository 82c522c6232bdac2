package ldap_test

import (
	"context"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/require"

	"mailplane/api/apitest"
	"mailplane/eventstore"
	"mailplane/projections/ldap"
	"mailplane/projections/ldap/ldaptest"
)

// history makes a bit of everything the projection writes through the API: domains, accounts
// with and without passwords, aliases added, moved and removed, renames, status changes, a COS
// change that rewrites every inheriting account, deletions and a re-creation, a closed domain.
// It returns positions along the way.
func (b *bundle) history(t *testing.T) []eventstore.Position {
	t.Helper()
	e := b.e
	var marks []eventstore.Position
	mark := func() {
		head, err := e.Store.Head(context.Background())
		require.NoError(t, err)
		marks = append(marks, head)
	}
	b.call(t, http.MethodPost, "/api/v1/cos", map[string]any{"name": "silver", "mail_quota_bytes": 1 << 30}, http.StatusCreated)
	one := e.CreateDomain(t, map[string]any{"default_cos": "silver"})
	two := e.CreateDomain(t, nil)
	var accounts []string
	for i := range 6 {
		body := map[string]any{"display_name": "User " + strconv.Itoa(i)}
		if i%2 == 0 {
			body["password"] = "password-number-" + strconv.Itoa(i)
		}
		dom := one
		if i >= 4 {
			dom = two
		}
		accounts = append(accounts, e.CreateAccount(t, dom, body))
	}
	mark()
	alias := "shared@" + one
	b.call(t, http.MethodPost, "/api/v1/accounts/"+accounts[0]+"/aliases", map[string]any{"alias": alias}, http.StatusCreated)
	b.call(t, http.MethodPost, "/api/v1/accounts/"+accounts[1]+"/aliases", map[string]any{"alias": "x@" + one}, http.StatusCreated)
	b.call(t, http.MethodPatch, "/api/v1/accounts/"+accounts[2], map[string]any{"display_name": "Renamed", "status": "locked"}, http.StatusOK)
	mark()
	b.call(t, http.MethodDelete, "/api/v1/accounts/"+accounts[0]+"/aliases/"+alias, nil, http.StatusNoContent)
	b.call(t, http.MethodPost, "/api/v1/accounts/"+accounts[1]+"/aliases", map[string]any{"alias": alias}, http.StatusCreated)
	b.call(t, http.MethodPatch, "/api/v1/cos/silver", map[string]any{"mail_quota_bytes": 2 << 30}, http.StatusOK)
	b.call(t, http.MethodDelete, "/api/v1/accounts/"+accounts[3], nil, http.StatusNoContent)
	mark()
	b.call(t, http.MethodDelete, "/api/v1/accounts/"+accounts[5], nil, http.StatusNoContent)
	e.CreateAccount(t, two, map[string]any{"address": accounts[5], "display_name": "Again", "password": "password-again-1"})
	b.call(t, http.MethodPatch, "/api/v1/accounts/"+accounts[4], map[string]any{"password": "password-changed-1"}, http.StatusOK)
	b.call(t, http.MethodPost, "/api/v1/domains/"+two+"/close", nil, http.StatusOK)
	return marks
}

// setCheckpoint writes the checkpoint entry as the rootdn: a position, or none for zero.
func setCheckpoint(t *testing.T, d *ldaptest.Directory, dit ldap.DIT, to eventstore.Position) {
	t.Helper()
	m := goldap.NewModifyRequest(dit.Checkpoint(ldap.Name), nil)
	if to == (eventstore.Position{}) {
		m.Replace("mailplaneCheckpoint", nil)
	} else {
		m.Replace("mailplaneCheckpoint", []string{formatPosition(to)})
	}
	require.NoError(t, d.Admin(t).Modify(m))
}

// The events after the checkpoint are delivered again when the checkpoint entry is rewound
// while the entries stay at the head (as after a restore of the directory's data without its
// checkpoint, or a crash between a write and what follows it): the projection writes them
// again onto what the directory holds, and ends with the same directory.
func TestReplayFromAnEarlierCheckpointChangesNothing(t *testing.T) {
	b := setup(t)
	marks := b.history(t)
	b.caughtUp(t)
	want := b.d.Dump(t, b.d.Admin(t), b.d.Base)
	head := parsePosition(t, readCheckpoint(t, b.d.Admin(t), b.dit))

	cfg := ldap.Config{URL: b.d.Env.URL, BindDN: b.d.Env.Admin.DN, Password: b.d.Env.Admin.Password, DIT: b.dit}
	stop := b.stop
	for _, to := range append([]eventstore.Position{{}}, marks...) {
		stop()
		setCheckpoint(t, b.d, b.dit, to)
		var log logBuffer
		o := b.options(cfg)
		o.Logger = log.logger()
		_, stop = b.run(t, o)
		b.waitCheckpoint(t, b.d, b.dit, 30*time.Second)
		require.Equal(t, want, b.d.Dump(t, b.d.Admin(t), b.d.Base), "replayed from %+v", to)
		require.Contains(t, log.String(), "checkpoint="+strconv.FormatInt(to.Position, 10), "it started from the rewound checkpoint")
		if to.Less(marks[len(marks)-1]) {
			require.Contains(t, log.String(), "did not hold what the projection wrote", "the replay met the entries at the head")
		}
	}
	require.Equal(t, head, parsePosition(t, readCheckpoint(t, b.d.Admin(t), b.dit)))
}

// Two projection processes started at once on one directory: one writes at a time (the other
// waits for the lock), the other takes over when the first stops, and the directory ends as
// one projection alone makes it.
func TestTwoProjectionsOneWriter(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	d := ldaptest.New(t)
	b := &bundle{e: e, d: d, dit: ldap.DIT{Base: d.Base}}
	o := b.options(ldap.Config{URL: d.Env.URL, BindDN: d.Env.Admin.DN, Password: d.Env.Admin.Password, DIT: b.dit})
	p1, stop1 := b.run(t, o)
	p2, stop2 := b.run(t, o)

	// Watch them all along: never both active.
	var both, seen1, seen2 atomic.Int64
	watching := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			select {
			case <-watching:
				return
			case <-time.After(time.Millisecond):
			}
			a1, _ := p1.Active()
			a2, _ := p2.Active()
			switch {
			case a1 && a2:
				both.Add(1)
			case a1:
				seen1.Add(1)
			case a2:
				seen2.Add(1)
			}
		}
	}()
	marks := b.history(t)
	require.NotEmpty(t, marks)
	b.caughtUp(t)

	// The one that writes stops; the other takes over and follows what comes next.
	a1, _ := p1.Active()
	a2, _ := p2.Active()
	require.True(t, a1 != a2, "exactly one runs the projection (p1 %v, p2 %v)", a1, a2)
	standby := p2
	if a1 {
		stop1()
	} else {
		stop2()
		standby = p1
	}
	require.Eventually(t, func() bool { a, _ := standby.Active(); return a }, time.Minute, 5*time.Millisecond)
	late := e.CreateAccount(t, e.CreateDomain(t, nil), map[string]any{"password": "password-late-1"})
	b.caughtUp(t)
	require.NotNil(t, b.entry(t, b.dit.Account(late)))
	close(watching)
	<-watched
	require.Zero(t, both.Load(), "both ran the projection at once")
	require.NotZero(t, seen1.Load()+seen2.Load())
	stop1()
	stop2()

	// One projection alone, on a directory of its own, from the same events.
	alone := ldaptest.New(t)
	ab := &bundle{e: e, d: alone, dit: ldap.DIT{Base: alone.Base}}
	ab.run(t, ab.options(ldap.Config{URL: d.Env.URL, BindDN: d.Env.Admin.DN, Password: d.Env.Admin.Password, DIT: ab.dit}))
	ab.waitCheckpoint(t, alone, ab.dit, 30*time.Second)
	require.Equal(t, ldaptest.Relative(alone.Dump(t, alone.Admin(t), alone.Base), alone.Base),
		ldaptest.Relative(d.Dump(t, d.Admin(t), d.Base), d.Base))
}
