package workers_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"mailplane/eventstore"
	"mailplane/eventstore/eventstoretest"
	"mailplane/migrations/testdb"
	"mailplane/workers"
	"mailplane/workers/mailtest"
)

func unique(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// A job inserted in the append's transaction exists exactly when the events do.
func TestJobInsertedWithTheAppendIsSentOnlyIfItCommits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testdb.New(t)
	store := eventstore.NewPostgres(pool, eventstoretest.Registry(t))
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	client, err := workers.NewClient(pool, logger, workers.Config{
		Mailer: workers.MailerConfig{Addr: mailtest.SMTPAddr(t), From: "mailplane@mailplane.test"},
	}, true)
	require.NoError(t, err)
	require.NoError(t, client.Start(ctx))
	t.Cleanup(func() { _ = client.Stop(context.Background()) })

	committed := unique("yes-") + "@example.test"
	rolledBack := unique("no-") + "@example.test"
	appendWithMail := func(to string, commit bool) {
		tx, err := pool.Begin(ctx)
		require.NoError(t, err)
		defer tx.Rollback(ctx)
		res, err := store.AppendTx(ctx, tx, eventstore.Stream{ID: "t-" + to, Type: "thing"}, eventstore.NoStream,
			eventstore.Metadata{}, eventstoretest.ThingCreated{Name: to})
		require.NoError(t, err)
		_, err = client.InsertTx(ctx, tx, workers.SendEmailArgs{To: []string{to}, Subject: "Thing créé",
			Body: "created " + to, Cause: "event " + res.StreamID}, nil)
		require.NoError(t, err)
		if commit {
			require.NoError(t, tx.Commit(ctx))
		}
	}
	appendWithMail(rolledBack, false)
	appendWithMail(committed, true)

	msgs := mailtest.WaitFor(t, committed, 1, 30*time.Second)
	require.Len(t, msgs, 1)
	require.Equal(t, "Thing créé", msgs[0].Subject)
	require.Contains(t, msgs[0].Body, "created "+committed)

	var jobs int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE kind = 'send_email'`).Scan(&jobs))
	require.Equal(t, 1, jobs, "the rolled-back transaction left no job")
	require.Empty(t, mailtest.To(t, rolledBack))
}

func TestMailerRejectsHeaderInjection(t *testing.T) {
	t.Parallel()
	m, err := workers.NewMailer(workers.MailerConfig{Addr: "127.0.0.1:1", From: "a@b.test"})
	require.NoError(t, err)
	err = m.Send(context.Background(), []string{"x@y.test\r\nBcc: evil@z.test"}, "s", "b")
	require.ErrorContains(t, err, "bad address")
	_, err = workers.NewMailer(workers.MailerConfig{Addr: "nope", From: "nobody"})
	require.Error(t, err)
}

// A message carries From, To, Subject, Date and Message-ID, and its text (long lines and
// non-ASCII included) arrives as written.
func TestMailerHeadersAndText(t *testing.T) {
	t.Parallel()
	m, err := workers.NewMailer(workers.MailerConfig{Addr: mailtest.SMTPAddr(t), From: "mailplane@mailplane.test"})
	require.NoError(t, err)
	to := unique("hdr-") + "@example.test"
	body := "Grüße,\n\n" + strings.Repeat("a long line ", 20) + "\n  indented: =3D stays\n"
	require.NoError(t, m.SendMessage(context.Background(), workers.Message{To: []string{to}, Subject: "Zertifikat für mail.example.test",
		Body: body, MessageID: m.MessageID("mailplane.abc")}))
	msgs := mailtest.WaitFor(t, to, 1, 30*time.Second)
	got := msgs[0]
	require.Equal(t, "Zertifikat für mail.example.test", got.Subject)
	require.Equal(t, "mailplane@mailplane.test", got.Headers["From"])
	require.Equal(t, to, got.Headers["To"])
	require.Equal(t, "<mailplane.abc@mailplane.test>", got.Headers["Message-Id"])
	_, err = mail.ParseDate(got.Headers["Date"])
	require.NoError(t, err)
	require.Equal(t, body, got.Body)
	require.Error(t, m.SendMessage(context.Background(), workers.Message{}), "no recipient")
}
