package eventstore_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"mailplane/eventstore"
	"mailplane/eventstore/eventstoretest"
)

func TestAppendManyTx(t *testing.T) {
	s, pool := newPG(t)
	ctx := context.Background()
	_, err := s.Append(ctx, thing("t-old"), eventstore.NoStream, eventstore.Metadata{}, eventstoretest.ThingCreated{Name: "old"})
	require.NoError(t, err)

	appendMany := func(appends []eventstore.StreamAppend) ([]eventstore.AppendResult, error) {
		var res []eventstore.AppendResult
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			var err error
			res, err = s.AppendManyTx(ctx, tx, eventstore.Metadata{Actor: "job"}, appends)
			return err
		})
		return res, err
	}
	res, err := appendMany([]eventstore.StreamAppend{
		{Stream: thing("t-old"), Expected: eventstore.Exact(1), Events: []eventstore.Event{eventstoretest.ThingRenamed{Name: "a"}, eventstoretest.ThingRenamed{Name: "b"}}},
		{Stream: thing("t-new"), Expected: eventstore.NoStream, Events: []eventstore.Event{eventstoretest.ThingCreated{Name: "new"}}},
	})
	require.NoError(t, err)
	require.Equal(t, 2, res[0].FirstVersion)
	require.Equal(t, 3, res[0].LastVersion)
	require.Equal(t, 1, res[1].LastVersion)
	require.Equal(t, res[0].TransactionID, res[1].TransactionID, "one transaction")
	old, err := s.Load(ctx, "t-old", eventstore.LoadOptions{})
	require.NoError(t, err)
	require.Len(t, old, 3)
	require.Equal(t, "job", old[2].Metadata.Actor)

	// One stream behind its expectation fails the whole append: nothing of it is written.
	_, err = appendMany([]eventstore.StreamAppend{
		{Stream: thing("t-other"), Expected: eventstore.NoStream, Events: []eventstore.Event{eventstoretest.ThingCreated{Name: "x"}}},
		{Stream: thing("t-old"), Expected: eventstore.Exact(2), Events: []eventstore.Event{eventstoretest.ThingRenamed{Name: "c"}}},
	})
	require.ErrorIs(t, err, eventstore.ErrConcurrency)
	other, err := s.Load(ctx, "t-other", eventstore.LoadOptions{})
	require.NoError(t, err)
	require.Empty(t, other)

	// A stream named twice, and an append after another write, are refused.
	_, err = appendMany([]eventstore.StreamAppend{
		{Stream: thing("t-x"), Expected: eventstore.NoStream, Events: []eventstore.Event{eventstoretest.ThingCreated{Name: "x"}}},
		{Stream: thing("t-x"), Expected: eventstore.NoStream, Events: []eventstore.Event{eventstoretest.ThingCreated{Name: "x"}}},
	})
	require.ErrorIs(t, err, eventstore.ErrDuplicateStream)
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO login_failures (key, failures, window_start) VALUES ('k', 1, now())`); err != nil {
			return err
		}
		_, err := s.AppendManyTx(ctx, tx, eventstore.Metadata{}, []eventstore.StreamAppend{
			{Stream: thing("t-late"), Expected: eventstore.NoStream, Events: []eventstore.Event{eventstoretest.ThingCreated{Name: "x"}}}})
		return err
	})
	require.ErrorIs(t, err, eventstore.ErrNotFirstWrite)

	// A head the caller read is chained onto without reading it again; one at another version
	// than expected is refused.
	head := old[2]
	_, err = appendMany([]eventstore.StreamAppend{{Stream: thing("t-old"), Expected: eventstore.Exact(3),
		Events: []eventstore.Event{eventstoretest.ThingRenamed{Name: "d"}}, Head: &head}})
	require.NoError(t, err)
	_, err = appendMany([]eventstore.StreamAppend{{Stream: thing("t-old"), Expected: eventstore.Exact(4),
		Events: []eventstore.Event{eventstoretest.ThingRenamed{Name: "e"}}, Head: &head}})
	require.Error(t, err)
	// A stale head (the stream moved on) fails on the unique key like any stale expectation.
	_, err = appendMany([]eventstore.StreamAppend{{Stream: thing("t-old"), Expected: eventstore.Exact(3),
		Events: []eventstore.Event{eventstoretest.ThingRenamed{Name: "f"}}, Head: &head}})
	require.ErrorIs(t, err, eventstore.ErrConcurrency)

	// The chains are those Append would have made.
	rep, err := s.Verify(ctx)
	require.NoError(t, err)
	require.True(t, rep.OK(), "%+v", rep.Broken)
	require.Equal(t, 5, rep.Events)
}
