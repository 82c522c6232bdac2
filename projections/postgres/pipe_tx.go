package postgres

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// pipeTx runs the projections' own handlers in bulk: their writes (Exec, whose results no
// handler reads) are queued and sent many at a time in one pipelined batch, instead of one round
// trip each; anything that reads (QueryRow, Query), and the end of the transaction, first sends
// what is queued, so each read sees every write before it, in order, as it would have. A write
// that fails is reported at the next read or at the end, and fails the page: a rebuild stops at
// the first error anyway.
//
// It is also a stateCache: the handlers' states as they last wrote them in this transaction, so
// that a stream's next event in the page needs no read (see next and foldTo). A batch a handler
// sends itself (a domain's removal, which deletes rows wholesale) empties the cache.
type pipeTx struct {
	pgx.Tx
	states map[string]cachedState
	queued *pgx.Batch
	// limit is how many writes wait at most before they are sent.
	limit int
	// sent counts the batches sent (for the summary's figures).
	sent int
}

func newPipeTx(tx pgx.Tx, limit int) *pipeTx {
	return &pipeTx{Tx: tx, queued: &pgx.Batch{}, limit: limit, states: make(map[string]cachedState)}
}

// stateCache keeps, within one transaction, the states handlers wrote, in the form they are
// stored in (JSON), so that a state taken from it is exactly what reading the row back gives.
type stateCache interface {
	cached(key string) (version int, state []byte, ok bool)
	remember(key string, version int, state any) error
}

type cachedState struct {
	version int
	state   []byte
}

func (p *pipeTx) cached(key string) (int, []byte, bool) {
	c, ok := p.states[key]
	return c.version, c.state, ok
}

func (p *pipeTx) remember(key string, version int, state any) error {
	raw, err := json.Marshal(state)
	if err != nil {
		return err
	}
	p.states[key] = cachedState{version: version, state: raw}
	return nil
}

func (p *pipeTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	p.queued.Queue(sql, args...)
	if p.queued.Len() >= p.limit {
		return pgconn.CommandTag{}, p.flush(ctx)
	}
	return pgconn.CommandTag{}, nil
}

// flush sends the queued writes.
func (p *pipeTx) flush(ctx context.Context) error {
	if p.queued.Len() == 0 {
		return nil
	}
	b := p.queued
	p.queued = &pgx.Batch{}
	p.sent++
	return p.Tx.SendBatch(ctx, b).Close()
}

// errRow is a row whose query never ran, because the writes before it failed.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

func (p *pipeTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if err := p.flush(ctx); err != nil {
		return errRow{err}
	}
	return p.Tx.QueryRow(ctx, sql, args...)
}

func (p *pipeTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if err := p.flush(ctx); err != nil {
		return nil, err
	}
	return p.Tx.Query(ctx, sql, args...)
}

func (p *pipeTx) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	// Appended to what is queued, in order: the caller reads no result but the errors.
	clear(p.states) // the rebuilder's map too
	for _, q := range b.QueuedQueries {
		p.queued.Queue(q.SQL, q.Arguments...)
	}
	return pipeResults{p: p, ctx: ctx}
}

// pipeResults sends the queue when closed; handlers only Close a batch's results.
type pipeResults struct {
	p   *pipeTx
	ctx context.Context
}

func (r pipeResults) Close() error { return r.p.flush(r.ctx) }

var errPipeResults = errors.New("rebuild: a handler read a batch's results, which the rebuild's pipelined transaction does not keep")

func (pipeResults) Exec() (pgconn.CommandTag, error) { return pgconn.CommandTag{}, errPipeResults }
func (pipeResults) Query() (pgx.Rows, error)         { return nil, errPipeResults }
func (pipeResults) QueryRow() pgx.Row                { return errRow{errPipeResults} }
func (r pipeResults) Tx() pgx.Tx                     { return r.p }

func (p *pipeTx) CopyFrom(ctx context.Context, t pgx.Identifier, cols []string, src pgx.CopyFromSource) (int64, error) {
	if err := p.flush(ctx); err != nil {
		return 0, err
	}
	return p.Tx.CopyFrom(ctx, t, cols, src)
}

func (p *pipeTx) Begin(ctx context.Context) (pgx.Tx, error) {
	if err := p.flush(ctx); err != nil {
		return nil, err
	}
	return p.Tx.Begin(ctx)
}

func (p *pipeTx) Commit(ctx context.Context) error {
	if err := p.flush(ctx); err != nil {
		return err
	}
	return p.Tx.Commit(ctx)
}
