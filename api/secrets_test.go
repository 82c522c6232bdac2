package api_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"mailplane/api/apitest"
)

// lockedBuffer collects log lines from many goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// dumpDatabase returns the text of every row of every table (events, read models, idempotency
// records, River's jobs, sessions, keys...), bytea columns in their hex form.
func dumpDatabase(t *testing.T, e *apitest.Env) string {
	ctx := context.Background()
	rows, err := e.Pool.Query(ctx, `SELECT quote_ident(table_schema) || '.' || quote_ident(table_name)
		FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema') AND table_type = 'BASE TABLE'`)
	require.NoError(t, err)
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Contains(t, tables, "public.river_job")
	var b strings.Builder
	for _, table := range tables {
		rows, err := e.Pool.Query(ctx, `SELECT t::text FROM `+table+` t`)
		require.NoError(t, err)
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		b.WriteString(table + "\n" + strings.Join(lines, "\n") + "\n")
	}
	return b.String()
}

// confirmers are the byte strings that would let someone holding the database or the logs
// confirm a guess of secret: the secret itself, and its (and the requests') unkeyed digests, in
// hex and base64.
func confirmers(secret string, requests ...string) []string {
	var out []string
	add := func(sum []byte) {
		out = append(out, hex.EncodeToString(sum), base64.StdEncoding.EncodeToString(sum), base64.RawStdEncoding.EncodeToString(sum))
	}
	for _, s := range append([]string{secret}, requests...) {
		h256 := sha256.Sum256([]byte(s))
		h512 := sha512.Sum512([]byte(s))
		h1 := sha1.Sum([]byte(s))
		h5 := md5.Sum([]byte(s))
		add(h256[:])
		add(h512[:])
		add(h1[:])
		add(h5[:])
	}
	return append(out, secret, base64.StdEncoding.EncodeToString([]byte(secret)), hex.EncodeToString([]byte(secret)))
}

// No stored byte sequence — events, read models, idempotency records, River job args — and no
// log line contains a known clear password or bind password, or an unkeyed digest that would
// confirm a guess of one (the request fingerprints were SHA-256 of the raw body).
func TestNoStoredByteConfirmsAClearSecret(t *testing.T) {
	t.Parallel()
	var logs lockedBuffer
	e := apitest.NewWith(t, apitest.Options{Log: &logs})
	post := func(path string, body map[string]any, headers ...string) (apitest.Response, string) {
		raw, err := json.Marshal(body)
		require.NoError(t, err)
		r := e.Do(t, http.MethodPost, path, e.AdminToken, raw, headers...)
		return r, string(raw)
	}

	bindPassword := apitest.Unique("Bind-Secret-")
	domName := apitest.Unique("sec") + ".example"
	r, domainBody := post("/api/v1/domains", map[string]any{"name": domName, "auth": map[string]any{
		"mechanism": "ldap", "ldap_url": "ldap://127.0.0.1:1", "bind_dn": "cn=reader,dc=example",
		"bind_password": bindPassword, "search_base": "dc=example", "search_filter": "(uid=%u)"}},
		"Idempotency-Key", apitest.Unique("k-"))
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)

	dom := e.CreateDomain(t, nil)
	password := apitest.Unique("Clear-Pass-")
	r, accountBody := post(accountsPath(dom), map[string]any{"local_part": "alice", "password": password},
		"Idempotency-Key", apitest.Unique("k-"))
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	addr := "alice@" + dom
	second := apitest.Unique("Second-Pass-")
	p := e.Do(t, http.MethodPatch, accountPath(addr), e.AdminToken, map[string]any{"password": second})
	require.Equal(t, http.StatusOK, p.Status, "%s", p.Body)
	wrong := apitest.Unique("Wrong-Pass-")
	e.Do(t, http.MethodPost, "/api/v1/auth/login", "", map[string]string{"email": addr, "password": wrong}).
		Problem(t, http.StatusUnauthorized)
	e.Login(t, addr, second)

	dump := dumpDatabase(t, e)
	require.Contains(t, dump, "idempotency_keys", "the records are in the dump")
	for _, c := range []struct {
		name     string
		secret   string
		requests []string
	}{
		{"bind password", bindPassword, []string{"POST /api/v1/domains\n" + domainBody, domainBody}},
		{"password", password, []string{"POST " + accountsPath(dom) + "\n" + accountBody, accountBody}},
		{"changed password", second, nil},
		{"failed login's password", wrong, nil},
	} {
		for _, needle := range confirmers(c.secret, c.requests...) {
			require.NotContains(t, dump, needle, "the database holds the %s or a digest that confirms it", c.name)
			require.NotContains(t, logs.String(), needle, "the logs hold the %s or a digest that confirms it", c.name)
		}
	}
}
