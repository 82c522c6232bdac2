package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"mailplane/api"
	"mailplane/api/apitest"
	"mailplane/readcheck"
)

// verify --read-models exits 0 when the read models equal the events and 1, naming the table,
// the row and the column, when a row was changed behind the projection's back; --json gives the
// report.
func TestVerifyReadModelsExitStatus(t *testing.T) {
	ctx := context.Background()
	e := apitest.NewWith(t, apitest.Options{Config: api.Config{ReadYourWritesTimeout: time.Minute}})
	t.Setenv("DATABASE_URL", e.Pool.Config().ConnString())
	dom := e.CreateDomain(t, map[string]any{"description": "checked"})
	addr := e.CreateAccount(t, dom, map[string]any{"display_name": "Checked"})
	r := e.Do(t, http.MethodPost, "/api/v1/accounts/"+addr+"/aliases", e.AdminToken, map[string]any{"alias": "other@" + dom})
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	e.WaitCaughtUp(t)
	e.StopProjections()

	var out, errOut bytes.Buffer
	require.Equal(t, 0, run(ctx, []string{"verify", "--read-models"}, &out, &errOut), "%s%s", out.String(), errOut.String())
	require.Contains(t, out.String(), "ok      public.rm_accounts: 2 rows") // the bootstrapped admin's and addr
	require.Contains(t, out.String(), "every read-model row equals the events")

	_, err := e.Pool.Exec(ctx, `UPDATE rm_domains SET status = 'locked' WHERE name = $1`, dom)
	require.NoError(t, err)
	out.Reset()
	require.Equal(t, 1, run(ctx, []string{"verify", "--read-models"}, &out, &errOut), "%s%s", out.String(), errOut.String())
	require.Contains(t, out.String(), `DIFFERS public.rm_domains: 1 of 2 rows; first: row `+dom+`: status is "locked", the events say "active"`)
	require.Contains(t, out.String(), "ok      public.rm_accounts")
	require.Contains(t, out.String(), "the read models differ from the events")

	out.Reset()
	require.Equal(t, 1, run(ctx, []string{"verify", "--read-models", "--json"}, &out, &errOut), errOut.String())
	var rep readcheck.Report
	require.NoError(t, json.Unmarshal(out.Bytes(), &rep), out.String())
	require.False(t, rep.OK())
	for _, tr := range rep.Tables {
		if tr.Table == "rm_domains" {
			require.Equal(t, &readcheck.Difference{Kind: readcheck.Differs, Key: dom, Column: "status",
				Expected: `"active"`, Got: `"locked"`}, tr.First)
		}
	}

	// A schema without the read models is an error (exit 1 with the reason), not a pass.
	out.Reset()
	errOut.Reset()
	require.NotEqual(t, 0, run(ctx, []string{"verify", "--read-models", "--schema", "nowhere"}, &out, &errOut))
	require.Contains(t, errOut.String(), "nowhere")
}
