package ldap_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"mailplane/commands"
	"mailplane/domain"
	"mailplane/eventstore"
	"mailplane/projections"
	"mailplane/projections/ldap"
)

// insertEvent writes a row into the events table as someone with the database could, and
// returns its place in the global order.
func (b *bundle) insertEvent(t *testing.T, stream, streamType, dom string, version int, eventType, data string) eventstore.Position {
	t.Helper()
	var pos eventstore.Position
	var txid int64
	require.NoError(t, b.e.Pool.QueryRow(context.Background(), `INSERT INTO events (stream_id, stream_type, stream_version,
		domain, event_type, data, recorded_at, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, now(), '', '')
		RETURNING position, transaction_id::text::bigint`, stream, streamType, version, dom, eventType, data).Scan(&pos.Position, &txid))
	pos.TransactionID = uint64(txid)
	return pos
}

// createAccount creates an account through the command service: with the admin projection
// stopped too (it stops on the same events), the API would answer 503.
func (b *bundle) createAccount(t *testing.T, address string) string {
	t.Helper()
	addr, err := domain.ParseAddress(address)
	require.NoError(t, err)
	_, err = b.e.Commands.CreateAccount(context.Background(), commands.Request{Meta: eventstore.Metadata{Actor: "test"}},
		domain.CreateAccount{Address: addr}, commands.Credentials{})
	require.NoError(t, err)
	return addr.String()
}

// waitStopped waits until the LDAP projection is stopped at the position and returns the stop.
func (b *bundle) waitStopped(t *testing.T, at eventstore.Position) projections.Stop {
	t.Helper()
	var info projections.Info
	require.Eventually(t, func() bool {
		infos, err := projections.Inspect(context.Background(), b.e.Pool, ldap.Name)
		require.NoError(t, err)
		info = infos[0]
		return info.State == projections.StateStopped && info.Stopped.Position == at.Position
	}, 30*time.Second, 10*time.Millisecond, "the projection did not stop at position %d", at.Position)
	return *info.Stopped
}

// checkpointBefore requires the directory's checkpoint entry to be before the position.
func (b *bundle) checkpointBefore(t *testing.T, at eventstore.Position) {
	t.Helper()
	cp := parsePosition(t, readCheckpoint(t, b.d.Admin(t), b.dit))
	require.True(t, cp.Less(at), "the checkpoint entry is at %+v, not before %+v", cp, at)
}

// An event that breaks its stream's order (a version gap) or that this release cannot read (an
// unknown type) stops the LDAP projection durably: projections.Inspect shows the stop with the
// stream and position, the directory's checkpoint stays before it and nothing after it is
// written, a restart or a resume without skip stops there again, and a resume that skips it lets
// the projection go on.
func TestAnomalyStopsTheProjectionDurably(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	dom := b.e.CreateDomain(t, nil)
	b.createAccount(t, "before@"+dom)
	b.caughtUp(t)

	// Version 2 of a domain stream whose version 1 does not exist.
	gapStream := "domain-" + "gap-" + dom
	gap := b.insertEvent(t, gapStream, domain.StreamTypeDomain, "gap-"+dom, 2, "DomainUpdated", `{"name":"gap-`+dom+`"}`)
	after := b.createAccount(t, "after@"+dom)
	st := b.waitStopped(t, gap)
	require.Equal(t, gapStream, st.StreamID)
	require.Equal(t, projections.StopVersionGap, st.Kind)
	require.Contains(t, st.Reason, "version gap")
	b.checkpointBefore(t, gap)
	time.Sleep(200 * time.Millisecond)
	require.Nil(t, b.entry(t, b.dit.Account(after)), "nothing after the stop is written")

	// A restart stops there too; so does a resume that does not skip the event.
	b.stop()
	b.run(t, b.options(ldap.Config{URL: b.d.Env.URL, BindDN: b.d.Env.Admin.DN, Password: b.d.Env.Admin.Password, DIT: b.dit}))
	time.Sleep(200 * time.Millisecond)
	b.waitStopped(t, gap)
	_, err := projections.Resume(ctx, b.e.Pool, ldap.Name, nil, "test")
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		stop, err := projections.LoadStop(ctx, b.e.Pool, ldap.Name)
		require.NoError(t, err)
		return stop != nil && stop.At.After(st.At)
	}, 30*time.Second, 10*time.Millisecond, "resumed without the skip, it stops at the same event again")
	b.waitStopped(t, gap)
	b.checkpointBefore(t, gap)
	require.Nil(t, b.entry(t, b.dit.Account(after)))

	// Skipped, it goes on.
	skip := gap.Position
	_, err = projections.Resume(ctx, b.e.Pool, ldap.Name, &skip, "test")
	require.NoError(t, err)
	b.caughtUp(t)
	require.NotNil(t, b.entry(t, b.dit.Account(after)))

	// An event type this release does not know, in an account stream.
	unknown := b.insertEvent(t, "account-ghost@"+dom, domain.StreamTypeAccount, dom, 1, "AccountTeleported", `{}`)
	later := b.createAccount(t, "later@"+dom)
	st = b.waitStopped(t, unknown)
	require.Equal(t, "account-ghost@"+dom, st.StreamID)
	require.Equal(t, projections.StopUnknownEventType, st.Kind)
	require.Contains(t, st.Reason, "AccountTeleported")
	b.checkpointBefore(t, unknown)
	require.Nil(t, b.entry(t, b.dit.Account(later)))
	skip = unknown.Position
	_, err = projections.Resume(ctx, b.e.Pool, ldap.Name, &skip, "test")
	require.NoError(t, err)
	b.caughtUp(t)
	require.NotNil(t, b.entry(t, b.dit.Account(later)))
	require.Nil(t, b.entry(t, b.dit.Account("ghost@"+dom)))
}
