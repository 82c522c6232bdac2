package projections_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"mailplane/eventstore"
	"mailplane/projections"
)

// Reset empties the tally, so that it can be rebuilt (projections.Resetter).
func (c *tally) Reset(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `TRUNCATE counts`)
	return err
}

func inspect(t *testing.T, b bundle, name string) projections.Info {
	t.Helper()
	infos, err := projections.Inspect(context.Background(), b.pool, name)
	require.NoError(t, err)
	require.Len(t, infos, 1)
	return infos[0]
}

type action struct {
	Action, Actor string
	Detail        map[string]any
}

func actions(t *testing.T, b bundle, name string) []action {
	t.Helper()
	rows, err := b.pool.Query(context.Background(),
		`SELECT action, actor, detail FROM projection_actions WHERE projection = $1 ORDER BY id`, name)
	require.NoError(t, err)
	var out []action
	for rows.Next() {
		var a action
		var detail []byte
		require.NoError(t, rows.Scan(&a.Action, &a.Actor, &detail))
		require.NoError(t, json.Unmarshal(detail, &a.Detail))
		out = append(out, a)
	}
	require.NoError(t, rows.Err())
	return out
}

// An operator resumes a projection stopped on a version gap: without --skip it stops again at
// the same event; with it, that event is never handed to the projection, not even by a rebuild
// that replays from a checkpoint far behind it.
func TestResumeAndSkipAStoppedProjection(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	appendMany(t, b, 3, 2)
	cfg := stopConfig
	r, stopRunner, runnerDone := run(t, b, cfg, &tally{name: "tally"})
	waitCaughtUp(t, b, "tally")
	gap := rawInsert(t, b.pool, "s-1", "thing", 4, "ThingRenamed", 2)
	rawInsert(t, b.pool, "s-1", "thing", 5, "ThingRenamed", 2)
	appendMany2(t, b)
	first := waitStopped(t, b, "tally")

	info := inspect(t, b, "tally")
	require.Equal(t, "stopped", info.State)
	require.NotNil(t, info.Stopped)
	require.Equal(t, gap.Position, info.Stopped.Position)
	require.Equal(t, "s-1", info.Stopped.StreamID)
	require.Contains(t, info.Stopped.Reason, "version gap")
	require.Equal(t, int64(7), info.LagEvents, "the gap, the rest of s-1 and five more")
	require.Positive(t, info.LagSeconds)
	require.Zero(t, info.DeadLetters)
	require.Eventually(t, func() bool { return r.Status()[0].Stopped }, time.Minute, 5*time.Millisecond)
	doc, err := json.Marshal(info)
	require.NoError(t, err)
	require.JSONEq(t, `{"name":"tally","position":`+jsonInt(info.Position)+`,"lag_events":7,"lag_seconds":`+jsonFloat(info.LagSeconds)+
		`,"state":"stopped","stopped":{"position":`+jsonInt(gap.Position)+`,"stream":"s-1","reason":`+jsonString(info.Stopped.Reason)+
		`,"at":`+jsonTime(info.Stopped.At)+`},"dead_letters":0}`, string(doc))

	_, err = projections.Resume(ctx, b.pool, "tally", ptr(gap.Position-1), "alice")
	require.ErrorIs(t, err, projections.ErrSkipMismatch)
	require.ErrorContains(t, err, "stopped at position")
	_, err = projections.Resume(ctx, b.pool, "other", nil, "alice")
	require.ErrorIs(t, err, projections.ErrNotStopped)
	_, err = projections.Resume(ctx, b.pool, "tally", nil, "")
	require.Error(t, err, "an action needs an actor")

	// Without a skip, the same gap stops it again.
	st, err := projections.Resume(ctx, b.pool, "tally", nil, "alice")
	require.NoError(t, err)
	require.Equal(t, gap.Position, st.Position)
	var again stopRow
	require.Eventually(t, func() bool {
		var ok bool
		again, ok, _ = stopOf(b, "tally")
		return ok
	}, time.Minute, 5*time.Millisecond)
	require.Equal(t, first.Position, again.Position)

	_, err = projections.Resume(ctx, b.pool, "tally", &gap.Position, "bob")
	require.NoError(t, err)
	waitCaughtUp(t, b, "tally")
	want := rawCounts(t, b)
	want["s-1"]--
	require.Equal(t, want, modelCounts(t, b), "everything but the skipped event, once")
	info = inspect(t, b, "tally")
	require.Equal(t, "running", info.State)
	require.Nil(t, info.Stopped)
	require.Zero(t, info.LagEvents)

	// A rebuild replays from position 0, far behind the skipped event: still skipped.
	stopRunner()
	<-runnerDone
	require.NoError(t, projections.Rebuild(ctx, b.pool, &tally{name: "tally"}))
	run(t, b, cfg, &tally{name: "tally"})
	waitCaughtUp(t, b, "tally")
	require.Equal(t, want, modelCounts(t, b))

	acts := actions(t, b, "tally")
	require.Len(t, acts, 2)
	require.Equal(t, "resume", acts[0].Action)
	require.Equal(t, "alice", acts[0].Actor)
	require.Equal(t, false, acts[0].Detail["skip"])
	require.Equal(t, "bob", acts[1].Actor)
	require.Equal(t, true, acts[1].Detail["skip"])
	require.Equal(t, float64(gap.Position), acts[1].Detail["position"])
}

func TestResolveDeadLetters(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	appendMany(t, b, 3, 3)
	var poison []int64
	for _, s := range []string{"s-0", "s-2"} {
		evs, err := b.store.Load(ctx, s, eventstore.LoadOptions{})
		require.NoError(t, err)
		poison = append(poison, evs[1].Position)
	}
	cfg := stopConfig
	cfg.MaxAttempts = 1
	run(t, b, cfg, &failer{tally: tally{name: "tally"}, fail: func(e eventstore.RecordedEvent) bool {
		return e.Position == poison[0] || e.Position == poison[1]
	}})
	waitCaughtUp(t, b, "tally")
	require.Equal(t, int64(2), inspect(t, b, "tally").DeadLetters)
	dead, err := projections.DeadLetters(ctx, b.pool, "tally")
	require.NoError(t, err)
	require.Len(t, dead, 2)
	require.Equal(t, poison[0], dead[0].Position)
	require.Equal(t, "s-0", dead[0].StreamID)
	require.Contains(t, dead[0].Error, "cannot handle this one")

	n, err := projections.Resolve(ctx, b.pool, "tally", &poison[0], "carol")
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
	_, err = projections.Resolve(ctx, b.pool, "tally", &poison[0], "carol")
	require.ErrorIs(t, err, projections.ErrNoDeadLetter)
	require.Equal(t, int64(1), inspect(t, b, "tally").DeadLetters)
	n, err = projections.Resolve(ctx, b.pool, "tally", nil, "dave")
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
	require.Zero(t, inspect(t, b, "tally").DeadLetters)
	dead, err = projections.DeadLetters(ctx, b.pool, "tally")
	require.NoError(t, err)
	require.Empty(t, dead)

	acts := actions(t, b, "tally")
	require.Len(t, acts, 2)
	require.Equal(t, action{Action: "resolve", Actor: "carol", Detail: map[string]any{"position": float64(poison[0])}}, acts[0])
	require.Equal(t, "dave", acts[1].Actor)
	require.Equal(t, []any{float64(poison[1])}, acts[1].Detail["positions"])
}

func ptr[T any](v T) *T { return &v }

func jsonInt(v int64) string { b, _ := json.Marshal(v); return string(b) }

func jsonFloat(v float64) string { b, _ := json.Marshal(v); return string(b) }

func jsonString(v string) string { b, _ := json.Marshal(v); return string(b) }

func jsonTime(v time.Time) string { b, _ := json.Marshal(v); return string(b) }
