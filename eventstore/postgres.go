package eventstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DBTX is what the store needs from a connection: a pgx.Tx, a pooled connection or the pool.
type DBTX interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// Postgres is the event store on PostgreSQL.
type Postgres struct {
	pool     *pgxpool.Pool
	registry *Registry
	settings
	chain    chain
	requests requestHasher
}

// NewPostgres returns a store over the pool. The registry upcasts what it reads.
func NewPostgres(pool *pgxpool.Pool, registry *Registry, opts ...Option) *Postgres {
	st := newSettings(opts)
	return &Postgres{pool: pool, registry: registry, settings: st, chain: st.chain(), requests: st.requests()}
}

// Registry returns the event registry.
func (s *Postgres) Registry() *Registry { return s.registry }

// HashRequest fingerprints a request for its idempotency key: an HMAC keyed from the master key,
// so that the stored value cannot confirm a guess of what the request held. Callers leave
// secrets out of the parts anyway.
func (s *Postgres) HashRequest(parts ...[]byte) []byte { return s.requests.sum(parts...) }

// maxAppendAttempts bounds the retries of Append (see Append).
const maxAppendAttempts = 50

// Append appends events on their own. Without an idempotency key it is a single INSERT (after
// at most one read of the stream's head), which needs no explicit transaction: the statement is
// atomic, and the unique (stream_id, stream_version) key refuses a concurrent append that read
// the same head. That saves the BEGIN and COMMIT round trips. With a key, the events and the
// key's record are written in one transaction.
//
// With Any, a concurrent append to the same stream makes it read the new head and try again, so
// Any never fails with ErrConcurrency. A key another request took meanwhile makes it try again
// too: the retry finds that request's record and replays it (or reports the mismatch).
func (s *Postgres) Append(ctx context.Context, stream Stream, expected ExpectedVersion, meta Metadata, events ...Event) (AppendResult, error) {
	for attempt := 1; ; attempt++ {
		res, err := s.appendOnce(ctx, stream, expected, meta, events...)
		switch {
		case err == nil:
			return res, nil
		case attempt == maxAppendAttempts:
			return res, err
		case errors.Is(err, ErrIdempotencyKeyInUse):
		case errors.Is(err, ErrConcurrency) && expected == Any:
		case errors.Is(err, ErrConcurrency) && meta.IdempotencyKey != "" && attempt == 1:
			// The winner may have been this very request sent twice: the retry's lookup says.
		default:
			return res, err
		}
	}
}

func (s *Postgres) appendOnce(ctx context.Context, stream Stream, expected ExpectedVersion, meta Metadata, events ...Event) (AppendResult, error) {
	if meta.IdempotencyKey == "" {
		return s.AppendTx(ctx, s.pool, stream, expected, meta, events...)
	}
	var res AppendResult
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		res, err = s.AppendTx(ctx, tx, stream, expected, meta, events...)
		return err
	})
	return res, err
}

// AppendTx appends events to a stream inside the caller's transaction. It must be the
// transaction's first write (reads may come before it): the transaction id it takes then orders
// the events for every reader. It fails with ErrNotFirstWrite otherwise. On an error the
// transaction is unusable and must be rolled back; AppendTx does not retry.
//
// With meta.IdempotencyKey set, a key already used by the same actor returns the first append's
// result and appends nothing; reused for a different request it returns ErrIdempotencyMismatch.
func (s *Postgres) AppendTx(ctx context.Context, tx DBTX, stream Stream, expected ExpectedVersion, meta Metadata, events ...Event) (AppendResult, error) {
	b := &pgx.Batch{}
	p, err := s.QueueAppend(ctx, tx, b, stream, expected, meta, events...)
	if err != nil {
		return AppendResult{}, err
	}
	var sendErr error
	if b.Len() > 0 {
		sendErr = tx.SendBatch(ctx, b).Close()
	}
	return p.Finish(sendErr)
}

// PendingAppend is an append whose reads are done and whose writes wait in a batch.
type PendingAppend struct {
	res    AppendResult
	err    error
	sent   bool
	stream string
}

// Finish returns what the append wrote, given the outcome of sending its batch (or the first
// append's result for a repeated idempotency key, which queues nothing). A failure of the
// append's own statements is translated (ErrConcurrency, ErrIdempotencyKeyInUse,
// ErrNotFirstWrite); a failure of the caller's statements in the same batch is returned as is.
func (p *PendingAppend) Finish(sendErr error) (AppendResult, error) {
	if p.err != nil {
		return AppendResult{}, p.err
	}
	if sendErr != nil {
		var pgErr *pgconn.PgError
		if errors.As(sendErr, &pgErr) && pgErr.ConstraintName == constraintIdempotencyKey {
			return AppendResult{}, fmt.Errorf("%w: %s", ErrIdempotencyKeyInUse, p.stream)
		}
		return AppendResult{}, sendErr
	}
	if !p.sent {
		return AppendResult{}, errors.New("eventstore: the append's batch was not sent")
	}
	return p.res, nil
}

// QueueAppend does the reads of an append (the idempotency record, the stream's head) through
// q, and queues its writes in b, so that a caller can send them together with its own writes in
// one round trip: b must then be sent in the same transaction (SendBatch), its append first,
// and the outcome given to Finish. The same rules as AppendTx hold.
func (s *Postgres) QueueAppend(ctx context.Context, q DBTX, b *pgx.Batch, stream Stream, expected ExpectedVersion, meta Metadata, events ...Event) (*PendingAppend, error) {
	enc, err := encode(events)
	if err != nil {
		return nil, err
	}
	p := &PendingAppend{stream: stream.ID}
	var reqHash []byte
	if meta.IdempotencyKey != "" {
		reqHash = meta.RequestHash
		if reqHash == nil {
			reqHash = s.requests.events(stream, enc)
		}
		rec, found, err := s.LookupIdempotency(ctx, q, meta.Actor, meta.IdempotencyKey)
		if err != nil {
			return nil, err
		}
		if found {
			if !rec.Matches(reqHash) {
				return nil, ErrIdempotencyMismatch
			}
			p.res, p.sent = rec.Result, true
			return p, nil
		}
	}

	head, err := s.head(ctx, q, stream.ID, expected)
	if err != nil {
		return nil, err
	}
	metaJSON, err := json.Marshal(meta)
	if err != nil {
		return nil, err
	}
	if metaJSON, err = canonicalJSON(metaJSON); err != nil {
		return nil, err
	}
	at := s.stamp(head.recordedAt)

	n := len(enc)
	versions := make([]int32, n)
	types := make([]string, n)
	schemas := make([]int32, n)
	datas := make([]string, n)
	prevs := make([][]byte, n)
	hashes := make([][]byte, n)
	prevHash := head.hash
	for i, e := range enc {
		v := head.version + 1 + i
		h, err := s.chain.link(prevHash, chainLink{
			StreamID: stream.ID, StreamType: stream.Type, Domain: stream.Domain, Version: v,
			Type: e.Type, SchemaVersion: e.SchemaVersion, Data: e.Data, Metadata: metaJSON,
			RecordedAt: formatTime(at),
		})
		if err != nil {
			return nil, err
		}
		versions[i], types[i], schemas[i], datas[i] = int32(v), e.Type, int32(e.SchemaVersion), string(e.Data)
		prevs[i], hashes[i] = prevHash, h
		prevHash = h
	}

	var domain *string
	if stream.Domain != "" {
		domain = &stream.Domain
	}
	p.res = AppendResult{StreamID: stream.ID, FirstVersion: head.version + 1, LastVersion: head.version + n, RecordedAt: at}
	scan := func(row pgx.Row) error {
		if err := row.Scan(&p.res.LastPosition, &p.res.TransactionID); err != nil {
			p.err = mapWriteError(err, stream.ID, expected)
			return p.err
		}
		p.sent = true
		return nil
	}
	if n == 1 {
		b.Queue(insertOne, stream.ID, stream.Type, versions[0], domain, types[0], schemas[0],
			datas[0], string(metaJSON), at, prevs[0], hashes[0]).QueryRow(scan)
	} else {
		b.Queue(insertMany, stream.ID, stream.Type, domain, string(metaJSON), at,
			versions, types, schemas, datas, prevs, hashes).QueryRow(scan)
	}
	if meta.IdempotencyKey != "" {
		// An expired record of the same key gives way; a live one makes the insert fail on the
		// primary key, which Finish reports as ErrIdempotencyKeyInUse.
		b.Queue(`DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND created_at <= now() - make_interval(secs => $3)`,
			meta.Actor, meta.IdempotencyKey, s.idempotencyTTL.Seconds())
		// Written in the same batch, so its position comes from the row just inserted.
		b.Queue(`INSERT INTO idempotency_keys
			(scope, key, request_hash, stream_id, first_version, last_version, transaction_id, last_position)
			VALUES ($1, $2, $3, $4, $5, $6, pg_current_xact_id(),
				(SELECT position FROM events WHERE stream_id = $4 AND stream_version = $6))`,
			meta.Actor, meta.IdempotencyKey, reqHash, stream.ID, p.res.FirstVersion, p.res.LastVersion)
	}
	return p, nil
}

// The append's inserts refuse to run unless they are the transaction's first write
// (events_first_write, checked once per statement before the first row goes in): readers order
// by the transaction id taken at the first write, so an earlier write would let this
// transaction sort ahead of the version it read.
const insertOne = `INSERT INTO events
	(stream_id, stream_type, stream_version, domain, event_type, schema_version, data, metadata, recorded_at, prev_hash, hash)
	SELECT $1::text, $2::text, $3::int, $4::text, $5::text, $6::int, $7::jsonb, $8::jsonb, $9::timestamptz, $10::bytea, $11::bytea
	WHERE (SELECT events_first_write())
	RETURNING position, transaction_id::text::bigint`

// insertMany writes a batch in one statement; rows keep the order of the arrays.
const insertMany = `WITH ins AS (
	INSERT INTO events
	(stream_id, stream_type, stream_version, domain, event_type, schema_version, data, metadata, recorded_at, prev_hash, hash)
	SELECT $1::text, $2::text, u.v, $3::text, u.t, u.s, u.d::jsonb, $4::jsonb, $5::timestamptz, u.p, u.h
	FROM unnest($6::int[], $7::text[], $8::int[], $9::text[], $10::bytea[], $11::bytea[]) WITH ORDINALITY AS u(v, t, s, d, p, h, o)
	WHERE (SELECT events_first_write())
	ORDER BY u.o
	RETURNING position, transaction_id)
	SELECT max(position), pg_current_xact_id()::text::bigint FROM ins`

// Constraint and error names the store translates (see migrations).
const (
	constraintStreamVersion  = "events_stream_version_key"
	constraintIdempotencyKey = "idempotency_keys_pkey"
	sqlstateNotFirstWrite    = "MP001"
	sqlstateRekeyPending     = "MP002"
)

// mapWriteError translates a failed append by the constraint or condition that refused it; any
// other failure is wrapped as is.
func mapWriteError(err error, streamID string, expected ExpectedVersion) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgErr.ConstraintName == constraintStreamVersion:
			return &ConcurrencyError{StreamID: streamID, Expected: expected}
		case pgErr.ConstraintName == constraintIdempotencyKey:
			return fmt.Errorf("%w: %s", ErrIdempotencyKeyInUse, streamID)
		case pgErr.Code == sqlstateNotFirstWrite:
			return fmt.Errorf("%w: append to %s", ErrNotFirstWrite, streamID)
		case pgErr.Code == sqlstateRekeyPending:
			return fmt.Errorf("%w: append to %s", ErrRekeyPending, streamID)
		}
	}
	return fmt.Errorf("eventstore: append to %s: %w", streamID, err)
}

// streamHead is what an append chains onto.
type streamHead struct {
	version    int
	hash       []byte
	recordedAt time.Time
}

// head returns the version and hash the new events chain onto, checking the expectation.
func (s *Postgres) head(ctx context.Context, q DBTX, streamID string, expected ExpectedVersion) (streamHead, error) {
	h := streamHead{hash: GenesisHash}
	switch {
	case expected == NoStream:
		return h, nil
	case expected == Any:
		err := q.QueryRow(ctx, `SELECT stream_version, hash, recorded_at FROM events WHERE stream_id = $1
			ORDER BY stream_version DESC LIMIT 1`, streamID).Scan(&h.version, &h.hash, &h.recordedAt)
		if errors.Is(err, pgx.ErrNoRows) {
			return streamHead{hash: GenesisHash}, nil
		}
		if err != nil {
			return h, fmt.Errorf("eventstore: head of %s: %w", streamID, err)
		}
		return h, nil
	case expected > 0:
		err := q.QueryRow(ctx, `SELECT hash, recorded_at FROM events WHERE stream_id = $1 AND stream_version = $2`,
			streamID, int32(expected)).Scan(&h.hash, &h.recordedAt)
		if errors.Is(err, pgx.ErrNoRows) {
			return h, &ConcurrencyError{StreamID: streamID, Expected: expected}
		}
		if err != nil {
			return h, fmt.Errorf("eventstore: head of %s: %w", streamID, err)
		}
		// A later version, if any, makes the insert fail on the unique key.
		h.version = int(expected)
		return h, nil
	default:
		return h, fmt.Errorf("eventstore: invalid expected version %d", expected)
	}
}

// IdempotencyRecord is what a used idempotency key remembers.
type IdempotencyRecord struct {
	Result AppendResult
	// RequestHash fingerprints the first request; nil for records older than keyed hashing
	// (the migration cleared their unkeyed hashes), which match any repeat.
	RequestHash []byte
	// ResponseStatus, ResponseHeaders and ResponseBody are the first response, when the caller
	// saved one (ResponseHeaders is nil in records saved before migration 00020).
	ResponseStatus  int
	ResponseHeaders map[string]string
	ResponseBody    []byte
}

// Matches reports whether a repeat with this fingerprint is the same request. A record without
// a fingerprint matches: answering a repeat with the first result is safe, applying it twice is
// not.
func (r IdempotencyRecord) Matches(requestHash []byte) bool {
	return r.RequestHash == nil || bytes.Equal(r.RequestHash, requestHash)
}

// LookupIdempotency returns the live record of an idempotency key used by actor, if any (one
// older than the store's idempotency TTL is gone). Its Result has Replayed set.
func (s *Postgres) LookupIdempotency(ctx context.Context, q DBTX, actor, key string) (IdempotencyRecord, bool, error) {
	var rec IdempotencyRecord
	var status *int32
	err := q.QueryRow(ctx, `SELECT request_hash, stream_id, first_version, last_version,
		transaction_id::text::bigint, last_position, response_status, response_headers, response_body
		FROM idempotency_keys WHERE scope = $1 AND key = $2 AND created_at > now() - make_interval(secs => $3)`,
		actor, key, s.idempotencyTTL.Seconds()).Scan(
		&rec.RequestHash, &rec.Result.StreamID, &rec.Result.FirstVersion, &rec.Result.LastVersion,
		&rec.Result.TransactionID, &rec.Result.LastPosition, &status, &rec.ResponseHeaders, &rec.ResponseBody)
	if errors.Is(err, pgx.ErrNoRows) {
		return IdempotencyRecord{}, false, nil
	}
	if err != nil {
		return IdempotencyRecord{}, false, fmt.Errorf("eventstore: idempotency lookup: %w", err)
	}
	if status != nil {
		rec.ResponseStatus = int(*status)
	}
	rec.Result.Replayed = true
	return rec, true, nil
}

// SaveIdempotentResponse stores the response first given for an idempotency key, so that a
// repeat can answer with exactly that.
func (s *Postgres) SaveIdempotentResponse(ctx context.Context, actor, key string, status int, headers map[string]string, body []byte) error {
	_, err := s.pool.Exec(ctx, `UPDATE idempotency_keys SET response_status = $3, response_headers = $4, response_body = $5
		WHERE scope = $1 AND key = $2 AND response_status IS NULL`, actor, key, status, headers, body)
	if err != nil {
		return fmt.Errorf("eventstore: save idempotent response: %w", err)
	}
	return nil
}

// selectColumns lists what readers scan. Its transaction_id output column is a bigint cast
// that keeps the name transaction_id; an ORDER BY must therefore name events.transaction_id,
// or it sorts by the cast and no index can serve it (a sort of the whole table per page).
const selectColumns = `position, transaction_id::text::bigint, stream_id, stream_type, coalesce(domain, ''),
	stream_version, event_type, schema_version, data, metadata, recorded_at, prev_hash, hash`

// Load reads a stream in version order.
func (s *Postgres) Load(ctx context.Context, streamID string, opts LoadOptions) ([]RecordedEvent, error) {
	return s.LoadTx(ctx, s.pool, streamID, opts)
}

// LoadTx reads a stream in version order through q (e.g. the command's transaction). As of a
// moment, it reads up to the largest version recorded at or before it: a prefix of the stream,
// even where recorded_at went backwards (events written before it was kept monotonic).
func (s *Postgres) LoadTx(ctx context.Context, q DBTX, streamID string, opts LoadOptions) ([]RecordedEvent, error) {
	var asOf *time.Time
	if !opts.AsOf.IsZero() {
		asOf = &opts.AsOf
	}
	rows, err := q.Query(ctx, `SELECT `+selectColumns+` FROM events
		WHERE stream_id = $1 AND ($2 = 0 OR stream_version <= $2)
		  AND ($3::timestamptz IS NULL OR stream_version <= (SELECT coalesce(max(stream_version), 0) FROM events
				WHERE stream_id = $1 AND recorded_at <= $3))
		ORDER BY stream_version`, streamID, opts.UpToVersion, asOf)
	if err != nil {
		return nil, fmt.Errorf("eventstore: load %s: %w", streamID, err)
	}
	return s.collect(rows, 0, !opts.SkipMetadata)
}

// LoadManyTx reads several streams in one query, each in version order.
func (s *Postgres) LoadManyTx(ctx context.Context, q DBTX, streamIDs []string) (map[string][]RecordedEvent, error) {
	// Planned for its parameters on every run (QueryExecModeExec), not prepared: after five
	// runs PostgreSQL may settle a prepared statement on a generic plan, and one made while
	// events was nearly empty (a sequential scan and a sort for "= ANY") stayed as the table
	// grew: 4 ms a load, and account creation sank from 2,200/s to 411/s. Planning every
	// statement of the pool instead (plan_cache_mode) cost 10-20 % of the creation rate.
	rows, err := q.Query(ctx, `SELECT `+selectColumns+` FROM events
		WHERE stream_id = ANY($1) ORDER BY stream_id, stream_version`, pgx.QueryExecModeExec, streamIDs)
	if err != nil {
		return nil, fmt.Errorf("eventstore: load %v: %w", streamIDs, err)
	}
	events, err := s.collect(rows, 0, true)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]RecordedEvent, len(streamIDs))
	for _, e := range events {
		out[e.StreamID] = append(out[e.StreamID], e)
	}
	return out, nil
}

// BatchSender sends a pgx batch (a *pgx.Conn, a *pgxpool.Conn).
type BatchSender interface {
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// BeginLoadMany begins a read-committed transaction on conn and reads several streams in it
// (as LoadManyTx), in one round trip: the BEGIN travels with the read (pgx's Batch.BeginTx)
// instead of costing a round trip of its own, which on a command's path is one of five. The
// read is planned for its parameters (see LoadManyTx): a batch cannot ask for
// QueryExecModeExec, so plan_cache_mode is set for this statement only. The caller commits or
// rolls back the transaction, and releases conn after.
func (s *Postgres) BeginLoadMany(ctx context.Context, conn BatchSender, streamIDs []string) (pgx.Tx, map[string][]RecordedEvent, error) {
	b := &pgx.Batch{}
	b.BeginTx(pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	b.Queue(`SET LOCAL plan_cache_mode = force_custom_plan`)
	var events []RecordedEvent
	b.Queue(`SELECT `+selectColumns+` FROM events WHERE stream_id = ANY($1) ORDER BY stream_id, stream_version`, streamIDs).
		Query(func(rows pgx.Rows) error {
			var err error
			events, err = s.collect(rows, 0, true)
			return err
		})
	b.Queue(`RESET plan_cache_mode`)
	br := conn.SendBatch(ctx, b)
	tx := br.Tx()
	if err := br.Close(); err != nil {
		if tx != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx))
		}
		return nil, nil, fmt.Errorf("eventstore: begin and load %v: %w", streamIDs, err)
	}
	out := make(map[string][]RecordedEvent, len(streamIDs))
	for _, e := range events {
		out[e.StreamID] = append(out[e.StreamID], e)
	}
	return tx, out, nil
}

// StreamHead returns a stream's current version and where its last event sits (zero values for
// a stream with no events).
func (s *Postgres) StreamHead(ctx context.Context, streamID string) (int, Position, error) {
	var v int
	var p Position
	var txid int64
	err := s.pool.QueryRow(ctx, `SELECT stream_version, transaction_id::text::bigint, position FROM events
		WHERE stream_id = $1 ORDER BY stream_version DESC LIMIT 1`, streamID).Scan(&v, &txid, &p.Position)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, Position{}, nil
	}
	if err != nil {
		return 0, Position{}, fmt.Errorf("eventstore: head of %s: %w", streamID, err)
	}
	p.TransactionID = uint64(txid)
	return v, p, nil
}

// StreamsHead returns where the latest event of any of the streams sits, in the global order
// (zero when none of them has events).
func (s *Postgres) StreamsHead(ctx context.Context, streamIDs []string) (Position, error) {
	var p Position
	var txid int64
	err := s.pool.QueryRow(ctx, `SELECT transaction_id::text::bigint, position FROM events
		WHERE stream_id = ANY($1) ORDER BY transaction_id DESC, position DESC LIMIT 1`, streamIDs).Scan(&txid, &p.Position)
	if errors.Is(err, pgx.ErrNoRows) {
		return Position{}, nil
	}
	if err != nil {
		return Position{}, fmt.Errorf("eventstore: head of %d streams: %w", len(streamIDs), err)
	}
	p.TransactionID = uint64(txid)
	return p, nil
}

// Head returns the last position committed so far in the global order (zero when empty).
func (s *Postgres) Head(ctx context.Context) (Position, error) {
	var p Position
	var txid int64
	err := s.pool.QueryRow(ctx, `SELECT transaction_id::text::bigint, position FROM events
		ORDER BY events.transaction_id DESC, events.position DESC LIMIT 1`).Scan(&txid, &p.Position)
	if errors.Is(err, pgx.ErrNoRows) {
		return Position{}, nil
	}
	if err != nil {
		return Position{}, fmt.Errorf("eventstore: head: %w", err)
	}
	p.TransactionID = uint64(txid)
	return p, nil
}

// DomainQuery selects events of one mail domain, in the gap-safe global order.
type DomainQuery struct {
	Domain string
	// After is a cursor: only events after this position.
	After Position
	// Since and Until bound recorded_at: Since <= recorded_at < Until; zero leaves a side open.
	Since, Until time.Time
	// Types keeps only these event types (none: all).
	Types []string
	// StreamType keeps only streams of this type ("": all).
	StreamType string
	// StreamID keeps only this stream ("": all): one object's history.
	StreamID string
	// Actor, SourceIP, RequestID, CorrelationID and SessionID keep only events whose metadata
	// holds exactly that value ("": any).
	Actor, SourceIP, RequestID, CorrelationID, SessionID string
	// Limit bounds the number of events (0: no bound).
	Limit int
	// Stored returns the events as stored, not upcast: what their hashes were taken over
	// (exports).
	Stored bool
}

// ReadDomain returns the events of every stream of a mail domain.
func (s *Postgres) ReadDomain(ctx context.Context, q DomainQuery) ([]RecordedEvent, error) {
	var since, until *time.Time
	if !q.Since.IsZero() {
		since = &q.Since
	}
	if !q.Until.IsZero() {
		until = &q.Until
	}
	limit := any(nil)
	if q.Limit > 0 {
		limit = q.Limit
	}
	types := q.Types
	if types == nil {
		types = []string{}
	}
	rows, err := s.pool.Query(ctx, `SELECT `+selectColumns+` FROM events
		WHERE domain = $1
		  AND (transaction_id, position) > ($2::bigint::text::xid8, $3)
		  AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
		  AND ($4::timestamptz IS NULL OR recorded_at >= $4)
		  AND ($5::timestamptz IS NULL OR recorded_at < $5)
		  AND (cardinality($6::text[]) = 0 OR event_type = ANY($6))
		  AND ($7 = '' OR stream_type = $7)
		  AND ($9 = '' OR stream_id = $9)
		  AND ($10 = '' OR metadata->>'actor' = $10)
		  AND ($11 = '' OR metadata->>'source_ip' = $11)
		  AND ($12 = '' OR metadata->>'request_id' = $12)
		  AND ($13 = '' OR metadata->>'correlation_id' = $13)
		  AND ($14 = '' OR metadata->>'session_id' = $14)
		ORDER BY events.transaction_id, events.position
		LIMIT $8`, pgx.QueryExecModeExec, // its optional filters make a generic plan a poor bet
		q.Domain, int64(q.After.TransactionID), q.After.Position, since, until, types, q.StreamType, limit,
		q.StreamID, q.Actor, q.SourceIP, q.RequestID, q.CorrelationID, q.SessionID)
	if err != nil {
		return nil, fmt.Errorf("eventstore: read domain %s: %w", q.Domain, err)
	}
	if q.Stored {
		return collectStored(rows, q.Limit)
	}
	return s.collect(rows, q.Limit, true)
}

// AwaitDomainStable waits until every event of the domain committed so far sorts before the
// oldest transaction still in flight, so that a gap-safe read (ReadDomain) returns them all.
// It returns when ctx ends, without error: the read is then merely shorter, never wrong.
func (s *Postgres) AwaitDomainStable(ctx context.Context, domain string) error {
	for {
		var stable bool
		err := s.pool.QueryRow(ctx, `SELECT coalesce((SELECT max(transaction_id) FROM events WHERE domain = $1)
			< pg_snapshot_xmin(pg_current_snapshot()), true)`, domain).Scan(&stable)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("eventstore: await %s: %w", domain, err)
		}
		if stable {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// ReadAll returns up to limit events after the given position in the gap-safe global order:
// it stops before the oldest transaction still in flight, so an event committed later can never
// land behind a position a reader has already passed.
func (s *Postgres) ReadAll(ctx context.Context, after Position, limit int) ([]RecordedEvent, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+selectColumns+` FROM events
		WHERE (transaction_id, position) > ($1::bigint::text::xid8, $2)
		  AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
		ORDER BY events.transaction_id, events.position LIMIT $3`, int64(after.TransactionID), after.Position, limit)
	if err != nil {
		return nil, fmt.Errorf("eventstore: read all: %w", err)
	}
	return s.collect(rows, limit, true)
}

// ReadWindow returns up to limit events recorded in [from, to), after the given position, in the
// gap-safe global order.
func (s *Postgres) ReadWindow(ctx context.Context, from, to time.Time, after Position, limit int) ([]RecordedEvent, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+selectColumns+` FROM events
		WHERE recorded_at >= $1 AND recorded_at < $2
		  AND (transaction_id, position) > ($3::bigint::text::xid8, $4)
		  AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
		ORDER BY events.transaction_id, events.position LIMIT $5`, from, to, int64(after.TransactionID), after.Position, limit)
	if err != nil {
		return nil, fmt.Errorf("eventstore: read window: %w", err)
	}
	return s.collect(rows, limit, true)
}

// collect reads rows and upcasts them; meta false leaves each event's Metadata undecoded (zero).
func (s *Postgres) collect(rows pgx.Rows, capacity int, meta bool) ([]RecordedEvent, error) {
	defer rows.Close()
	out := make([]RecordedEvent, 0, capacity)
	for rows.Next() {
		e, err := scanRaw(rows, meta)
		if err != nil {
			return nil, err
		}
		if err := s.upcast(&e); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("eventstore: read: %w", err)
	}
	return out, nil
}

// collectStored reads rows as stored, without upcasting.
func collectStored(rows pgx.Rows, capacity int) ([]RecordedEvent, error) {
	defer rows.Close()
	out := make([]RecordedEvent, 0, capacity)
	for rows.Next() {
		e, err := scanRaw(rows, true)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("eventstore: read: %w", err)
	}
	return out, nil
}

// upcast brings the event's data to the registry's current schema version.
func (s *Postgres) upcast(e *RecordedEvent) error {
	if s.registry == nil {
		return nil
	}
	var err error
	e.Data, e.SchemaVersion, err = s.registry.Upcast(e.Type, e.SchemaVersion, e.Data)
	return err
}

// scanRaw reads one row as stored (no upcasting); it also returns the stored metadata, decoded
// into Metadata when meta is true.
func scanRaw(rows pgx.Rows, meta bool) (RecordedEvent, error) {
	var e RecordedEvent
	var rawMeta []byte
	var tx int64
	// Data is scanned as plain bytes: into a json.RawMessage pgx would run json.Unmarshal, which
	// validates every document Postgres has already validated (a third of an as_of read's CPU on
	// a 1,000-event account, docs/benchmarks.md "Issue 10 — audit").
	if err := rows.Scan(&e.Position, &tx, &e.StreamID, &e.StreamType, &e.Domain, &e.Version, &e.Type,
		&e.SchemaVersion, (*[]byte)(&e.Data), &rawMeta, &e.RecordedAt, &e.PrevHash, &e.Hash); err != nil {
		return e, fmt.Errorf("eventstore: scan: %w", err)
	}
	e.TransactionID = uint64(tx)
	e.RecordedAt = e.RecordedAt.UTC()
	e.rawMetadata = rawMeta
	if !meta {
		return e, nil
	}
	if err := json.Unmarshal(rawMeta, &e.Metadata); err != nil {
		return e, fmt.Errorf("eventstore: metadata of %s v%d: %w", e.StreamID, e.Version, err)
	}
	return e, nil
}
