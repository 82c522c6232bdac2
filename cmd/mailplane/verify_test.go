package main

import (
	"bytes"
	"context"
	"testing"

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
