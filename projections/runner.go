package projections

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"os"
	"strconv"
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
	// MaxBatchTime cuts a batch short once it has run this long (default 250ms): what it has
	// handled commits and the rest goes to the next batch. A batch holds a transaction id from
	// its first write, and no projection anywhere in the cluster reads past an open one (the xmin
	// rule, DESIGN.md §2), so a batch of slow events would hold back every read model.
	MaxBatchTime time.Duration
	// PollInterval is the pause after an empty poll when the projection has been quiet for a
	// second (default 25ms): the bound on how late a quiet projection notices a new event.
	// While events keep arriving the pause is BusyPollInterval (default 2ms).
	PollInterval     time.Duration
	BusyPollInterval time.Duration
	// MaxAttempts is how often an event is tried before it is parked (default 5).
	MaxAttempts int
	// MaxConsecutiveParks is how many events in a row may be parked; when the next one fails
	// too, the projection stops instead (default 10): a projection that fails everything would
	// otherwise park whole streams one dead letter at a time.
	MaxConsecutiveParks int
	// RetryInterval is the pause before a failed event is tried again (default 100ms).
	RetryInterval time.Duration
	// HandlerTimeout bounds one Handle call (default 30s); a call that takes longer fails.
	HandlerTimeout time.Duration
	// LockRetry is how often a process that is not running a projection tries to take it over,
	// and how often a stopped projection is looked at again (default 1s).
	LockRetry time.Duration
	// RestartDelay is the pause after a projection stopped on an error (default 5s).
	RestartDelay time.Duration
	// Process names this process in the leases it takes and the stops it records (default:
	// host name and process id).
	Process string
	// Middlewares wrap every handler call; tests use watermill's Duplicator here.
	Middlewares []message.HandlerMiddleware
}

func (c *Config) setDefaults() {
	if c.BatchSize <= 0 {
		c.BatchSize = 100
	}
	if c.MaxBatchTime <= 0 {
		c.MaxBatchTime = 250 * time.Millisecond
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
	if c.MaxConsecutiveParks <= 0 {
		c.MaxConsecutiveParks = 10
	}
	if c.RetryInterval <= 0 {
		c.RetryInterval = 100 * time.Millisecond
	}
	if c.HandlerTimeout <= 0 {
		c.HandlerTimeout = 30 * time.Second
	}
	if c.LockRetry <= 0 {
		c.LockRetry = time.Second
	}
	if c.RestartDelay <= 0 {
		c.RestartDelay = 5 * time.Second
	}
	if c.Process == "" {
		host, _ := os.Hostname()
		c.Process = host + ":" + strconv.Itoa(os.Getpid())
	}
}

// Status is what one process knows of one projection; Inspect tells what the database says.
type Status struct {
	Name string
	// Active is true while this process holds the projection's lock and runs it.
	Active bool
	// Stopped is true while this process finds the projection stopped (see Stop).
	Stopped   bool
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
	if registry == nil {
		return nil, errors.New("projections: a runner needs the event registry, to tell events it cannot understand")
	}
	cfg.setDefaults()
	r := &Runner{
		pool: pool, registry: registry, logger: logger, cfg: cfg, projections: projections,
		status:  make(map[string]*Status),
		careful: make(map[string]eventstore.Position),
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mailplane_projection_events_total", Help: "Events handled by a projection on this process.",
		}, []string{"projection"}),
		parked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mailplane_projection_parked_total", Help: "Events a projection gave up on and parked as dead letters, on this process.",
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
		// Every series from the start, at 0: a scrape before this process takes the lock (or on
		// a process that never does) sees "not here", not nothing.
		r.active.WithLabelValues(p.Name()).Set(0)
		r.handled.WithLabelValues(p.Name())
		r.parked.WithLabelValues(p.Name())
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
		var stopped *stoppedError
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, errNotHolder):
		case errors.Is(err, errReplayCarefully), errors.Is(err, errBatchStopped):
			wait = 0
		case errors.Is(err, errConflict):
			log.Warn("projection restarts its batch", "err", err)
		case errors.As(err, &stopped):
			r.setStatus(p.Name(), func(s *Status) {
				if !s.Stopped {
					log.Error("projection is stopped until an operator resumes it (mailplane projections resume)",
						"position", stopped.stop.Position, "stream", stopped.stop.StreamID, "reason", stopped.stop.Reason)
				}
				s.Stopped, s.LastError = true, stopped.Error()
			})
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
// or the projection fails or stops.
func (r *Runner) runHeld(ctx context.Context, p Projection) error {
	name := p.Name()
	// A stopped projection runs nowhere. Looking before taking the lock keeps a stopped
	// projection down to one small query per LockRetry on each process, and lets a rebuild
	// take the lock meanwhile.
	if st, err := LoadStop(ctx, r.pool, name); err != nil || st != nil {
		if st != nil {
			return &stoppedError{stop: *st}
		}
		return err
	}
	conn, err := pgx.ConnectConfig(ctx, r.pool.Config().ConnConfig.Copy())
	if err != nil {
		return fmt.Errorf("lock connection: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var held bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", lockKey(name)).Scan(&held); err != nil {
		return fmt.Errorf("take lock: %w", err)
	}
	if !held {
		return errNotHolder
	}
	// Unlock explicitly: the server drops a closed session's locks only a moment later, and a
	// rebuild or another process should not have to wait for that.
	defer func() {
		_, _ = conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", lockKey(name))
	}()

	lease, err := takeLease(ctx, r.pool, name, r.cfg.Process)
	if errors.Is(err, errStopped) {
		if st, err := LoadStop(ctx, r.pool, name); err != nil || st != nil {
			if st != nil {
				return &stoppedError{stop: *st}
			}
			return err
		}
		return errReplayCarefully // resumed in the meantime: start again at once
	}
	if err != nil {
		return err
	}
	skips, err := loadSkips(ctx, r.pool, name)
	if err != nil {
		return err
	}
	r.setStatus(name, func(s *Status) { s.Active, s.Stopped, s.LastError = true, false, "" })
	r.active.WithLabelValues(name).Set(1)
	defer func() {
		r.setStatus(name, func(s *Status) { s.Active = false })
		r.active.WithLabelValues(name).Set(0)
	}()

	// The subscriber's context is cancelled only by halt, never directly by ctx: watermill-sql's
	// subscriber stops waiting for a handler as soon as its context ends and goes on using the
	// batch transaction, which the handler may still be using.
	subCtx, cancelSub := context.WithCancelCause(context.Background())
	defer cancelSub(nil)
	r.mu.Lock()
	carefulUntil := r.careful[name]
	r.mu.Unlock()
	d := newDelivery(r, p, skips, carefulUntil, cancelSub)
	go func() {
		select {
		case <-ctx.Done():
			d.halt(ctx.Err())
		case <-subCtx.Done():
		}
	}()
	// The lock lives as long as its connection; if that drops, another process may take over,
	// so this one must stop at once (the lease keeps it from doing harm until it notices).
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

	wlog := watermill.NewSlogLogger(r.logger.With("projection", name))
	noDeadline := time.Duration(0) // handlers bound themselves (HandlerTimeout); see above
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
		ConsumerGroup:  name,
		SchemaAdapter:  eventsSchema{batchSize: r.cfg.BatchSize, lease: lease, rows: d.rows, onSelect: d.betweenBatches},
		OffsetsAdapter: checkpoints{batch: d.batchEnd},
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
	router.AddConsumerHandler(name, topic, sub, d.handle)
	if err := router.Run(subCtx); err != nil {
		return err
	}
	d.halt(nil)
	if cause := d.cause; cause != nil && ctx.Err() == nil {
		return cause
	}
	return nil
}

// markCareful makes the projection's events up to pos run one savepoint each.
func (r *Runner) markCareful(name string, pos eventstore.Position) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.careful[name].Less(pos) {
		r.careful[name] = pos
	}
}

// loadSkips returns the positions an operator told the projection to skip.
func loadSkips(ctx context.Context, pool *pgxpool.Pool, name string) (map[int64]bool, error) {
	rows, err := pool.Query(ctx, `SELECT position FROM projection_skips WHERE projection = $1`, name)
	if err != nil {
		return nil, fmt.Errorf("projections: skips of %s: %w", name, err)
	}
	positions, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("projections: skips of %s: %w", name, err)
	}
	skips := make(map[int64]bool, len(positions))
	for _, p := range positions {
		skips[p] = true
	}
	return skips, nil
}
