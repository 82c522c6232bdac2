package api_test

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"mailplane/api"
	"mailplane/api/apitest"
	"mailplane/workers/mailtest"
)

const usagePath = "/api/v1/usage"

func quotaPath(d string) string { return "/api/v1/domains/" + d + "/quota" }

// mailstoreToken makes a service token of role mailstore as the global admin.
func mailstoreToken(t testing.TB, e *apitest.Env) (id, token string) {
	t.Helper()
	r := e.Do(t, http.MethodPost, "/api/v1/service-tokens", e.AdminToken, map[string]any{"name": "mailstore-1", "role": "mailstore"})
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	m := r.JSON(t)
	return m["id"].(string), m["token"].(string)
}

type usageReport struct {
	Address   string `json:"address"`
	UsedBytes int64  `json:"used_bytes"`
}

type usageAnswer struct {
	Stored   int      `json:"stored"`
	Unknown  []string `json:"unknown"`
	Warnings int      `json:"warnings"`
}

func report(t *testing.T, e *apitest.Env, token string, reports ...usageReport) usageAnswer {
	t.Helper()
	r := e.Do(t, http.MethodPost, usagePath, token, map[string]any{"reports": reports})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	var a usageAnswer
	r.Decode(t, &a)
	return a
}

// countRows counts rows of a query with one argument.
func countRows(t *testing.T, e *apitest.Env, query string, arg any) int {
	t.Helper()
	var n int
	require.NoError(t, e.Pool.QueryRow(t.Context(), query, arg).Scan(&n))
	return n
}

func warningEvents(t *testing.T, e *apitest.Env, stream string) int {
	return countRows(t, e, `SELECT count(*) FROM events WHERE stream_id = $1 AND event_type = 'QuotaWarningSent'`, stream)
}

// waitWarningEvents waits until the stream holds n QuotaWarningSent events (the jobs record them).
func waitWarningEvents(t *testing.T, e *apitest.Env, stream string, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return warningEvents(t, e, stream) >= n }, 30*time.Second, 20*time.Millisecond,
		"%d warning events on %s", n, stream)
	require.Equal(t, n, warningEvents(t, e, stream))
}

func TestUsageRoles(t *testing.T) {
	t.Parallel()
	e := apitest.NewWith(t, apitest.Options{RiverUI: true})
	dom := e.CreateDomain(t, nil)
	acct := e.CreateAccount(t, dom, nil)
	_, domainAdmin := e.User(t, dom, apitest.DomainAdmin)
	_, plain := e.User(t, dom, apitest.Plain)
	id, token := mailstoreToken(t, e)
	require.True(t, strings.HasPrefix(token, "mps_"), token)

	// Only global admins make and revoke service tokens.
	for _, tok := range []string{domainAdmin, plain} {
		e.Do(t, http.MethodPost, "/api/v1/service-tokens", tok, map[string]any{"name": "x", "role": "mailstore"}).Problem(t, http.StatusForbidden)
		e.Do(t, http.MethodDelete, "/api/v1/service-tokens/"+id, tok, nil).Problem(t, http.StatusForbidden)
	}
	require.ElementsMatch(t, []string{"role"}, e.Do(t, http.MethodPost, "/api/v1/service-tokens", e.AdminToken,
		map[string]any{"name": "x", "role": "admin"}).FieldErrors(t))
	require.ElementsMatch(t, []string{"name", "role"}, e.Do(t, http.MethodPost, "/api/v1/service-tokens", e.AdminToken,
		map[string]any{"name": " "}).FieldErrors(t))

	// The creation is an event naming who made it, and never the token.
	var data string
	require.NoError(t, e.Pool.QueryRow(t.Context(), `SELECT data::text FROM events WHERE stream_id = $1`, "service-token-"+id).Scan(&data))
	require.Contains(t, data, apitest.AdminEmail)
	require.Contains(t, data, `"role": "mailstore"`)
	require.NotContains(t, data, strings.TrimPrefix(token, "mps_"))

	// A mailstore token reports usage, and does nothing else.
	require.Equal(t, 1, report(t, e, token, usageReport{acct, 10}).Stored)
	for _, c := range []struct{ method, path string }{
		{http.MethodGet, "/api/v1/domains"},
		{http.MethodGet, quotaPath(dom)},
		{http.MethodGet, "/api/v1/accounts/" + acct},
		{http.MethodGet, "/api/v1/config"},
		{http.MethodPost, "/api/v1/service-tokens"},
		{http.MethodGet, "/api/v1/jobs/1"},
	} {
		r := e.Do(t, c.method, c.path, token, nil)
		require.Equal(t, http.StatusForbidden, r.Status, "%s %s: %s", c.method, c.path, r.Body)
	}
	e.Do(t, http.MethodGet, "/riverui/api/queues", token, nil).Problem(t, http.StatusForbidden)
	// Nobody else reports usage, not even a global admin.
	for _, tok := range []string{e.AdminToken, domainAdmin, plain} {
		e.Do(t, http.MethodPost, usagePath, tok, map[string]any{"reports": []usageReport{{acct, 20}}}).Problem(t, http.StatusForbidden)
	}
	// Administrators of the domain read its quota; others do not.
	require.Equal(t, http.StatusOK, e.Do(t, http.MethodGet, quotaPath(dom), domainAdmin, nil).Status)
	e.Do(t, http.MethodGet, quotaPath(dom), plain, nil).Problem(t, http.StatusForbidden)
	other := e.CreateDomain(t, nil)
	e.Do(t, http.MethodGet, quotaPath(other), domainAdmin, nil).Problem(t, http.StatusForbidden)

	// Revoked: refused at once.
	require.Equal(t, http.StatusNoContent, e.Do(t, http.MethodDelete, "/api/v1/service-tokens/"+id, e.AdminToken, nil).Status)
	require.Equal(t, http.StatusNoContent, e.Do(t, http.MethodDelete, "/api/v1/service-tokens/"+id, e.AdminToken, nil).Status)
	e.Do(t, http.MethodPost, usagePath, token, map[string]any{"reports": []usageReport{{acct, 30}}}).Problem(t, http.StatusUnauthorized)
	e.Do(t, http.MethodDelete, "/api/v1/service-tokens/nope", e.AdminToken, nil).Problem(t, http.StatusNotFound)
	require.Equal(t, 2, countRows(t, e, `SELECT count(*) FROM events WHERE stream_id = $1`, "service-token-"+id))
}

func TestUsageValidation(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	dom := e.CreateDomain(t, nil)
	a := e.CreateAccount(t, dom, nil)
	b := e.CreateAccount(t, dom, nil)
	_, token := mailstoreToken(t, e)
	stored := func() int { return countRows(t, e, `SELECT count(*) FROM mailbox_usage WHERE domain = $1`, dom) }

	// Over 10,000 reports: refused whole.
	many := make([]usageReport, 10_001)
	for i := range many {
		many[i] = usageReport{fmt.Sprintf("u%d@%s", i, dom), 1}
	}
	many[0] = usageReport{a, 5}
	require.Equal(t, []string{"reports"}, e.Do(t, http.MethodPost, usagePath, token, map[string]any{"reports": many}).FieldErrors(t))
	// Exactly 10,000 is fine (all but one unknown).
	ans := report(t, e, token, many[:10_000]...)
	require.Equal(t, 1, ans.Stored)
	require.Len(t, ans.Unknown, 9_999)
	require.Equal(t, 1, stored())

	// One bad report refuses the batch, naming every bad one; nothing is written.
	r := e.Do(t, http.MethodPost, usagePath, token, map[string]any{"reports": []any{
		map[string]any{"address": b, "used_bytes": 7},
		map[string]any{"address": "not-an-address", "used_bytes": 1},
		map[string]any{"address": a, "used_bytes": -1},
		map[string]any{"address": strings.ToUpper(b), "used_bytes": 9},
	}})
	require.ElementsMatch(t, []string{"reports[1].address", "reports[2].used_bytes", "reports[3].address"}, r.FieldErrors(t))
	require.Equal(t, 1, stored())
	require.Equal(t, []string{"reports"}, e.Do(t, http.MethodPost, usagePath, token, map[string]any{"reports": []any{}}).FieldErrors(t))
	e.Do(t, http.MethodPost, usagePath, token, map[string]any{"reports": []any{}, "extra": 1}).Problem(t, http.StatusBadRequest)
	e.Do(t, http.MethodPost, usagePath, token, `{"reports":[{"address":"x@y.test","used_bytes":"big"}]}`).Problem(t, http.StatusBadRequest)
	e.Do(t, http.MethodPost, usagePath, token, strings.Repeat(" ", 5<<20)).Problem(t, http.StatusRequestEntityTooLarge)

	// Addresses in any case; unknown ones skipped and listed, the rest stored.
	ans = report(t, e, token, usageReport{strings.ToUpper(b), 42}, usageReport{"ghost@" + dom, 1})
	require.Equal(t, usageAnswer{Stored: 1, Unknown: []string{"ghost@" + dom}}, ans)
	var used int64
	require.NoError(t, e.Pool.QueryRow(t.Context(), `SELECT used_bytes FROM mailbox_usage WHERE address = $1`, b).Scan(&used))
	require.Equal(t, int64(42), used)
	// Usage is not an event.
	require.Zero(t, countRows(t, e, `SELECT count(*) FROM events WHERE stream_id = $1 AND event_type NOT IN ('AccountCreated')`, "account-"+b))
}

// up, up, down, up: two crossings, two mails; reports that stay over send nothing.
func TestUsageCrossingSequence(t *testing.T) {
	t.Parallel()
	e := apitest.NewWith(t, apitest.Options{Workers: &apitest.Workers{}})
	recipient := apitest.Unique("postmaster-") + "@example.test"
	dom := e.CreateDomain(t, map[string]any{"limits": map[string]any{"warn_percent": 80, "warn_recipient": recipient}})
	acct := e.CreateAccount(t, dom, map[string]any{"mail_quota_bytes": 1000})
	_, token := mailstoreToken(t, e)

	steps := []struct {
		used     int64
		warnings int
	}{{500, 0}, {850, 1}, {900, 0}, {999, 0}, {100, 0}, {799, 0}, {800, 1}, {2000, 0}}
	for _, s := range steps {
		require.Equal(t, s.warnings, report(t, e, token, usageReport{acct, s.used}).Warnings, "report %d", s.used)
	}
	require.Equal(t, 2, countRows(t, e, `SELECT count(*) FROM river_job WHERE kind = 'quota_warning' AND args->>'name' = $1`, acct))
	waitWarningEvents(t, e, "account-"+acct, 2)
	msgs := mailtest.WaitFor(t, acct, 2, 30*time.Second)
	require.Len(t, mailtest.WaitFor(t, recipient, 2, 30*time.Second), 2, "the domain's recipient gets a copy")
	require.Contains(t, msgs[0].Subject, acct)
	require.Contains(t, msgs[0].Body, "Quota:")
	require.Contains(t, msgs[0].Body, "1000 bytes")
	require.Contains(t, msgs[0].Body, "Warning at: 80%")
	// Both mails are recorded as sent, once each.
	require.Eventually(t, func() bool {
		return countRows(t, e, `SELECT count(*) FROM events WHERE stream_id = $1 AND event_type = 'MailSent'`, "account-"+acct) == 2
	}, 30*time.Second, 20*time.Millisecond)
	time.Sleep(300 * time.Millisecond)
	require.Len(t, mailtest.To(t, acct), 2)
}

// The domain's total crosses its own line: one mail to its recipient per crossing.
func TestUsageDomainAggregate(t *testing.T) {
	t.Parallel()
	e := apitest.NewWith(t, apitest.Options{Workers: &apitest.Workers{}})
	recipient := apitest.Unique("dom-") + "@example.test"
	dom := e.CreateDomain(t, map[string]any{"limits": map[string]any{"domain_quota_bytes": 10_000, "warn_percent": 80,
		"warn_recipient": recipient}})
	a := e.CreateAccount(t, dom, map[string]any{"mail_quota_bytes": 0})
	b := e.CreateAccount(t, dom, map[string]any{"mail_quota_bytes": 0})
	c := e.CreateAccount(t, dom, map[string]any{"mail_quota_bytes": 0})
	_, token := mailstoreToken(t, e)

	require.Zero(t, report(t, e, token, usageReport{a, 3000}, usageReport{b, 3000}).Warnings) // 60%
	require.Equal(t, 1, report(t, e, token, usageReport{c, 2500}).Warnings)                   // 85%
	require.Zero(t, report(t, e, token, usageReport{c, 2600}, usageReport{a, 3100}).Warnings) // 87%: still over
	require.Zero(t, report(t, e, token, usageReport{a, 0}).Warnings)                          // 56%: re-armed
	require.Equal(t, 1, report(t, e, token, usageReport{a, 3000}).Warnings)                   // 86%

	q := e.Do(t, http.MethodGet, quotaPath(dom), e.AdminToken, nil).JSON(t)["domain"].(map[string]any)
	require.Equal(t, float64(8600), q["used_bytes"])
	require.Equal(t, float64(10_000), q["limit_bytes"])
	require.Equal(t, float64(86), q["percent"])
	require.Equal(t, recipient, q["warn_recipient"])

	waitWarningEvents(t, e, "domain-"+dom, 2)
	msgs := mailtest.WaitFor(t, recipient, 2, 30*time.Second)
	require.Contains(t, msgs[0].Subject, "Domain "+dom)
	require.Contains(t, msgs[0].Body, "8500 bytes")
	for _, x := range []string{a, b, c} {
		require.Zero(t, warningEvents(t, e, "account-"+x), "accounts without a limit are never warned")
	}
	time.Sleep(300 * time.Millisecond)
	require.Len(t, mailtest.To(t, recipient), 2)
}

// A limit lowered under the usage is a crossing, found when the limit changes (no report).
func TestUsageLimitLowered(t *testing.T) {
	t.Parallel()
	e := apitest.NewWith(t, apitest.Options{Workers: &apitest.Workers{}})
	dom := e.CreateDomain(t, map[string]any{"limits": map[string]any{"warn_percent": 90}})
	acct := e.CreateAccount(t, dom, map[string]any{"mail_quota_bytes": 10_000})
	_, token := mailstoreToken(t, e)
	require.Zero(t, report(t, e, token, usageReport{acct, 5000}).Warnings)
	patch := func(path string, body map[string]any) {
		t.Helper()
		r := e.Do(t, http.MethodPatch, path, e.AdminToken, body)
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	}

	patch(accountPath(acct), map[string]any{"mail_quota_bytes": 5500}) // 91%
	waitWarningEvents(t, e, "account-"+acct, 1)
	patch(accountPath(acct), map[string]any{"mail_quota_bytes": 5400}) // still over: nothing
	patch(accountPath(acct), map[string]any{"mail_quota_bytes": 100_000})
	// The domain's warning percent falls under the usage (5%): crossing again.
	patch("/api/v1/domains/"+dom, map[string]any{"limits": map[string]any{"warn_percent": 4}})
	waitWarningEvents(t, e, "account-"+acct, 2)
	require.Len(t, mailtest.WaitFor(t, acct, 2, 30*time.Second), 2)
	// A report that stays over changes nothing.
	require.Zero(t, report(t, e, token, usageReport{acct, 5001}).Warnings)
	time.Sleep(300 * time.Millisecond)
	require.Equal(t, 2, warningEvents(t, e, "account-"+acct))
	require.Len(t, mailtest.To(t, acct), 2)
}

// Concurrent batches that cross the same lines warn of each crossing exactly once.
func TestUsageConcurrentBatchesWarnOnce(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	dom := e.CreateDomain(t, map[string]any{"limits": map[string]any{"warn_percent": 50, "account_quota_bytes": 100}})
	var accts []string
	for range 20 {
		accts = append(accts, e.CreateAccount(t, dom, nil))
	}
	_, token := mailstoreToken(t, e)
	batch := func(used int64) []usageReport {
		out := make([]usageReport, len(accts))
		for i, a := range accts {
			out[i] = usageReport{a, used}
		}
		return out
	}
	total := 0
	var mu sync.Mutex
	for round, used := range []int64{60, 10, 70} {
		var wg sync.WaitGroup
		for range 6 {
			wg.Go(func() {
				n := report(t, e, token, batch(used)...).Warnings
				mu.Lock()
				total += n
				mu.Unlock()
			})
		}
		wg.Wait()
		want := []int{20, 20, 40}[round]
		require.Equal(t, want, total, "round %d", round)
	}
	require.Equal(t, 40, countRows(t, e, `SELECT count(*) FROM river_job WHERE kind = 'quota_warning' AND args->>'domain' = $1`, dom))
}

func TestUsageQuotaPagingAndSort(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	dom := e.CreateDomain(t, map[string]any{"limits": map[string]any{"account_quota_bytes": 1000, "domain_quota_bytes": 100_000}})
	_, token := mailstoreToken(t, e)
	type row struct {
		addr  string
		used  int64
		limit int64 // -1: the domain's
	}
	rows := []row{{"a", 500, -1}, {"b", 500, -1}, {"c", 990, -1}, {"d", 10, 20}, {"e", 0, -1}, {"f", 7000, 0}, {"g", -1, -1}, {"h", 1, 3}}
	var reports []usageReport
	for i := range rows {
		body := map[string]any{"local_part": rows[i].addr + apitest.Unique("")}
		if rows[i].limit >= 0 {
			body["mail_quota_bytes"] = rows[i].limit
		}
		rows[i].addr = e.CreateAccount(t, dom, body)
		if rows[i].used >= 0 {
			reports = append(reports, usageReport{rows[i].addr, rows[i].used})
		}
	}
	require.Equal(t, len(reports), report(t, e, token, reports...).Stored)

	var got []string
	var percents []any
	cursor := ""
	pages := 0
	for {
		path := quotaPath(dom) + "?limit=3"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		r := e.Do(t, http.MethodGet, path, e.AdminToken, nil)
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		m := r.JSON(t)
		pages++
		d := m["domain"].(map[string]any)
		require.Equal(t, float64(500+500+990+10+0+7000+1), d["used_bytes"])
		for _, it := range m["items"].([]any) {
			it := it.(map[string]any)
			got = append(got, it["address"].(string))
			percents = append(percents, it["percent"])
		}
		if m["next_cursor"] == nil {
			break
		}
		cursor = m["next_cursor"].(string)
	}
	require.Equal(t, 3, pages)
	byPct := func(i int) string { return rows[i].addr }
	// c 99%, d 50% / a 50% / b 50% (by address), h 33.33%, e and g 0% (by address), f: no limit, last.
	fifty := []string{byPct(0), byPct(1), byPct(3)}
	sort.Strings(fifty)
	zero := []string{byPct(4), byPct(6)}
	sort.Strings(zero)
	want := append(append(append([]string{byPct(2)}, fifty...), byPct(7)), append(zero, byPct(5))...)
	require.Equal(t, want, got)
	require.Equal(t, []any{float64(99), float64(50), float64(50), float64(50), 33.33, float64(0), float64(0), nil}, percents)

	bad := base64.RawURLEncoding.EncodeToString([]byte("x|y"))
	require.Equal(t, []string{"cursor"}, e.Do(t, http.MethodGet, quotaPath(dom)+"?cursor="+bad, e.AdminToken, nil).FieldErrors(t))
	e.Do(t, http.MethodGet, quotaPath("nope.example"), e.AdminToken, nil).Problem(t, http.StatusNotFound)
}

// The quota list resolves each account's limits in SQL; they must be those the account itself
// shows (domain.EffectiveAccount), however they are inherited.
func TestUsageLimitsMatchDomain(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	ok := func(r apitest.Response) {
		t.Helper()
		require.Less(t, r.Status, 300, "%s", r.Body)
	}
	gcos, c2 := apitest.Unique("g"), apitest.Unique("c")
	ok(e.Do(t, http.MethodPost, "/api/v1/cos", e.AdminToken, map[string]any{"name": gcos, "mail_quota_bytes": 6000}))
	ok(e.Do(t, http.MethodPost, "/api/v1/cos", e.AdminToken, map[string]any{"name": c2, "quota_warn_percent": 70}))
	ok(e.Do(t, http.MethodPatch, "/api/v1/config", e.AdminToken, map[string]any{"account_quota_bytes": 7000, "warn_percent": 85,
		"default_cos": gcos}))
	d1 := e.CreateDomain(t, map[string]any{"default_cos": c2, "limits": map[string]any{"warn_percent": 60}})
	d2 := e.CreateDomain(t, nil)
	d3 := e.CreateDomain(t, map[string]any{"limits": map[string]any{"account_quota_bytes": 3000}})
	for _, d := range []string{d1, d2, d3} {
		e.CreateAccount(t, d, nil)
		e.CreateAccount(t, d, map[string]any{"mail_quota_bytes": 1234})
		e.CreateAccount(t, d, map[string]any{"cos": c2})
		e.CreateAccount(t, d, map[string]any{"cos": gcos, "mail_quota_bytes": 0})
	}
	seen := 0
	for _, d := range []string{d1, d2, d3} {
		r := e.Do(t, http.MethodGet, quotaPath(d), e.AdminToken, nil)
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		for _, it := range r.JSON(t)["items"].([]any) {
			it := it.(map[string]any)
			a := e.Do(t, http.MethodGet, accountPath(it["address"].(string)), e.AdminToken, nil).JSON(t)
			eff := a["effective"].(map[string]any)
			require.Equal(t, eff["mail_quota_bytes"], it["limit_bytes"], "%s: %v", it["address"], a["sources"])
			require.Equal(t, eff["quota_warn_percent"], it["warn_percent"], "%s: %v", it["address"], a["sources"])
			seen++
		}
	}
	require.Equal(t, 12, seen)
}

// A deleted account's usage goes, and leaves its domain's total; its address is unknown again.
func TestUsageOfADeletedAccount(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	dom := e.CreateDomain(t, map[string]any{"limits": map[string]any{"domain_quota_bytes": 1000, "warn_percent": 50}})
	a := e.CreateAccount(t, dom, nil)
	b := e.CreateAccount(t, dom, nil)
	_, token := mailstoreToken(t, e)
	require.Equal(t, 1, report(t, e, token, usageReport{a, 400}, usageReport{b, 300}).Warnings) // 70 %: the domain crosses
	require.Equal(t, http.StatusNoContent, e.Do(t, http.MethodDelete, accountPath(a), e.AdminToken, nil).Status)
	require.Eventually(t, func() bool {
		return countRows(t, e, `SELECT count(*) FROM mailbox_usage WHERE address = $1 AND used_bytes = 0`, a) == 1
	}, time.Minute, 10*time.Millisecond)
	m := e.Do(t, http.MethodGet, quotaPath(dom), e.AdminToken, nil).JSON(t)
	require.Equal(t, float64(300), m["domain"].(map[string]any)["used_bytes"])
	require.Len(t, m["items"], 1)
	require.Equal(t, []string{a}, report(t, e, token, usageReport{a, 1}, usageReport{b, 300}).Unknown)
	// 30 %: under the line again, so the next crossing warns again.
	require.Equal(t, 1, report(t, e, token, usageReport{b, 600}).Warnings)
}

// An account deleted and created again at its address is warned again: its crossings are
// numbered on from the old account's, so neither the warning nor its mail is taken for the old
// one's.
func TestUsageOfAnAccountCreatedAgain(t *testing.T) {
	t.Parallel()
	e := apitest.NewWith(t, apitest.Options{Workers: &apitest.Workers{}})
	dom := e.CreateDomain(t, map[string]any{"limits": map[string]any{"warn_percent": 90}})
	a := e.CreateAccount(t, dom, map[string]any{"mail_quota_bytes": 1000})
	_, token := mailstoreToken(t, e)
	require.Equal(t, 1, report(t, e, token, usageReport{a, 950}).Warnings)
	waitWarningEvents(t, e, "account-"+a, 1)
	mailtest.WaitFor(t, a, 1, 30*time.Second)
	require.Equal(t, http.StatusNoContent, e.Do(t, http.MethodDelete, accountPath(a), e.AdminToken, nil).Status)
	require.Eventually(t, func() bool {
		return countRows(t, e, `SELECT count(*) FROM mailbox_usage WHERE address = $1 AND used_bytes = 0`, a) == 1
	}, time.Minute, 10*time.Millisecond)
	require.Equal(t, a, e.CreateAccount(t, dom, map[string]any{"address": a, "mail_quota_bytes": 1000}))
	require.Equal(t, 1, report(t, e, token, usageReport{a, 960}).Warnings)
	waitWarningEvents(t, e, "account-"+a, 2)
	require.Len(t, mailtest.WaitFor(t, a, 2, 30*time.Second), 2)
}

// Limits inherited from a COS or from the global configuration: lowering them warns too.
func TestUsageLimitLoweredByCOSAndConfig(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	ok := func(r apitest.Response) {
		t.Helper()
		require.Less(t, r.Status, 300, "%s", r.Body)
	}
	cos := apitest.Unique("c")
	ok(e.Do(t, http.MethodPost, "/api/v1/cos", e.AdminToken, map[string]any{"name": cos, "quota_warn_percent": 95}))
	dom := e.CreateDomain(t, nil) // warn_percent: the global one
	viaCOS := e.CreateAccount(t, dom, map[string]any{"cos": cos, "mail_quota_bytes": 1000})
	viaGlobal := e.CreateAccount(t, dom, map[string]any{"mail_quota_bytes": 1000})
	_, token := mailstoreToken(t, e)
	require.Zero(t, report(t, e, token, usageReport{viaCOS, 700}, usageReport{viaGlobal, 700}).Warnings)
	jobs := func(addr string) int {
		return countRows(t, e, `SELECT count(*) FROM river_job WHERE kind = 'quota_warning' AND args->>'name' = $1`, addr)
	}

	ok(e.Do(t, http.MethodPatch, "/api/v1/cos/"+cos, e.AdminToken, map[string]any{"quota_warn_percent": 60}))
	require.Eventually(t, func() bool { return jobs(viaCOS) == 1 }, time.Minute, 10*time.Millisecond)
	require.Zero(t, jobs(viaGlobal))
	ok(e.Do(t, http.MethodPatch, "/api/v1/config", e.AdminToken, map[string]any{"warn_percent": 70}))
	require.Eventually(t, func() bool { return jobs(viaGlobal) == 1 }, time.Minute, 10*time.Millisecond)
	require.Equal(t, 1, jobs(viaCOS), "its COS's percent wins over the global one")
}

// A usage report waits for the read models to hold its own accounts' events, and for nothing
// else: while the projections are stopped, a report of an account they hold is stored at once
// even though other changes are waiting, and a report of an account created since is refused
// with 503 (nothing stored), not stored as unknown.
func TestUsageWaitsOnlyForTheReportedAccounts(t *testing.T) {
	t.Parallel()
	// 3 s: the refusal below takes the whole bound, and the writes before it must not hit it when
	// another test database's open transaction holds the projections back for a moment.
	e := apitest.NewWith(t, apitest.Options{Config: api.Config{ReadYourWritesTimeout: 3 * time.Second}})
	dom := e.CreateDomain(t, nil)
	known := e.CreateAccount(t, dom, map[string]any{"mail_quota_bytes": 1000})
	_, token := mailstoreToken(t, e)
	// The create is answered from the command: wait until the projection holds it before stopping
	// the projection, or "known" is one of the accounts still waiting (seen on a loaded CI machine).
	require.Eventually(t, func() bool {
		_, err := e.Reads.Account(t.Context(), known)
		return err == nil
	}, 30*time.Second, 5*time.Millisecond)
	e.StopProjections()
	since := e.CreateAccount(t, dom, nil) // answered from the command, not the read models

	a := report(t, e, token, usageReport{known, 500})
	require.Equal(t, 1, a.Stored)
	require.Empty(t, a.Unknown)

	p := e.Do(t, http.MethodPost, usagePath, token, map[string]any{"reports": []usageReport{{known, 600}, {since, 10}}}).
		Problem(t, http.StatusServiceUnavailable)
	require.Equal(t, "/problems/read-model-behind", p["type"])
	require.Contains(t, p["detail"], "nothing was done")
	require.Equal(t, 500, countRows(t, e, `SELECT used_bytes FROM mailbox_usage WHERE address = $1`, known))
}
