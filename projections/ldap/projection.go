package ldap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"mailplane/eventstore"
	"mailplane/eventstore/keyring"
	"mailplane/projections"
)

// Name is the LDAP projection's stable name: its lock, its checkpoint entry and what status,
// metrics and stops call it.
const Name = "ldap"

// Options configure the projection.
type Options struct {
	Directory Config
	Pool      *pgxpool.Pool
	Registry  *eventstore.Registry
	// Keyring opens the sealed password hashes the entries carry.
	Keyring *keyring.Keyring
	Logger  *slog.Logger
	// BatchSize bounds the events one directory transaction carries (default 1000): when the
	// projection is behind it catches up in transactions that large.
	BatchSize int
	// PollInterval is the pause after an empty read once the projection has been quiet for a
	// second (default 25ms); while events keep coming it is BusyPollInterval (default 2ms).
	PollInterval, BusyPollInterval time.Duration
	// LockRetry is how often a process that does not run the projection tries to (default 1s).
	LockRetry time.Duration
	// MaxBackoff bounds the pause between attempts to reach the directory (default 5s).
	MaxBackoff time.Duration
	// MaxWriteFailures is how often a batch the directory refuses is tried before the projection
	// stops (default 5).
	MaxWriteFailures int
}

func (o *Options) setDefaults() {
	if o.BatchSize <= 0 {
		o.BatchSize = 1000
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 25 * time.Millisecond
	}
	if o.BusyPollInterval <= 0 {
		o.BusyPollInterval = min(2*time.Millisecond, o.PollInterval)
	}
	if o.LockRetry <= 0 {
		o.LockRetry = time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 5 * time.Second
	}
	if o.MaxWriteFailures <= 0 {
		o.MaxWriteFailures = 5
	}
}

// Projection keeps the directory in step with the events. Like the Postgres projections it runs
// on one process at a time (the advisory lock of its name), stops durably on lost order or
// unknown meaning, and its checkpoint — an entry in the directory, written in the same
// transaction as the entries — is mirrored into projection_checkpoints for status, lag and
// read-your-writes.
type Projection struct {
	o Options

	mu     sync.Mutex
	active bool
	err    string
}

// New returns the projection.
func New(o Options) (*Projection, error) {
	var errs []error
	if o.Pool == nil || o.Registry == nil || o.Keyring == nil || o.Logger == nil {
		errs = append(errs, errors.New("ldap: pool, registry, keyring and logger are required"))
	}
	if o.Directory.URL == "" || o.Directory.DIT.Base == "" {
		errs = append(errs, errors.New("ldap: the directory's URL and base DN are required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	o.setDefaults()
	return &Projection{o: o}, nil
}

// Name returns the projection's name.
func (p *Projection) Name() string { return Name }

// Active reports whether this process runs the projection now, and its last error.
func (p *Projection) Active() (bool, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.active, p.err
}

var errNotHolder = errors.New("ldap: another process runs the projection")

// Run runs the projection until ctx ends.
func (p *Projection) Run(ctx context.Context) error {
	log := p.o.Logger.With("projection", Name)
	for ctx.Err() == nil {
		err := p.runHeld(ctx)
		var stopped *stopped
		switch {
		case ctx.Err() != nil:
			return nil
		case err == nil, errors.Is(err, errNotHolder):
		case errors.As(err, &stopped):
			log.Error("projection is stopped until an operator resumes it (mailplane projections resume)",
				"position", stopped.Position, "stream", stopped.StreamID, "reason", stopped.Reason)
		default:
			log.Error("projection interrupted", "err", err)
			p.setErr(err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(p.o.LockRetry):
		}
	}
	return nil
}

func (p *Projection) setErr(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.err = ""
	if err != nil {
		p.err = err.Error()
	}
}

// stopped ends a run on a stop.
type stopped struct{ projections.Stop }

func (s *stopped) Error() string { return "ldap: projection stopped: " + s.Reason }

// runHeld takes the lock and runs the projection until ctx ends, the lock is lost or it stops.
func (p *Projection) runHeld(ctx context.Context) error {
	if st, err := projections.LoadStop(ctx, p.o.Pool, Name); err != nil || st != nil {
		if st != nil {
			return &stopped{*st}
		}
		return err
	}
	conn, err := pgx.ConnectConfig(ctx, p.o.Pool.Config().ConnConfig.Copy())
	if err != nil {
		return fmt.Errorf("ldap: lock connection: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var held bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, projections.LockKey(Name)).Scan(&held); err != nil {
		return fmt.Errorf("ldap: take the lock: %w", err)
	}
	if !held {
		return errNotHolder
	}
	defer func() {
		_, _ = conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, projections.LockKey(Name))
	}()
	// A stop recorded while this process waited for the lock holds too.
	if st, err := projections.LoadStop(ctx, p.o.Pool, Name); err != nil || st != nil {
		if st != nil {
			return &stopped{*st}
		}
		return err
	}
	p.mu.Lock()
	p.active, p.err = true, ""
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.active = false
		p.mu.Unlock()
	}()

	// The lock lives as long as its connection: if that drops, another process may take over,
	// and this one stops (its writes are fenced by the checkpoint's assertion meanwhile).
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	pinging := make(chan struct{})
	// The unlock (deferred above) uses the connection too: the pings must have ended first.
	defer func() { cancel(nil); <-pinging }()
	go func() {
		defer close(pinging)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-runCtx.Done():
				return
			case <-t.C:
				if err := conn.Ping(runCtx); err != nil && runCtx.Err() == nil {
					cancel(fmt.Errorf("%w: lost the lock connection: %w", errNotHolder, err))
					return
				}
			}
		}
	}()
	err = p.follow(runCtx)
	if cause := context.Cause(runCtx); cause != nil && ctx.Err() == nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return err
}

// follow connects to the directory, catches the model up with its checkpoint, and then writes
// the events as they come.
func (p *Projection) follow(ctx context.Context) error {
	skips, err := projections.Skips(ctx, p.o.Pool, Name)
	if err != nil {
		return err
	}
	dir, err := p.dial(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if dir != nil { // nil when ctx ended while redialling
			dir.Close()
		}
	}()
	if err := dir.Ensure(Name); err != nil {
		return err
	}
	cp, err := dir.Checkpoint(Name)
	if err != nil {
		return err
	}
	model := NewModel(p.o.Directory.DIT, p.o.Registry)
	if err := Fold(ctx, p.o.Pool, p.o.Registry, model, skips, cp); err != nil {
		return err
	}
	model.Settle()
	if err := projections.MirrorCheckpoint(ctx, p.o.Pool, Name, cp); err != nil {
		return err
	}
	p.o.Logger.Info("ldap projection running", "checkpoint", cp.Position)

	busyUntil := time.Time{}
	failures := 0
	for ctx.Err() == nil {
		reads, err := projections.ReadBatch(ctx, p.o.Pool, cp, nil, p.o.BatchSize)
		if err != nil {
			return err
		}
		if len(reads) == 0 {
			wait := p.o.PollInterval
			if time.Now().Before(busyUntil) {
				wait = p.o.BusyPollInterval
			}
			select {
			case <-ctx.Done():
			case <-time.After(wait):
			}
			continue
		}
		busyUntil = time.Now().Add(time.Second)
		b, last, stop, err := p.apply(model, reads, skips, cp)
		if err != nil {
			return err
		}
		if last != cp {
			changes := b.Changes()
			werr := p.write(ctx, dir, changes, cp, last)
			switch {
			case werr == nil:
				b.Commit(changes)
				cp, failures = last, 0
				if err := projections.MirrorCheckpoint(ctx, p.o.Pool, Name, cp); err != nil {
					return err
				}
			case errors.Is(werr, errFenced):
				b.Rollback()
				return fmt.Errorf("%w: %w", errNotHolder, werr)
			case unavailable(werr):
				b.Rollback()
				p.setErr(werr)
				p.o.Logger.Warn("directory unavailable; retrying", "err", werr)
				dir.Close()
				if dir, err = p.dial(ctx); err != nil {
					return err
				}
				continue
			default:
				b.Rollback()
				failures++
				p.setErr(werr)
				if failures < p.o.MaxWriteFailures {
					p.o.Logger.Error("directory refused a batch; retrying", "attempt", failures, "err", werr)
					time.Sleep(p.backoff(failures))
					continue
				}
				first := reads[0].Event
				stop = &projections.Stop{Projection: Name, Position: first.Position, TransactionID: first.TransactionID,
					StreamID: first.StreamID, StreamType: first.StreamType, Version: first.Version, EventType: first.Type,
					SchemaVersion: first.SchemaVersion, Kind: projections.StopProjectionRefused,
					Error: fmt.Sprintf("the directory refused the batch from position %d %d times: %v", first.Position, failures, werr)}
			}
		}
		if stop != nil {
			if err := projections.RecordStop(ctx, p.o.Pool, stop); err != nil {
				return err
			}
			return &stopped{*stop}
		}
	}
	return nil
}

// apply folds a batch of events into the model, up to the first that stops the projection.
// last is the position the checkpoint may move to.
func (p *Projection) apply(model *Model, reads []projections.Read, skips map[int64]bool, from eventstore.Position) (*Batch, eventstore.Position, *projections.Stop, error) {
	b := model.Begin()
	last := from
	for _, r := range reads {
		e := r.Event
		switch {
		case skips[e.Position]:
			p.o.Logger.Warn("event skipped, as an operator asked", "projection", Name, "position", e.Position, "stream", e.StreamID)
			last = e.GlobalPosition()
			continue
		case !slices.Contains(StreamTypes, e.StreamType):
			last = e.GlobalPosition()
			continue
		}
		if st := projections.CheckEvent(p.o.Registry, Name, r); st != nil {
			return b, last, st, nil
		}
		var err error
		if e.Data, e.SchemaVersion, err = p.o.Registry.Upcast(e.Type, e.SchemaVersion, e.Data); err == nil {
			err = b.Apply(e)
		}
		if err != nil {
			return b, last, &projections.Stop{Projection: Name, Position: e.Position, TransactionID: e.TransactionID,
				StreamID: e.StreamID, StreamType: e.StreamType, Version: e.Version, EventType: e.Type,
				SchemaVersion: e.SchemaVersion, Kind: projections.StopProjectionRefused,
				Error: fmt.Sprintf("stream %s version %d (%s at position %d): %v", e.StreamID, e.Version, e.Type, e.Position, err)}, nil
		}
		last = e.GlobalPosition()
	}
	return b, last, nil, nil
}

// write sends one batch, applying it against what the directory really holds when it does not
// hold what the model remembers.
func (p *Projection) write(ctx context.Context, dir *Directory, changes []Change, from, to eventstore.Position) error {
	passwords := p.passwords()
	err := dir.Write(ctx, Name, changes, from, to, passwords)
	if !errors.Is(err, errConflict) {
		return err
	}
	p.o.Logger.Warn("the directory did not hold what the projection wrote; applying the batch against what it holds", "err", err)
	reconciled, rerr := dir.Reconcile(changes)
	if rerr != nil {
		return rerr
	}
	return dir.Write(ctx, Name, reconciled, from, to, passwords)
}

// passwords opens sealed hashes for one batch.
func (p *Projection) passwords() Passwords {
	opener := p.o.Keyring.Opener()
	return func(ctx context.Context, sealed string) (string, error) {
		hash, err := opener.Open(ctx, sealed)
		if errors.Is(err, keyring.ErrShredded) {
			return "", nil // the domain's key was destroyed: nobody logs in with this any more
		}
		if err != nil {
			return "", err
		}
		return ldapPassword(string(hash)), nil
	}
}

// ldapPassword is the userPassword value slapd verifies a bind against: argon2 PHC strings as
// {ARGON2} (slapd's argon2 module), {SSHA} and {SSHA512} as they are (built in and pw-sha2). A
// hash slapd cannot verify (bcrypt, brought by a migration) is left out: the account binds again
// once its first login through the API has rehashed it to argon2id.
func ldapPassword(hash string) string {
	upper := strings.ToUpper(hash)
	switch {
	case strings.HasPrefix(hash, "$argon2id$"), strings.HasPrefix(hash, "$argon2i$"):
		return "{ARGON2}" + hash
	case strings.HasPrefix(upper, "{SSHA}"), strings.HasPrefix(upper, "{SSHA512}"):
		return hash
	}
	return ""
}

// dial connects to the directory, retrying with a bounded backoff until it answers or ctx ends.
func (p *Projection) dial(ctx context.Context) (*Directory, error) {
	for attempt := 1; ; attempt++ {
		dir, err := Dial(ctx, p.o.Directory)
		if err == nil {
			p.setErr(nil)
			return dir, nil
		}
		p.setErr(err)
		if attempt == 1 || attempt%10 == 0 {
			p.o.Logger.Warn("directory unreachable; retrying", "err", err, "attempt", attempt)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(p.backoff(attempt)):
		}
	}
}

func (p *Projection) backoff(attempt int) time.Duration {
	d := 100 * time.Millisecond << min(attempt, 10)
	return min(d, p.o.MaxBackoff)
}

// Fold folds every event up to the position into the model, skipping what an operator told the
// projection to skip: the directory holds exactly what the model then computes.
func Fold(ctx context.Context, pool *pgxpool.Pool, reg *eventstore.Registry, m *Model, skips map[int64]bool, upTo eventstore.Position) error {
	var after eventstore.Position
	for after.Less(upTo) {
		reads, err := projections.ReadBatch(ctx, pool, after, &upTo, 5000)
		if err != nil {
			return err
		}
		if len(reads) == 0 {
			return nil
		}
		b := m.Begin()
		for _, r := range reads {
			e := r.Event
			after = e.GlobalPosition()
			if skips[e.Position] || !slices.Contains(StreamTypes, e.StreamType) {
				continue
			}
			if e.Data, e.SchemaVersion, err = reg.Upcast(e.Type, e.SchemaVersion, e.Data); err == nil {
				err = b.Apply(e)
			}
			if err != nil {
				return fmt.Errorf("ldap: fold up to the checkpoint: %w", err)
			}
		}
	}
	return nil
}
