package ldap_test

import (
	"bytes"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/stretchr/testify/require"

	"mailplane/api/apitest"
	"mailplane/projections/ldap"
	"mailplane/projections/ldap/ldaptest"
)

// gate is a TCP proxy in front of slapd that a test can shut, as if the directory went away
// (connections cut, new ones refused), and open again on the same address.
type gate struct {
	addr, target string
	// endDelay, when set, holds back slapd's answer to the end of every RFC 5805 transaction
	// (slapd has committed by then): a commit that takes that long.
	endDelay time.Duration
	mu       sync.Mutex
	ln       net.Listener
	conns    map[net.Conn]struct{}
	wg       sync.WaitGroup
}

func newGate(t *testing.T, target string, endDelay time.Duration) *gate {
	t.Helper()
	u, err := url.Parse(target)
	require.NoError(t, err)
	g := &gate{target: u.Host, endDelay: endDelay, conns: map[net.Conn]struct{}{}}
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
			if g.endDelay == 0 {
				for _, p := range [][2]net.Conn{{c, s}, {s, c}} {
					g.wg.Go(func() {
						_, _ = io.Copy(p[0], p[1])
						p[0].Close()
						p[1].Close()
					})
				}
				continue
			}
			var ends sync.Map // message IDs of transaction ends in flight
			g.wg.Go(func() {
				g.pump(s, c, func(id int64, raw []byte) { // requests
					if bytes.Contains(raw, []byte(oidEndTxn)) {
						ends.Store(id, true)
					}
				})
			})
			g.wg.Go(func() {
				g.pump(c, s, func(id int64, _ []byte) { // responses
					if _, ok := ends.LoadAndDelete(id); ok {
						time.Sleep(g.endDelay)
					}
				})
			})
		}
	})
}

// oidEndTxn is RFC 5805's end of a transaction.
const oidEndTxn = "1.3.6.1.1.21.3"

// pump copies LDAP messages from src to dst one at a time, as they are, after seen (given each
// message's ID) has looked at them.
func (g *gate) pump(dst, src net.Conn, seen func(id int64, raw []byte)) {
	defer dst.Close()
	defer src.Close()
	for {
		raw, err := readMessage(src)
		if err != nil {
			return
		}
		if p, err := ber.DecodePacketErr(raw); err == nil && len(p.Children) > 0 {
			if id, ok := p.Children[0].Value.(int64); ok {
				seen(id, raw)
			}
		}
		if _, err := dst.Write(raw); err != nil {
			return
		}
	}
}

// readMessage reads one BER element (an LDAPMessage) as its bytes.
func readMessage(r io.Reader) ([]byte, error) {
	head := make([]byte, 2)
	if _, err := io.ReadFull(r, head); err != nil {
		return nil, err
	}
	n := int(head[1])
	if n&0x80 != 0 {
		size := make([]byte, n&0x7f)
		if _, err := io.ReadFull(r, size); err != nil {
			return nil, err
		}
		head = append(head, size...)
		n = 0
		for _, b := range size {
			n = n<<8 | int(b)
		}
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, err
	}
	return append(head, body...), nil
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
	g := newGate(t, d.Env.URL, 0)
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

// A transaction whose end takes longer than one operation may (slapd commits a COS change's
// thousands of entries at once) is waited for, not cut off: cut off, its outcome was unknown and
// the projection reconnected, met its own writes, reconciled and was fenced by its own
// checkpoint before it went on (here slapd has committed and the gate holds its answer back).
func TestACommitSlowerThanAnOperationIsWaitedFor(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	d := ldaptest.New(t)
	b := &bundle{e: e, d: d, dit: ldap.DIT{Base: d.Base}}
	g := newGate(t, d.Env.URL, 1500*time.Millisecond)
	var log logBuffer
	o := b.options(ldap.Config{URL: g.URL(), BindDN: d.Env.Admin.DN, Password: d.Env.Admin.Password, DIT: b.dit,
		Timeout: 500 * time.Millisecond})
	o.Logger = log.logger()
	b.run(t, o)

	addr := e.CreateAccount(t, e.CreateDomain(t, nil), nil)
	start := time.Now()
	b.caughtUp(t)
	require.GreaterOrEqual(t, time.Since(start), time.Second, "the commit's answer was held back")
	require.NotNil(t, b.entry(t, b.dit.Account(addr)))
	require.NotContains(t, log.String(), "directory unavailable", "the commit was cut off:\n%s", log.String())
	require.NotContains(t, log.String(), "did not hold what the projection wrote", "the batch was written twice")
}
