package api_test

import (
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"mailplane/api/apitest"
	"mailplane/workers/mailtest"
)

// privateSink runs a cmd/smtpsink of the test's own, on fixed ports, so that the test can stop
// and restart it without disturbing the dev stack's sink that other tests use.
type privateSink struct {
	bin, smtpAddr, httpAddr string
	cmd                     *exec.Cmd
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

func newPrivateSink(t *testing.T) *privateSink {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "smtpsink")
	out, err := exec.Command("go", "build", "-o", bin, "mailplane/cmd/smtpsink").CombinedOutput()
	require.NoError(t, err, "%s", out)
	s := &privateSink{bin: bin, smtpAddr: freeAddr(t), httpAddr: freeAddr(t)}
	t.Cleanup(s.stop)
	return s
}

func (s *privateSink) start(t *testing.T) {
	t.Helper()
	s.cmd = exec.Command(s.bin, "-smtp", s.smtpAddr, "-http", s.httpAddr)
	require.NoError(t, s.cmd.Start())
	require.Eventually(t, func() bool {
		c, err := net.DialTimeout("tcp", s.smtpAddr, 100*time.Millisecond)
		if err == nil {
			_ = c.Close()
		}
		return err == nil
	}, 10*time.Second, 20*time.Millisecond, "the sink listens")
}

func (s *privateSink) stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
		s.cmd = nil
	}
}

// to returns the messages the sink received for addr (its mailbox, over its HTTP API).
func (s *privateSink) to(t *testing.T, addr string) []mailtest.Message {
	t.Helper()
	resp, err := http.Get("http://" + s.httpAddr + "/messages?to=" + url.QueryEscape(addr))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var msgs []mailtest.Message
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&msgs))
	return msgs
}

// The mail server is down when a warning is due: the mail job fails and retries, and once the
// server is back the warning arrives, exactly once.
func TestUsageWarningSurvivesSMTPOutage(t *testing.T) {
	t.Parallel()
	sink := newPrivateSink(t)
	sink.start(t)
	e := apitest.NewWith(t, apitest.Options{Workers: &apitest.Workers{SMTPAddr: sink.smtpAddr}})
	dom := e.CreateDomain(t, map[string]any{"limits": map[string]any{"warn_percent": 90}})
	acct := e.CreateAccount(t, dom, map[string]any{"mail_quota_bytes": 1000})
	_, token := mailstoreToken(t, e)

	sink.stop()
	require.Equal(t, 1, report(t, e, token, usageReport{acct, 950}).Warnings)
	// The warning is recorded, and its mail job fails against the closed port.
	waitWarningEvents(t, e, "account-"+acct, 1)
	require.Eventually(t, func() bool {
		return countRows(t, e, `SELECT count(*) FROM river_job WHERE kind = 'send_email' AND args->'to' ? $1
			AND coalesce(array_length(errors, 1), 0) > 0`, acct) == 1
	}, 30*time.Second, 20*time.Millisecond, "the mail job failed at least once")
	require.Zero(t, countRows(t, e, `SELECT count(*) FROM events WHERE stream_id = $1 AND event_type = 'MailSent'`, "account-"+acct))

	sink.start(t)
	require.Eventually(t, func() bool { return len(sink.to(t, acct)) >= 1 }, 60*time.Second, 50*time.Millisecond,
		"the retried mail arrives")
	require.Eventually(t, func() bool {
		return countRows(t, e, `SELECT count(*) FROM river_job WHERE kind = 'send_email' AND args->'to' ? $1 AND state = 'completed'`, acct) == 1
	}, 30*time.Second, 20*time.Millisecond)
	require.Equal(t, 1, countRows(t, e, `SELECT count(*) FROM events WHERE stream_id = $1 AND event_type = 'MailSent'`, "account-"+acct))
	time.Sleep(500 * time.Millisecond)
	msgs := sink.to(t, acct)
	require.Len(t, msgs, 1, "exactly once")
	require.Contains(t, msgs[0].Subject, acct)
	// Reports that stay over the line after the outage send nothing more.
	require.Zero(t, report(t, e, token, usageReport{acct, 990}).Warnings)
	require.Equal(t, 1, countRows(t, e, `SELECT count(*) FROM river_job WHERE kind = 'send_email' AND args->'to' ? $1`, acct))
}
