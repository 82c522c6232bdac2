package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"mailplane/api/apitest"
	"mailplane/commands"
	"mailplane/domain"
	"mailplane/eventstore"
	"mailplane/workers/mailtest"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// usageOf is the usage pattern of the benchmark: account i of a domain in round r. Most
// mailboxes stay under the line; every 50th goes over at round 5, under at round 20 and over
// again at round 35 (crossing twice); the domain's total crosses its line when those do.
func usageOf(i, r int) int64 {
	base := int64(100_000 + (i*7919)%500_000) // 10–60 % of 1 MB
	if i%50 == 0 && (r >= 5 && r < 20 || r >= 35) {
		return 950_000 + int64(r)
	}
	return base + int64(r)
}

// BenchmarkUsageIngest measures POST /api/v1/usage: BENCH_USAGE_REPORTS reports (1,000,000) in
// batches of 10,000 over HTTP, from BENCH_USAGE_CLIENTS clients (2) each reporting the
// mailboxes of its own domain (BENCH_USAGE_ACCOUNTS / clients each, 20,000 in all, so that each
// mailbox's reports and each domain's total keep their order and the crossings can be counted
// beforehand), against a raw pgx COPY of the same rows into a plain table, and a raw upsert
// (INSERT … SELECT FROM unnest … ON CONFLICT DO UPDATE into a table of (address, used)), in the
// same run with the same clients. Then it waits for the warnings and checks that each crossing
// was warned of exactly once: QuotaWarningSent events, send_email jobs and MailSent events
// (mail the SMTP sink accepted) all equal the crossings the pattern makes.
//
//	go tool task bench -- usage    or    go test ./api -run '^$' -bench UsageIngest -benchtime 1x
func BenchmarkUsageIngest(b *testing.B) {
	reports := envInt("BENCH_USAGE_REPORTS", 1_000_000)
	accounts := envInt("BENCH_USAGE_ACCOUNTS", 20_000)
	clients := envInt("BENCH_USAGE_CLIENTS", 2)
	const batchSize = domain.MaxUsageReports
	perDomain := accounts / clients
	require.Zero(b, perDomain%batchSize, "accounts per client must be a multiple of %d", batchSize)
	rounds := reports / accounts
	require.Positive(b, rounds)

	e := apitest.NewWith(b, apitest.Options{Workers: &apitest.Workers{}})
	ctx := context.Background()
	domains := make([]string, clients)
	addrs := make([][]string, clients)
	const quota, warn = 1_000_000, 90
	// Each domain's line lies midway between its total with every mailbox under (round 0) and
	// with the over-going ones over (round 5), so that the total crosses when they do.
	var under, over int64
	for i := range perDomain {
		under += usageOf(i, 0)
		over += usageOf(i, 5)
	}
	domainQuota := (under + over) / 2 * 100 / warn
	for c := range clients {
		domains[c] = e.CreateDomain(b, map[string]any{"limits": map[string]any{"account_quota_bytes": quota, "warn_percent": warn,
			"domain_quota_bytes": domainQuota, "warn_recipient": fmt.Sprintf("quota-admin-%d@example.test", c)}})
		addrs[c] = make([]string, perDomain)
	}
	b.Logf("creating %d accounts", accounts)
	var wg sync.WaitGroup
	for c := range clients {
		for w := range 4 {
			wg.Go(func() {
				for i := w; i < perDomain; i += 4 {
					a, err := domain.ParseAddress(fmt.Sprintf("u%06d@%s", i, domains[c]))
					require.NoError(b, err)
					_, err = e.Commands.CreateAccount(ctx, commands.Request{Meta: eventstore.Metadata{Actor: "bench"}},
						domain.CreateAccount{Address: a}, commands.Credentials{})
					require.NoError(b, err)
					addrs[c][i] = a.String()
				}
			})
		}
	}
	wg.Wait()
	// Let the read models hold every account before the clock starts.
	require.Eventually(b, func() bool {
		var n int
		_ = e.Pool.QueryRow(ctx, `SELECT count(*) FROM rm_accounts WHERE domain = ANY($1)`, domains).Scan(&n)
		return n == accounts
	}, 5*time.Minute, 100*time.Millisecond)

	// The crossings the pattern makes, mailbox by mailbox and domain by domain, in the order
	// the batches go (the domain's total is judged after each batch).
	wantAccount, wantDomain := 0, 0
	for range clients {
		accountOver := make([]bool, perDomain)
		domainOver := false
		used := make([]int64, perDomain)
		var total int64
		for r := range rounds {
			for from := 0; from < perDomain; from += batchSize {
				for i := from; i < from+batchSize; i++ {
					u := usageOf(i, r)
					total += u - used[i]
					used[i] = u
					now := domain.OverWarnLine(u, quota, warn)
					if now && !accountOver[i] {
						wantAccount++
					}
					accountOver[i] = now
				}
				now := domain.OverWarnLine(total, domainQuota, warn)
				if now && !domainOver {
					wantDomain++
				}
				domainOver = now
			}
		}
	}
	b.Logf("expecting %d account and %d domain crossings", wantAccount, wantDomain)

	// The batches, encoded before the clock starts (as the COPY's rows are built before).
	type batch struct {
		body []byte
		rows [][]any
	}
	mk := func(c, r, from int) batch {
		var x batch
		rs := make([]usageReport, batchSize)
		x.rows = make([][]any, batchSize)
		for k := range batchSize {
			i := from + k
			rs[k] = usageReport{addrs[c][i], usageOf(i, r)}
			x.rows[k] = []any{addrs[c][i], usageOf(i, r)}
		}
		x.body, _ = json.Marshal(map[string]any{"reports": rs})
		return x
	}
	plan := make([][]batch, clients)
	for c := range clients {
		for r := range rounds {
			for from := 0; from < perDomain; from += batchSize {
				plan[c] = append(plan[c], mk(c, r, from))
			}
		}
	}

	// A server without the tests' contract check (which validates every request body).
	hs := httptest.NewServer(e.Server.Handler())
	defer hs.Close()
	_, token := mailstoreToken(b, e)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	run := func(name string, f func(c int, x batch) error) float64 {
		start := time.Now()
		var wg sync.WaitGroup
		for c := range clients {
			wg.Go(func() {
				for _, x := range plan[c] {
					require.NoError(b, f(c, x), name)
				}
			})
		}
		wg.Wait()
		rate := float64(clients*len(plan[0])*batchSize) / time.Since(start).Seconds()
		b.Logf("%s: %.0f reports/s", name, rate)
		return rate
	}
	_, err := e.Pool.Exec(ctx, `CREATE TABLE bench_usage_copy (address text NOT NULL, used_bytes bigint NOT NULL);
		CREATE TABLE bench_usage_upsert (address text PRIMARY KEY, used_bytes bigint NOT NULL)`)
	require.NoError(b, err)
	copyRows := func(_ int, x batch) error {
		_, err := e.Pool.CopyFrom(ctx, pgx.Identifier{"bench_usage_copy"}, []string{"address", "used_bytes"}, pgx.CopyFromRows(x.rows))
		return err
	}
	upsertRows := func(_ int, x batch) error {
		a, u := make([]string, len(x.rows)), make([]int64, len(x.rows))
		for i, r := range x.rows {
			a[i], u[i] = r[0].(string), r[1].(int64)
		}
		_, err := e.Pool.Exec(ctx, `INSERT INTO bench_usage_upsert (address, used_bytes)
			SELECT * FROM unnest($1::text[], $2::bigint[]) ON CONFLICT (address) DO UPDATE SET used_bytes = excluded.used_bytes`, a, u)
		return err
	}
	post := func(_ int, x batch) error {
		req, _ := http.NewRequest(http.MethodPost, hs.URL+usagePath, bytes.NewReader(x.body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var out usageAnswer
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK || out.Stored != batchSize {
			return fmt.Errorf("POST usage: %s %+v %v", resp.Status, out, err)
		}
		return nil
	}

	var copy1, upsert, httpRate, copy2 float64
	for b.Loop() {
		copy1 = run("raw COPY", copyRows)
		upsert = run("raw upsert", upsertRows)
		httpRate = run("POST /api/v1/usage", post)
		copy2 = run("raw COPY again", copyRows)
	}
	copyRate := (copy1 + copy2) / 2
	b.ReportMetric(httpRate, "reports/s")
	b.ReportMetric(copyRate, "copy-reports/s")
	b.ReportMetric(upsert, "upsert-reports/s")
	b.ReportMetric(httpRate/copyRate, "ratio-to-copy")

	// Exactly once: every crossing warned of, none twice.
	want := wantAccount + wantDomain
	count := func(q string) int {
		var n int
		require.NoError(b, e.Pool.QueryRow(ctx, q).Scan(&n))
		return n
	}
	var sent int
	deadline := time.Now().Add(5 * time.Minute)
	for {
		sent = count(`SELECT count(*) FROM events WHERE event_type = 'MailSent' AND (stream_id LIKE 'account-%' OR stream_id LIKE 'domain-%')`)
		if sent >= want {
			break
		}
		if time.Now().After(deadline) {
			rows, err := e.Pool.Query(ctx, `SELECT kind, state::text, count(*), max(errors[array_length(errors, 1)]->>'error')
				FROM river_job GROUP BY 1, 2`)
			require.NoError(b, err)
			for rows.Next() {
				var kind, state string
				var n int
				var last *string
				require.NoError(b, rows.Scan(&kind, &state, &n, &last))
				b.Logf("jobs %s %s: %d (last error %v)", kind, state, n, last)
			}
			rows.Close()
			b.Fatalf("%d of %d crossings warned of after 5 minutes", sent, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(time.Second)
	events := count(`SELECT count(*) FROM events WHERE event_type = 'QuotaWarningSent'`)
	jobs := count(`SELECT count(*) FROM river_job WHERE kind = 'send_email'`)
	sent = count(`SELECT count(*) FROM events WHERE event_type = 'MailSent' AND (stream_id LIKE 'account-%' OR stream_id LIKE 'domain-%')`)
	b.ReportMetric(float64(want), "crossings")
	b.ReportMetric(float64(events), "warning-events")
	b.ReportMetric(float64(sent), "mails-sent")
	require.Equal(b, want, events, "QuotaWarningSent events")
	require.Equal(b, want, jobs, "send_email jobs")
	require.Equal(b, want, sent, "MailSent events")
	// And in a mailbox of the sink: the first over-going account of the first domain, twice.
	require.Len(b, mailtest.WaitFor(b, addrs[0][0], 2, time.Minute), 2)
}
