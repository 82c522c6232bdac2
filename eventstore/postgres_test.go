package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"mailplane/eventstore"
	"mailplane/eventstore/eventstoretest"
	"mailplane/migrations/testdb"
)

func TestPostgresConformance(t *testing.T) {
	eventstoretest.Run(t, func(t *testing.T, r *eventstore.Registry) eventstore.Store {
		return eventstore.NewPostgres(testdb.New(t), r)
	})
}

func newPG(t *testing.T) (*eventstore.Postgres, *pgxpool.Pool) {
	t.Parallel()
	pool := testdb.New(t)
	return eventstore.NewPostgres(pool, eventstoretest.Registry(t)), pool
}

func thing(id string) eventstore.Stream {
	return eventstore.Stream{ID: id, Type: "thing", Domain: "example.test"}
}

func TestEventsAreAppendOnly(t *testing.T) {
	s, pool := newPG(t)
	ctx := context.Background()
	_, err := s.Append(ctx, thing("t-1"), eventstore.NoStream, eventstore.Metadata{}, eventstoretest.ThingCreated{Name: "a"})
	require.NoError(t, err)

	_, err = pool.Exec(ctx, `UPDATE events SET data = '{"name":"b"}'`)
	require.ErrorContains(t, err, "append-only")
	_, err = pool.Exec(ctx, `DELETE FROM events`)
	require.ErrorContains(t, err, "append-only")
	_, err = pool.Exec(ctx, `TRUNCATE events`)
	require.ErrorContains(t, err, "append-only")
}

func TestVerifyFindsTampering(t *testing.T) {
	s, pool := newPG(t)
	ctx := context.Background()
	for i := 0; i < 4; i++ {
		_, err := s.Append(ctx, thing("t-a"), eventstore.Exact(i), eventstore.Metadata{Actor: "x"}, eventstoretest.ThingRenamed{Name: fmt.Sprint(i)})
		require.NoError(t, err)
		_, err = s.Append(ctx, thing("t-b"), eventstore.Exact(i), eventstore.Metadata{Actor: "x"}, eventstoretest.ThingRenamed{Name: fmt.Sprint(i)})
		require.NoError(t, err)
		_, err = s.Append(ctx, thing("t-c"), eventstore.Exact(i), eventstore.Metadata{Actor: "x"}, eventstoretest.ThingRenamed{Name: fmt.Sprint(i)})
		require.NoError(t, err)
	}
	rep, err := s.Verify(ctx)
	require.NoError(t, err)
	require.True(t, rep.OK())
	require.Equal(t, 3, rep.Streams)
	require.Equal(t, 12, rep.Events)

	// A superuser can switch the trigger off; the chain still tells.
	tamper := func(sql string) {
		t.Helper()
		tx, err := pool.Begin(ctx)
		require.NoError(t, err)
		defer tx.Rollback(ctx)
		_, err = tx.Exec(ctx, `ALTER TABLE events DISABLE TRIGGER events_append_only`)
		require.NoError(t, err)
		_, err = tx.Exec(ctx, sql)
		require.NoError(t, err)
		_, err = tx.Exec(ctx, `ALTER TABLE events ENABLE TRIGGER events_append_only`)
		require.NoError(t, err)
		require.NoError(t, tx.Commit(ctx))
	}
	tamper(`UPDATE events SET data = '{"name":"forged"}' WHERE stream_id = 't-a' AND stream_version = 3`)
	tamper(`DELETE FROM events WHERE stream_id = 't-b' AND stream_version = 2`)
	tamper(`UPDATE events SET metadata = '{"actor":"someone-else"}' WHERE stream_id = 't-c' AND stream_version = 1`)

	rep, err = s.Verify(ctx)
	require.NoError(t, err)
	require.False(t, rep.OK())
	require.Len(t, rep.Broken, 3)
	require.Equal(t, "t-a", rep.Broken[0].StreamID)
	require.Equal(t, 3, rep.Broken[0].Version)
	require.Contains(t, rep.Broken[0].Reason, "changed")
	require.Equal(t, "t-b", rep.Broken[1].StreamID)
	require.Equal(t, 3, rep.Broken[1].Version)
	require.Contains(t, rep.Broken[1].Reason, "missing")
	require.Equal(t, "t-c", rep.Broken[2].StreamID)
	require.Equal(t, 1, rep.Broken[2].Version)
}

// awkward holds values whose JSON spelling jsonb changes (key order, escapes, number forms).
type awkward struct {
	Z      string             `json:"z"`
	A      float64            `json:"a"`
	Big    int64              `json:"big"`
	Tiny   float64            `json:"tiny"`
	HTML   string             `json:"html"`
	Nest   map[string]any     `json:"nest"`
	Floats map[string]float64 `json:"floats"`
}

func (awkward) EventType() string { return "Awkward" }

func TestHashSurvivesJSONBRoundTrip(t *testing.T) {
	s, _ := newPG(t)
	ctx := context.Background()
	ev := awkward{Z: "zäö ☃ \u2028", A: 1.5, Big: 1<<62 + 7, Tiny: 1e-9, HTML: "<b>&</b>",
		Nest:   map[string]any{"b": []any{1, 2.25, "x", nil, true}, "a": map[string]any{"y": 1e21}},
		Floats: map[string]float64{"one": 1.0, "third": 1.0 / 3}}
	_, err := s.Append(ctx, thing("t-awk"), eventstore.NoStream, eventstore.Metadata{Actor: "ä<>"}, ev, ev)
	require.NoError(t, err)
	rep, err := s.Verify(ctx)
	require.NoError(t, err)
	require.True(t, rep.OK(), "%v", rep.Broken)
}

func TestAppendTxRollsBackWithItsTransaction(t *testing.T) {
	s, pool := newPG(t)
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	_, err = s.AppendTx(ctx, tx, thing("t-rb"), eventstore.NoStream, eventstore.Metadata{IdempotencyKey: "k"}, eventstoretest.ThingCreated{Name: "a"})
	require.NoError(t, err)
	require.NoError(t, tx.Rollback(ctx))

	evs, err := s.Load(ctx, "t-rb", eventstore.LoadOptions{})
	require.NoError(t, err)
	require.Empty(t, evs)
	// The key was rolled back too: the request can be made again for real.
	res, err := s.Append(ctx, thing("t-rb"), eventstore.NoStream, eventstore.Metadata{IdempotencyKey: "k"}, eventstoretest.ThingCreated{Name: "a"})
	require.NoError(t, err)
	require.False(t, res.Replayed)
}

func TestConcurrentRequestsWithOneIdempotencyKeyAppendOnce(t *testing.T) {
	s, _ := newPG(t)
	ctx := context.Background()
	meta := eventstore.Metadata{Actor: "admin", IdempotencyKey: "same"}
	var wg sync.WaitGroup
	results := make([]eventstore.AppendResult, 16)
	for i := range results {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			// What a command runner does: on a conflict, try again; the retry replays.
			for {
				res, err := s.Append(ctx, thing("t-same"), eventstore.NoStream, meta, eventstoretest.ThingCreated{Name: "once"})
				if errors.Is(err, eventstore.ErrConcurrency) {
					continue
				}
				if !assert.NoError(t, err) {
					return
				}
				results[i] = res
				return
			}
		}(i)
	}
	wg.Wait()
	replays := 0
	for _, r := range results {
		require.Equal(t, 1, r.LastVersion)
		require.Equal(t, results[0].LastPosition, r.LastPosition)
		if r.Replayed {
			replays++
		}
	}
	require.Equal(t, 15, replays)
	evs, err := s.Load(ctx, "t-same", eventstore.LoadOptions{})
	require.NoError(t, err)
	require.Len(t, evs, 1)
}
