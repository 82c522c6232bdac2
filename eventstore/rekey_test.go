package eventstore_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"mailplane/eventstore"
	"mailplane/eventstore/eventstoretest"
)

// legacyHistory writes two streams, then rewrites their hashes the way mailplane did before
// chains were keyed, and marks the re-key pending as migration 00004 does on such a database.
func legacyHistory(t *testing.T) (*eventstore.Postgres, func(string)) {
	s, pool := newPG(t)
	ctx := context.Background()
	for _, id := range []string{"l-a", "l-b"} {
		for v := 0; v < 3; v++ {
			_, err := s.Append(ctx, thing(id), eventstore.Exact(v), eventstore.Metadata{Actor: "x"},
				eventstoretest.ThingRenamed{Name: fmt.Sprintf("%s-%d", id, v)})
			require.NoError(t, err)
		}
	}
	sql := func(q string) {
		t.Helper()
		_, err := pool.Exec(ctx, `ALTER TABLE events DISABLE TRIGGER events_append_only; `+q+
			`; ALTER TABLE events ENABLE TRIGGER events_append_only`)
		require.NoError(t, err)
	}
	for _, id := range []string{"l-a", "l-b"} {
		evs, err := s.Load(ctx, id, eventstore.LoadOptions{})
		require.NoError(t, err)
		prev := eventstore.GenesisHash
		for _, e := range evs {
			e.PrevHash = prev
			h, err := eventstore.LegacyHash(e)
			require.NoError(t, err)
			sql(fmt.Sprintf(`UPDATE events SET prev_hash = '\x%x', hash = '\x%x' WHERE position = %d`, prev, h, e.Position))
			prev = h
		}
	}
	_, err := pool.Exec(ctx, `INSERT INTO event_chain_rekeys (state) VALUES ('pending')`)
	require.NoError(t, err)
	return s, sql
}

func TestLegacyChainsAreRekeyedOnceAndVerified(t *testing.T) {
	s, _ := legacyHistory(t)
	ctx := context.Background()

	// Until the re-key, nothing is appended (it would chain onto an unkeyed hash) and verify
	// does not pretend the chains hold.
	_, err := s.Append(ctx, thing("l-a"), eventstore.Any, eventstore.Metadata{}, eventstoretest.ThingRenamed{Name: "early"})
	require.ErrorIs(t, err, eventstore.ErrRekeyPending)
	rep, err := s.Verify(ctx)
	require.NoError(t, err)
	require.True(t, rep.RekeyPending)
	require.False(t, rep.OK())

	res, err := s.RekeyLegacyChains(ctx)
	require.NoError(t, err)
	require.Equal(t, eventstore.RekeyReport{Done: true, Streams: 2, Events: 6}, res)
	rep, err = s.Verify(ctx)
	require.NoError(t, err)
	require.True(t, rep.OK(), "%v", rep.Broken)
	require.Equal(t, 6, rep.Events)

	again, err := s.RekeyLegacyChains(ctx)
	require.NoError(t, err)
	require.False(t, again.Done, "once only")
	_, err = s.Append(ctx, thing("l-a"), eventstore.Exact(3), eventstore.Metadata{}, eventstoretest.ThingRenamed{Name: "after"})
	require.NoError(t, err)
	rep, err = s.Verify(ctx)
	require.NoError(t, err)
	require.True(t, rep.OK(), "%v", rep.Broken)
}

func TestABrokenLegacyChainIsNotLaundered(t *testing.T) {
	s, sql := legacyHistory(t)
	ctx := context.Background()
	sql(`UPDATE events SET data = '{"name":"forged"}' WHERE stream_id = 'l-b' AND stream_version = 2`)
	before, err := s.Load(ctx, "l-a", eventstore.LoadOptions{})
	require.NoError(t, err)

	_, err = s.RekeyLegacyChains(ctx)
	require.ErrorIs(t, err, eventstore.ErrLegacyChainBroken)
	require.ErrorContains(t, err, "l-b v2")
	after, err := s.Load(ctx, "l-a", eventstore.LoadOptions{})
	require.NoError(t, err)
	require.Equal(t, before, after, "nothing was rewritten")
	pending, err := s.RekeyPending(ctx)
	require.NoError(t, err)
	require.True(t, pending)
}
