package ldap_test

import (
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"mailplane/api/apitest"
	"mailplane/projections/ldap"
	"mailplane/projections/ldap/ldaptest"
)

// gate is a TCP proxy in front of slapd that a test can shut, as if the directory went away
// (connections cut, new ones refused), and open again on the same address.
type gate struct {
	addr, target string
	mu           sync.Mutex
	ln           net.Listener
	conns        map[net.Conn]struct{}
	wg           sync.WaitGroup
}

func newGate(t *testing.T, target string) *gate {
	t.Helper()
	u, err := url.Parse(target)
	require.NoError(t, err)
	g := &gate{target: u.Host, conns: map[net.Conn]struct{}{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	g.addr = ln.Addr().String()
	g.serve(ln)
	t.Cleanup(func() { g.shut(); g.wg.Wait() })
	return g
}

// URL is where the projection connects.
func (g *gate) URL() string { return "ldap://" + g.addr + "/" }

func (g *gate) serve(ln net.Listener) {
	g.mu.Lock()
	g.ln = ln
	g.mu.Unlock()
	g.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", g.target)
			if err != nil {
				c.Close()
				continue
			}
			if !g.track(c, s) {
				return
			}
			for _, p := range [][2]net.Conn{{c, s}, {s, c}} {
				g.wg.Go(func() {
					_, _ = io.Copy(p[0], p[1])
					p[0].Close()
					p[1].Close()
				})
			}
		}
	})
}

func (g *gate) track(cs ...net.Conn) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ln == nil {
		for _, c := range cs {
			c.Close()
		}
		return false
	}
	for _, c := range cs {
		g.conns[c] = struct{}{}
	}
	return true
}

// shut cuts every connection and refuses new ones.
func (g *gate) shut() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ln != nil {
		g.ln.Close()
		g.ln = nil
	}
	for c := range g.conns {
		c.Close()
	}
	clear(g.conns)
}

// open listens again on the same address.
func (g *gate) open(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", g.addr)
	require.NoError(t, err)
	g.serve(ln)
}

// waitRedialling waits until the projection reports that it cannot reach the directory.
func waitRedialling(t *testing.T, p *ldap.Projection) {
	t.Helper()
	require.Eventually(t, func() bool {
		_, err := p.Active()
		return strings.Contains(err, "dial")
	}, 30*time.Second, 5*time.Millisecond, "the projection never found the directory gone")
}

// While the directory is away the projection waits for it and then catches up; stopped while
// it waits (a shutdown, or its lock lost), it ends cleanly.
func TestProjectionRidesOutADirectoryOutage(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	d := ldaptest.New(t)
	b := &bundle{e: e, d: d, dit: ldap.DIT{Base: d.Base}}
	g := newGate(t, d.Env.URL)
	o := b.options(ldap.Config{URL: g.URL(), BindDN: d.Env.Admin.DN, Password: d.Env.Admin.Password, DIT: b.dit})
	p, stop := b.run(t, o)

	dom := e.CreateDomain(t, nil)
	first := e.CreateAccount(t, dom, nil)
	b.caughtUp(t)
	require.NotNil(t, b.entry(t, b.dit.Account(first)))

	g.shut()
	during := e.CreateAccount(t, dom, nil) // the API does not wait for the directory
	waitRedialling(t, p)
	require.Nil(t, b.entry(t, b.dit.Account(during)))
	g.open(t)
	b.caughtUp(t)
	require.NotNil(t, b.entry(t, b.dit.Account(during)), "caught up once the directory came back")

	// Stopped while it redials: Run returns (it used to close a nil connection and panic).
	g.shut()
	last := e.CreateAccount(t, dom, nil)
	waitRedialling(t, p)
	stop()
	active, _ := p.Active()
	require.False(t, active)

	g.open(t)
	b.run(t, o)
	b.caughtUp(t)
	require.NotNil(t, b.entry(t, b.dit.Account(last)))
}
