package workers_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"mailplane/eventstore"
	"mailplane/eventstore/eventstoretest"
	"mailplane/migrations/testdb"
	"mailplane/workers"
	"mailplane/workers/mailtest"
)

// The periodic anchor job signs the head once a River leader runs it, records it in the database
// and appends the same anchor to the anchor file, where verify --anchors can read it.
func TestAnchorJobRecordsAndCopiesTheHead(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testdb.New(t)
	store := eventstore.NewPostgres(pool, eventstoretest.Registry(t), eventstore.WithKey(eventstoretest.Key))
	for i := 0; i < 3; i++ {
		_, err := store.Append(ctx, eventstore.Stream{ID: "t-anchor", Type: "thing"}, eventstore.Any, eventstore.Metadata{},
			eventstoretest.ThingRenamed{Name: "x"})
		require.NoError(t, err)
	}
	// An anchor stops below the gap-safe horizon, and the job's next run is a minute away.
	eventstoretest.WaitBelowHorizon(t, pool)
	anchors, err := eventstore.NewAnchors(pool, []byte("anchor-seed-for-tests-0123456789"))
	require.NoError(t, err)
	file := filepath.Join(t.TempDir(), "anchors.jsonl")
	client, err := workers.NewClient(pool, slog.New(slog.NewTextHandler(io.Discard, nil)), workers.Config{
		Mailer:  workers.MailerConfig{Addr: mailtest.SMTPAddr(t), From: "mailplane@mailplane.test"},
		Anchors: anchors, AnchorFile: file,
	}, true)
	require.NoError(t, err)
	require.NoError(t, client.Start(ctx))
	t.Cleanup(func() { _ = client.Stop(context.Background()) })

	var copied []eventstore.Anchor
	require.Eventually(t, func() bool {
		f, err := os.Open(file)
		if err != nil {
			return false
		}
		defer f.Close()
		copied = nil
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var a eventstore.Anchor
			require.NoError(t, json.Unmarshal(sc.Bytes(), &a))
			copied = append(copied, a)
		}
		return len(copied) > 0 && copied[len(copied)-1].Events == 3
	}, 60*time.Second, 50*time.Millisecond, "the job runs when the client is elected leader")
	stored, err := eventstore.ListAnchors(ctx, pool, 0)
	require.NoError(t, err)
	require.Equal(t, stored, copied, "the file holds exactly what the database holds")
	rep, err := store.VerifyAnchors(ctx, anchors.PublicKey(), copied)
	require.NoError(t, err)
	require.True(t, rep.OK(), "%v", rep.Problems)
}
