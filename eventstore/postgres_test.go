package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"mailplane/eventstore"
	"mailplane/eventstore/eventstoretest"
	"mailplane/migrations/testdb"
)

func TestPostgresConformance(t *testing.T) {
	eventstoretest.Run(t, func(t *testing.T, r *eventstore.Registry, opts ...eventstore.Option) eventstore.Store {
		return eventstore.NewPostgres(testdb.New(t), r, opts...)
	})
}

func newPG(t *testing.T) (*eventstore.Postgres, *pgxpool.Pool) {
	t.Parallel()
	pool := testdb.New(t)
	return eventstore.NewPostgres(pool, eventstoretest.Registry(t), eventstore.WithKey(eventstoretest.Key)), pool
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

	// Whoever holds only the database rewrites an event and recomputes the rest of its stream:
	// with plain SHA-256 (the chain before it was keyed), and with HMAC under a key of their own.
	for i, forger := range []func(e eventstore.RecordedEvent) []byte{
		func(e eventstore.RecordedEvent) []byte { h, _ := eventstore.LegacyHash(e); return h },
		func(e eventstore.RecordedEvent) []byte {
			h, _ := eventstore.NewPostgres(pool, nil, eventstore.WithKey([]byte("a guess"))).Recompute(e)
			return h
		},
	} {
		id := fmt.Sprintf("t-re-%d", i)
		for v := 0; v < 3; v++ {
			_, err := s.Append(ctx, thing(id), eventstore.Exact(v), eventstore.Metadata{Actor: "x"}, eventstoretest.ThingRenamed{Name: fmt.Sprint(v)})
			require.NoError(t, err)
		}
		evs, err := s.Load(ctx, id, eventstore.LoadOptions{})
		require.NoError(t, err)
		tamper(fmt.Sprintf(`UPDATE events SET data = '{"name":"forged"}' WHERE stream_id = '%s' AND stream_version = 2`, id))
		evs[1].Data = []byte(`{"name":"forged"}`)
		prev := evs[0].Hash
		for _, e := range evs[1:] {
			e.PrevHash = prev
			h := forger(e)
			tamper(fmt.Sprintf(`UPDATE events SET prev_hash = '\x%x', hash = '\x%x' WHERE stream_id = '%s' AND stream_version = %d`, prev, h, id, e.Version))
			prev = h
		}
	}

	rep, err = s.Verify(ctx)
	require.NoError(t, err)
	require.False(t, rep.OK())
	require.Len(t, rep.Broken, 5)
	require.Equal(t, "t-re-0", rep.Broken[3].StreamID)
	require.Equal(t, 2, rep.Broken[3].Version)
	require.Contains(t, rep.Broken[3].Reason, "changed")
	require.Equal(t, "t-re-1", rep.Broken[4].StreamID)
	require.Equal(t, 2, rep.Broken[4].Version)
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

// rawEvent is an event whose JSON is given as is.
type rawEvent struct{ raw string }

func (rawEvent) EventType() string              { return "Raw" }
func (r rawEvent) MarshalJSON() ([]byte, error) { return []byte(r.raw), nil }

// The examples of RFC 8785 (§3.2.2, §3.2.3 and the reference implementation's test data): the
// input as a client might spell it, and its canonical form.
var rfc8785Cases = []struct{ name, in, want string }{
	{"values", `{
  "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
  "literals": [null, true, false]
}`, `{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}`},
	{"sorting", `{
  "\u20ac": "Euro Sign",
  "\r": "Carriage Return",
  "\u000a": "Newline",
  "1": "One",
  "\u0080": "Control\u007f",
  "\ud83d\ude02": "Smiley",
  "\u00f6": "Latin Small Letter O With Diaeresis",
  "\ufb33": "Hebrew Letter Dalet With Dagesh",
  "</script>": "Browser Challenge"
}`, "{\"\\n\":\"Newline\",\"\\r\":\"Carriage Return\",\"1\":\"One\",\"</script>\":\"Browser Challenge\",\"\u0080\":\"Control\u007f\",\"ö\":\"Latin Small Letter O With Diaeresis\",\"€\":\"Euro Sign\",\"😂\":\"Smiley\",\"\ufb33\":\"Hebrew Letter Dalet With Dagesh\"}"},
	{"structures", `{
  "1": {"f": {"f": "hi","F": 5} ,"\n": 56.0},
  "10": { },
  "": "empty",
  "a": { },
  "111": [ {"e": "yes","E": "no" } ],
  "A": { }
}`, `{"":"empty","1":{"\n":56,"f":{"F":5,"f":"hi"}},"10":{},"111":[{"E":"no","e":"yes"}],"A":{},"a":{}}`},
	{"arrays", `{"a": [56, {"d": true, "10": null, "1": [ ]}]}`, `{"a":[56,{"1":[],"10":null,"d":true}]}`},
	{"french", `{"peach": "This sorting order", "péché": "is wrong according to French", "pêche": "but canonicalization MUST", "sin": "ignore locale"}`,
		`{"peach":"This sorting order","péché":"is wrong according to French","pêche":"but canonicalization MUST","sin":"ignore locale"}`},
	{"unnormalised", `{"Unnormalized Unicode":"A\u030a"}`, "{\"Unnormalized Unicode\":\"A\u030a\"}"},
	{"numbers", `{"n": [1.0, -0, 1e21, 1e-7, 9007199254740991, -9007199254740991, 0.1, 100, 1E2]}`,
		`{"n":[1,0,1e+21,1e-7,9007199254740991,-9007199254740991,0.1,100,100]}`},
}

// TestHashSurvivesJSONBRoundTrip: the canonical form is RFC 8785's, whatever jsonb does to the
// spelling, so the keyed chain verifies after the data went through PostgreSQL.
func TestHashSurvivesJSONBRoundTrip(t *testing.T) {
	s, _ := newPG(t)
	ctx := context.Background()
	ev := awkward{Z: "zäö ☃ \u2028", A: 1.5, Big: 1<<53 - 1, Tiny: 1e-9, HTML: "<b>&</b>",
		Nest:   map[string]any{"b": []any{1, 2.25, "x", nil, true}, "a": map[string]any{"y": 1e21}},
		Floats: map[string]float64{"one": 1.0, "third": 1.0 / 3}}
	_, err := s.Append(ctx, thing("t-awk"), eventstore.NoStream, eventstore.Metadata{Actor: "ä<>"}, ev, ev)
	require.NoError(t, err)
	for i, c := range rfc8785Cases {
		t.Run(c.name, func(t *testing.T) {
			canon, err := eventstore.CanonicalJSON([]byte(c.in))
			require.NoError(t, err)
			require.Equal(t, c.want, string(canon), "RFC 8785 form")
			id := fmt.Sprintf("t-rfc-%d", i)
			_, err = s.Append(ctx, thing(id), eventstore.NoStream, eventstore.Metadata{}, rawEvent{raw: c.in})
			require.NoError(t, err)
			evs, err := s.Load(ctx, id, eventstore.LoadOptions{})
			require.NoError(t, err)
			back, err := eventstore.CanonicalJSON(evs[0].Data)
			require.NoError(t, err)
			require.Equal(t, c.want, string(back), "after jsonb")
			h, err := s.Recompute(evs[0])
			require.NoError(t, err)
			require.Equal(t, evs[0].Hash, h)
		})
	}
	rep, err := s.Verify(ctx)
	require.NoError(t, err)
	require.True(t, rep.OK(), "%v", rep.Broken)
}

// An integer a double cannot hold would hash like its neighbours: refused (I-JSON, RFC 7493).
func TestAppendRefusesIntegersBeyondIJSON(t *testing.T) {
	s, _ := newPG(t)
	_, err := s.Append(context.Background(), thing("t-big"), eventstore.NoStream, eventstore.Metadata{},
		awkward{Big: 1 << 53})
	require.ErrorIs(t, err, eventstore.ErrNotIJSON)
}

func TestAppendMustBeTheFirstWriteOfItsTransaction(t *testing.T) {
	s, pool := newPG(t)
	ctx := context.Background()
	for _, events := range [][]eventstore.Event{
		{eventstoretest.ThingCreated{Name: "one"}},
		{eventstoretest.ThingCreated{Name: "one"}, eventstoretest.ThingRenamed{Name: "two"}},
	} {
		tx, err := pool.Begin(ctx)
		require.NoError(t, err)
		_, err = tx.Exec(ctx, `INSERT INTO login_failures (key, failures, window_start) VALUES ('x', 1, now())`)
		require.NoError(t, err)
		_, err = s.AppendTx(ctx, tx, thing("t-late"), eventstore.NoStream, eventstore.Metadata{}, events...)
		require.ErrorIs(t, err, eventstore.ErrNotFirstWrite)
		require.NoError(t, tx.Rollback(ctx))
	}
	// Reads before the append are fine, and so are writes after it; a second append is not.
	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx)
	_, err = tx.Exec(ctx, `SELECT count(*) FROM events`)
	require.NoError(t, err)
	_, err = s.AppendTx(ctx, tx, thing("t-first"), eventstore.NoStream, eventstore.Metadata{}, eventstoretest.ThingCreated{Name: "a"})
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `INSERT INTO login_failures (key, failures, window_start) VALUES ('y', 1, now())`)
	require.NoError(t, err)
	_, err = s.AppendTx(ctx, tx, thing("t-second"), eventstore.NoStream, eventstore.Metadata{}, eventstoretest.ThingCreated{Name: "b"})
	require.ErrorIs(t, err, eventstore.ErrNotFirstWrite)
}

// Events written before recorded_at was kept monotonic may go backwards within a stream; an
// as-of load still reads a prefix: up to the largest version recorded at or before the moment.
func TestAsOfReadsAPrefixWhereRecordedAtWentBackwards(t *testing.T) {
	s, pool := newPG(t)
	ctx := context.Background()
	base := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	// v1 at 12:00, v2 at 11:55 (a process whose clock was behind), v3 at 12:10.
	for v, at := range []time.Time{base, base.Add(-5 * time.Minute), base.Add(10 * time.Minute)} {
		_, err := pool.Exec(ctx, `INSERT INTO events (stream_id, stream_type, stream_version, event_type, data, recorded_at, prev_hash, hash)
			VALUES ('t-old', 'thing', $1, 'ThingRenamed', '{"name":"x"}', $2, '', '')`, v+1, at)
		require.NoError(t, err)
	}
	for _, c := range []struct {
		at   time.Time
		want int
	}{{base.Add(-6 * time.Minute), 0}, {base.Add(-time.Minute), 2}, {base, 2}, {base.Add(5 * time.Minute), 2}, {base.Add(time.Hour), 3}} {
		evs, err := s.Load(ctx, "t-old", eventstore.LoadOptions{AsOf: c.at})
		require.NoError(t, err)
		require.Len(t, evs, c.want, "as of %s", c.at)
		for i, e := range evs {
			require.Equal(t, i+1, e.Version)
		}
	}
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
