package projections

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"mailplane/eventstore"
)

// Config tunes delivery. Zero values take the defaults.
type Config struct {
	// BatchSize is how many events one subscriber transaction carries (default 100). Bigger
	// batches are faster but hold a transaction, and so every consumer's horizon, for longer.
	BatchSize int
	// PollInterval is the pause after an empty poll when the projection has been quiet for a
	// second (default 25ms): the bound on how late a quiet projection notices a new event.
	// While events keep arriving the pause is BusyPollInterval (default 2ms).
	PollInterval     time.Duration
	BusyPollInterval time.Duration
	// MaxAttempts is how often an event is tried before it is parked (default 5).
	MaxAttempts int
	// RetryInterval is the pause before a failed event is tried again (default 100ms).
	RetryInterval time.Duration
	// LockRetry is how often a process that is not running a projection tries to take it over
	// (default 1s).
	LockRetry time.Duration
	// RestartDelay is the pause after a projection stopped on an error (default 5s).
	RestartDelay time.Duration
	// Middlewares wrap every handler call; tests use watermill's Duplicator here.
	Middlewares []message.HandlerMiddleware
}

func (c *Config) setDefaults() {
	if c.BatchSize <= 0 {
		c.BatchSize = 100
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 25 * time.Millisecond
	}
	if c.BusyPollInterval <= 0 {
		c.BusyPollInterval = min(2*time.Millisecond, c.PollInterval)
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 5
	}
	if c.RetryInterval <= 0 {
		c.RetryInterval = 100 * time.Millisecond
	}
	if c.LockRetry <= 0 {
		c.LockRetry = time.Second
	}
	if c.RestartDelay <= 0 {
		c.RestartDelay = 5 * time.Second
	}
}

// Status is what one process knows of one projection.
type Status struct {
	Name string
	// Active is true while this process holds the projection's lock and runs it.
	Active    bool
	LastError string
	Parked    int64
}

// Runner runs projections: each on at most one process at a time (a session advisory lock held
// on a connection of its own), taken over by another process when that one dies.
type Runner struct {
	pool        *pgxpool.Pool
	registry    *eventstore.Registry
	logger      *slog.Logger
	cfg         Config
	projections []Projection

	mu     sync.Mutex
	status map[string]*Status
	// careful holds, per projection, the position up to which events are handled one savepoint
	// each (after a failure); beyond it they run straight in the batch transaction.
	careful map[string]eventstore.Position

	handled *prometheus.CounterVec
	parked  *prometheus.CounterVec
	active  *prometheus.GaugeVec
}

// NewRunner returns a runner for the given projections, whose names must be unique.
func NewRunner(pool *pgxpool.Pool, registry *eventstore.Registry, logger *slog.Logger, cfg Config, projections ...Projection) (*Runner, error) {
	cfg.setDefaults()
	r := &Runner{
		pool: pool, registry: registry, logger: logger, cfg: cfg, projections: projections,
		status:  make(map[string]*Status),
		careful: make(map[string]eventstore.Position),
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mailplane_projection_events_total", Help: "Events handled by a projection on this process.",
		}, []string{"projection"}),
		parked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mailplane_projection_parked_total", Help: "Events a projection gave up on and parked as dead letters.",
		}, []string{"projection"}),
		active: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mailplane_projection_active", Help: "1 while this process runs the projection.",
		}, []string{"projection"}),
	}
	for _, p := range projections {
		if _, dup := r.status[p.Name()]; dup {
			return nil, fmt.Errorf("projections: name %q used twice", p.Name())
		}
		r.status[p.Name()] = &Status{Name: p.Name()}
	}
	return r, nil
}

// Describe implements prometheus.Collector.
func (r *Runner) Describe(ch chan<- *prometheus.Desc) {
	r.handled.Describe(ch)
	r.parked.Describe(ch)
	r.active.Describe(ch)
}

// Collect implements prometheus.Collector.
func (r *Runner) Collect(ch chan<- prometheus.Metric) {
	r.handled.Collect(ch)
	r.parked.Collect(ch)
	r.active.Collect(ch)
}

// Names returns the projections' names.
func (r *Runner) Names() []string {
	names := make([]string, len(r.projections))
	for i, p := range r.projections {
		names[i] = p.Name()
	}
	return names
}

// Status returns what this process knows of each projection.
func (r *Runner) Status() []Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Status, 0, len(r.projections))
	for _, p := range r.projections {
		out = append(out, *r.status[p.Name()])
	}
	return out
}

func (r *Runner) setStatus(name string, f func(*Status)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(r.status[name])
}

// Run runs every projection until ctx ends.
func (r *Runner) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, p := range r.projections {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.loop(ctx, p)
		}()
	}
	wg.Wait()
	return nil
}

var errNotHolder = errors.New("another process runs this projection")

func (r *Runner) loop(ctx context.Context, p Projection) {
	log := r.logger.With("projection", p.Name())
	for ctx.Err() == nil {
		err := r.runHeld(ctx, p)
		wait := r.cfg.LockRetry
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, errNotHolder):
		case errors.Is(err, errReplayCarefully):
			wait = 0
		case err != nil:
			log.Error("projection stopped", "err", err)
			r.setStatus(p.Name(), func(s *Status) { s.LastError = err.Error() })
			wait = r.cfg.RestartDelay
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// lockKey maps a projection name to its advisory lock.
func lockKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte("mailplane projection " + name))
	return int64(h.Sum64())
}

// runHeld takes the projection's lock and runs it until ctx ends, the lock's connection is lost,
// or the projection fails.
func (r *Runner) runHeld(ctx context.Context, p Projection) error {
	conn, err := pgx.ConnectConfig(ctx, r.pool.Config().ConnConfig.Copy())
	if err != nil {
		return fmt.Errorf("lock connection: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var held bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", lockKey(p.Name())).Scan(&held); err != nil {
		return fmt.Errorf("take lock: %w", err)
	}
	if !held {
		return errNotHolder
	}
	// Unlock explicitly: the server drops a closed session's locks only a moment later, and a
	// rebuild or another process should not have to wait for that.
	defer func() {
		_, _ = conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", lockKey(p.Name()))
	}()

	if err := ensureCheckpoint(ctx, r.pool, p.Name()); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	r.setStatus(p.Name(), func(s *Status) { s.Active = true; s.LastError = "" })
	r.active.WithLabelValues(p.Name()).Set(1)
	defer func() {
		r.setStatus(p.Name(), func(s *Status) { s.Active = false })
		r.active.WithLabelValues(p.Name()).Set(0)
	}()

	// The subscriber's context is cancelled only by halt, never directly by ctx: watermill-sql's
	// subscriber stops waiting for a handler as soon as its context ends and goes on using the
	// batch transaction, which the handler may still be using.
	subCtx, cancelSub := context.WithCancelCause(context.Background())
	defer cancelSub(nil)
	r.mu.Lock()
	carefulUntil := r.careful[p.Name()]
	r.mu.Unlock()
	d := &delivery{runner: r, projection: p, versions: make(map[string]int), attempts: make(map[int64]int),
		cancel: cancelSub, carefulUntil: carefulUntil}
	go func() {
		select {
		case <-ctx.Done():
			d.halt(ctx.Err())
		case <-subCtx.Done():
		}
	}()
	// The lock lives as long as its connection; if that drops, another process may take over,
	// so this one must stop at once.
	watchDone := make(chan struct{})
	defer func() { cancelSub(nil); <-watchDone }() // before the connection closes
	go func() {
		defer close(watchDone)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-subCtx.Done():
				return
			case <-t.C:
				if err := conn.Ping(subCtx); err != nil && subCtx.Err() == nil {
					d.halt(fmt.Errorf("lost the lock connection: %w", err))
					return
				}
			}
		}
	}()

	wlog := watermill.NewSlogLogger(r.logger.With("projection", p.Name()))
	noDeadline := time.Duration(0) // handlers bound themselves (handlerTimeout); see above
	// The projection's batches run on connections of their own: requests exhausting the shared
	// pool cannot starve it, and its commits need not wait for the WAL to reach the disk
	// (synchronous_commit off). That is safe here: a read model and its checkpoint commit
	// together, so a crash can only take both back to an earlier consistent point, from which
	// the events, which are durable, are projected again.
	pcfg := r.pool.Config().Copy()
	pcfg.MaxConns, pcfg.MinConns = 2, 0
	pcfg.ConnConfig.RuntimeParams["synchronous_commit"] = "off"
	batches, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return fmt.Errorf("projection pool: %w", err)
	}
	defer batches.Close()
	sub, err := wsql.NewSubscriber(wsql.BeginnerFromPgx(batches), wsql.SubscriberConfig{
		ConsumerGroup:  p.Name(),
		SchemaAdapter:  eventsSchema{batchSize: r.cfg.BatchSize},
		OffsetsAdapter: checkpoints{},
		PollInterval:   r.cfg.PollInterval,
		ResendInterval: r.cfg.RetryInterval,
		RetryInterval:  time.Second,
		AckDeadline:    &noDeadline,
		BackoffManager: &backoff{idle: r.cfg.PollInterval, busy: r.cfg.BusyPollInterval, retry: time.Second, busyFor: time.Second},
	}, wlog)
	if err != nil {
		return err
	}
	defer sub.Close()
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 10 * time.Second}, wlog)
	if err != nil {
		return err
	}
	router.AddMiddleware(r.cfg.Middlewares...)
	router.AddConsumerHandler(p.Name(), topic, sub, d.handle)
	if err := router.Run(subCtx); err != nil {
		return err
	}
	d.halt(nil)
	if cause := d.cause; cause != nil && ctx.Err() == nil {
		return cause
	}
	return nil
}

// handlerTimeout bounds one Handle call; a call that takes longer fails and is retried.
const handlerTimeout = 30 * time.Second

// delivery hands one projection its events, one message at a time.
type delivery struct {
	runner     *Runner
	projection Projection
	// versions is the last version seen per stream in this run: a stream's events must arrive
	// one version after another, or the global order is broken and the projection must stop.
	versions map[string]int
	attempts map[int64]int
	// carefulUntil: events up to here get a savepoint each (see Runner.careful).
	carefulUntil eventstore.Position

	// mu is held while a handler uses the batch transaction; halt takes it, so the subscriber is
	// only ever stopped between two handler calls, and no call touches the transaction after.
	mu      sync.Mutex
	stopped bool
	cause   error
	cancel  context.CancelCauseFunc
}

// halt stops delivery; the first cause is kept.
func (d *delivery) halt(cause error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.stopped {
		d.stopped, d.cause = true, cause
		d.cancel(cause)
	}
}

var (
	errHalted = errors.New("projections: delivery halted")
	// errReplayCarefully restarts a projection at once, to replay its last batch with a
	// savepoint per event.
	errReplayCarefully = errors.New("projections: replaying the batch with a savepoint per event")
)

// ErrOutOfOrder stops a projection that sees a stream skip a version.
var ErrOutOfOrder = errors.New("projections: stream versions arrived out of order")

func (d *delivery) handle(msg *message.Message) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped {
		return errHalted
	}
	ctx, cancel := context.WithTimeout(msg.Context(), handlerTimeout)
	defer cancel()
	wtx, ok := wsql.TxFromContext(ctx)
	if !ok {
		return errors.New("projections: no subscriber transaction in message context")
	}
	ptx, ok := wtx.(*wsql.PgxTx)
	if !ok {
		return fmt.Errorf("projections: unexpected transaction type %T", wtx)
	}
	name := d.projection.Name()

	e, err := decodeMessage(msg)
	if err == nil {
		e.Data, e.SchemaVersion, err = d.runner.registry.Upcast(e.Type, e.SchemaVersion, e.Data)
	}
	if err != nil {
		// An envelope that cannot be read will never be readable: park it at once.
		return d.park(ctx, ptx.Tx, e, err, 1)
	}

	if last, seen := d.versions[e.StreamID]; seen && e.Version > last+1 {
		err := fmt.Errorf("%w: %s went from version %d to %d (position %d)", ErrOutOfOrder, e.StreamID, last, e.Version, e.Position)
		go d.halt(err) // after this call returns and releases mu
		return err
	}

	if d.carefulUntil.Less(e.GlobalPosition()) {
		// The fast path: straight into the batch transaction, no savepoint (two round trips
		// saved per event). A failure here cannot be undone on its own, so the whole batch is
		// abandoned — the transaction is made to fail, so nothing of it commits — and replayed
		// with a savepoint per event up to this one.
		if err := d.projection.Handle(ctx, ptx.Tx, e); err != nil {
			_, _ = ptx.Tx.Exec(ctx, `SELECT 1/0 -- abandon this batch`)
			d.runner.mu.Lock()
			if d.runner.careful[name].Less(e.GlobalPosition()) {
				d.runner.careful[name] = e.GlobalPosition()
			}
			d.runner.mu.Unlock()
			go d.halt(errReplayCarefully)
			return err
		}
		d.handled(e)
		return nil
	}

	// A savepoint per call: a failed attempt's writes are undone, while the batch's earlier
	// events and its checkpoint still commit together.
	sp, err := ptx.Tx.Begin(ctx)
	if err != nil {
		return err
	}
	if err := d.projection.Handle(ctx, sp, e); err != nil {
		_ = sp.Rollback(ctx)
		if ptx.Tx.Conn().IsClosed() {
			// The batch's session is gone and its transaction with it: start over from the
			// last committed checkpoint.
			go d.halt(fmt.Errorf("subscriber connection lost: %w", err))
			return err
		}
		d.attempts[e.Position]++
		if n := d.attempts[e.Position]; n >= d.runner.cfg.MaxAttempts {
			return d.park(ctx, ptx.Tx, e, err, n)
		}
		return err
	}
	if err := sp.Commit(ctx); err != nil {
		if ptx.Tx.Conn().IsClosed() {
			go d.halt(fmt.Errorf("subscriber connection lost: %w", err))
		}
		return err
	}
	delete(d.attempts, e.Position)
	d.handled(e)
	return nil
}

// handled records an event the projection took.
func (d *delivery) handled(e eventstore.RecordedEvent) {
	if len(d.versions) > 100_000 {
		d.versions = make(map[string]int) // bound memory; the check restarts from here
	}
	if e.Version > d.versions[e.StreamID] {
		d.versions[e.StreamID] = e.Version
	}
	d.runner.handled.WithLabelValues(d.projection.Name()).Inc()
}

// park records the event as a dead letter and lets the projection move on.
func (d *delivery) park(ctx context.Context, tx pgx.Tx, e eventstore.RecordedEvent, cause error, attempts int) error {
	name := d.projection.Name()
	_, err := tx.Exec(ctx, `INSERT INTO projection_dead_letters (projection, position, stream_id, event_type, error, attempts)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (projection, position) DO UPDATE
		SET error = excluded.error, attempts = excluded.attempts, parked_at = now()`,
		name, e.Position, e.StreamID, e.Type, cause.Error(), attempts)
	if err != nil {
		return err
	}
	delete(d.attempts, e.Position)
	if e.Version > d.versions[e.StreamID] {
		d.versions[e.StreamID] = e.Version
	}
	d.runner.parked.WithLabelValues(name).Inc()
	d.runner.setStatus(name, func(s *Status) { s.Parked++; s.LastError = cause.Error() })
	d.runner.logger.Error("event parked", "projection", name, "position", e.Position, "stream", e.StreamID,
		"type", e.Type, "attempts", attempts, "err", cause)
	return nil
}
