package projections

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"mailplane/eventstore"
)

// cleanupTimeout bounds the statements that undo a failed handler call. They run on a context
// of their own: the handler's may have ended (that may be why it failed), and a clean-up that
// did not run would let the failed call's writes commit with the batch.
const cleanupTimeout = 10 * time.Second

// delivery hands one projection its events, one message at a time, for one run.
type delivery struct {
	runner     *Runner
	projection Projection
	types      []string
	// skips are the positions an operator told this projection to skip.
	skips    map[int64]bool
	attempts map[int64]int
	// carefulUntil: events up to here get a savepoint each (see Runner.careful).
	carefulUntil eventstore.Position
	// rows are the current batch's rows, as the schema adapter read them.
	rows *inFlight

	// mu is held while a handler uses the batch transaction; halt takes it, so the subscriber is
	// only ever stopped between two handler calls, and no call touches the transaction after.
	mu      sync.Mutex
	stopped bool
	cause   error
	cancel  context.CancelCauseFunc
	batch   *batch
}

// batch is what the delivery knows of the subscriber's current batch transaction.
type batch struct {
	tx *wsql.PgxTx
	// pipe is tx as the handlers get it: their writes are sent together (pipeline.go).
	pipe *pipedTx
	// done holds the positions acked in this transaction: a second delivery of one (watermill's
	// Duplicator, a resend) is acked again without being handled again.
	done map[int64]bool
	last eventstore.Position
	// parks counts events parked in a row, carried over from the checkpoint.
	parks int
	// stop is set once the batch met an event that stops the projection: the messages after it
	// are acked unhandled, and the checkpoint stays before it (see checkpoints.AckMessageQuery).
	stop *Stop
	// started is when the batch's first message came; cut is set once the batch ran past
	// Config.MaxBatchTime: like after a stop, the messages after it are acked unhandled and the
	// checkpoint stays at the last one handled, so the next batch starts there.
	started time.Time
	cut     bool
}

func newDelivery(r *Runner, p Projection, skips map[int64]bool, carefulUntil eventstore.Position, cancel context.CancelCauseFunc) *delivery {
	return &delivery{runner: r, projection: p, types: p.StreamTypes(), skips: skips,
		attempts: make(map[int64]int), carefulUntil: carefulUntil, cancel: cancel, rows: &inFlight{}}
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
	// errBatchStopped ends a run whose last batch recorded a stop.
	errBatchStopped = errors.New("projections: the batch stopped the projection")
	// errConflict restarts a projection whose batch lost a conflict (a serialization failure,
	// a deadlock): no retry within that batch's snapshot can succeed.
	errConflict = errors.New("projections: the batch conflicted with another transaction")
)

// betweenBatches runs as the subscriber starts a batch: a batch that stopped the projection
// has just committed (or failed to), and the run ends. The next looks the stop up: if the
// commit failed, there is none, and the projection runs on to meet the event again.
func (d *delivery) betweenBatches() {
	d.mu.Lock()
	b := d.batch
	d.batch = nil
	d.mu.Unlock()
	if b != nil && b.stop != nil {
		go d.halt(errBatchStopped)
	}
}

// batchEnd tells the checkpoint what the batch being acked got to, once the batch's queued
// writes are sent. If one of them failed, the batch must not commit: it is abandoned and
// replayed with a savepoint per event, which finds the event whose write failed.
func (d *delivery) batchEnd() (batchEnd, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	b := d.batch
	if b == nil {
		return batchEnd{}, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), d.runner.cfg.HandlerTimeout)
	defer cancel()
	if err := b.pipe.flush(ctx); err != nil {
		cctx, ccancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer ccancel()
		d.abandon(cctx, b.pipe)
		d.runner.markCareful(d.projection.Name(), b.last)
		go d.halt(errReplayCarefully) // after this call returns and releases mu
		return batchEnd{}, fmt.Errorf("projections: the batch's writes: %w", err)
	}
	return batchEnd{limited: b.stop != nil || b.cut, last: b.last, parks: b.parks}, nil
}

func (d *delivery) handle(msg *message.Message) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped {
		return errHalted
	}
	wtx, ok := wsql.TxFromContext(msg.Context())
	if !ok {
		return errors.New("projections: no subscriber transaction in message context")
	}
	ptx, ok := wtx.(*wsql.PgxTx)
	if !ok {
		return fmt.Errorf("projections: unexpected transaction type %T", wtx)
	}
	env, ok := d.rows.get(msg.UUID)
	if !ok {
		err := fmt.Errorf("projections: message %s was not read in this batch", msg.UUID)
		go d.halt(err)
		return err
	}
	if d.batch == nil || d.batch.tx != ptx {
		d.batch = &batch{tx: ptx, pipe: newPipedTx(ptx.Tx), done: make(map[int64]bool), parks: env.parks, started: time.Now()}
	}
	b, e := d.batch, env.event
	var tx pgx.Tx = b.pipe
	if b.stop != nil || b.cut || b.done[e.Position] {
		return nil
	}
	if len(b.done) > 0 && time.Since(b.started) > d.runner.cfg.MaxBatchTime {
		b.cut = true
		return nil
	}

	ctx, cancel := context.WithTimeout(msg.Context(), d.runner.cfg.HandlerTimeout)
	defer cancel()
	// The clean-up context is made once, and only when needed: a timer per event costs.
	var cleanupCtx context.Context
	cleanupCancel := func() {}
	defer func() { cleanupCancel() }()
	cleanup := func() context.Context {
		if cleanupCtx == nil {
			cleanupCtx, cleanupCancel = context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		}
		return cleanupCtx
	}

	if env.err != nil {
		// A row that cannot be read will never be readable: park it at once.
		return d.park(cleanup(), tx, b, e, env.err, 1)
	}
	switch {
	case d.skips[e.Position]:
		d.runner.logger.Warn("event skipped, as an operator asked", "projection", d.projection.Name(),
			"position", e.Position, "stream", e.StreamID, "version", e.Version, "type", e.Type)
		b.ack(e)
		return nil
	case !handles(d.types, e.StreamType):
		b.ack(e)
		return nil
	}
	var prev *eventstore.Position
	if env.hasPrevious {
		prev = &env.previous
	}
	if st := CheckEvent(d.runner.registry, d.projection.Name(), Read{Event: e, Previous: prev}); st != nil {
		return d.stop(cleanup(), tx, b, e, st.Kind, st.Error)
	}
	var err error
	if e.Data, e.SchemaVersion, err = d.runner.registry.Upcast(e.Type, e.SchemaVersion, e.Data); err != nil {
		return d.park(cleanup(), tx, b, e, err, 1)
	}
	if d.carefulUntil.Less(e.GlobalPosition()) {
		return d.handleFast(ctx, cleanup, tx, b, e)
	}
	return d.handleCareful(ctx, cleanup, tx, b, e)
}

// handleFast runs the handler straight in the batch transaction, no savepoint (two round trips
// saved per event). A failure here cannot be undone on its own, so the whole batch is abandoned
// and replayed with a savepoint per event up to this one.
func (d *delivery) handleFast(ctx context.Context, cleanup func() context.Context, tx pgx.Tx, b *batch, e eventstore.RecordedEvent) error {
	if err := d.projection.Handle(ctx, tx, e); err != nil {
		d.abandon(cleanup(), tx)
		d.runner.markCareful(d.projection.Name(), e.GlobalPosition())
		go d.halt(errReplayCarefully) // after this call returns and releases mu
		return err
	}
	d.handled(b, e)
	return nil
}

// handleCareful runs the handler in a savepoint: a failed attempt's writes are undone, while
// the batch's earlier events and its checkpoint still commit together.
func (d *delivery) handleCareful(ctx context.Context, cleanup func() context.Context, tx pgx.Tx, b *batch, e eventstore.RecordedEvent) error {
	sp, err := tx.Begin(ctx)
	if err != nil {
		d.abandon(cleanup(), tx)
		go d.halt(fmt.Errorf("savepoint: %w", err))
		return err
	}
	herr := d.projection.Handle(ctx, sp, e)
	if herr == nil {
		// Released on the clean-up context too: a handler that returned just as its deadline
		// passed has done its work, and an unreleased savepoint would fold into the next.
		if err := sp.Commit(cleanup()); err != nil {
			d.abandon(cleanup(), tx)
			go d.halt(fmt.Errorf("release savepoint: %w", err))
			return err
		}
		delete(d.attempts, e.Position)
		d.handled(b, e)
		return nil
	}
	if err := sp.Rollback(cleanup()); err != nil {
		// The failed call's writes cannot be undone: nothing of this batch may commit.
		d.abandon(cleanup(), tx)
		go d.halt(fmt.Errorf("roll back a failed handler call: %w (it failed with: %w)", err, herr))
		return herr
	}
	var pgErr *pgconn.PgError
	switch {
	case refuses(herr):
		return d.stop(cleanup(), tx, b, e, StopProjectionRefused, fmt.Sprintf("stream %s version %d (%s at position %d): %v",
			e.StreamID, e.Version, e.Type, e.Position, herr))
	case errors.As(herr, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01"):
		d.abandon(cleanup(), tx)
		go d.halt(fmt.Errorf("%w: %w", errConflict, herr))
		return herr
	}
	d.attempts[e.Position]++
	if n := d.attempts[e.Position]; n >= d.runner.cfg.MaxAttempts {
		return d.park(cleanup(), tx, b, e, herr, n)
	}
	return herr
}

// abandon makes the batch transaction fail, so that nothing of it commits. The run is halted
// too, and a halted subscriber cannot commit either (its context has ended); this is the
// second lock on that door.
func (d *delivery) abandon(ctx context.Context, tx pgx.Tx) {
	_, _ = rawTx(tx).Exec(ctx, `SELECT 1/0 -- abandon this batch`)
}

func (b *batch) ack(e eventstore.RecordedEvent) {
	b.done[e.Position] = true
	b.last = e.GlobalPosition()
}

// handled records an event the projection took.
func (d *delivery) handled(b *batch, e eventstore.RecordedEvent) {
	b.ack(e)
	b.parks = 0
	d.runner.handled.WithLabelValues(d.projection.Name()).Inc()
}

// park records the event as a dead letter and lets the projection move on, unless too many
// events in a row were parked already: then it stops the projection.
func (d *delivery) park(ctx context.Context, tx pgx.Tx, b *batch, e eventstore.RecordedEvent, cause error, attempts int) error {
	name := d.projection.Name()
	if b.parks >= d.runner.cfg.MaxConsecutiveParks {
		return d.stop(ctx, tx, b, e, StopConsecutiveParks, fmt.Sprintf(
			"%d events in a row were parked, and stream %s version %d (%s at position %d) failed too: %v",
			b.parks, e.StreamID, e.Version, e.Type, e.Position, cause))
	}
	_, err := tx.Exec(ctx, `INSERT INTO projection_dead_letters (projection, position, stream_id, event_type, error, attempts)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (projection, position) DO UPDATE
		SET error = excluded.error, attempts = excluded.attempts, parked_at = now(), resolved_at = NULL, resolved_by = NULL`,
		name, e.Position, e.StreamID, e.Type, cause.Error(), attempts)
	if err != nil {
		d.abandon(ctx, tx)
		go d.halt(fmt.Errorf("park: %w", err))
		return err
	}
	delete(d.attempts, e.Position)
	b.ack(e)
	b.parks++
	d.runner.parked.WithLabelValues(name).Inc()
	d.runner.setStatus(name, func(s *Status) { s.Parked++; s.LastError = cause.Error() })
	d.runner.logger.Error("event parked", "projection", name, "position", e.Position, "stream", e.StreamID,
		"type", e.Type, "attempts", attempts, "err", cause)
	return nil
}

// stop records, in the batch transaction, that the projection stops at e. The transaction
// holds only the batch's events before e (a failed call was rolled back to its savepoint), so
// they commit with the stop and a checkpoint just before e; the rest of the batch is acked
// without being handled, and the run ends as the next batch begins.
func (d *delivery) stop(ctx context.Context, tx pgx.Tx, b *batch, e eventstore.RecordedEvent, kind StopKind, detail string) error {
	st := Stop{
		Projection: d.projection.Name(), Position: e.Position, TransactionID: e.TransactionID,
		StreamID: e.StreamID, StreamType: e.StreamType, Version: e.Version, EventType: e.Type,
		SchemaVersion: e.SchemaVersion, Kind: kind, Error: detail, By: d.runner.cfg.Process,
	}
	if err := recordStop(ctx, tx, &st); err != nil {
		d.abandon(ctx, tx)
		go d.halt(err)
		return err
	}
	b.stop = &st
	delete(d.attempts, e.Position)
	d.runner.logger.Error("projection stops", "projection", st.Projection, "position", st.Position,
		"stream", st.StreamID, "version", st.Version, "type", st.EventType, "kind", string(st.Kind), "reason", st.Reason)
	return nil
}
