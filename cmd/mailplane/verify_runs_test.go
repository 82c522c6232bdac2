package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"mailplane/api"
	"mailplane/api/apitest"
)

// Each verify and verify --read-models is kept, and GET /api/v1/verify-runs answers them,
// newest first, to global admins and auditors of every domain: what passed, what was found.
func TestVerifyRunsAreRecordedAndServed(t *testing.T) {
	ctx := context.Background()
	e := apitest.NewWith(t, apitest.Options{Config: api.Config{ReadYourWritesTimeout: time.Minute}})
	masterFile := filepath.Join(t.TempDir(), "master.key")
	require.NoError(t, os.WriteFile(masterFile, []byte(hex.EncodeToString(e.MasterKey)), 0o600))
	t.Setenv("MAILPLANE_MASTER_KEY_FILE", masterFile)
	t.Setenv("DATABASE_URL", e.Pool.Config().ConnString())
	dom := e.CreateDomain(t, nil)
	e.CreateAccount(t, dom, nil)
	runs := func(token, query string) []any {
		t.Helper()
		r := e.Do(t, http.MethodGet, "/api/v1/verify-runs"+query, token, nil)
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		return r.JSON(t)["items"].([]any)
	}
	// Who may read them (made now: the projections stop below): a global auditor yes; a domain
	// admin and an auditor of one domain no.
	home := e.CreateDomain(t, nil)
	auditor := func(domains []string) string {
		body := map[string]any{"local_part": apitest.Unique("auditor"), "password": "auditor-password-1", "auditor": true}
		if domains != nil {
			body["auditor_domains"] = domains
		}
		r := e.Do(t, http.MethodPost, "/api/v1/domains/"+home+"/accounts", e.AdminToken, body)
		require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
		return e.Login(t, r.JSON(t)["address"].(string), "auditor-password-1")
	}
	globalAuditor, domainAuditor := auditor(nil), auditor([]string{home})
	_, domainAdmin := e.User(t, home, apitest.DomainAdmin)
	require.Empty(t, runs(e.AdminToken, ""))

	var out, errOut bytes.Buffer
	require.Equal(t, 0, run(ctx, []string{"verify"}, &out, &errOut), "%s%s", out.String(), errOut.String())
	require.NotContains(t, errOut.String(), "not recorded")
	got := runs(e.AdminToken, "")
	require.Len(t, got, 1)
	first := got[0].(map[string]any)
	require.Equal(t, "chains", first["kind"])
	require.Equal(t, true, first["ok"])
	require.Contains(t, first["summary"], "every hash chain and anchor holds")
	require.Empty(t, first["problems"])

	// The read models, once caught up, then with a row changed behind the projection's back.
	e.WaitCaughtUp(t)
	e.StopProjections()
	out.Reset()
	require.Equal(t, 0, run(ctx, []string{"verify", "--read-models"}, &out, &errOut), "%s%s", out.String(), errOut.String())
	_, err := e.Pool.Exec(ctx, `UPDATE rm_domains SET status = 'locked' WHERE name = $1`, dom)
	require.NoError(t, err)
	require.Equal(t, 1, run(ctx, []string{"verify", "--read-models"}, &out, &errOut), "%s%s", out.String(), errOut.String())
	// A shadow schema's check is not the live read models': not kept.
	_ = run(ctx, []string{"verify", "--read-models", "--schema", "nothing_here"}, &out, &errOut)

	got = runs(e.AdminToken, "")
	require.Len(t, got, 3, "newest first: the failed read-model check, the passed one, the chains")
	bad, good := got[0].(map[string]any), got[1].(map[string]any)
	require.Equal(t, "read_models", bad["kind"])
	require.Equal(t, false, bad["ok"])
	require.Contains(t, bad["summary"], "1 table(s) differ from the events")
	require.Len(t, bad["problems"], 1)
	require.Contains(t, bad["problems"].([]any)[0], `DIFFERS rm_domains: 1 of 3 rows; first: row `+dom+`: status is "locked"`)
	require.Equal(t, true, good["ok"])
	require.Contains(t, good["summary"], "every read-model row equals the events")
	require.Equal(t, "chains", got[2].(map[string]any)["kind"])
	require.Len(t, runs(e.AdminToken, "?kind=chains"), 1)
	require.Len(t, runs(e.AdminToken, "?kind=read_models&limit=1"), 1)

	require.Len(t, runs(globalAuditor, ""), 3)
	e.Do(t, http.MethodGet, "/api/v1/verify-runs", domainAuditor, nil).Problem(t, http.StatusForbidden)
	e.Do(t, http.MethodGet, "/api/v1/verify-runs", domainAdmin, nil).Problem(t, http.StatusForbidden)
	require.Equal(t, []string{"kind", "limit"}, e.Do(t, http.MethodGet, "/api/v1/verify-runs?kind=all&limit=0", e.AdminToken, nil).FieldErrors(t))
}
