package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"mailplane/api/apitest"
)

// The client tests run the API (real HTTP, a fresh database each) and the CLI's run in
// process. MAILPLANE_CONFIG_DIR is set with t.Setenv, so they are not parallel.

type cliEnv struct {
	api *apitest.Env
	dir string
}

// newCLI starts the API and logs the CLI in as its global admin.
func newCLI(t *testing.T) *cliEnv {
	t.Helper()
	c := &cliEnv{api: apitest.New(t), dir: filepath.Join(t.TempDir(), "mailplane")}
	t.Setenv("MAILPLANE_CONFIG_DIR", c.dir)
	t.Setenv("MAILPLANE_API_URL", "")
	c.run(t, "login", "--url", c.api.URL, "--email", apitest.AdminEmail, "--password", apitest.AdminPassword).ok(t)
	return c
}

type result struct {
	args           []string
	code           int
	stdout, stderr string
}

func (c *cliEnv) run(t *testing.T, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, &out, &errOut)
	return result{args: args, code: code, stdout: out.String(), stderr: errOut.String()}
}

func (r result) ok(t *testing.T) result {
	t.Helper()
	require.Equal(t, 0, r.code, "%v\nstdout: %s\nstderr: %s", r.args, r.stdout, r.stderr)
	return r
}

// fails asserts the exit code and that nothing went to stdout.
func (r result) fails(t *testing.T, code int) result {
	t.Helper()
	require.Equal(t, code, r.code, "%v\nstdout: %s\nstderr: %s", r.args, r.stdout, r.stderr)
	require.Empty(t, r.stdout)
	return r
}

func (r result) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &m), r.stdout)
	return m
}

var cellSep = regexp.MustCompile(`\s{2,}`)

// rows splits table output into cells; tables are separated by empty lines and each starts
// with its header row.
func (r result) rows() [][]string {
	var rows [][]string
	for _, line := range strings.Split(strings.TrimRight(r.stdout, "\n"), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			rows = append(rows, cellSep.Split(line, -1))
		}
	}
	return rows
}

// row returns the cells of the first row whose first cell is key (a show table's field, or a
// list's name column).
func (r result) row(t *testing.T, key string) []string {
	t.Helper()
	for _, row := range r.rows() {
		if row[0] == key {
			return row
		}
	}
	require.Failf(t, "no row", "no row %q in\n%s", key, r.stdout)
	return nil
}

// effective returns the value and source of an effective setting in a show table.
func (r result) effective(t *testing.T, key string) (string, string) {
	t.Helper()
	in := false
	for _, row := range r.rows() {
		if row[0] == "EFFECTIVE" {
			in = true
		} else if in && row[0] == key {
			require.Len(t, row, 3, "%v", row)
			return row[1], row[2]
		}
	}
	require.Failf(t, "no effective row", "no effective %q in\n%s", key, r.stdout)
	return "", ""
}

func (c *cliEnv) get(t *testing.T, path string) map[string]any {
	t.Helper()
	r := c.api.Do(t, http.MethodGet, path, c.api.AdminToken, nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	return r.JSON(t)
}

func TestLoginSavesCredentials(t *testing.T) {
	c := newCLI(t)

	st, err := os.Stat(c.dir)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), st.Mode().Perm())
	file := filepath.Join(c.dir, "credentials.json")
	st, err = os.Stat(file)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	var saved credentials
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &saved))
	require.Equal(t, c.api.URL, saved.URL)
	require.Equal(t, apitest.AdminEmail, saved.Email)
	require.NotEmpty(t, saved.Token)
	// The saved token is a working one.
	r := c.api.Do(t, http.MethodGet, "/api/v1/domains", saved.Token, nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	// Later commands use the saved URL and token.
	c.run(t, "domain", "show", "mailplane.test").ok(t)

	t.Run("PasswordFromStandardInput", func(t *testing.T) {
		pr, pw, err := os.Pipe()
		require.NoError(t, err)
		_, err = pw.WriteString(apitest.AdminPassword + "\n")
		require.NoError(t, err)
		require.NoError(t, pw.Close())
		stdin := os.Stdin
		os.Stdin = pr
		t.Cleanup(func() { os.Stdin = stdin; pr.Close() })

		r := c.run(t, "login", "--email", apitest.AdminEmail).ok(t) // the URL is the saved one
		require.Contains(t, r.stdout, "logged in to "+c.api.URL+" as "+apitest.AdminEmail)
		var again credentials
		b, err := os.ReadFile(file)
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(b, &again))
		require.NotEqual(t, saved.Token, again.Token, "a new session")
	})

	t.Run("WrongPasswordKeepsTheOldToken", func(t *testing.T) {
		before, err := os.ReadFile(file)
		require.NoError(t, err)
		r := c.run(t, "login", "--email", apitest.AdminEmail, "--password", "wrong-password").fails(t, 1)
		require.Contains(t, r.stderr, "mailplane login: 401 Unauthorized")
		require.Contains(t, r.stderr, "/problems/invalid-credentials")
		after, err := os.ReadFile(file)
		require.NoError(t, err)
		require.Equal(t, before, after)
	})

	t.Run("URLPrecedence", func(t *testing.T) {
		// Nothing listens on port 1: the environment beats the saved URL...
		t.Setenv("MAILPLANE_API_URL", "http://127.0.0.1:1")
		r := c.run(t, "domain", "list").fails(t, 1)
		require.Contains(t, r.stderr, "127.0.0.1:1")
		// ...and --url beats the environment, before or after the arguments.
		c.run(t, "domain", "show", "--url", c.api.URL, "mailplane.test").ok(t)
		c.run(t, "domain", "show", "mailplane.test", "--url", c.api.URL+"/api/v1/").ok(t)
	})

	t.Run("NotLoggedIn", func(t *testing.T) {
		t.Setenv("MAILPLANE_CONFIG_DIR", t.TempDir())
		r := c.run(t, "domain", "list").fails(t, 1)
		require.Contains(t, r.stderr, "mailplane login")
		// With a URL but no token the API answers 401, and the CLI says how to log in.
		r = c.run(t, "domain", "list", "--url", c.api.URL).fails(t, 1)
		require.Contains(t, r.stderr, "mailplane domain list: 401 Unauthorized")
		require.Contains(t, r.stderr, "log in again with: mailplane login")
	})
}

func TestAPIErrorsArePrintedAsProblems(t *testing.T) {
	c := newCLI(t)
	name := apitest.Unique("dup") + ".example"
	c.run(t, "domain", "create", name).ok(t)

	r := c.run(t, "domain", "create", strings.ToUpper(name)).fails(t, 1)
	first := strings.SplitN(r.stderr, "\n", 2)[0]
	require.True(t, strings.HasPrefix(first, "mailplane domain create: 409 Conflict: "), r.stderr)
	require.Contains(t, first, name)
	require.Contains(t, first, "(/problems/already-exists)")

	// A validation problem lists every bad field, one per line.
	r = c.run(t, "domain", "create", "bad..name", "--status", "weird", "--warn-percent", "101").fails(t, 1)
	require.Contains(t, r.stderr, "mailplane domain create: 400 Bad Request")
	require.Contains(t, r.stderr, "(/problems/validation)")
	for _, f := range []string{"name", "status", "limits.warn_percent"} {
		require.Regexp(t, `(?m)^  - `+regexp.QuoteMeta(f)+`: \S`, r.stderr)
	}

	// Not found.
	r = c.run(t, "domain", "show", "nowhere.example").fails(t, 1)
	require.Contains(t, r.stderr, "mailplane domain show: 404 Not Found")
}

func TestUsageErrors(t *testing.T) {
	c := newCLI(t)
	for _, args := range [][]string{
		{"domain"},
		{"domain", "frobnicate"},
		{"domain", "show"},
		{"domain", "show", "a.example", "b.example"},
		{"domain", "create", "x.example", "--max-accounts", "many"},
		{"domain", "create", "x.example", "--no-such-flag"},
		{"domain", "list", "--limit"},
		{"account", "create", "no-domain-part"},
		{"account", "set", "a@x.example"},
		{"account", "set", "a@x.example", "colour=blue"},
		{"account", "set", "a@x.example", "display_name"},
		{"account", "set", "a@x.example", "mail_quota_bytes=lots"},
		{"account", "set", "a@x.example", "domain_admin=perhaps"},
		{"account", "alias", "add", "a@x.example"},
		{"account", "alias", "rename", "a@x.example", "b@x.example"},
		{"cos", "create", "gold", "--feature", "imap"},
		{"cos", "set", "gold", "features.imap=maybe"},
		{"config", "set"},
		{"config", "set", "time_zone"},
		{"login", "--url", c.api.URL, "stray"},
	} {
		r := c.run(t, args...).fails(t, 2)
		require.NotEmpty(t, r.stderr, "%v says why", args)
		require.Contains(t, r.stderr, "usage:", "%v shows the usage", args)
	}
	// None of them reached the API.
	r := c.api.Do(t, http.MethodGet, "/api/v1/domains/x.example", c.api.AdminToken, nil)
	require.Equal(t, http.StatusNotFound, r.Status)

	// -h is not an error.
	r2 := c.run(t, "domain", "create", "-h")
	require.Equal(t, 0, r2.code)
	require.Contains(t, r2.stderr, "--time-zone")
	require.Contains(t, c.run(t, "account", "help").ok(t).stdout, "mailplane account alias add ADDRESS ALIAS")
}
