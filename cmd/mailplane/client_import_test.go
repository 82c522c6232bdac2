package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"mailplane/api/apitest"
)

// account import sends a file, follows the job with a progress bar and lists the rows it
// refused (exit 1); sent again it says so and changes nothing; account export writes the
// accounts back.
func TestAccountImportExport(t *testing.T) {
	c := &cliEnv{api: apitest.NewWith(t, apitest.Options{Workers: &apitest.Workers{NoACME: true}}), dir: filepath.Join(t.TempDir(), "mailplane")}
	t.Setenv("MAILPLANE_CONFIG_DIR", c.dir)
	t.Setenv("MAILPLANE_API_URL", "")
	c.run(t, "login", "--url", c.api.URL, "--email", apitest.AdminEmail, "--password", apitest.AdminPassword).ok(t)
	dom := c.api.CreateDomain(t, nil)

	var b strings.Builder
	b.WriteString("local_part,display_name,mail_quota_bytes\n")
	for i := range 1200 {
		fmt.Fprintf(&b, "u%04d,User %d,%d\n", i, i, 5000+i)
	}
	b.WriteString("bad@local,Bad,1\nu0001,Duplicate,1\n")
	file := filepath.Join(t.TempDir(), "accounts.csv")
	require.NoError(t, os.WriteFile(file, []byte(b.String()), 0o600))

	r := c.run(t, "account", "import", dom, file)
	require.Equal(t, 1, r.code, "%s\n%s", r.stdout, r.stderr)
	require.Contains(t, r.stderr, "importing into "+dom+":")
	require.Contains(t, r.stderr, "1,202/1,202 rows")
	require.Contains(t, r.stdout, "1202 rows, 1200 applied, 2 not applied")
	require.Contains(t, r.stdout, "line 1202\t")
	require.Contains(t, r.stdout, "line 1203\tu0001@"+dom+"\taddress: u0001@"+dom+" is also on line 3")

	r = c.run(t, "account", "import", dom, file)
	require.Contains(t, r.stderr, "imported before")
	require.Contains(t, r.stdout, "1200 applied")

	out := filepath.Join(t.TempDir(), "export.jsonl")
	c.run(t, "account", "export", dom, "--format", "jsonl", "--out", out).ok(t)
	f, err := os.Open(out)
	require.NoError(t, err)
	defer f.Close()
	n := 0
	for sc := bufio.NewScanner(f); sc.Scan(); n++ {
		if n == 7 {
			require.Contains(t, sc.Text(), `"mail_quota_bytes":5007`)
		}
	}
	require.Equal(t, 1200, n)
	r = c.run(t, "account", "export", dom).ok(t)
	require.True(t, strings.HasPrefix(r.stdout, "address,display_name,status,cos,mail_quota_bytes"))
	require.Equal(t, 1201, strings.Count(r.stdout, "\n"))
}
