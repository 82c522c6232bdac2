package projections_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"mailplane/eventstore"
	"mailplane/eventstore/eventstoretest"
	"mailplane/projections"
)

// stopConfig restarts and retries quickly, so that a runner that merely pauses on lost order
// would be seen passing it within the tests' patience.
var stopConfig = projections.Config{
	BatchSize: 100, RestartDelay: 20 * time.Millisecond, LockRetry: 20 * time.Millisecond,
	RetryInterval: 5 * time.Millisecond, MaxAttempts: 2,
}

// requireHeldAt checks, for a while, that no runner takes the projection past p, and that what
// committed is exactly the events up to the checkpoint, each once.
func requireHeldAt(t *testing.T, b bundle, name string, p eventstore.Position, runners ...*projections.Runner) {
	t.Helper()
	require.Never(t, func() bool { return passed(b, name, p) }, 2*time.Second, 10*time.Millisecond,
		"the projection went past the event at position %d", p.Position)
	// The runner that met the anomaly lets go once its stop has committed, which on a busy
	// machine may be after the two seconds above; the others never take it.
	for _, r := range runners {
		require.Eventually(t, func() bool { return !r.Status()[0].Active }, time.Minute, 5*time.Millisecond,
			"a stopped projection runs nowhere")
	}
	cp, err := checkpointOf(b, name)
	require.NoError(t, err)
	require.Equal(t, countsUpTo(t, b, cp), modelCounts(t, b), "the read model is the checkpoint's, nothing of the failing batch")
	require.Zero(t, deadLetters(t, b, name), "lost order or meaning is never parked")
}

func TestVersionGapStopsTheProjectionDurably(t *testing.T) {
	b := setup(t)
	appendMany(t, b, 3, 2) // s-0..s-2 at version 2
	first, stopFirst, firstDone := run(t, b, stopConfig, &tally{name: "tally"})
	waitCaughtUp(t, b, "tally")
	gap := rawInsert(t, b.pool, "s-1", "thing", 4, "ThingRenamed", 2)
	rawInsert(t, b.pool, "s-1", "thing", 5, "ThingRenamed", 2)
	appendMany2(t, b) // the rest of the stream and others after it, in the same batch

	requireHeldAt(t, b, "tally", gap, first)
	st := waitStopped(t, b, "tally")
	require.Equal(t, gap.Position, st.Position)
	require.Equal(t, int64(gap.TransactionID), st.TransactionID)
	require.Equal(t, "s-1", st.StreamID)
	require.Equal(t, "version_gap", st.Kind)
	require.Equal(t, 4, st.Version)
	require.NotNil(t, st.ExpectedVersion)
	require.Equal(t, 3, *st.ExpectedVersion)
	require.Equal(t, "ThingRenamed", st.EventType)
	require.Contains(t, st.Error, "s-1")

	// A restarted process, and any other, refuses to run it: the stop is in the database.
	stopFirst()
	<-firstDone
	again, _, _ := run(t, b, stopConfig, &tally{name: "tally"})
	other, _, _ := run(t, b, stopConfig, &tally{name: "tally"})
	requireHeldAt(t, b, "tally", gap, again, other)
	require.True(t, again.Status()[0].Stopped)
}

func TestVersionGoingBackwardsStopsTheProjection(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	appendMany(t, b, 2, 2)
	r, _, _ := run(t, b, stopConfig, &tally{name: "tally"})
	waitCaughtUp(t, b, "tally")

	// A transaction writes before it appends (what the store forbids): its xid is older than that
	// of an append of the previous version which commits first, so version 4 sorts before 3.
	early, err := b.pool.Begin(ctx)
	require.NoError(t, err)
	defer early.Rollback(ctx)
	_, err = early.Exec(ctx, `SELECT pg_current_xact_id()`)
	require.NoError(t, err)
	_, err = b.store.Append(ctx, thing("s-0"), eventstore.Exact(2), eventstore.Metadata{}, eventstoretest.ThingRenamed{Name: "3"})
	require.NoError(t, err)
	ahead := rawInsert(t, early, "s-0", "thing", 4, "ThingRenamed", 2)
	require.NoError(t, early.Commit(ctx))
	appendMany2(t, b)
	requireHeldAt(t, b, "tally", ahead, r)
	st := waitStopped(t, b, "tally")
	require.Equal(t, ahead.Position, st.Position)
	require.Equal(t, "version_backwards", st.Kind)
	require.Equal(t, 4, st.Version)
	require.Equal(t, 3, *st.ExpectedVersion)
}

// thingExploded is an event type that a newer release added.
type thingExploded struct {
	Name string `json:"name"`
}

func (thingExploded) EventType() string { return "ThingExploded" }

// upgraded is the registry of a newer release: it knows ThingExploded.
func upgraded(t *testing.T) *eventstore.Registry {
	r, err := eventstore.NewRegistry(
		[]eventstore.Event{eventstoretest.ThingCreated{}, eventstoretest.ThingRenamed{}, thingExploded{}},
		[]eventstore.Upcaster{{EventType: "ThingRenamed", From: 1, Up: func(m map[string]any) (map[string]any, error) {
			m["name"] = m["title"]
			return m, nil
		}}})
	require.NoError(t, err)
	return r
}

// A rolling upgrade: a new process appends an event type that the old process holding the
// projection's lock does not know. The old one must stop, not skip it and move on.
func TestUnknownEventTypeStopsTheProjection(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	newer := eventstore.NewPostgres(b.pool, upgraded(t))
	appendMany(t, b, 2, 2)
	// On a stream type the projection does not handle, it is none of its business.
	_, err := newer.Append(ctx, eventstore.Stream{ID: "o-1", Type: "other"}, eventstore.NoStream, eventstore.Metadata{}, thingExploded{Name: "elsewhere"})
	require.NoError(t, err)
	r, _, _ := run(t, b, stopConfig, &tally{name: "tally"})
	waitCaughtUp(t, b, "tally")

	res, err := newer.Append(ctx, thing("s-0"), eventstore.Exact(2), eventstore.Metadata{}, thingExploded{Name: "boom"})
	require.NoError(t, err)
	appendMany2(t, b)
	requireHeldAt(t, b, "tally", res.GlobalPosition(), r)
	st := waitStopped(t, b, "tally")
	require.Equal(t, res.LastPosition, st.Position)
	require.Equal(t, "unknown_event_type", st.Kind)
	require.Equal(t, "ThingExploded", st.EventType)
	require.Equal(t, "s-0", st.StreamID)
}

func TestNewerSchemaVersionStopsTheProjection(t *testing.T) {
	b := setup(t)
	appendMany(t, b, 2, 2)
	// ThingRenamed is at schema version 2 here; a newer release wrote version 3.
	newer := rawInsert(t, b.pool, "s-1", "thing", 3, "ThingRenamed", 3)
	appendMany2(t, b)
	r, _, _ := run(t, b, stopConfig, &tally{name: "tally"})
	requireHeldAt(t, b, "tally", newer, r)
	st := waitStopped(t, b, "tally")
	require.Equal(t, newer.Position, st.Position)
	require.Equal(t, "newer_schema_version", st.Kind)
	require.Equal(t, 3, st.SchemaVersion)
}

// failer fails every event its predicate picks.
type failer struct {
	tally
	fail func(e eventstore.RecordedEvent) bool
}

func (f *failer) Handle(ctx context.Context, tx pgx.Tx, e eventstore.RecordedEvent) error {
	if err := f.tally.Handle(ctx, tx, e); err != nil {
		return err
	}
	if f.fail(e) {
		return errors.New("cannot handle this one")
	}
	return nil
}

// A projection that fails event after event would park a whole stream, one dead letter at a
// time; after MaxConsecutiveParks parks in a row it stops instead.
func TestConsecutiveParksStopTheProjection(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	app := func(stream string, v int) eventstore.Position {
		res, err := b.store.Append(ctx, thing(stream), eventstore.Exact(v), eventstore.Metadata{}, eventstoretest.ThingRenamed{Name: "x"})
		require.NoError(t, err)
		return res.GlobalPosition()
	}
	app("s-1", 0)
	app("s-0", 0) // a success between two parks starts the count again
	app("s-1", 1)
	app("s-1", 2)
	app("s-1", 3)
	fifth := app("s-1", 4)
	app("s-0", 1)

	cfg := stopConfig
	cfg.MaxAttempts, cfg.MaxConsecutiveParks = 1, 3
	p := &failer{tally: tally{name: "tally"}, fail: func(e eventstore.RecordedEvent) bool { return e.StreamID == "s-1" }}
	r, _, _ := run(t, b, cfg, p)
	st := waitStopped(t, b, "tally")
	require.Equal(t, fifth.Position, st.Position)
	require.Equal(t, "consecutive_parks", st.Kind)
	require.Contains(t, st.Error, "cannot handle this one")
	require.Never(t, func() bool { return passed(b, "tally", fifth) }, time.Second, 10*time.Millisecond)
	require.Equal(t, 4, deadLetters(t, b, "tally"))
	require.False(t, r.Status()[0].Active)
}
