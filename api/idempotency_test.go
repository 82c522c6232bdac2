package api_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"mailplane/api/apitest"
)

// Different requests racing on one Idempotency-Key: one is applied, every other one answers 422
// (a different request) — never a 500, never two applied.
func TestDifferentRequestsRacingOnOneIdempotencyKey(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	dom := e.CreateDomain(t, nil)
	const rounds, racers = 15, 6
	for round := 0; round < rounds; round++ {
		key := apitest.Unique("race-")
		statuses := make([]int, racers)
		bodies := make([]string, racers)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := 0; i < racers; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				<-start
				r := e.Do(t, http.MethodPost, accountsPath(dom), e.AdminToken,
					map[string]any{"local_part": fmt.Sprintf("r%d-%d", round, i)}, "Idempotency-Key", key)
				statuses[i], bodies[i] = r.Status, string(r.Body)
			}(i)
		}
		close(start)
		wg.Wait()
		created := 0
		for i, st := range statuses {
			switch st {
			case http.StatusCreated:
				created++
			case http.StatusUnprocessableEntity:
			default:
				t.Fatalf("round %d racer %d: %d %s", round, i, st, bodies[i])
			}
		}
		require.Equal(t, 1, created, "round %d: %v", round, statuses)
		var n int
		require.NoError(t, e.Pool.QueryRow(context.Background(), `SELECT count(*) FROM events
			WHERE domain = $1 AND event_type = 'AccountCreated' AND data->>'address' LIKE $2`,
			dom, fmt.Sprintf("r%d-%%", round)).Scan(&n))
		require.Equal(t, 1, n, "round %d: one request applied", round)
	}
}

// The same request sent twice at once with If-Match: the one that loses the race answers with
// the first one's result, not 412 (its version moved because of itself).
func TestConcurrentDuplicateWithIfMatchGetsTheFirstResult(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	dom := e.CreateDomain(t, nil)
	for round := 0; round < 15; round++ {
		addr := e.CreateAccount(t, dom, nil)
		acct := e.Do(t, http.MethodGet, accountPath(addr), e.AdminToken, nil)
		require.Equal(t, http.StatusOK, acct.Status)
		etag := acct.Header.Get("ETag")
		key := apitest.Unique("dup-")
		body := map[string]any{"alias": apitest.Unique("a") + "@" + dom}
		resps := make([]apitest.Response, 4)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range resps {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				<-start
				resps[i] = e.Do(t, http.MethodPost, accountPath(addr)+"/aliases", e.AdminToken, body,
					"Idempotency-Key", key, "If-Match", etag)
			}(i)
		}
		close(start)
		wg.Wait()
		for i, r := range resps {
			require.Equal(t, http.StatusCreated, r.Status, "round %d copy %d: %s", round, i, r.Body)
			require.JSONEq(t, string(resps[0].Body), string(r.Body))
		}
		require.Len(t, streamEvents(t, e, addr), 2, "created, then one alias")
	}
}
