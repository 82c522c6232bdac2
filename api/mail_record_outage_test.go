package api_test

import (
	"net"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"mailplane/api/apitest"
)

// hookRelay is a minimal SMTP server of the test's own that runs a hook after it has taken a
// message in and before it answers 250: what happens to the sender between the two.
type hookRelay struct {
	addr   string
	mu     sync.Mutex
	got    map[string]int
	onData func()
}

func newHookRelay(t *testing.T) *hookRelay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	r := &hookRelay{addr: ln.Addr().String(), got: map[string]int{}}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go r.serve(c)
		}
	}()
	return r
}

func (r *hookRelay) count(addr string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.got[addr]
}

func (r *hookRelay) serve(c net.Conn) {
	defer c.Close()
	tp := textproto.NewConn(c)
	_ = tp.PrintfLine("220 relay")
	var rcpts []string
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		verb := strings.ToUpper(strings.SplitN(line, " ", 2)[0])
		switch verb {
		case "EHLO", "HELO", "MAIL", "RSET", "NOOP":
			if verb == "RSET" || verb == "MAIL" {
				rcpts = nil
			}
			_ = tp.PrintfLine("250 ok")
		case "RCPT":
			a := line[strings.Index(line, "<")+1 : strings.LastIndex(line, ">")]
			rcpts = append(rcpts, strings.ToLower(a))
			_ = tp.PrintfLine("250 ok")
		case "DATA":
			_ = tp.PrintfLine("354 go on")
			if _, err := tp.ReadDotBytes(); err != nil {
				return
			}
			r.mu.Lock()
			for _, a := range rcpts {
				r.got[a]++
			}
			hook := r.onData
			r.onData = nil
			r.mu.Unlock()
			if hook != nil {
				hook()
			}
			_ = tp.PrintfLine("250 queued")
		case "QUIT":
			_ = tp.PrintfLine("221 bye")
			return
		default:
			_ = tp.PrintfLine("502 not here")
		}
	}
}

// The database goes away just after the relay took a warning mail and before the job could
// record MailSent: the job keeps trying to record it until the database is back, and the mail
// is not sent a second time (before, the job failed, ran again and sent it again).
func TestWarningMailSentOnceWhenTheDatabaseGoesAwayAfterSending(t *testing.T) {
	t.Parallel()
	cluster, url := privateCluster(t)
	relay := newHookRelay(t)
	e := apitest.NewWith(t, apitest.Options{DatabaseURL: url, Workers: &apitest.Workers{SMTPAddr: relay.addr, NoACME: true}})
	dom := e.CreateDomain(t, map[string]any{"limits": map[string]any{"warn_percent": 90}})
	acct := e.CreateAccount(t, dom, map[string]any{"mail_quota_bytes": 1000})
	_, token := mailstoreToken(t, e)

	restarted := make(chan error, 1)
	relay.mu.Lock()
	relay.onData = func() {
		require.NoError(t, cluster.Stop())
		go func() {
			time.Sleep(3 * time.Second)
			restarted <- cluster.Start()
		}()
	}
	relay.mu.Unlock()
	require.Equal(t, 1, report(t, e, token, usageReport{acct, 950}).Warnings)
	select {
	case err := <-restarted:
		require.NoError(t, err)
	case <-time.After(90 * time.Second):
		t.Fatal("the warning mail never reached the relay")
	}
	require.Eventually(t, func() bool {
		return countRows(t, e, `SELECT count(*) FROM river_job WHERE kind = 'send_email' AND args->'to' ? $1 AND state = 'completed'`, acct) == 1
	}, 90*time.Second, 50*time.Millisecond, "the mail job completes once the database is back")
	require.Equal(t, 1, countRows(t, e, `SELECT count(*) FROM events WHERE stream_id = $1 AND event_type = 'MailSent'`, "account-"+acct))
	require.Equal(t, 1, relay.count(acct), "the warning reached the relay once")
}
