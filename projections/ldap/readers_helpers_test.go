package ldap_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/require"

	"mailplane/api/apitest"
	"mailplane/eventstore"
	"mailplane/projections/ldap"
	"mailplane/projections/ldap/ldaptest"
)

// The helpers of the tests that read the projected directory with real clients (Postfix's
// postmap, a private Dovecot, a syncrepl consumer). setup, bundle, caughtUp and entry are in
// projection_test.go.

// call sends a request as the global admin and requires the status.
func (b *bundle) call(t *testing.T, method, path string, body any, status int) apitest.Response {
	t.Helper()
	r := b.e.Do(t, method, path, b.e.AdminToken, body)
	require.Equal(t, status, r.Status, "%s %s: %s", method, path, r.Body)
	return r
}

// lookup is one postmap query and what the table must answer ("" = not found).
type lookup struct{ key, want string }

// expectTable queries every key with one postmap run and requires the answers.
func expectTable(t *testing.T, p *ldaptest.Postmap, lookups ...lookup) {
	t.Helper()
	keys := make([]string, len(lookups))
	for i, l := range lookups {
		keys[i] = l.key
	}
	got, err := p.QueryAll(keys...)
	require.NoError(t, err)
	for _, l := range lookups {
		v, found := got[l.key]
		if l.want == "" {
			require.False(t, found, "%s: %s resolved to %q", p.Path, l.key, v)
			continue
		}
		require.True(t, found, "%s: %s did not resolve (want %q)", p.Path, l.key, l.want)
		require.Equal(t, l.want, sortedList(v), "%s: %s", p.Path, l.key)
	}
}

// sortedList sorts a comma-separated result: list members come in no stable order.
func sortedList(s string) string {
	parts := strings.Split(s, ",")
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

// readCheckpoint returns what the directory's checkpoint entry holds ("" when nothing, or no
// entry yet).
func readCheckpoint(t *testing.T, conn *goldap.Conn, dit ldap.DIT) string {
	t.Helper()
	res, err := conn.Search(goldap.NewSearchRequest(dit.Checkpoint(ldap.Name), goldap.ScopeBaseObject,
		goldap.NeverDerefAliases, 1, 0, false, "(objectClass=*)", []string{"mailplaneCheckpoint"}, nil))
	if goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject) {
		return "" // the projection has not made it yet
	}
	require.NoError(t, err)
	require.Len(t, res.Entries, 1)
	return res.Entries[0].GetAttributeValue("mailplaneCheckpoint")
}

// formatPosition is the checkpoint entry's form of a position (transaction:position).
func formatPosition(p eventstore.Position) string {
	return strconv.FormatUint(p.TransactionID, 10) + ":" + strconv.FormatInt(p.Position, 10)
}

// parsePosition reads the checkpoint entry's form of a position.
func parsePosition(t *testing.T, s string) eventstore.Position {
	t.Helper()
	tx, pos, ok := strings.Cut(s, ":")
	require.True(t, ok, "checkpoint %q", s)
	txid, err := strconv.ParseUint(tx, 10, 64)
	require.NoError(t, err)
	p, err := strconv.ParseInt(pos, 10, 64)
	require.NoError(t, err)
	return eventstore.Position{TransactionID: txid, Position: p}
}

// waitCheckpoint waits until the directory's own checkpoint entry holds the head of the
// events (caughtUp reads projection_checkpoints, which only ever moves forward: after a
// rewind of the entry it says caught up at once).
func (b *bundle) waitCheckpoint(t *testing.T, d *ldaptest.Directory, dit ldap.DIT, timeout time.Duration) {
	t.Helper()
	head, err := b.e.Store.Head(context.Background())
	require.NoError(t, err)
	want := formatPosition(head)
	conn := d.Admin(t)
	deadline := time.Now().Add(timeout)
	for {
		got := readCheckpoint(t, conn, dit)
		if got == want {
			return
		}
		require.True(t, time.Now().Before(deadline), "the checkpoint entry holds %q after %s, the head is %q", got, timeout, want)
		time.Sleep(10 * time.Millisecond)
	}
}

// effectiveQuotas reads every account of a domain through the API's list and returns each
// one's effective.mail_quota_bytes.
func (b *bundle) effectiveQuotas(t *testing.T, dom string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	cursor := ""
	for {
		path := "/api/v1/domains/" + dom + "/accounts?limit=500"
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		var page struct {
			Items []struct {
				Address   string         `json:"address"`
				Effective map[string]any `json:"effective"`
			} `json:"items"`
			NextCursor *string `json:"next_cursor"`
		}
		// Straight to the server's handler: checking 10,000 accounts against the OpenAPI
		// document (which every other test does) would take longer than the rest.
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.Header.Set("Authorization", "Bearer "+b.e.AdminToken)
		rec := httptest.NewRecorder()
		b.e.Server.Handler().ServeHTTP(rec, req)
		require.Equal(t, http.StatusOK, rec.Code, "%s: %s", path, rec.Body)
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &page))
		for _, a := range page.Items {
			q, ok := a.Effective["mail_quota_bytes"].(float64)
			require.True(t, ok, "%s: effective.mail_quota_bytes is %v", a.Address, a.Effective["mail_quota_bytes"])
			out[a.Address] = int64(q)
		}
		if page.NextCursor == nil || *page.NextCursor == "" {
			return out
		}
		cursor = *page.NextCursor
	}
}

// run starts a projection with the options and returns a function that stops it (also called
// when the test ends).
func (b *bundle) run(t *testing.T, o ldap.Options) (*ldap.Projection, func()) {
	t.Helper()
	p, err := ldap.New(o)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = p.Run(ctx) }()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return p, stop
}

// logBuffer collects a projection's log lines.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// logger returns a logger that writes to the buffer (and to stderr with APITEST_LOG set).
func (l *logBuffer) logger() *slog.Logger {
	var w io.Writer = l
	if os.Getenv("APITEST_LOG") != "" {
		w = io.MultiWriter(l, os.Stderr)
	}
	return slog.New(slog.NewTextHandler(w, nil))
}
