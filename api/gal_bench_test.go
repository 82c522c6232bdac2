package api_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
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

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"mailplane/api/apitest"
	"mailplane/domain"
	"mailplane/projections/postgres"
)

// Names of the benchmark's address book: accented and not, so that folding is exercised.
var (
	benchGiven = []string{"José", "Zoë", "Ana", "Björn", "Chloé", "François", "Jürgen", "Ines", "Łukasz", "Søren",
		"Émile", "Mario", "Anna", "John", "Paul", "Sarah", "Olga", "Ikram", "Noël", "Agnès", "Marta", "Åsa", "Luis",
		"Renée", "Tomás", "Yusuf", "Mei", "Hiroshi", "Amélie", "Dag", "Kai", "Lea", "Nils", "Ömer", "Pía", "Rui"}
	benchSurname = []string{"García", "Müller", "Smith", "Rossi", "Dubois", "Novák", "Kowalski", "Jensen", "Öztürk",
		"Martínez", "Schmidt", "Brown", "Bianchi", "Lefèvre", "Dvořák", "Nowak", "Larsen", "Yılmaz", "López", "Weiß",
		"Taylor", "Romano", "Moreau", "Černý", "Wiśniewski", "Nielsen", "Şahin", "Fernández", "Fischer", "Wilson"}
)

type benchEntry struct{ address, display, given, sn string }

func benchGALEntry(i int) benchEntry {
	g, s := benchGiven[i%len(benchGiven)], benchSurname[(i/len(benchGiven))%len(benchSurname)]
	local := strings.ReplaceAll(domain.FoldGAL(g+"."+s), " ", "") + "." + strconv.Itoa(i)
	return benchEntry{address: local + "@corp.test", display: g + " " + s, given: g, sn: s}
}

// loadGALEntries writes external entries from..to-1 with their tokens straight into the read
// model with COPY, the indexes dropped meanwhile and made again after: a resync of a million
// entries through slapd would take the benchmark's time, and the search reads the same rows.
func loadGALEntries(b *testing.B, e *apitest.Env, dom string, from, to int) {
	b.Helper()
	ctx := context.Background()
	_, err := e.Pool.Exec(ctx, `DROP INDEX IF EXISTS gal_tokens_search_idx; DROP INDEX IF EXISTS gal_tokens_entry_idx`)
	require.NoError(b, err)
	var base int64
	require.NoError(b, e.Pool.QueryRow(ctx, `SELECT coalesce(max(id), 0) FROM gal_entries`).Scan(&base))
	const chunk = 50000
	for lo := from; lo < to; lo += chunk {
		hi := min(lo+chunk, to)
		entries := make([][]any, 0, hi-lo)
		var tokens [][]any
		for i := lo; i < hi; i++ {
			x := benchGALEntry(i)
			id := base + int64(i-from) + 1
			entries = append(entries, []any{id, dom, "external", x.address, x.display, "external", ""})
			for _, t := range domain.GALTokens(x.address, x.display, x.given, x.sn) {
				tokens = append(tokens, []any{id, dom, "external", int16(t.Weight), t.Token, x.address})
			}
		}
		_, err := e.Pool.CopyFrom(ctx, pgx.Identifier{"gal_entries"},
			[]string{"id", "domain", "source", "address", "display_name", "kind", "digest"}, pgx.CopyFromRows(entries))
		require.NoError(b, err)
		_, err = e.Pool.CopyFrom(ctx, pgx.Identifier{"gal_tokens"},
			[]string{"entry_id", "domain", "source", "weight", "token", "address"}, pgx.CopyFromRows(tokens))
		require.NoError(b, err)
	}
	_, err = e.Pool.Exec(ctx, `SELECT setval(pg_get_serial_sequence('gal_entries', 'id'), (SELECT max(id) FROM gal_entries))`)
	require.NoError(b, err)
	// The migration's indexes, made again.
	_, err = e.Pool.Exec(ctx, `CREATE INDEX gal_tokens_search_idx ON gal_tokens (domain, weight, token) INCLUDE (source, entry_id, address);
		CREATE INDEX gal_tokens_entry_idx ON gal_tokens (entry_id)`)
	require.NoError(b, err)
	_, err = e.Pool.Exec(ctx, `VACUUM (ANALYZE) gal_entries, gal_tokens`)
	require.NoError(b, err)
}

// benchQueries are what users type: 1 to 6 first letters of a given name, a surname or an
// address, as each keystroke sends them, accented as the name is or folded.
func benchQueries(n, entries int) []string {
	rng := rand.New(rand.NewPCG(1, 2))
	out := make([]string, n)
	for i := range out {
		x := benchGALEntry(rng.IntN(entries))
		word := []string{x.given, x.sn, x.address}[rng.IntN(3)]
		if rng.IntN(2) == 0 {
			word = domain.FoldGAL(word)
		}
		r := []rune(word)
		out[i] = string(r[:1+rng.IntN(min(6, len(r)))])
	}
	return out
}

// latencies summarizes the duration of each search.
type latencies struct {
	mu  sync.Mutex
	all []time.Duration
}

func (l *latencies) add(d []time.Duration) {
	l.mu.Lock()
	l.all = append(l.all, d...)
	l.mu.Unlock()
}

func (l *latencies) quantile(q float64) float64 {
	slices.Sort(l.all)
	if len(l.all) == 0 {
		return 0
	}
	return float64(l.all[int(q*float64(len(l.all)-1))].Microseconds()) / 1000
}

// runClients runs search from clients goroutines for d and reports p50, p99 and searches/s.
func runClients(b *testing.B, clients int, d time.Duration, queries []string, search func(q string) error) {
	b.Helper()
	var lat latencies
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	start := time.Now()
	deadline := start.Add(d)
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := make([]time.Duration, 0, 4096)
			for i := c; time.Now().Before(deadline); i += clients {
				t0 := time.Now()
				if err := search(queries[i%len(queries)]); err != nil {
					errs <- err
					return
				}
				mine = append(mine, time.Since(t0))
			}
			lat.add(mine)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.ReportMetric(lat.quantile(0.5), "p50-ms")
	b.ReportMetric(lat.quantile(0.99), "p99-ms")
	b.ReportMetric(float64(len(lat.all))/elapsed.Seconds(), "searches/s")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkGALSearch measures GET /domains/{d}/gal/search with 32 concurrent clients over HTTP
// (bearer token checked, the search with the GAL's mode, JSON) against the bare SQL query
// (ReadModel.GALSearch on the same pool) in the same run, and the token check alone (auth), at each size of
// MAILPLANE_BENCH_GAL_SIZES (default 100000,1000000 entries in one domain; the larger sizes add
// to the smaller). Each measurement runs MAILPLANE_BENCH_GAL_SECONDS (default 10), with
// MAILPLANE_BENCH_GAL_CLIENTS clients (default 32).
//
//	go tool task bench -- gal    or    go test ./api -run '^$' -bench GALSearch -benchtime 1x
func BenchmarkGALSearch(b *testing.B) {
	sizes := []int{100_000, 1_000_000}
	if v := os.Getenv("MAILPLANE_BENCH_GAL_SIZES"); v != "" {
		sizes = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			require.NoError(b, err)
			sizes = append(sizes, n)
		}
	}
	seconds := 10
	if v := os.Getenv("MAILPLANE_BENCH_GAL_SECONDS"); v != "" {
		var err error
		seconds, err = strconv.Atoi(v)
		require.NoError(b, err)
	}
	clients := 32
	if v := os.Getenv("MAILPLANE_BENCH_GAL_CLIENTS"); v != "" {
		var err error
		clients, err = strconv.Atoi(v)
		require.NoError(b, err)
	}
	e := apitest.NewWith(b, apitest.Options{MaxConns: 32})
	// The server without the tests' contract check in front of it: only what serve runs.
	hs := httptest.NewServer(e.Server.Handler())
	b.Cleanup(hs.Close)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}}
	dom := e.CreateDomain(b, nil)
	r := e.Do(b, http.MethodPut, galPath(dom), e.AdminToken, map[string]any{"mode": "both",
		"external": map[string]any{"ldap_url": "ldap://127.0.0.1:1", "search_base": "dc=corp,dc=test"}})
	require.Equal(b, http.StatusOK, r.Status, "%s", r.Body)
	loaded := 0
	for _, n := range sizes {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			t0 := time.Now()
			loadGALEntries(b, e, dom, loaded, n)
			loaded = n
			b.Logf("loaded %d entries with COPY in %s", n, time.Since(t0).Round(time.Millisecond))
			queries := benchQueries(20000, n)
			b.Run("http", func(b *testing.B) {
				runClients(b, clients, time.Duration(seconds)*time.Second, queries, func(q string) error {
					req, _ := http.NewRequest(http.MethodGet, hs.URL+galPath(dom)+"/search?limit=10&q="+url.QueryEscape(q), nil)
					req.Header.Set("Authorization", "Bearer "+e.AdminToken)
					resp, err := client.Do(req)
					if err != nil {
						return err
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						return fmt.Errorf("search %q: %s", q, resp.Status)
					}
					return nil
				})
			})
			// What every authenticated request costs before its handler: the bearer token's
			// session check, alone, for the share of the HTTP figure that is not the search's.
			b.Run("auth", func(b *testing.B) {
				ctx := context.Background()
				runClients(b, clients, time.Duration(seconds)*time.Second, queries, func(string) error {
					_, err := e.Commands.Authenticate(ctx, e.AdminToken)
					return err
				})
			})
			b.Run("sql", func(b *testing.B) {
				ctx := context.Background()
				runClients(b, clients, time.Duration(seconds)*time.Second, queries, func(q string) error {
					_, err := e.Reads.GALSearch(ctx, dom, postgres.GALQuery{Q: q, Limit: 11})
					return err
				})
			})
		})
	}
}
