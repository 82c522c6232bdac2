package policy_test

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"mailplane/api/apitest"
	"mailplane/api/policy"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// client speaks the policy delegation protocol as Postfix's smtpd does: attributes, an empty
// line, and one action line (plus an empty one) back, many requests on one connection.
type client struct {
	conn net.Conn
	r    *bufio.Reader
}

func (c *client) ask(t *testing.T, sender, recipient string) string {
	t.Helper()
	_, err := fmt.Fprintf(c.conn, "request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\n"+
		"client_address=127.0.0.1\nclient_name=localhost\nhelo_name=client.example\nsender=%s\nrecipient=%s\n"+
		"recipient_count=0\nqueue_id=\nsize=0\n\n", sender, recipient)
	require.NoError(t, err)
	line, err := c.r.ReadString('\n')
	require.NoError(t, err)
	end, err := c.r.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "\n", end, "an action is followed by an empty line")
	action, ok := strings.CutPrefix(strings.TrimSuffix(line, "\n"), "action=")
	require.True(t, ok, "%q", line)
	return action
}

// The policy service answers from the read models: REJECT when the sender may not post to the
// list (by its address or an alias), and for any recipient of a closed domain; DUNNO otherwise.
func TestPolicyServiceSpeaksPostfixsProtocol(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	dom := e.CreateDomain(t, nil)
	member := e.CreateAccount(t, dom, nil)
	list := apitest.Unique("announce") + "@" + dom
	r := e.Do(t, http.MethodPost, "/api/v1/domains/"+dom+"/lists", e.AdminToken, map[string]any{"address": list,
		"members": []string{member}, "allowed_senders": []string{"boss@" + dom, "press@partner.example"}})
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	alias := apitest.Unique("news") + "@" + dom
	require.Equal(t, http.StatusOK, e.Do(t, http.MethodPost, "/api/v1/lists/"+list+"/aliases", e.AdminToken,
		map[string]any{"aliases": []string{alias}}).Status)
	open := apitest.Unique("chat") + "@" + dom
	require.Equal(t, http.StatusCreated, e.Do(t, http.MethodPost, "/api/v1/domains/"+dom+"/lists", e.AdminToken,
		map[string]any{"address": open, "members": []string{member}}).Status)
	closed := e.CreateDomain(t, nil)
	gone := e.CreateAccount(t, closed, nil)
	require.Equal(t, http.StatusOK, e.Do(t, http.MethodPost, "/api/v1/domains/"+closed+"/close", e.AdminToken, nil).Status)
	// The reads behind each answer have caught up once the API shows the change.
	require.Equal(t, "closed", e.Do(t, http.MethodGet, "/api/v1/domains/"+closed, e.AdminToken, nil).JSON(t)["status"])

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &policy.Server{Recipients: e.Reads, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), IdleTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() { require.NoError(t, s.Close()); require.NoError(t, <-done) })
	conn, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	c := &client{conn: conn, r: bufio.NewReader(conn)}

	require.Equal(t, "DUNNO", c.ask(t, "boss@"+dom, list))
	require.Equal(t, "DUNNO", c.ask(t, "PRESS@partner.example", list), "addresses compare without case")
	require.Equal(t, "REJECT 5.7.1 stranger@else.example may not post to "+list, c.ask(t, "stranger@else.example", list))
	require.Equal(t, "REJECT 5.7.1 stranger@else.example may not post to "+list, c.ask(t, "stranger@else.example", alias), "through an alias too")
	require.Equal(t, "REJECT 5.7.1 <> may not post to "+list, c.ask(t, "", list))
	require.Equal(t, "DUNNO", c.ask(t, "stranger@else.example", open), "no allowed senders: anyone")
	require.Equal(t, "DUNNO", c.ask(t, "stranger@else.example", member))
	require.Equal(t, "REJECT 5.1.2 Recipient domain is closed", c.ask(t, "boss@"+dom, gone))
	require.Equal(t, "REJECT 5.1.2 Recipient domain is closed", c.ask(t, "boss@"+dom, "nobody@"+closed))
	require.Equal(t, "DUNNO", c.ask(t, "a@b.example", "x@not-hosted.example"))
	require.Equal(t, "DUNNO", c.ask(t, "a@b.example", "not an address"))
	require.Equal(t, "REJECT 5.7.1 a?b@x.example may not post to "+list, c.ask(t, "a b@x.example", list), "nothing odd in the reply")

	// Once unlisted, the stranger may post.
	require.Equal(t, http.StatusOK, e.Do(t, http.MethodPatch, "/api/v1/lists/"+list, e.AdminToken,
		map[string]any{"allowed_senders": []string{}}).Status)
	require.Empty(t, e.Do(t, http.MethodGet, "/api/v1/lists/"+list, e.AdminToken, nil).JSON(t)["allowed_senders"],
		"the reads have caught up once the API shows the change")
	require.Equal(t, "DUNNO", c.ask(t, "stranger@else.example", list))
}
