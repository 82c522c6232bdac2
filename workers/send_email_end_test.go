package workers_test

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"

	"github.com/emersion/go-smtp"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"mailplane/domain"
	"mailplane/eventstore"
	"mailplane/workers"
)

// relay is an SMTP relay of the test's own: at the end of each message's data, before it
// answers, it looks at the database for a transaction that has written and not committed (the
// record of MailSent waiting for this answer), then answers with refuse (nil: 250).
type relay struct {
	pool *pgxpool.Pool
	mu   sync.Mutex
	// openAtEnd is, per message taken or refused, whether a write transaction was open.
	openAtEnd []bool
	taken     int
	refuse    *smtp.SMTPError
}

func newRelay(t *testing.T, pool *pgxpool.Pool) (*relay, string) {
	r := &relay{pool: pool}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := smtp.NewServer(r)
	srv.Domain = "relay.test"
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return r, ln.Addr().String()
}

func (r *relay) NewSession(*smtp.Conn) (smtp.Session, error) { return relaySession{r}, nil }

type relaySession struct{ r *relay }

func (relaySession) Mail(string, *smtp.MailOptions) error { return nil }
func (relaySession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (relaySession) Reset()                               {}
func (relaySession) Logout() error                        { return nil }

func (s relaySession) Data(body io.Reader) error {
	if _, err := io.ReadAll(body); err != nil {
		return err
	}
	var open bool
	err := s.r.pool.QueryRow(context.Background(), `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid()
		  AND backend_xid IS NOT NULL AND state = 'idle in transaction')`).Scan(&open)
	if err != nil {
		return err
	}
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	s.r.openAtEnd = append(s.r.openAtEnd, open)
	if s.r.refuse != nil {
		return s.r.refuse
	}
	s.r.taken++
	return nil
}

func (r *relay) refusing(e *smtp.SMTPError) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refuse = e
}

func (r *relay) seen() ([]bool, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]bool(nil), r.openAtEnd...), r.taken
}

// A recorded mail's end of data is sent inside the transaction that records MailSent, right
// before its commit: when the relay answers, the record is written and waits only for the
// commit. A relay that refuses the end of data leaves nothing recorded, and the next attempt
// sends and records the mail once.
func TestMailIsRecordedInTheTransactionTheRelaysAnswerEnds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := newCertBundle(t)
	relay, addr := newRelay(t, b.pool)
	mailer, err := workers.NewMailer(workers.MailerConfig{Addr: addr, From: "mailplane@mailplane.test"})
	require.NoError(t, err)
	w := &workers.SendEmailWorker{Mailer: mailer, Commands: b.svc}
	stream := domain.VirtualHostStreamID(b.domain, b.host)
	args := workers.SendEmailArgs{To: []string{"admin@" + b.domain}, Subject: "s", Body: "b", Cause: stream + ":end",
		Record: &workers.MailRecord{Stream: stream, StreamType: domain.StreamTypeVirtualHost, Domain: b.domain}}
	job := &river.Job[workers.SendEmailArgs]{JobRow: &rivertype.JobRow{ID: 7, Attempt: 1, MaxAttempts: 25}, Args: args}
	mailSent := func() int {
		events, err := b.store.Load(ctx, stream, eventstore.LoadOptions{})
		require.NoError(t, err)
		n := 0
		for _, e := range events {
			if e.Type == "MailSent" {
				n++
			}
		}
		return n
	}

	relay.refusing(&smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"})
	require.ErrorContains(t, w.Work(ctx, job), "451")
	require.Equal(t, 0, mailSent(), "refused: nothing recorded")

	relay.refusing(nil)
	job.Attempt = 2
	require.NoError(t, w.Work(ctx, job))
	require.Equal(t, 1, mailSent())
	open, taken := relay.seen()
	require.Equal(t, []bool{true, true}, open, "the record was written and uncommitted at each end of data")
	require.Equal(t, 1, taken)

	job.Attempt = 3
	require.NoError(t, w.Work(ctx, job), "recorded: the next attempt sends nothing")
	open, taken = relay.seen()
	require.Len(t, open, 2)
	require.Equal(t, 1, taken)
	require.Equal(t, 1, mailSent())

	// A cause with no stream here is sent, unrecorded.
	job.Args.Cause = "nowhere:1"
	job.Args.Record = &workers.MailRecord{Stream: "virtual_host-nowhere", StreamType: domain.StreamTypeVirtualHost, Domain: b.domain}
	require.NoError(t, w.Work(ctx, job))
	open, taken = relay.seen()
	require.Equal(t, []bool{true, true, false}, open)
	require.Equal(t, 2, taken)
}
