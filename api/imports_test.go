package api_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"mailplane/api/apitest"
	"mailplane/commands"
)

// sshaHash is OpenLDAP's {SSHA} of a password with a salt, as a migration brings it.
func sshaHash(password, salt string) string {
	sum := sha1.Sum([]byte(password + salt))
	return "{SSHA}" + base64.StdEncoding.EncodeToString(append(sum[:], salt...))
}

func importsPath(d string) string { return "/api/v1/domains/" + d + "/imports" }

// upload sends a file as it is (Env.Do sends JSON).
func uploadFile(t *testing.T, e *apitest.Env, token, path, contentType string, body []byte) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.URL+path, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", contentType)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	var out map[string]any
	require.NoError(t, json.Unmarshal(b, &out), "%s", b)
	return res.StatusCode, out
}

func downloadFile(t *testing.T, e *apitest.Env, token, path string) (string, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.URL+path, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", b)
	return res.Header.Get("Content-Type"), b
}

// importFile is a CSV of n rows, bad ones among them, and the lines that must be reported.
func importFile(dom string, n int, taken string) ([]byte, []int) {
	var b bytes.Buffer
	b.WriteString("address,display_name,status,mail_quota_bytes,password_hash\n")
	var bad []int
	for i := range n {
		line := i + 2 // the header is line 1
		addr := fmt.Sprintf("user%05d@%s", i, dom)
		row := fmt.Sprintf("%s,User %d,active,%d,\n", addr, i, 1<<20)
		switch {
		case i%270 == 7 && i < 9900: // 37 in 10,000: ten kinds of mistake, the last one found only when applied
			switch (i / 270) % 10 {
			case 0:
				row = fmt.Sprintf("user%05d@@%s,Bad,active,1,\n", i, dom)
			case 1:
				row = fmt.Sprintf("user%05d@elsewhere.example,Wrong domain,active,1,\n", i)
			case 2:
				row = fmt.Sprintf("%s,Bad status,sleeping,1,\n", addr)
			case 3:
				row = fmt.Sprintf("%s,Bad quota,active,lots,\n", addr)
			case 4:
				row = fmt.Sprintf("user%05d@%s,Duplicate,active,1,\n", i-7, dom) // the address of line-7
			case 5:
				row = fmt.Sprintf("%s,Too few fields\n", addr)
			case 6:
				row = fmt.Sprintf("%s,Bad hash,active,1,not-a-hash\n", addr)
			case 7:
				row = fmt.Sprintf("%s,Negative quota,active,-5,\n", addr)
			case 8:
				row = ",No address,active,1,\n"
			case 9:
				row = fmt.Sprintf("%s,Taken,active,1,\n", taken)
			}
			bad = append(bad, line)
		case i == 5:
			row = fmt.Sprintf("%s,\"Quoted, with a comma\",active,%d,%s\n", addr, 1<<20, sshaHash("secret", "salt"))
		}
		b.WriteString(row)
	}
	return b.Bytes(), bad
}

// An import of 10,000 rows with 37 bad ones reports exactly those 37 by line (36 found when the
// file arrives, one address taken found when applied) and applies the rest; stopped after three
// batches (as a crash would stop it) it goes on where it was; the same file again changes
// nothing; the export streams the accounts back with their effective quota and aliases.
//
// Not parallel: its 10,000 accounts keep both CPUs busy for seconds, which made the package's
// other tests miss their read-your-writes bound on a loaded machine; alone, it runs before them.
func TestImportAccounts(t *testing.T) {
	e := apitest.New(t) // no workers: the test runs the job's work itself, to stop it mid-way
	dom := e.CreateDomain(t, nil)
	_, admin := e.User(t, dom, apitest.DomainAdmin)
	other := e.CreateDomain(t, nil)
	_, otherAdmin := e.User(t, other, apitest.DomainAdmin)
	taken := "taken@" + dom
	e.CreateAccount(t, dom, map[string]any{"address": taken})
	r := e.Do(t, http.MethodPost, "/api/v1/accounts/"+taken+"/aliases", admin, map[string]any{"alias": "alias-of-taken@" + dom})
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)

	file, bad := importFile(dom, 10000, taken)
	require.Len(t, bad, 37)

	status, _ := uploadFile(t, e, otherAdmin, importsPath(dom), "text/csv", file)
	require.Equal(t, http.StatusForbidden, status)
	status, body := uploadFile(t, e, admin, importsPath(dom), "text/csv", file)
	require.Equal(t, http.StatusAccepted, status, "%v", body)
	job := body["job"].(map[string]any)
	require.Equal(t, "import_accounts", job["kind"])
	imp := body["import"].(map[string]any)
	id := imp["id"].(string)
	require.Equal(t, float64(10000), imp["rows"])
	require.Equal(t, float64(36), imp["failed"], "found when the file arrived")
	require.Equal(t, float64(9964), imp["pending"])

	// A crash after three batches: those rows are applied with their events, the rest pending.
	ctx := context.Background()
	require.NoError(t, e.Commands.RunImport(ctx, id, commands.RunImportOptions{MaxBatches: 3}))
	mid := e.Do(t, http.MethodGet, importsPath(dom)+"/"+id, admin, nil).JSON(t)
	require.Equal(t, float64(3*commands.ImportBatch), mid["applied"])
	require.Equal(t, "applying", mid["state"])
	var events int
	require.NoError(t, e.Pool.QueryRow(ctx, `SELECT count(*) FROM events WHERE metadata->>'causation_id' = $1`, "import:"+id).Scan(&events))
	require.Equal(t, 3*commands.ImportBatch, events, "each applied row has its event, no more")

	var progress [][2]int
	require.NoError(t, e.Commands.RunImport(ctx, id, commands.RunImportOptions{
		Progress: func(_ context.Context, done, total int) error {
			progress = append(progress, [2]int{done, total})
			return nil
		}}))
	require.Equal(t, [2]int{10000, 10000}, progress[len(progress)-1])
	require.True(t, slices.IsSortedFunc(progress, func(a, b [2]int) int { return a[0] - b[0] }))

	done := e.Do(t, http.MethodGet, importsPath(dom)+"/"+id, admin, nil).JSON(t)
	require.Equal(t, "done", done["state"])
	require.Equal(t, float64(10000-37), done["applied"])
	require.Equal(t, float64(37), done["failed"])
	require.Equal(t, float64(0), done["pending"])
	var lines []int
	for _, p := range done["problems"].([]any) {
		pr := p.(map[string]any)
		lines = append(lines, int(pr["line"].(float64)))
		require.NotEmpty(t, pr["problem"])
	}
	require.Equal(t, bad, lines)
	problemOf := func(line int) string {
		for _, p := range done["problems"].([]any) {
			if pr := p.(map[string]any); int(pr["line"].(float64)) == line {
				return pr["problem"].(string)
			}
		}
		return ""
	}
	require.Contains(t, problemOf(bad[9]), "already used", "the taken address fails when applied")
	require.Contains(t, problemOf(bad[4]), "also on line")
	require.Contains(t, problemOf(bad[2]), "status")

	// Exactly the valid rows were created, each once.
	require.NoError(t, e.Pool.QueryRow(ctx, `SELECT count(*) FROM events WHERE metadata->>'causation_id' = $1`, "import:"+id).Scan(&events))
	require.Equal(t, 10000-37, events)
	var claims int
	// The file's addresses only: the domain admin's own is "user" and 8 random hex digits,
	// which began with "user0" one time in 16 and made this count one too many.
	require.NoError(t, e.Pool.QueryRow(ctx, `SELECT count(*) FROM address_claims WHERE domain = $1 AND kind = 'account' AND address ~ '^user[0-9]{5}(@|$)'`, dom).Scan(&claims))
	require.Equal(t, 10000-37, claims)
	require.NoError(t, e.Commands.RunImport(ctx, id, commands.RunImportOptions{}), "running again does nothing")

	// The same file again: the first import, nothing new.
	var before int
	require.NoError(t, e.Pool.QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&before))
	status, body = uploadFile(t, e, admin, importsPath(dom), "text/csv", file)
	require.Equal(t, http.StatusAccepted, status, "%v", body)
	require.Equal(t, job["id"], body["job"].(map[string]any)["id"])
	require.Equal(t, id, body["import"].(map[string]any)["id"])
	var after, jobs int
	require.NoError(t, e.Pool.QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&after))
	require.Equal(t, before, after)
	require.NoError(t, e.Pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE kind = 'import_accounts'`).Scan(&jobs))
	require.Equal(t, 1, jobs)

	// Export, CSV: every account with its effective quota and aliases. The export waits for the
	// read model, within the read-your-writes bound; 9,963 accounts take the projection longer
	// than that on a busy machine, so wait for it here first.
	require.Eventually(t, func() bool {
		var n int
		_ = e.Pool.QueryRow(ctx, `SELECT count(*) FROM rm_accounts WHERE domain = $1`, dom).Scan(&n)
		return n == 10000-37+2
	}, 5*time.Minute, 50*time.Millisecond)
	ct, b := downloadFile(t, e, admin, "/api/v1/domains/"+dom+"/accounts/export")
	require.True(t, strings.HasPrefix(ct, "text/csv"), ct)
	recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	require.NoError(t, err)
	require.Equal(t, []string{"address", "display_name", "status", "cos", "mail_quota_bytes", "mail_quota_source", "aliases", "created_at"}, recs[0])
	byAddr := map[string][]string{}
	for _, rec := range recs[1:] {
		byAddr[rec[0]] = rec
	}
	require.Len(t, byAddr, 10000-37+2) // the imported ones, taken@ and the admin
	u5 := byAddr["user00005@"+dom]
	require.Equal(t, "Quoted, with a comma", u5[1])
	require.Equal(t, strconv.Itoa(1<<20), u5[4])
	require.Equal(t, "account", u5[5])
	require.Equal(t, "alias-of-taken@"+dom, byAddr[taken][6])

	// JSON lines.
	ct, b = downloadFile(t, e, admin, "/api/v1/domains/"+dom+"/accounts/export?format=jsonl")
	require.Equal(t, "application/jsonl", ct)
	sc := bufio.NewScanner(bytes.NewReader(b))
	n := 0
	for sc.Scan() {
		var row map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &row))
		if row["address"] == taken {
			require.Equal(t, []any{"alias-of-taken@" + dom}, row["aliases"])
		}
		n++
	}
	require.Equal(t, 10000-37+2, n)
	e.Do(t, http.MethodGet, "/api/v1/domains/"+dom+"/accounts/export?format=xml", admin, nil).Problem(t, http.StatusBadRequest)
	e.Do(t, http.MethodGet, "/api/v1/domains/"+dom+"/accounts/export", otherAdmin, nil).Problem(t, http.StatusForbidden)
}

// The job applies a JSON lines import end to end, with progress the jobs API shows; a file
// that cannot be read is a 400 that stores nothing.
func TestImportAccountsJob(t *testing.T) {
	t.Parallel()
	e := apitest.NewWith(t, apitest.Options{Workers: &apitest.Workers{}})
	dom := e.CreateDomain(t, nil)
	_, admin := e.User(t, dom, apitest.DomainAdmin)
	var file bytes.Buffer
	for i := range 120 {
		fmt.Fprintf(&file, `{"local_part":"j%03d","display_name":"J %d","mail_quota_bytes":%d,"attributes":{"dept":"d%d"}}`+"\n", i, i, 1000+i, i%3)
	}
	file.WriteString("\n" + `{"local_part":"bad","colour":"blue"}` + "\n" + `{"local_part":7}` + "\n")
	status, body := uploadFile(t, e, admin, importsPath(dom), "application/jsonl", file.Bytes())
	require.Equal(t, http.StatusAccepted, status, "%v", body)
	jobID := int64(body["job"].(map[string]any)["id"].(float64))
	id := body["import"].(map[string]any)["id"].(string)
	require.Eventually(t, func() bool {
		j := e.Do(t, http.MethodGet, fmt.Sprintf("/api/v1/jobs/%d", jobID), admin, nil).JSON(t)
		return j["state"] == "succeeded"
	}, 30*time.Second, 50*time.Millisecond)
	j := e.Do(t, http.MethodGet, fmt.Sprintf("/api/v1/jobs/%d", jobID), admin, nil).JSON(t)
	require.Equal(t, map[string]any{"done": float64(122), "total": float64(122)}, j["progress"])
	imp := e.Do(t, http.MethodGet, importsPath(dom)+"/"+id, admin, nil).JSON(t)
	require.Equal(t, float64(120), imp["applied"])
	problems := imp["problems"].([]any)
	require.Len(t, problems, 2)
	require.Equal(t, float64(122), problems[0].(map[string]any)["line"], "the blank line 121 counts")
	require.Contains(t, problems[0].(map[string]any)["problem"], "colour")
	require.Contains(t, problems[1].(map[string]any)["problem"], "local_part")
	acct := e.Do(t, http.MethodGet, "/api/v1/accounts/j007@"+dom, admin, nil)
	require.Equal(t, http.StatusOK, acct.Status, "%s", acct.Body)
	require.Equal(t, float64(1007), acct.JSON(t)["mail_quota_bytes"])

	var rows int
	require.NoError(t, e.Pool.QueryRow(context.Background(), `SELECT count(*) FROM imports`).Scan(&rows))
	status, body = uploadFile(t, e, admin, importsPath(dom), "text/csv", []byte("name,colour\nx,y\n"))
	require.Equal(t, http.StatusBadRequest, status, "%v", body)
	status, _ = uploadFile(t, e, admin, importsPath(dom), "text/csv", []byte(""))
	require.Equal(t, http.StatusBadRequest, status)
	var after int
	require.NoError(t, e.Pool.QueryRow(context.Background(), `SELECT count(*) FROM imports`).Scan(&after))
	require.Equal(t, rows, after, "a refused file stores nothing")
}
