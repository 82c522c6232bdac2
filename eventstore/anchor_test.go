package eventstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"mailplane/eventstore"
	"mailplane/eventstore/eventstoretest"
)

var anchorSeed = []byte("anchor-seed-for-tests-0123456789")

type anchored struct {
	store   *eventstore.Postgres
	pool    *pgxpool.Pool
	anchors *eventstore.Anchors
	// exported is every anchor, as an operator's copy made before any tampering.
	exported []eventstore.Anchor
}

// anchoredHistory writes streams in three anchored rounds and one event after the last anchor:
// s-a v1-3, s-b v1-2 | anchor | s-a v4-5, s-c v1-2 | anchor | (nothing: no anchor) | s-d v1 |
// anchor | s-a v6. Other tests' transactions in flight can make an anchor stop short of the
// last append (it never passes a transaction in flight), so each round anchors until it is
// covered, and the tests find anchors by what they hold, not by number.
func anchoredHistory(t *testing.T) anchored {
	s, pool := newPG(t)
	ctx := context.Background()
	anchors, err := eventstore.NewAnchors(pool, anchorSeed)
	require.NoError(t, err)
	var last eventstore.AppendResult
	add := func(id string, n int) {
		for i := 0; i < n; i++ {
			last, err = s.Append(ctx, thing(id), eventstore.Any, eventstore.Metadata{Actor: "x"}, eventstoretest.ThingRenamed{Name: fmt.Sprint(i)})
			require.NoError(t, err)
		}
	}
	cover := func() {
		t.Helper()
		require.Eventually(t, func() bool {
			a, ok, err := anchors.Record(ctx)
			require.NoError(t, err)
			return ok && !a.Position.Less(last.GlobalPosition())
		}, 30*time.Second, 10*time.Millisecond)
	}
	add("s-a", 3)
	add("s-b", 2)
	cover()
	add("s-a", 2)
	add("s-c", 2)
	cover()
	_, ok, err := anchors.Record(ctx)
	require.NoError(t, err)
	require.False(t, ok, "nothing changed: no anchor")
	add("s-d", 1)
	cover()
	add("s-a", 1)
	exported, err := eventstore.ListAnchors(ctx, pool, 0)
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(exported), 3)
	return anchored{store: s, pool: pool, anchors: anchors, exported: exported}
}

// holding returns the sequence number of the anchor whose window has the stream at that version.
func (h anchored) holding(t *testing.T, stream string, version int) int64 {
	t.Helper()
	for _, a := range h.exported {
		for _, head := range a.Heads {
			if head.StreamID == stream && head.Version == version {
				return a.Seq
			}
		}
	}
	t.Fatalf("no anchor holds %s v%d", stream, version)
	return 0
}

func (h anchored) verify(t *testing.T, external []eventstore.Anchor) eventstore.AnchorReport {
	t.Helper()
	rep, err := h.store.VerifyAnchors(context.Background(), h.anchors.PublicKey(), external)
	require.NoError(t, err)
	return rep
}

// tamper runs SQL as a superuser would: triggers off, statement, triggers on.
func (h anchored) tamper(t *testing.T, sql string) {
	t.Helper()
	ctx := context.Background()
	tx, err := h.pool.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx)
	for _, table := range []string{"events", "anchors", "anchor_heads"} {
		_, err = tx.Exec(ctx, `ALTER TABLE `+table+` DISABLE TRIGGER USER`)
		require.NoError(t, err)
	}
	_, err = tx.Exec(ctx, sql)
	require.NoError(t, err)
	for _, table := range []string{"events", "anchors", "anchor_heads"} {
		_, err = tx.Exec(ctx, `ALTER TABLE `+table+` ENABLE TRIGGER USER`)
		require.NoError(t, err)
	}
	require.NoError(t, tx.Commit(ctx))
}

func kinds(rep eventstore.AnchorReport) []string {
	var out []string
	for _, p := range rep.Problems {
		out = append(out, fmt.Sprintf("%d %s", p.Seq, p.Kind))
	}
	return out
}

func TestAnchorsHoldOverUntouchedHistory(t *testing.T) {
	h := anchoredHistory(t)
	rep := h.verify(t, h.exported)
	require.True(t, rep.OK(), "%v", rep.Problems)
	require.Equal(t, len(h.exported), rep.Anchors)
	require.Equal(t, int64(1), rep.Unanchored, "s-a v6 came after the last anchor")
	newest := h.exported[len(h.exported)-1]
	require.Equal(t, int64(10), newest.Events)
	require.Equal(t, int64(4), newest.Streams)
	h.holding(t, "s-c", 2)
	h.holding(t, "s-a", 5)
}

func TestAnchorsFindADeletedTail(t *testing.T) {
	h := anchoredHistory(t)
	seq := h.holding(t, "s-a", 5)
	// The newest events of s-a go: the chain that is left is shorter and still links.
	h.tamper(t, `DELETE FROM events WHERE stream_id = 's-a' AND stream_version >= 5`)
	chains, err := h.store.Verify(context.Background())
	require.NoError(t, err)
	require.True(t, chains.OK(), "a deleted tail leaves a valid chain: the anchors must tell")
	rep := h.verify(t, nil)
	require.ElementsMatch(t, []string{fmt.Sprintf("%d events", seq), fmt.Sprintf("%d tail-missing", seq)}, kinds(rep))
	for _, p := range rep.Problems {
		if p.Kind == "tail-missing" {
			require.Contains(t, p.Detail, "stream s-a: signed at version 5; the database has it at version 4: versions 5 to 5 were deleted")
		}
	}
}

func TestAnchorsFindADeletedStream(t *testing.T) {
	h := anchoredHistory(t)
	h.tamper(t, `DELETE FROM events WHERE stream_id = 's-c'`)
	rep := h.verify(t, nil)
	require.NotEmpty(t, rep.Problems)
	named := false
	for _, p := range rep.Problems {
		require.Contains(t, []string{"events", "streams", "stream-missing"}, p.Kind)
		if p.Kind == "stream-missing" && p.Seq == h.holding(t, "s-c", 2) {
			require.Contains(t, p.Detail, "stream s-c: signed at version 2; the database has no event of it: the stream was deleted")
			named = true
		}
	}
	require.True(t, named, "%v", rep.Problems)
}

func TestAnchorsFindADeletedAnchor(t *testing.T) {
	h := anchoredHistory(t)
	seq := h.holding(t, "s-c", 2)
	h.tamper(t, fmt.Sprintf(`DELETE FROM anchor_heads WHERE seq = %d; DELETE FROM anchors WHERE seq = %d`, seq, seq))
	rep := h.verify(t, nil)
	require.Equal(t, []string{fmt.Sprintf("%d missing", seq)}, kinds(rep))
	require.Contains(t, rep.Problems[0].Detail, fmt.Sprintf("anchors %d to %d are not in the database", seq, seq))

	// With the exported copy the gap is filled and the window checked again.
	rep = h.verify(t, h.exported)
	require.Equal(t, []string{fmt.Sprintf("%d missing", seq)}, kinds(rep))
	require.Contains(t, rep.Problems[0].Detail, "the exported copy has this anchor and the database does not")
}

func TestOnlyTheExportedCopyFindsTheNewestAnchorDeleted(t *testing.T) {
	h := anchoredHistory(t)
	seq := h.exported[len(h.exported)-1].Seq
	require.Equal(t, seq, h.holding(t, "s-d", 1))
	h.tamper(t, fmt.Sprintf(`DELETE FROM anchor_heads WHERE seq = %d; DELETE FROM anchors WHERE seq = %d;
		DELETE FROM events WHERE stream_id = 's-d'`, seq, seq))
	// The database alone cannot tell a deleted newest anchor from one never written
	// (docs/operations.md says so) ...
	require.True(t, h.verify(t, nil).OK())
	// ... the exported copy can, and it still covers what was deleted with it.
	rep := h.verify(t, h.exported)
	require.ElementsMatch(t, []string{fmt.Sprintf("%d missing", seq), fmt.Sprintf("%d events", seq),
		fmt.Sprintf("%d streams", seq), fmt.Sprintf("%d stream-missing", seq)}, kinds(rep))
}

func TestAnchorsFindAnAlteredAnchor(t *testing.T) {
	h := anchoredHistory(t)
	seq := h.holding(t, "s-c", 2)
	// Someone makes an anchor agree with a history that lost an event: its signature breaks.
	h.tamper(t, fmt.Sprintf(`UPDATE anchors SET events = events - 1 WHERE seq = %d`, seq))
	rep := h.verify(t, nil)
	require.Contains(t, kinds(rep), fmt.Sprintf("%d signature", seq))
	rep = h.verify(t, h.exported)
	require.Contains(t, kinds(rep), fmt.Sprintf("%d signature", seq))
	require.NotContains(t, kinds(rep), fmt.Sprintf("%d events", seq), "the exported copy's anchor stands in")
}

func TestAnchorsFromAnotherKeyAreRefused(t *testing.T) {
	h := anchoredHistory(t)
	other, err := eventstore.NewAnchors(h.pool, []byte("another-installation-seed-012345"))
	require.NoError(t, err)
	rep, err := h.store.VerifyAnchors(context.Background(), other.PublicKey(), nil)
	require.NoError(t, err)
	require.Equal(t, "1 foreign-key", kinds(rep)[0])
	require.Len(t, rep.Problems, len(h.exported))
}
