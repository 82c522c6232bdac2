// Package commands is the write side: it loads aggregates from the event store, fills in the
// context their decisions need, lets domain decide, and appends the events together with the
// reservations and jobs they cause, in one transaction. The HTTP handlers (api), the CLI's admin
// commands and the River workers (workers) all call it, so a command is checked the same way
// whoever issues it; nothing here imports api or workers.
package commands

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"mailplane/domain"
	"mailplane/eventstore"
	"mailplane/eventstore/keyring"
)

// ErrPreconditionFailed means If-Match named a version the object is no longer at.
var ErrPreconditionFailed = errors.New("commands: the object changed since the version given")

// Service runs admin commands.
type Service struct {
	pool    *pgxpool.Pool
	store   *eventstore.Postgres
	keys    *keyring.Keyring
	hasher  *Hasher
	logger  *slog.Logger
	now     func() time.Time
	limiter LoginLimits
	jobs    Jobs
	contact string
}

// Deps are the service's collaborators.
type Deps struct {
	Pool    *pgxpool.Pool
	Store   *eventstore.Postgres
	Keyring *keyring.Keyring
	Hasher  *Hasher
	Logger  *slog.Logger
	// Now defaults to time.Now.
	Now func() time.Time
	// LoginLimits default to DefaultLoginLimits.
	LoginLimits LoginLimits
	// Jobs enqueues the jobs commands cause (workers.Queue); commands that start a job fail
	// without it.
	Jobs Jobs
	// CertificateContact receives certificate mail nobody else would get (a request by an
	// actor that is no address) and a copy of every renewal's: the operator's ACME contact.
	CertificateContact string
}

// Jobs enqueues jobs in the transaction of the command that causes them. It is implemented in
// workers (which imports this package, so the dependency points this way).
type Jobs interface {
	// IssueCertificate queues the ACME issuance of a requested certificate.
	IssueCertificate(ctx context.Context, tx pgx.Tx, job IssueCertificateJob) (jobID int64, err error)
	// SendMail queues a notification e-mail.
	SendMail(ctx context.Context, tx pgx.Tx, mail Mail) (jobID int64, err error)
	// RemoveDomain queues the removal of a domain (one job per removal).
	RemoveDomain(ctx context.Context, tx pgx.Tx, job RemoveDomainJob) (jobID int64, err error)
	// ResyncGAL queues a resync of a domain's GAL from its external directory; one already
	// queued or running for the domain is returned instead.
	ResyncGAL(ctx context.Context, tx pgx.Tx, job ResyncGALJob) (jobID int64, err error)
	// QuotaWarnings queues the warning of each crossing (a quota_warning job, unique per
	// crossing), which records it with SendQuotaWarning.
	QuotaWarnings(ctx context.Context, tx pgx.Tx, crossings []domain.QuotaCrossing) error
	// RetireDKIMKey schedules the retirement of a replaced DKIM key for the end of its grace period.
	RetireDKIMKey(ctx context.Context, tx pgx.Tx, job RetireDKIMKeyJob) (jobID int64, err error)
	// ImportAccounts queues the job that applies an import's rows.
	ImportAccounts(ctx context.Context, tx pgx.Tx, job ImportAccountsJob) (jobID int64, err error)
}

// RetireDKIMKeyJob retires a replaced DKIM key At the end of its grace period.
type RetireDKIMKeyJob struct {
	Domain      string
	Selector    string
	At          time.Time
	RequestedBy string
}

// IssueCertificateJob is an ACME request to carry out: the CertificateRequested event's.
type IssueCertificateJob struct {
	Domain      string
	Host        string
	RequestID   string
	Chain       string
	Renewal     bool
	RequestedBy string
}

// Mail is a notification e-mail. Cause names what it reports, once: a second mail with the same
// cause is not queued. Stream, when set, is where the job records the mail as sent
// (RecordMailSent).
type Mail struct {
	To          []string
	Subject     string
	Body        string
	Cause       string
	Stream      eventstore.Stream
	RequestedBy string
}

// ErrNoJobs means the service was built without a job queue.
var ErrNoJobs = errors.New("commands: no job queue configured")

// New returns the service.
func New(d Deps) (*Service, error) {
	var errs []error
	if d.Pool == nil || d.Store == nil || d.Keyring == nil || d.Hasher == nil || d.Logger == nil {
		errs = append(errs, errors.New("commands: pool, store, keyring, hasher and logger are required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.LoginLimits == (LoginLimits{}) {
		d.LoginLimits = DefaultLoginLimits
	}
	clock := d.Now
	// Times go into events and read models; PostgreSQL keeps microseconds, so keep no more.
	now := func() time.Time { return clock().UTC().Truncate(time.Microsecond) }
	return &Service{pool: d.Pool, store: d.Store, keys: d.Keyring, hasher: d.Hasher, logger: d.Logger,
		now: now, limiter: d.LoginLimits, jobs: d.Jobs, contact: d.CertificateContact}, nil
}

// Request is what every command carries besides its own fields.
type Request struct {
	Meta eventstore.Metadata
	// IfMatch, when > 0, is the version the caller last saw; the command fails with
	// ErrPreconditionFailed if the object has moved on. Without it, a concurrent change makes
	// the command start over on the new state.
	IfMatch int
	// Invalid are fields the caller could not even read into the command (a string where a
	// number belongs). The command then still decides on what it was given, appends nothing,
	// and answers one ValidationError with those fields and every one its decision refuses,
	// so that a client sees all its mistakes at once.
	Invalid []domain.FieldError
}

// withInvalid joins the fields a caller could not read with the decision's verdict on the rest:
// a missing object is a 404 whatever else is wrong, the decision's own field errors are added,
// and any other outcome leaves the fields the caller could not read.
func withInvalid(invalid []domain.FieldError, decided error) error {
	var ve domain.ValidationError
	switch {
	case errors.Is(decided, domain.ErrNotFound):
		return decided
	case errors.As(decided, &ve):
		out := slices.Clone(invalid)
		seen := map[string]bool{}
		for _, f := range invalid {
			seen[f.Field] = true
		}
		for _, f := range ve.Errors {
			if !seen[f.Field] {
				seen[f.Field] = true
				out = append(out, f)
			}
		}
		return domain.ValidationError{Errors: out}
	}
	return domain.ValidationError{Errors: slices.Clone(invalid)}
}

// Outcome says what a command did.
type Outcome struct {
	// Version is the object's stream version afterwards.
	Version int
	// Position is where the last appended event sits; zero when nothing was appended.
	Position eventstore.Position
	// Replayed is true when an idempotency key had been used: nothing new happened.
	Replayed bool
	// Record is the idempotency record of a replayed request.
	Record eventstore.IdempotencyRecord
	// At is when the events were recorded (zero when nothing was appended).
	At time.Time
	// Account is set by account commands: the account as the command left it.
	Account *AccountView
	// List and Resource are set by list and resource commands likewise (nil once deleted).
	List     *ListView
	Resource *ResourceView
	// JobID is the job the command started, if any.
	JobID int64
}

// Appended reports whether the command wrote events.
func (o Outcome) Appended() bool { return o.Position != (eventstore.Position{}) }

// maxAttempts bounds how often a command starts over after a concurrent change.
const maxAttempts = 20

// evolvable is an aggregate state.
type evolvable[S any] interface {
	Evolve(domain.Event) S
}

// step is one command's work inside its transaction: decide from the loaded state (and
// whatever else it reads through tx), then, after the append, write what must go with it.
type step[S any] struct {
	stream eventstore.Stream
	// with names other streams the decision reads; they are loaded in the same query as the
	// command's own stream (load finds them in the transaction).
	with   []string
	decide func(ctx context.Context, tx pgx.Tx, state S, version int) ([]domain.Event, error)
	// queue adds writes that go with the append to its batch (sent in the same round trip),
	// given the state after the events; the function it returns checks their outcome once the
	// batch ran. May be nil.
	queue func(b *pgx.Batch, state S) func(ctx context.Context, tx pgx.Tx) error
	// after runs once the events are appended (reservations, jobs); may be nil.
	after func(ctx context.Context, tx pgx.Tx, state S, events []domain.Event) error
	// view runs last, before the commit, with the state the command leaves (changed or not);
	// commands use it to return what their caller shows. May be nil.
	view func(ctx context.Context, tx pgx.Tx, state S, version int) error
	// beforeCommit runs after everything else, when the events are appended and only the
	// commit is left; its error rolls the command back. It ties an outside action to the
	// commit (RecordMailSentAtEnd). May be nil.
	beforeCommit func(ctx context.Context) error
}

// run executes a step, starting over on a concurrent change unless the caller pinned a version.
// A request with an idempotency key also starts over when it lost a race, since the race may
// have been against itself sent twice: the new attempt's lookup then finds the first request's
// record and answers with its result (or with ErrIdempotencyMismatch for a different request),
// before any If-Match check.
func run[S evolvable[S]](ctx context.Context, s *Service, req Request, st step[S]) (Outcome, error) {
	keyed := req.Meta.IdempotencyKey != ""
	for attempt := 1; ; attempt++ {
		out, err := try(ctx, s, req, st)
		if attempt < maxAttempts {
			switch {
			case errors.Is(err, eventstore.ErrIdempotencyKeyInUse):
				continue
			case errors.Is(err, eventstore.ErrConcurrency) && (req.IfMatch == 0 || keyed && attempt == 1):
				continue
			case errors.Is(err, ErrPreconditionFailed) && keyed && attempt == 1:
				// The version may have moved because of this very request: look again.
				continue
			}
		}
		if errors.Is(err, eventstore.ErrConcurrency) && req.IfMatch > 0 {
			return out, fmt.Errorf("%w: %w", ErrPreconditionFailed, err)
		}
		return out, err
	}
}

func try[S evolvable[S]](ctx context.Context, s *Service, req Request, st step[S]) (Outcome, error) {
	ids := append([]string{st.stream.ID}, st.with...)
	var tx pgx.Tx
	var streams map[string][]eventstore.RecordedEvent
	if req.Meta.IdempotencyKey == "" {
		// Reads first: the append below must be the transaction's first write (DESIGN.md §2).
		// The BEGIN goes with them, in one round trip.
		conn, err := s.pool.Acquire(ctx)
		if err != nil {
			return Outcome{}, err
		}
		defer conn.Release() // after the rollback below (deferred later, so run first)
		if tx, streams, err = s.store.BeginLoadMany(ctx, conn, ids); err != nil {
			return Outcome{}, err
		}
		defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	} else {
		var err error
		if tx, err = s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}); err != nil {
			return Outcome{}, err
		}
		defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
		rec, found, err := s.store.LookupIdempotency(ctx, tx, req.Meta.Actor, req.Meta.IdempotencyKey)
		if err != nil {
			return Outcome{}, err
		}
		if found {
			if req.Meta.RequestHash != nil && !rec.Matches(req.Meta.RequestHash) {
				return Outcome{}, eventstore.ErrIdempotencyMismatch
			}
			return Outcome{Version: rec.Result.LastVersion, Position: rec.Result.GlobalPosition(), Replayed: true, Record: rec}, nil
		}
		if streams, err = s.store.LoadManyTx(ctx, tx, ids); err != nil {
			return Outcome{}, err
		}
	}
	for _, id := range ids {
		if _, ok := streams[id]; !ok {
			streams[id] = nil // read, and empty
		}
	}
	ltx := &loadedTx{Tx: tx, streams: streams}
	state, version, err := load[S](ctx, s, ltx, st.stream.ID)
	if err != nil {
		return Outcome{}, err
	}
	if req.IfMatch > 0 && req.IfMatch != version {
		return Outcome{}, fmt.Errorf("%w: at version %d, not %d", ErrPreconditionFailed, version, req.IfMatch)
	}
	events, err := st.decide(ctx, ltx, state, version)
	if len(req.Invalid) > 0 {
		return Outcome{}, withInvalid(req.Invalid, err)
	}
	if err != nil {
		return Outcome{}, err
	}
	if len(events) == 0 {
		if st.view != nil {
			if err := st.view(ctx, ltx, state, version); err != nil {
				return Outcome{}, err
			}
		}
		return Outcome{Version: version}, nil
	}
	evs := make([]eventstore.Event, len(events))
	for i, e := range events {
		evs[i] = e
	}
	for _, e := range events {
		state = state.Evolve(e)
	}
	// The append and the writes that must go with it travel in one round trip.
	batch := &pgx.Batch{}
	pending, err := s.store.QueueAppend(ctx, tx, batch, st.stream, eventstore.Exact(version), req.Meta, evs...)
	if err != nil {
		return Outcome{}, err
	}
	var check func(context.Context, pgx.Tx) error
	if st.queue != nil && batch.Len() > 0 {
		check = st.queue(batch, state)
	}
	var sendErr error
	if batch.Len() > 0 {
		sendErr = tx.SendBatch(ctx, batch).Close()
	}
	res, err := pending.Finish(sendErr)
	if err != nil {
		return Outcome{}, err
	}
	if res.Replayed {
		return Outcome{Version: res.LastVersion, Position: res.GlobalPosition(), Replayed: true}, nil
	}
	if check != nil {
		if err := check(ctx, ltx); err != nil {
			return Outcome{}, err
		}
	}
	if st.after != nil {
		if err := st.after(ctx, ltx, state, events); err != nil {
			return Outcome{}, err
		}
	}
	if st.view != nil {
		if err := st.view(ctx, ltx, state, res.LastVersion); err != nil {
			return Outcome{}, err
		}
	}
	if st.beforeCommit != nil {
		if err := st.beforeCommit(ctx); err != nil {
			return Outcome{}, err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return Outcome{}, fmt.Errorf("commands: commit: %w", err)
	}
	return Outcome{Version: res.LastVersion, Position: res.GlobalPosition(), Replayed: res.Replayed, At: res.RecordedAt}, nil
}

// loadedTx is a command's transaction with the streams it has already read, so that reading one
// of them again costs no query.
type loadedTx struct {
	pgx.Tx
	streams map[string][]eventstore.RecordedEvent
}

// load folds a stream into its state.
func load[S evolvable[S]](ctx context.Context, s *Service, q eventstore.DBTX, streamID string) (S, int, error) {
	var state S
	var events []eventstore.RecordedEvent
	if l, ok := q.(*loadedTx); ok && hasStream(l.streams, streamID) {
		events = l.streams[streamID]
	} else {
		var err error
		if events, err = s.store.LoadTx(ctx, q, streamID, eventstore.LoadOptions{SkipMetadata: true}); err != nil {
			return state, 0, err
		}
		if ok {
			l.streams[streamID] = events
		}
	}
	state, err := Fold[S](s.store.Registry(), events)
	if err != nil {
		return state, 0, err
	}
	return state, len(events), nil
}

// Fold replays recorded events into an aggregate's state. A state that can take its events at
// once (domain.MailingList.EvolveAll) is given them so.
func Fold[S evolvable[S]](reg *eventstore.Registry, events []eventstore.RecordedEvent) (S, error) {
	var state S
	all, batched := any(state).(interface{ EvolveAll([]domain.Event) S })
	var evs []domain.Event
	if batched {
		evs = make([]domain.Event, 0, len(events))
	}
	for _, e := range events {
		ev, err := reg.Decode(e)
		if err != nil {
			return state, err
		}
		de, ok := ev.(domain.Event)
		if !ok {
			return state, fmt.Errorf("commands: %s is not a domain event", e.Type)
		}
		if batched {
			evs = append(evs, de)
			continue
		}
		state = state.Evolve(de)
	}
	if batched {
		return all.EvolveAll(evs), nil
	}
	return state, nil
}

// Load returns an aggregate's current state and version straight from its stream.
func Load[S evolvable[S]](ctx context.Context, s *Service, streamID string) (S, int, error) {
	return load[S](ctx, s, s.pool, streamID)
}

// hasStream reports whether the stream was read (a stream read and found empty is in the map
// with no events).
func hasStream(m map[string][]eventstore.RecordedEvent, id string) bool {
	_, ok := m[id]
	return ok
}
