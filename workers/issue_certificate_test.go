package workers_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"mailplane/commands"
	"mailplane/domain"
	"mailplane/eventstore"
	"mailplane/eventstore/keyring"
	"mailplane/migrations/testdb"
	"mailplane/workers"
	"mailplane/workers/mailtest"
)

// certBundle is a command service over a fresh database, with a domain and a virtual host.
type certBundle struct {
	pool   *pgxpool.Pool
	store  *eventstore.Postgres
	svc    *commands.Service
	keys   *keyring.Keyring
	domain string
	host   string
}

func newCertBundle(t *testing.T) *certBundle {
	t.Helper()
	ctx := context.Background()
	pool := testdb.New(t)
	evs := []eventstore.Event{}
	for _, e := range domain.Events() {
		evs = append(evs, e)
	}
	reg, err := eventstore.NewRegistry(evs, nil)
	require.NoError(t, err)
	master := make([]byte, 32)
	_, _ = rand.Read(master)
	keys, err := keyring.New(pool, master)
	require.NoError(t, err)
	store := eventstore.NewPostgres(pool, reg)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	inserter, err := workers.NewClient(pool, logger, workers.Config{}, false)
	require.NoError(t, err)
	svc, err := commands.New(commands.Deps{Pool: pool, Store: store, Keyring: keys, Logger: logger,
		Hasher: commands.NewHasher(commands.Argon2Params{MemoryKiB: 1024, Iterations: 1, Parallelism: 1}, 0),
		Jobs:   workers.Queue{Inserter: inserter}, CertificateContact: "hostmaster@mailplane.test"})
	require.NoError(t, err)
	b := &certBundle{pool: pool, store: store, svc: svc, keys: keys, domain: unique("d") + ".example"}
	req := commands.Request{Meta: eventstore.Metadata{Actor: "admin@" + b.domain}}
	_, _, err = svc.CreateDomain(ctx, req, domain.CreateDomain{Name: b.domain}, "")
	require.NoError(t, err)
	b.host, _, err = svc.AddVirtualHost(ctx, req, b.domain, "mail."+b.domain)
	require.NoError(t, err)
	return b
}

// A CA that cannot be reached is retried: the attempts before the last return an error and
// record nothing; the last records the failure (an event, and the mail saying what to fix)
// and ends the job for good.
func TestIssueCertificateRetriesAnUnreachableCA(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := newCertBundle(t)
	req := commands.Request{Meta: eventstore.Metadata{Actor: "admin@" + b.domain}}
	out, err := b.svc.RequestCertificate(ctx, req, b.domain, b.host, "long")
	require.NoError(t, err)
	var raw []byte
	pool := b.pool
	require.NoError(t, pool.QueryRow(ctx, `SELECT args FROM river_job WHERE id = $1`, out.JobID).Scan(&raw))
	var args workers.IssueCertificateArgs
	require.NoError(t, json.Unmarshal(raw, &args))
	require.Equal(t, b.host, args.Host)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := ln.Addr().String()
	require.NoError(t, ln.Close())
	acme, err := workers.NewACME(workers.ACMEConfig{DirectoryURL: "https://" + dead + "/dir", Email: "x@mailplane.test",
		HTTP01: &workers.HTTPChallenges{DB: pool}}, pool, b.keys, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	w := &workers.IssueCertificateWorker{Commands: b.svc, Issuer: acme}
	job := func(attempt int) *river.Job[workers.IssueCertificateArgs] {
		return &river.Job[workers.IssueCertificateArgs]{JobRow: &rivertype.JobRow{ID: out.JobID, Attempt: attempt,
			MaxAttempts: workers.IssueCertificateAttempts}, Args: args}
	}

	err = w.Work(ctx, job(1))
	require.ErrorContains(t, err, "connection refused")
	require.False(t, errors.Is(err, &rivertype.JobCancelError{}), "retried")
	pending, err := b.svc.PendingIssuance(ctx, b.domain, b.host, args.RequestID)
	require.NoError(t, err)
	require.NotNil(t, pending, "nothing recorded yet")

	err = w.Work(ctx, job(workers.IssueCertificateAttempts))
	require.True(t, errors.Is(err, &rivertype.JobCancelError{}), "the last attempt gives up: %v", err)
	v, _, err := b.svc.VirtualHost(ctx, b.domain, b.host)
	require.NoError(t, err)
	require.Nil(t, v.Issuance)
	require.Contains(t, v.LastFailure.Errors[0], "connection refused")
	var to []string
	var body string
	require.NoError(t, pool.QueryRow(ctx, `SELECT array(SELECT jsonb_array_elements_text(args->'to')), args->>'body'
		FROM river_job WHERE kind = 'send_email'`).Scan(&to, &body))
	require.Equal(t, []string{"admin@" + b.domain}, to)
	require.Contains(t, body, "could not complete the order with the CA")

	require.NoError(t, w.Work(ctx, job(workers.IssueCertificateAttempts)), "run again, it finds its outcome recorded")
	events, err := b.store.Load(ctx, domain.VirtualHostStreamID(b.domain, b.host), eventstore.LoadOptions{})
	require.NoError(t, err)
	require.Equal(t, "CertificateIssuanceFailed", events[len(events)-1].Type)
	require.Len(t, events, 3, "added, requested, failed once")
}

// A certificate mail is recorded as sent on the host's stream once; an attempt that runs again
// after that (its answer lost) sends nothing.
func TestSentMailIsRecordedOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := newCertBundle(t)
	mailer, err := workers.NewMailer(workers.MailerConfig{Addr: mailtest.SMTPAddr(t), From: "mailplane@mailplane.test"})
	require.NoError(t, err)
	w := &workers.SendEmailWorker{Mailer: mailer, Commands: b.svc}
	to := unique("once-") + "@example.test"
	stream := domain.VirtualHostStreamID(b.domain, b.host)
	args := workers.SendEmailArgs{To: []string{to}, Subject: "s", Body: "b", Cause: stream + ":r1",
		Record: &workers.MailRecord{Stream: stream, StreamType: domain.StreamTypeVirtualHost, Domain: b.domain}}
	job := &river.Job[workers.SendEmailArgs]{JobRow: &rivertype.JobRow{ID: 1, Attempt: 1, MaxAttempts: 25}, Args: args}
	require.NoError(t, w.Work(ctx, job))
	job.Attempt = 2
	require.NoError(t, w.Work(ctx, job))
	mailtest.WaitFor(t, to, 1, 30*time.Second)
	time.Sleep(500 * time.Millisecond)
	require.Len(t, mailtest.To(t, to), 1)
	events, err := b.store.Load(ctx, stream, eventstore.LoadOptions{})
	require.NoError(t, err)
	var sent int
	for _, e := range events {
		if e.Type == "MailSent" {
			sent++
		}
	}
	require.Equal(t, 1, sent)
	out, err := b.svc.RecordMailSent(ctx, eventstore.Stream{ID: stream, Type: domain.StreamTypeVirtualHost, Domain: b.domain},
		domain.MailSent{Cause: args.Cause})
	require.NoError(t, err)
	require.False(t, out.Appended(), "recorded once per cause")
}
