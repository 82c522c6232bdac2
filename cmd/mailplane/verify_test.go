package main

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"mailplane/domain"
	"mailplane/eventstore"
	"mailplane/migrations/testdb"
)

func TestVerifyExitsNonZeroOnTampering(t *testing.T) {
	ctx := context.Background()
	url := testdb.NewURL(t)
	t.Setenv("DATABASE_URL", url)

	reg, err := registry()
	require.NoError(t, err)
	cfg, err := configFromEnv()
	require.NoError(t, err)
	e := &env{cfg: cfg}
	p, err := e.pool(ctx)
	require.NoError(t, err)
	defer p.Close()
	store, err := e.store(p, reg)
	require.NoError(t, err)
	for _, name := range []string{"a.example", "b.example"} {
		_, err := store.Append(ctx, eventstore.Stream{ID: domain.DomainStreamID(name), Type: domain.StreamTypeDomain, Domain: name},
			eventstore.NoStream, eventstore.Metadata{Actor: "test"}, domain.DomainCreated{Name: name, UnicodeName: name, Status: "active"})
		require.NoError(t, err)
	}

	var out, errOut bytes.Buffer
	require.Equal(t, 0, run(ctx, []string{"verify"}, &out, &errOut), errOut.String())
	require.Contains(t, out.String(), "every hash chain holds")

	// A superuser rewrites history with the trigger off.
	_, err = p.Exec(ctx, `ALTER TABLE events DISABLE TRIGGER events_append_only;
		UPDATE events SET data = jsonb_set(data, '{status}', '"suspended"') WHERE stream_id = 'domain-b.example';
		ALTER TABLE events ENABLE TRIGGER events_append_only`)
	require.NoError(t, err)

	out.Reset()
	require.Equal(t, 1, run(ctx, []string{"verify"}, &out, &errOut))
	require.Contains(t, out.String(), "BROKEN: stream domain-b.example version 1")
	require.NotContains(t, out.String(), "domain-a.example")
}

// verify names each kind of tampering: a rewritten event, a deleted tail of a stream, a deleted
// stream and a deleted anchor — the last also when it was the newest, given the exported copy.
func TestVerifyNamesEveryKindOfTampering(t *testing.T) {
	ctx := context.Background()
	t.Setenv("DATABASE_URL", testdb.NewURL(t))
	reg, err := registry()
	require.NoError(t, err)
	cfg, err := configFromEnv()
	require.NoError(t, err)
	e := &env{cfg: cfg}
	p, err := e.pool(ctx)
	require.NoError(t, err)
	defer p.Close()
	store, err := e.store(p, reg)
	require.NoError(t, err)
	anchors, err := e.anchors(p)
	require.NoError(t, err)
	var last eventstore.AppendResult
	create := func(name string) {
		last, err = store.Append(ctx, eventstore.Stream{ID: domain.DomainStreamID(name), Type: domain.StreamTypeDomain, Domain: name},
			eventstore.NoStream, eventstore.Metadata{Actor: "test"}, domain.DomainCreated{Name: name, UnicodeName: name, Status: "active"})
		require.NoError(t, err)
	}
	describe := func(name string) {
		last, err = store.Append(ctx, eventstore.Stream{ID: domain.DomainStreamID(name), Type: domain.StreamTypeDomain, Domain: name},
			eventstore.Any, eventstore.Metadata{Actor: "test"}, domain.DomainUpdated{Name: name, Description: ptr("d")})
		require.NoError(t, err)
	}
	cover := func() {
		require.Eventually(t, func() bool {
			a, ok, err := anchors.Record(ctx)
			require.NoError(t, err)
			return ok && !a.Position.Less(last.GlobalPosition())
		}, 30*time.Second, 10*time.Millisecond)
	}
	for _, n := range []string{"rewritten.example", "tail.example", "gone.example"} {
		create(n)
		describe(n)
	}
	cover()
	describe("tail.example")
	cover()
	create("newest.example")
	cover()
	exported := filepath.Join(t.TempDir(), "anchors.jsonl")
	var out, errOut bytes.Buffer
	require.Equal(t, 0, run(ctx, []string{"anchors", "export", "--out", exported}, &out, &errOut), errOut.String())
	require.Equal(t, 0, run(ctx, []string{"verify", "--anchors", exported}, &out, &errOut), out.String()+errOut.String())
	require.Contains(t, out.String(), "every anchor holds")

	var newest int64
	require.NoError(t, p.QueryRow(ctx, `SELECT max(seq) FROM anchors`).Scan(&newest))
	for _, q := range []string{
		`ALTER TABLE events DISABLE TRIGGER USER`, `ALTER TABLE anchors DISABLE TRIGGER USER`, `ALTER TABLE anchor_heads DISABLE TRIGGER USER`,
		`UPDATE events SET data = jsonb_set(data, '{status}', '"suspended"') WHERE stream_id = 'domain-rewritten.example' AND stream_version = 1`,
		`DELETE FROM events WHERE stream_id = 'domain-tail.example' AND stream_version = 3`,
		`DELETE FROM events WHERE stream_id = 'domain-gone.example'`,
		fmt.Sprintf(`DELETE FROM anchor_heads WHERE seq = %d`, newest), fmt.Sprintf(`DELETE FROM anchors WHERE seq = %d`, newest),
		`ALTER TABLE events ENABLE TRIGGER USER`, `ALTER TABLE anchors ENABLE TRIGGER USER`, `ALTER TABLE anchor_heads ENABLE TRIGGER USER`,
	} {
		_, err := p.Exec(ctx, q)
		require.NoError(t, err, q)
	}

	out.Reset()
	require.Equal(t, 1, run(ctx, []string{"verify"}, &out, &errOut))
	got := out.String()
	require.Contains(t, got, "BROKEN: stream domain-rewritten.example version 1")
	require.Contains(t, got, "content does not match its hash")
	require.Contains(t, got, "stream domain-tail.example: signed at version 3; the database has it at version 2")
	require.Contains(t, got, "stream domain-gone.example: signed at version 2; the database has no event of it: the stream was deleted")
	require.NotContains(t, got, fmt.Sprintf("anchor %d:", newest), "the database alone cannot see its newest anchor gone")

	out.Reset()
	require.Equal(t, 1, run(ctx, []string{"verify", "--anchors", exported}, &out, &errOut))
	require.Contains(t, out.String(), fmt.Sprintf("anchor %d: missing: the exported copy has this anchor and the database does not", newest))
}

func ptr[T any](v T) *T { return &v }
