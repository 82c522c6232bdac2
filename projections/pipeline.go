package projections

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// pipedTx is the batch transaction as a handler sees it on the fast path: its writes (Exec,
// whose result a projection's handler does not read) are queued and sent together, in one
// pipelined round trip, at the next read (QueryRow, Query, CopyFrom, a handler's own batch, a
// savepoint) or when the batch is acked, instead of one round trip each. An account created
// costs the admin and GAL projections one statement each, so a batch of 100 creations was 100
// round trips on a machine whose CPUs the API and PostgreSQL share; now it is one.
//
// A queued write that fails is seen later than the handler that queued it: at the next read
// (the handler of a later event then fails) or at the ack. Either way the delivery abandons
// the batch and replays it with a savepoint per event (handleFast, flushAtAck), which runs
// handlers on the savepoint, unpiped, and finds the event that failed.
//
// The rebuild's pipeTx (projections/postgres) does the same for a rebuild's pages, with a state
// cache beside; the live batches keep no cache (a batch is short, and its reads are few).
type pipedTx struct {
	pgx.Tx
	queued *pgx.Batch
}

func newPipedTx(tx pgx.Tx) *pipedTx { return &pipedTx{Tx: tx, queued: &pgx.Batch{}} }

// rawTx is the transaction under a pipedTx (for abandon, whose failure must be immediate).
func rawTx(tx pgx.Tx) pgx.Tx {
	if p, ok := tx.(*pipedTx); ok {
		return p.Tx
	}
	return tx
}

func (p *pipedTx) Exec(_ context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	p.queued.Queue(sql, args...)
	return pgconn.CommandTag{}, nil
}

// flush sends the queued writes and reports the first that failed.
func (p *pipedTx) flush(ctx context.Context) error {
	if p.queued.Len() == 0 {
		return nil
	}
	b := p.queued
	p.queued = &pgx.Batch{}
	return p.Tx.SendBatch(ctx, b).Close()
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

func (p *pipedTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if err := p.flush(ctx); err != nil {
		return errRow{err}
	}
	return p.Tx.QueryRow(ctx, sql, args...)
}

func (p *pipedTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if err := p.flush(ctx); err != nil {
		return nil, err
	}
	return p.Tx.Query(ctx, sql, args...)
}

// SendBatch sends a handler's own batch after the queued writes; its results are the caller's
// to read, as without the pipe. A failed queued write fails the batch (errBatch's results).
func (p *pipedTx) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	if err := p.flush(ctx); err != nil {
		return errBatchResults{err}
	}
	return p.Tx.SendBatch(ctx, b)
}

func (p *pipedTx) CopyFrom(ctx context.Context, t pgx.Identifier, cols []string, src pgx.CopyFromSource) (int64, error) {
	if err := p.flush(ctx); err != nil {
		return 0, err
	}
	return p.Tx.CopyFrom(ctx, t, cols, src)
}

func (p *pipedTx) Prepare(ctx context.Context, name, sql string) (*pgconn.StatementDescription, error) {
	if err := p.flush(ctx); err != nil {
		return nil, err
	}
	return p.Tx.Prepare(ctx, name, sql)
}

func (p *pipedTx) Begin(ctx context.Context) (pgx.Tx, error) {
	if err := p.flush(ctx); err != nil {
		return nil, err
	}
	return p.Tx.Begin(ctx)
}

func (p *pipedTx) Commit(ctx context.Context) error {
	if err := p.flush(ctx); err != nil {
		return err
	}
	return p.Tx.Commit(ctx)
}

func (p *pipedTx) Rollback(ctx context.Context) error {
	p.queued = &pgx.Batch{}
	return p.Tx.Rollback(ctx)
}

// errBatchResults are the results of a batch that was not sent.
type errBatchResults struct{ err error }

func (r errBatchResults) Exec() (pgconn.CommandTag, error) { return pgconn.CommandTag{}, r.err }
func (r errBatchResults) Query() (pgx.Rows, error)         { return nil, r.err }
func (r errBatchResults) QueryRow() pgx.Row                { return errRow{r.err} }
func (r errBatchResults) Close() error                     { return r.err }
func (r errBatchResults) Tx() pgx.Tx                       { return nil }
