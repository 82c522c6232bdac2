package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"mailplane/api/apitest"
	"mailplane/commands"
)

// rowsReader streams a CSV import of n rows without holding it: the client side stays flat too,
// so that the heap the benchmark samples is the server's.
type rowsReader struct {
	dom  string
	n, i int
	buf  bytes.Buffer
}

func (r *rowsReader) Read(p []byte) (int, error) {
	for r.buf.Len() < len(p) && r.i <= r.n {
		if r.i == 0 {
			r.buf.WriteString("address,display_name,mail_quota_bytes\n")
		} else {
			fmt.Fprintf(&r.buf, "b%07d@%s,Bulk %d,%d\n", r.i, r.dom, r.i, 1<<20)
		}
		r.i++
	}
	if r.buf.Len() == 0 {
		return 0, io.EOF
	}
	return r.buf.Read(p)
}

// heapPeak samples the heap in use until stopped and returns the highest figure seen.
func heapPeak() (stop func() uint64) {
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	})
	return func() uint64 { close(done); wg.Wait(); return peak.Load() }
}

// BenchmarkAccountImport measures a bulk import of BENCH_IMPORT_ROWS accounts (100,000) against
// the per-request creation rate in the same run: BENCH_IMPORT_SINGLE accounts (3,000) created
// with POST /api/v1/domains/{domain}/accounts from BENCH_CLIENTS clients (16), one account a
// request, as an operator's script would. The import is timed from the first byte of the upload
// to the last batch's commit (rows/s), with the upload and the job's batches also timed apart,
// and to the moment the admin read model holds every account (projected rows/s). The server's
// heap is sampled while the file streams in: its peak over the heap before is reported (MB).
// Both paths run on a server without the tests' contract check.
//
//	go tool task bench -- import    or    go test ./api -run '^$' -bench AccountImport -benchtime 1x
func BenchmarkAccountImport(b *testing.B) {
	rows := envInt("BENCH_IMPORT_ROWS", 100_000)
	single := envInt("BENCH_IMPORT_SINGLE", 3_000)
	clients := envInt("BENCH_CLIENTS", 16)
	e := apitest.New(b)
	ctx := context.Background()
	hs := httptest.NewServer(e.Server.Handler())
	defer hs.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}

	// Per request.
	one := e.CreateDomain(b, nil)
	start := time.Now()
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			for i := c; i < single; i += clients {
				body, _ := json.Marshal(map[string]any{"address": fmt.Sprintf("s%06d@%s", i, one), "mail_quota_bytes": 1 << 20})
				req, _ := http.NewRequest(http.MethodPost, hs.URL+"/api/v1/domains/"+one+"/accounts", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+e.AdminToken)
				req.Header.Set("Content-Type", "application/json")
				res, err := client.Do(req)
				require.NoError(b, err)
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				require.Equal(b, http.StatusCreated, res.StatusCode)
			}
		})
	}
	wg.Wait()
	perRequest := float64(single) / time.Since(start).Seconds()
	b.Logf("per request: %d accounts, %.0f accounts/s", single, perRequest)

	// Bulk.
	bulk := e.CreateDomain(b, nil)
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	before := m.HeapInuse
	stopSampling := heapPeak()
	start = time.Now()
	req, _ := http.NewRequest(http.MethodPost, hs.URL+"/api/v1/domains/"+bulk+"/imports", &rowsReader{dom: bulk, n: rows})
	req.Header.Set("Authorization", "Bearer "+e.AdminToken)
	req.Header.Set("Content-Type", "text/csv")
	res, err := client.Do(req)
	require.NoError(b, err)
	var accepted struct {
		Import struct {
			ID      string `json:"id"`
			Pending int    `json:"pending"`
		} `json:"import"`
	}
	require.NoError(b, json.NewDecoder(res.Body).Decode(&accepted))
	res.Body.Close()
	require.Equal(b, http.StatusAccepted, res.StatusCode)
	peak := stopSampling()
	uploaded := time.Since(start)
	require.Equal(b, rows, accepted.Import.Pending)
	applyStart := time.Now()
	require.NoError(b, e.Commands.RunImport(ctx, accepted.Import.ID, commands.RunImportOptions{}))
	applied := time.Since(applyStart)
	total := time.Since(start)
	require.Eventually(b, func() bool {
		var n int
		_ = e.Pool.QueryRow(ctx, `SELECT count(*) FROM rm_accounts WHERE domain = $1`, bulk).Scan(&n)
		return n == rows
	}, 10*time.Minute, 20*time.Millisecond)
	projected := time.Since(start)
	var events int
	require.NoError(b, e.Pool.QueryRow(ctx, `SELECT count(*) FROM events WHERE domain = $1`, bulk).Scan(&events))
	require.Equal(b, rows+1, events, "one AccountCreated per row, besides the domain's own")

	rate := float64(rows) / total.Seconds()
	heapMB := float64(int64(peak)-int64(before)) / (1 << 20)
	b.Logf("import: %d rows, upload %.1fs, apply %.1fs, %.0f rows/s (%.1f x per request), projected after %.1fs; heap peak +%.1f MB",
		rows, uploaded.Seconds(), applied.Seconds(), rate, rate/perRequest, projected.Seconds(), heapMB)
	b.ReportMetric(perRequest, "single-accounts/s")
	b.ReportMetric(rate, "rows/s")
	b.ReportMetric(float64(rows)/uploaded.Seconds(), "upload-rows/s")
	b.ReportMetric(float64(rows)/applied.Seconds(), "apply-rows/s")
	b.ReportMetric(float64(rows)/projected.Seconds(), "projected-rows/s")
	b.ReportMetric(heapMB, "heap-peak-MB")
}
