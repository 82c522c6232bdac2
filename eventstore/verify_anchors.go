package eventstore

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"maps"
	"slices"
)

// AnchorProblem is one way the anchors and the events disagree.
type AnchorProblem struct {
	Seq int64
	// Kind names the finding: signature, foreign-key, missing, differs, link, events, streams,
	// heads, stream-missing, tail-missing, head-changed, unanchored-stream.
	Kind   string
	Detail string
}

func (p AnchorProblem) String() string {
	return fmt.Sprintf("anchor %d: %s: %s", p.Seq, p.Kind, p.Detail)
}

// AnchorReport sums up a check of the anchors against the events.
type AnchorReport struct {
	// Anchors is how many anchors were checked (database and file together).
	Anchors  int
	Problems []AnchorProblem
	// Unanchored counts the events after the last anchor (not covered yet).
	Unanchored int64
}

// OK reports whether every anchor held.
func (r AnchorReport) OK() bool { return len(r.Problems) == 0 }

// VerifyAnchors checks every anchor — the database's and, when given, an exported copy's — and
// the events against them: each signature (with pub, the key derived from the master key), the
// link from each anchor to the one before, that no anchor of the copy is missing from the
// database or differs from it, and, walking the events in the global order, that each anchor's
// window holds the events, the new streams and the stream heads it signed. A rewritten event is
// the hash chains' to find (Verify); a deleted tail, a deleted stream and a deleted anchor are
// found here and named.
func (s *Postgres) VerifyAnchors(ctx context.Context, pub ed25519.PublicKey, external []Anchor) (AnchorReport, error) {
	var rep AnchorReport
	stored, err := ListAnchors(ctx, s.pool, 0)
	if err != nil {
		return rep, err
	}
	anchors := mergeAnchors(stored, external, pub, &rep)
	rep.Anchors = len(anchors)
	checkLinks(anchors, &rep)

	rows, err := s.pool.Query(ctx, `SELECT stream_id, stream_version, hash, transaction_id::text::bigint, position
		FROM events ORDER BY events.transaction_id, events.position`)
	if err != nil {
		return rep, fmt.Errorf("eventstore: verify anchors: %w", err)
	}
	defer rows.Close()
	w := anchorWalk{anchors: anchors, report: &rep, last: map[string]int{}, window: map[string]AnchorHead{}}
	for rows.Next() {
		var h AnchorHead
		var txid int64
		var pos Position
		if err := rows.Scan(&h.StreamID, &h.Version, &h.Hash, &txid, &pos.Position); err != nil {
			return rep, err
		}
		pos.TransactionID = uint64(txid)
		w.event(pos, h)
	}
	if err := rows.Err(); err != nil {
		return rep, fmt.Errorf("eventstore: verify anchors: %w", err)
	}
	w.finish()
	return rep, nil
}

// mergeAnchors checks each anchor's signature and returns one valid anchor per sequence number,
// oldest first, noting copies that are missing from the database or differ from it.
func mergeAnchors(stored, external []Anchor, pub ed25519.PublicKey, rep *AnchorReport) []Anchor {
	valid := func(a Anchor, where string) bool {
		if !bytes.Equal(a.PublicKey, pub) {
			rep.Problems = append(rep.Problems, AnchorProblem{a.Seq, "foreign-key",
				fmt.Sprintf("the %s copy is signed with another key than this installation's", where)})
			return false
		}
		signed, err := a.signedForm()
		if err != nil || !ed25519.Verify(pub, signed, a.Signature) {
			rep.Problems = append(rep.Problems, AnchorProblem{a.Seq, "signature",
				fmt.Sprintf("the %s copy's signature does not verify: it was altered", where)})
			return false
		}
		return true
	}
	bySeq := map[int64]Anchor{}
	for _, a := range stored {
		if valid(a, "database") {
			bySeq[a.Seq] = a
		}
	}
	for _, a := range external {
		if !valid(a, "exported") {
			continue
		}
		db, ok := bySeq[a.Seq]
		if !ok {
			rep.Problems = append(rep.Problems, AnchorProblem{a.Seq, "missing",
				"the exported copy has this anchor and the database does not: it was deleted"})
			bySeq[a.Seq] = a
			continue
		}
		ds, _ := db.signedForm()
		es, _ := a.signedForm()
		if !bytes.Equal(ds, es) {
			rep.Problems = append(rep.Problems, AnchorProblem{a.Seq, "differs",
				"the database and the exported copy sign different anchors under the same number"})
		}
		if len(db.Heads) == 0 && len(a.Heads) > 0 {
			db.Heads = a.Heads
			bySeq[a.Seq] = db
		}
	}
	seqs := slices.Sorted(maps.Keys(bySeq))
	out := make([]Anchor, len(seqs))
	for i, seq := range seqs {
		out[i] = bySeq[seq]
	}
	return out
}

// checkLinks finds gaps in the numbering and broken links between neighbours.
func checkLinks(anchors []Anchor, rep *AnchorReport) {
	want := int64(1)
	for i, a := range anchors {
		if a.Seq != want {
			rep.Problems = append(rep.Problems, AnchorProblem{want, "missing",
				fmt.Sprintf("anchors %d to %d are not in the database (anchor %d follows %d)", want, a.Seq-1, a.Seq, want-1)})
		}
		want = a.Seq + 1
		expected := zeroHash
		if i > 0 {
			if anchors[i-1].Seq != a.Seq-1 {
				continue // the gap is reported; the link cannot be checked
			}
			expected, _ = anchors[i-1].Hash()
		}
		if !bytes.Equal(a.PrevHash, expected) {
			rep.Problems = append(rep.Problems, AnchorProblem{a.Seq, "link",
				"does not link to the anchor before it"})
		}
	}
}

// anchorWalk follows the events in the global order and closes each anchor's window when the
// events pass its position.
type anchorWalk struct {
	anchors []Anchor
	next    int
	report  *AnchorReport
	// last is each stream's latest version seen so far; window its heads since the last anchor.
	last           map[string]int
	window         map[string]AnchorHead
	events, create int64
}

func (w *anchorWalk) event(pos Position, h AnchorHead) {
	for w.next < len(w.anchors) && w.anchors[w.next].At().Less(pos) {
		w.close()
	}
	w.events++
	if h.Version == 1 {
		w.create++
	}
	w.last[h.StreamID] = h.Version
	w.window[h.StreamID] = h
}

func (w *anchorWalk) finish() {
	for w.next < len(w.anchors) {
		w.close()
	}
	w.report.Unanchored = w.events
}

// close checks the current anchor against the window of events since the one before it.
func (w *anchorWalk) close() {
	a := w.anchors[w.next]
	var prev *Anchor
	if w.next > 0 && w.anchors[w.next-1].Seq == a.Seq-1 {
		prev = &w.anchors[w.next-1]
	}
	w.next++
	heads := slices.Collect(maps.Values(w.window))
	sortHeads(heads)
	events, created := w.events, w.create
	w.window, w.events, w.create = map[string]AnchorHead{}, 0, 0
	if prev == nil && a.Seq != 1 {
		return // its predecessor is missing (reported): the window cannot be told apart
	}
	prevDigest, prevEvents, prevStreams := zeroHash, int64(0), int64(0)
	if prev != nil {
		prevDigest, prevEvents, prevStreams = prev.HeadsDigest, prev.Events, prev.Streams
	}
	add := func(kind, format string, args ...any) {
		w.report.Problems = append(w.report.Problems, AnchorProblem{a.Seq, kind, fmt.Sprintf(format, args...)})
	}
	if want := a.Events - prevEvents; events != want {
		add("events", "signed %d events since anchor %d, the database has %d: %s", want, a.Seq-1, events, missingOrExtra(want-events))
	}
	if want := a.Streams - prevStreams; created != want {
		add("streams", "signed %d new streams since anchor %d, the database has %d: %s", want, a.Seq-1, created, missingOrExtra(want-created))
	}
	if bytes.Equal(chainDigest(prevDigest, headsDelta(heads)), a.HeadsDigest) {
		return
	}
	if !bytes.Equal(chainDigest(prevDigest, headsDelta(a.Heads)), a.HeadsDigest) {
		add("heads", "the stream heads in its window differ from what it signed (its list of heads is gone or altered, so the streams cannot be named)")
		return
	}
	got := map[string]AnchorHead{}
	for _, h := range heads {
		got[h.StreamID] = h
	}
	for _, signed := range a.Heads {
		have, ok := got[signed.StreamID]
		delete(got, signed.StreamID)
		switch {
		case !ok && w.last[signed.StreamID] == 0:
			add("stream-missing", "stream %s: signed at version %d; the database has no event of it: the stream was deleted", signed.StreamID, signed.Version)
		case !ok || have.Version < signed.Version:
			add("tail-missing", "stream %s: signed at version %d; the database has it at version %d: versions %d to %d were deleted",
				signed.StreamID, signed.Version, w.last[signed.StreamID], w.last[signed.StreamID]+1, signed.Version)
		case have.Version != signed.Version || !bytes.Equal(have.Hash, signed.Hash):
			add("head-changed", "stream %s: signed at version %d with another hash than the database's version %d", signed.StreamID, signed.Version, have.Version)
		}
	}
	for id, h := range got {
		add("unanchored-stream", "stream %s has version %d inside this anchor's window, which the anchor does not know: it was inserted afterwards", id, h.Version)
	}
}

func missingOrExtra(n int64) string {
	if n > 0 {
		return fmt.Sprintf("%d missing", n)
	}
	return fmt.Sprintf("%d more than signed", -n)
}
