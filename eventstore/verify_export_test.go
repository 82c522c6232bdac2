package eventstore_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"mailplane/eventstore"
	"mailplane/eventstore/eventstoretest"
)

// An export of one domain among others, over several anchors of which some cover only the
// other domain: the covering anchors come with their predecessors (without heads), and the
// file checks with the export's own anchors and with a separate copy.
func TestExportVerifiesAcrossAnchors(t *testing.T) {
	s, pool := newPG(t)
	ctx := context.Background()
	anchors, err := eventstore.NewAnchors(pool, anchorSeed)
	require.NoError(t, err)
	var last eventstore.AppendResult
	add := func(domainName, id string, n int) {
		t.Helper()
		for i := range n {
			last, err = s.Append(ctx, eventstore.Stream{ID: id, Type: "thing", Domain: domainName}, eventstore.Any,
				eventstore.Metadata{Actor: "x"}, eventstoretest.ThingRenamed{Name: fmt.Sprint(i)})
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
	add("b.test", "domain-b.test", 2)
	cover()
	add("a.test", "domain-a.test", 2)
	add("a.test", "account-x@a.test", 1)
	cover()
	add("b.test", "account-y@b.test", 2)
	cover()
	add("a.test", "account-x@a.test", 2)
	cover()
	add("a.test", "account-x@a.test", 1) // after the last anchor

	// Other tests' transactions in flight hold back the gap-safe head; the API waits likewise.
	require.NoError(t, s.AwaitDomainStable(ctx, "a.test"))
	var buf bytes.Buffer
	flushes := 0
	require.NoError(t, s.ExportDomain(ctx, &buf, eventstore.ExportOptions{Domain: "a.test", ExportedAt: time.Now(),
		Flush: func() { flushes++ }, Signer: anchors}))
	require.Equal(t, 2, flushes, "one page and the end")
	export := buf.String()
	lines := strings.Split(strings.TrimRight(export, "\n"), "\n")
	var withHeads, without int
	for _, l := range lines {
		var a struct {
			Kind  string            `json:"kind"`
			Heads []json.RawMessage `json:"heads"`
		}
		require.NoError(t, json.Unmarshal([]byte(l), &a))
		if a.Kind == "anchor" {
			if a.Heads == nil {
				without++
			} else {
				withHeads++
			}
		}
	}
	// Two rounds of a.test were anchored; an anchor can stop short of a round while another
	// test's transaction is in flight, and the round's rest then goes into one more.
	require.GreaterOrEqual(t, withHeads, 2, "the anchors that signed a.test's heads")
	require.GreaterOrEqual(t, without, 1, "and the ones before them that did not, for their links and digests")

	copyOf, err := eventstore.ListAnchors(ctx, pool, 0)
	require.NoError(t, err)
	pub := anchors.PublicKey()
	chainKey := eventstore.ChainKey(eventstoretest.Key)
	inDomain := func(id, d string) bool { return strings.HasSuffix(id, "-"+d) || strings.HasSuffix(id, "@"+d) }
	check := func(content string, copy []eventstore.Anchor, key ed25519.PublicKey) eventstore.ExportReport {
		t.Helper()
		rep, err := eventstore.VerifyExport(strings.NewReader(content), eventstore.ExportCheck{
			ChainKey: chainKey, PublicKey: key, Anchors: copy, InDomain: inDomain})
		require.NoError(t, err)
		return rep
	}
	kinds := func(rep eventstore.ExportReport) []string {
		var out []string
		for _, p := range rep.Problems {
			out = append(out, p.Kind)
		}
		return out
	}
	for name, c := range map[string][]eventstore.Anchor{"OwnAnchors": nil, "Copy": copyOf} {
		rep := check(export, c, pub)
		require.True(t, rep.OK(), "%s: %v", name, rep.Problems)
		require.Equal(t, 6, rep.Events, name)
		require.Equal(t, 2, rep.Streams, name)
		require.Equal(t, withHeads, rep.Anchors, name)
		require.Equal(t, 5, rep.Covered, name)
		require.Equal(t, 1, rep.Unanchored, name)
		require.Equal(t, c == nil, rep.OwnAnchors, name)
		require.False(t, rep.Unsigned, name)
	}
	t.Run("Unsigned", func(t *testing.T) {
		var unsigned bytes.Buffer
		require.NoError(t, s.ExportDomain(ctx, &unsigned, eventstore.ExportOptions{Domain: "a.test"}))
		rep := check(unsigned.String(), copyOf, pub)
		require.True(t, rep.OK(), "%v", rep.Problems)
		require.True(t, rep.Unsigned)
	})

	drop := func(match func(string) bool, events int) string {
		var out []string
		for _, l := range lines {
			if !match(l) {
				out = append(out, l)
			}
		}
		out[len(out)-1] = strings.Replace(out[len(out)-1], `"events":6`, fmt.Sprintf(`"events":%d`, events), 1)
		return strings.Join(out, "\n") + "\n"
	}
	t.Run("TailCut", func(t *testing.T) {
		// account-x's versions 3 and 4 gone: version 3 was signed.
		cut := drop(func(l string) bool {
			return strings.Contains(l, `"stream":"account-x@a.test"`) && (strings.Contains(l, `"version":3`) || strings.Contains(l, `"version":4`))
		}, 4)
		for _, c := range [][]eventstore.Anchor{nil, copyOf} {
			require.Equal(t, []string{"anchored-event-missing", "end-signature"}, kinds(check(cut, c, pub)))
		}
	})
	t.Run("StreamRemoved", func(t *testing.T) {
		// The domain's own stream, end line adjusted: the anchors still name it.
		cut := drop(func(l string) bool { return strings.Contains(l, `"stream":"domain-a.test"`) }, 4)
		rep := check(cut, copyOf, pub)
		require.Contains(t, kinds(rep), "anchored-event-missing")
		require.Contains(t, fmt.Sprint(rep.Problems), "stream domain-a.test at version 2")
	})
	t.Run("PredecessorAltered", func(t *testing.T) {
		var out []string
		done := false
		for _, l := range lines {
			if !done && strings.Contains(l, `"kind":"anchor"`) && strings.Contains(l, `"heads":null`) {
				l, done = strings.Replace(l, `"events":`, `"events":1`, 1), true
			}
			out = append(out, l)
		}
		rep := check(strings.Join(out, "\n")+"\n", nil, pub)
		require.Contains(t, kinds(rep), "anchor-signature")
		require.Contains(t, kinds(rep), "anchor-missing", "the anchor after it cannot be checked")
		rep = check(strings.Join(out, "\n")+"\n", copyOf, pub)
		require.Equal(t, []string{"anchor-differs", "end-digest"}, kinds(rep))
	})
	t.Run("OtherKey", func(t *testing.T) {
		other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32)).Public().(ed25519.PublicKey)
		rep := check(export, copyOf, other)
		require.Contains(t, kinds(rep), "anchor-key")
		require.NotContains(t, kinds(rep), "content", "the chains still hold")
	})
}
