// Package eventstoretest is the conformance suite every event store implementation runs.
package eventstoretest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"mailplane/eventstore"
)

// Factory returns an empty store that uses the given registry and options.
type Factory func(t *testing.T, registry *eventstore.Registry, opts ...eventstore.Option) eventstore.Store

// Key is the store secret tests use (the real one is derived from the master key).
var Key = []byte("0123456789abcdef0123456789abcdef")

// ThingCreated and friends are the suite's own events.
type ThingCreated struct {
	Name  string `json:"name"`
	Count int64  `json:"count"`
}

// EventType implements eventstore.Event.
func (ThingCreated) EventType() string { return "ThingCreated" }

// ThingRenamed is at schema version 2: version 1 called the field "title".
type ThingRenamed struct {
	Name string `json:"name"`
}

// EventType implements eventstore.Event.
func (ThingRenamed) EventType() string { return "ThingRenamed" }

// SchemaVersion implements eventstore.Versioned.
func (ThingRenamed) SchemaVersion() int { return 2 }

// thingRenamedV1 is how version 1 was written.
type thingRenamedV1 struct {
	Title string `json:"title"`
}

func (thingRenamedV1) EventType() string  { return "ThingRenamed" }
func (thingRenamedV1) SchemaVersion() int { return 1 }

// Registry returns the registry the suite's events need, with the v1→v2 upcaster.
func Registry(t testing.TB) *eventstore.Registry {
	r, err := eventstore.NewRegistry(
		[]eventstore.Event{ThingCreated{}, ThingRenamed{}},
		[]eventstore.Upcaster{{EventType: "ThingRenamed", From: 1, Up: func(m map[string]any) (map[string]any, error) {
			m["name"] = m["title"]
			delete(m, "title")
			return m, nil
		}}},
	)
	require.NoError(t, err)
	return r
}

func stream(id string) eventstore.Stream {
	return eventstore.Stream{ID: id, Type: "thing", Domain: "example.test"}
}

// Run runs every conformance test against stores made by newStore.
func Run(t *testing.T, newStore Factory) {
	ctx := context.Background()
	setup := func(t *testing.T, opts ...eventstore.Option) eventstore.Store {
		t.Parallel()
		return newStore(t, Registry(t), append([]eventstore.Option{eventstore.WithKey(Key)}, opts...)...)
	}

	t.Run("AppendNoStreamThenExact", func(t *testing.T) {
		s := setup(t)
		res, err := s.Append(ctx, stream("t-1"), eventstore.NoStream, eventstore.Metadata{}, ThingCreated{Name: "a"})
		require.NoError(t, err)
		require.Equal(t, 1, res.FirstVersion)
		require.Equal(t, 1, res.LastVersion)
		require.False(t, res.Replayed)

		_, err = s.Append(ctx, stream("t-1"), eventstore.NoStream, eventstore.Metadata{}, ThingCreated{Name: "again"})
		require.ErrorIs(t, err, eventstore.ErrConcurrency)

		res, err = s.Append(ctx, stream("t-1"), eventstore.Exact(1), eventstore.Metadata{}, ThingRenamed{Name: "b"}, ThingRenamed{Name: "c"})
		require.NoError(t, err)
		require.Equal(t, 2, res.FirstVersion)
		require.Equal(t, 3, res.LastVersion)

		_, err = s.Append(ctx, stream("t-1"), eventstore.Exact(2), eventstore.Metadata{}, ThingRenamed{Name: "stale"})
		require.ErrorIs(t, err, eventstore.ErrConcurrency)
		_, err = s.Append(ctx, stream("t-1"), eventstore.Exact(7), eventstore.Metadata{}, ThingRenamed{Name: "ahead"})
		require.ErrorIs(t, err, eventstore.ErrConcurrency)

		res, err = s.Append(ctx, stream("t-1"), eventstore.Any, eventstore.Metadata{}, ThingRenamed{Name: "d"})
		require.NoError(t, err)
		require.Equal(t, 4, res.LastVersion)

		evs, err := s.Load(ctx, "t-1", eventstore.LoadOptions{})
		require.NoError(t, err)
		require.Len(t, evs, 4)
		for i, e := range evs {
			require.Equal(t, i+1, e.Version)
			require.Equal(t, "t-1", e.StreamID)
			require.Equal(t, "thing", e.StreamType)
			require.Equal(t, "example.test", e.Domain)
		}
		require.JSONEq(t, `{"name":"c"}`, string(evs[2].Data))
	})

	t.Run("AppendNothingIsAnError", func(t *testing.T) {
		s := setup(t)
		_, err := s.Append(ctx, stream("t-empty"), eventstore.NoStream, eventstore.Metadata{})
		require.ErrorIs(t, err, eventstore.ErrNoEvents)
	})

	t.Run("AnyOnNewStream", func(t *testing.T) {
		s := setup(t)
		res, err := s.Append(ctx, stream("t-any"), eventstore.Any, eventstore.Metadata{}, ThingCreated{Name: "x"})
		require.NoError(t, err)
		require.Equal(t, 1, res.LastVersion)
	})

	// A fold-only load leaves the metadata undecoded and changes nothing else of the events.
	t.Run("SkipMetadata", func(t *testing.T) {
		s := setup(t)
		meta := eventstore.Metadata{Actor: "admin@example.test", RequestID: "r-skip"}
		_, err := s.Append(ctx, stream("t-skip"), eventstore.NoStream, meta, ThingCreated{Name: "s", Count: 1}, ThingCreated{Name: "t", Count: 2})
		require.NoError(t, err)
		full, err := s.Load(ctx, "t-skip", eventstore.LoadOptions{})
		require.NoError(t, err)
		folded, err := s.Load(ctx, "t-skip", eventstore.LoadOptions{SkipMetadata: true})
		require.NoError(t, err)
		require.Len(t, folded, 2)
		for i := range folded {
			require.Equal(t, meta, full[i].Metadata)
			require.Zero(t, folded[i].Metadata)
			require.Equal(t, full[i].StoredMetadata(), folded[i].StoredMetadata())
			folded[i].Metadata = full[i].Metadata
			require.Equal(t, full[i], folded[i])
		}
	})

	t.Run("MetadataRoundTrip", func(t *testing.T) {
		s := setup(t)
		meta := eventstore.Metadata{Actor: "admin@example.test", RequestID: "r-1", CorrelationID: "c-1",
			CausationID: "e-0", SourceIP: "127.0.0.1", IdempotencyKey: "k-meta"}
		_, err := s.Append(ctx, stream("t-meta"), eventstore.NoStream, meta, ThingCreated{Name: "m", Count: 1 << 40})
		require.NoError(t, err)
		evs, err := s.Load(ctx, "t-meta", eventstore.LoadOptions{})
		require.NoError(t, err)
		require.Len(t, evs, 1)
		require.Equal(t, meta, evs[0].Metadata)
		var got ThingCreated
		require.NoError(t, json.Unmarshal(evs[0].Data, &got))
		require.Equal(t, ThingCreated{Name: "m", Count: 1 << 40}, got)
		require.WithinDuration(t, time.Now(), evs[0].RecordedAt, time.Minute)
	})

	t.Run("ConcurrentWritersOneWinnerPerVersion", func(t *testing.T) {
		s := setup(t)
		_, err := s.Append(ctx, stream("t-race"), eventstore.NoStream, eventstore.Metadata{}, ThingCreated{Name: "v1"})
		require.NoError(t, err)
		// Round after round, 64 writers all expect the same version; exactly one may win.
		for round := 1; round <= 5; round++ {
			var wg sync.WaitGroup
			var mu sync.Mutex
			wins, conflicts := 0, 0
			start := make(chan struct{})
			for g := 0; g < 64; g++ {
				wg.Add(1)
				go func(g int) {
					defer wg.Done()
					<-start
					_, err := s.Append(ctx, stream("t-race"), eventstore.Exact(round), eventstore.Metadata{},
						ThingRenamed{Name: fmt.Sprintf("r%d-g%d", round, g)})
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err == nil:
						wins++
					case errors.Is(err, eventstore.ErrConcurrency):
						conflicts++
					default:
						t.Errorf("writer %d: unexpected error %v", g, err)
					}
				}(g)
			}
			close(start)
			wg.Wait()
			require.Equal(t, 1, wins, "round %d", round)
			require.Equal(t, 63, conflicts, "round %d", round)
		}
		evs, err := s.Load(ctx, "t-race", eventstore.LoadOptions{})
		require.NoError(t, err)
		require.Len(t, evs, 6)
		for i, e := range evs {
			require.Equal(t, i+1, e.Version, "no gap, no duplicate")
		}
	})

	t.Run("AnyNeverFailsUnderConcurrency", func(t *testing.T) {
		s := setup(t)
		const writers = 32
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		start := make(chan struct{})
		for g := 0; g < writers; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				<-start
				_, err := s.Append(ctx, stream("t-any-race"), eventstore.Any, eventstore.Metadata{}, ThingRenamed{Name: fmt.Sprint(g)})
				errs <- err
			}(g)
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err, "Any retries on the unique key instead of failing")
		}
		evs, err := s.Load(ctx, "t-any-race", eventstore.LoadOptions{})
		require.NoError(t, err)
		require.Len(t, evs, writers)
		for i, e := range evs {
			require.Equal(t, i+1, e.Version)
		}
		rep, err := s.Verify(ctx)
		require.NoError(t, err)
		require.True(t, rep.OK(), "%v", rep.Broken)
	})

	t.Run("RecordedAtNeverGoesBackwardsWithinAStream", func(t *testing.T) {
		var mu sync.Mutex
		clock := time.Now().UTC().Truncate(time.Microsecond)
		s := setup(t, eventstore.WithClock(func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }))
		setClock := func(c time.Time) { mu.Lock(); clock = c; mu.Unlock() }
		created := clock
		_, err := s.Append(ctx, stream("t-skew"), eventstore.NoStream, eventstore.Metadata{}, ThingCreated{Name: "a"})
		require.NoError(t, err)
		// The next writer's clock is five minutes behind the first one's.
		setClock(created.Add(-5 * time.Minute))
		_, err = s.Append(ctx, stream("t-skew"), eventstore.Exact(1), eventstore.Metadata{}, ThingRenamed{Name: "b"})
		require.NoError(t, err)
		_, err = s.Append(ctx, stream("t-skew"), eventstore.Any, eventstore.Metadata{}, ThingRenamed{Name: "c"})
		require.NoError(t, err)
		evs, err := s.Load(ctx, "t-skew", eventstore.LoadOptions{})
		require.NoError(t, err)
		require.Len(t, evs, 3)
		for i := 1; i < len(evs); i++ {
			require.False(t, evs[i].RecordedAt.Before(evs[i-1].RecordedAt), "version %d recorded before version %d", i+1, i)
		}
		// As of a moment the skewed clock named, the stream did not exist yet: nothing, rather
		// than the later versions without the creation.
		evs, err = s.Load(ctx, "t-skew", eventstore.LoadOptions{AsOf: created.Add(-time.Minute)})
		require.NoError(t, err)
		require.Empty(t, evs)
		evs, err = s.Load(ctx, "t-skew", eventstore.LoadOptions{AsOf: created})
		require.NoError(t, err)
		require.Len(t, evs, 3)
		require.Equal(t, 1, evs[0].Version)
		rep, err := s.Verify(ctx)
		require.NoError(t, err)
		require.True(t, rep.OK(), "%v", rep.Broken)
	})

	t.Run("IdempotencyKeyExpires", func(t *testing.T) {
		s := setup(t, eventstore.WithIdempotencyTTL(300*time.Millisecond))
		meta := eventstore.Metadata{Actor: "admin@example.test", IdempotencyKey: "short-lived"}
		_, err := s.Append(ctx, stream("t-ttl"), eventstore.NoStream, meta, ThingCreated{Name: "once"})
		require.NoError(t, err)
		again, err := s.Append(ctx, stream("t-ttl"), eventstore.NoStream, meta, ThingCreated{Name: "once"})
		require.NoError(t, err)
		require.True(t, again.Replayed)
		time.Sleep(400 * time.Millisecond)
		// Expired: the key is free for a new request, which is applied for real.
		res, err := s.Append(ctx, stream("t-ttl"), eventstore.Exact(1), meta, ThingRenamed{Name: "later"})
		require.NoError(t, err)
		require.False(t, res.Replayed)
		require.Equal(t, 2, res.LastVersion)
	})

	t.Run("LoadUpToVersionAndAsOf", func(t *testing.T) {
		s := setup(t)
		for i := 0; i < 3; i++ {
			_, err := s.Append(ctx, stream("t-asof"), eventstore.Any, eventstore.Metadata{}, ThingRenamed{Name: fmt.Sprint(i)})
			require.NoError(t, err)
			time.Sleep(5 * time.Millisecond)
		}
		evs, err := s.Load(ctx, "t-asof", eventstore.LoadOptions{UpToVersion: 2})
		require.NoError(t, err)
		require.Len(t, evs, 2)

		all, err := s.Load(ctx, "t-asof", eventstore.LoadOptions{})
		require.NoError(t, err)
		asOf := all[1].RecordedAt
		evs, err = s.Load(ctx, "t-asof", eventstore.LoadOptions{AsOf: asOf})
		require.NoError(t, err)
		require.Len(t, evs, 2)
		require.Equal(t, 2, evs[1].Version)

		evs, err = s.Load(ctx, "t-asof", eventstore.LoadOptions{AsOf: all[0].RecordedAt.Add(-time.Microsecond)})
		require.NoError(t, err)
		require.Empty(t, evs)
	})

	t.Run("ReadAllInOrderExactlyOnce", func(t *testing.T) {
		s := setup(t)
		const streams, per = 10, 7
		for v := 0; v < per; v++ {
			for i := 0; i < streams; i++ {
				_, err := s.Append(ctx, stream(fmt.Sprintf("t-all-%d", i)), eventstore.Exact(v), eventstore.Metadata{},
					ThingRenamed{Name: fmt.Sprint(v)})
				require.NoError(t, err)
			}
		}
		seen := map[int64]bool{}
		last := map[string]int{}
		var after eventstore.Position
		// A gap-safe reader stops before any transaction in flight anywhere in the cluster (other
		// tests run in parallel), so an empty page means "not yet", not "the end".
		deadline := time.Now().Add(30 * time.Second)
		for len(seen) < streams*per && time.Now().Before(deadline) {
			page, err := s.ReadAll(ctx, after, 4)
			require.NoError(t, err)
			if len(page) == 0 {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			for _, e := range page {
				require.True(t, after.Less(e.GlobalPosition()), "strictly increasing")
				require.False(t, seen[e.Position], "duplicate %d", e.Position)
				seen[e.Position] = true
				require.Equal(t, last[e.StreamID]+1, e.Version, "stream order")
				last[e.StreamID] = e.Version
				after = e.GlobalPosition()
			}
		}
		require.Len(t, seen, streams*per)
	})

	t.Run("ReadWindow", func(t *testing.T) {
		s := setup(t)
		_, err := s.Append(ctx, stream("t-win"), eventstore.NoStream, eventstore.Metadata{}, ThingCreated{Name: "early"})
		require.NoError(t, err)
		time.Sleep(20 * time.Millisecond)
		mid := time.Now()
		time.Sleep(20 * time.Millisecond)
		_, err = s.Append(ctx, stream("t-win"), eventstore.Exact(1), eventstore.Metadata{}, ThingRenamed{Name: "late"})
		require.NoError(t, err)

		var evs []eventstore.RecordedEvent
		require.Eventually(t, func() bool {
			evs, err = s.ReadWindow(ctx, mid, time.Now().Add(time.Minute), eventstore.Position{}, 100)
			require.NoError(t, err)
			return len(evs) == 1
		}, 30*time.Second, 10*time.Millisecond)
		require.Equal(t, "ThingRenamed", evs[0].Type)
		evs, err = s.ReadWindow(ctx, mid.Add(-time.Hour), mid, eventstore.Position{}, 100)
		require.NoError(t, err)
		require.Len(t, evs, 1)
		require.Equal(t, "ThingCreated", evs[0].Type)
	})

	t.Run("IdempotencyKeyReturnsFirstOutcome", func(t *testing.T) {
		s := setup(t)
		meta := eventstore.Metadata{Actor: "admin@example.test", IdempotencyKey: "create-thing-1"}
		first, err := s.Append(ctx, stream("t-idem"), eventstore.NoStream, meta, ThingCreated{Name: "once"})
		require.NoError(t, err)
		again, err := s.Append(ctx, stream("t-idem"), eventstore.NoStream, meta, ThingCreated{Name: "once"})
		require.NoError(t, err)
		require.True(t, again.Replayed)
		require.Equal(t, first.LastVersion, again.LastVersion)
		require.Equal(t, first.LastPosition, again.LastPosition)
		evs, err := s.Load(ctx, "t-idem", eventstore.LoadOptions{})
		require.NoError(t, err)
		require.Len(t, evs, 1, "the repeat appended nothing")

		_, err = s.Append(ctx, stream("t-idem"), eventstore.Exact(1), meta, ThingRenamed{Name: "different"})
		require.ErrorIs(t, err, eventstore.ErrIdempotencyMismatch)

		// The same key from another actor is another request.
		other := eventstore.Metadata{Actor: "other@example.test", IdempotencyKey: "create-thing-1"}
		res, err := s.Append(ctx, stream("t-idem"), eventstore.Exact(1), other, ThingRenamed{Name: "other"})
		require.NoError(t, err)
		require.False(t, res.Replayed)
	})

	t.Run("UpcasterBringsOldVersionsUpToDate", func(t *testing.T) {
		s := setup(t)
		_, err := s.Append(ctx, stream("t-up"), eventstore.NoStream, eventstore.Metadata{}, thingRenamedV1{Title: "old"})
		require.NoError(t, err)
		_, err = s.Append(ctx, stream("t-up"), eventstore.Exact(1), eventstore.Metadata{}, ThingRenamed{Name: "new"})
		require.NoError(t, err)
		evs, err := s.Load(ctx, "t-up", eventstore.LoadOptions{})
		require.NoError(t, err)
		require.Len(t, evs, 2)
		for _, e := range evs {
			require.Equal(t, 2, e.SchemaVersion)
		}
		reg := Registry(t)
		ev, err := reg.Decode(evs[0])
		require.NoError(t, err)
		require.Equal(t, ThingRenamed{Name: "old"}, ev)
		ev, err = reg.Decode(evs[1])
		require.NoError(t, err)
		require.Equal(t, ThingRenamed{Name: "new"}, ev)

		var all []eventstore.RecordedEvent
		require.Eventually(t, func() bool {
			all, err = s.ReadAll(ctx, eventstore.Position{}, 10)
			require.NoError(t, err)
			return len(all) == 2
		}, 30*time.Second, 10*time.Millisecond)
		require.JSONEq(t, `{"name":"old"}`, string(all[0].Data))
		// Upcasting is a read-time view: the stored event, and its hash, are untouched.
		rep, err := s.Verify(ctx)
		require.NoError(t, err)
		require.True(t, rep.OK(), "%v", rep.Broken)
	})

	t.Run("HashChainLinksEveryEvent", func(t *testing.T) {
		s := setup(t)
		for i := 0; i < 5; i++ {
			_, err := s.Append(ctx, stream("t-chain"), eventstore.Exact(i), eventstore.Metadata{Actor: "a"},
				ThingRenamed{Name: strings.Repeat("x", i)})
			require.NoError(t, err)
		}
		evs, err := s.Load(ctx, "t-chain", eventstore.LoadOptions{})
		require.NoError(t, err)
		require.Equal(t, eventstore.GenesisHash, evs[0].PrevHash)
		for i := 1; i < len(evs); i++ {
			require.Equal(t, evs[i-1].Hash, evs[i].PrevHash)
			require.Len(t, evs[i].Hash, 32)
		}
		rep, err := s.Verify(ctx)
		require.NoError(t, err)
		require.True(t, rep.OK(), "%v", rep.Broken)
		require.Equal(t, 1, rep.Streams)
		require.Equal(t, 5, rep.Events)
	})

	t.Run("RegistryDecodesKnownAndRejectsUnknown", func(t *testing.T) {
		reg := Registry(t)
		_, err := reg.Decode(eventstore.RecordedEvent{Type: "Nope", Data: json.RawMessage(`{}`)})
		require.ErrorIs(t, err, eventstore.ErrUnknownEvent)
		_, err = eventstore.NewRegistry([]eventstore.Event{ThingRenamed{}}, nil)
		require.Error(t, err, "a v2 event without an upcaster from v1 is refused")
	})
}
