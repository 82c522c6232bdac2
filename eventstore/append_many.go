package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// StreamAppend is one stream's part of a multi-stream append.
type StreamAppend struct {
	Stream Stream
	// Expected is the version the stream must be at: a version > 0, or NoStream for a new one.
	// Any is refused: a batch that lost a race starts over from the state it reads again.
	Expected ExpectedVersion
	Events   []Event
	// Head, when set, is the stream's last event as the caller read it in this transaction
	// (its version must be Expected): the append chains onto it without reading it again. A
	// head that moved since fails the insert on the unique key, as any stale expectation does.
	Head *RecordedEvent
}

// ErrDuplicateStream means a multi-stream append named a stream twice.
var ErrDuplicateStream = errors.New("eventstore: a stream appears twice in one append")

// AppendManyTx appends to many streams in one INSERT: the events of a bulk change (removing a
// domain's twenty thousand accounts) go in with one head read and one write per batch instead of
// one round trip per stream. The rules of AppendTx hold: it must be the transaction's first
// write, and a stream not at its expected version fails the whole append with ErrConcurrency
// (nothing is written). Idempotency keys are not supported here (a bulk change is a job, made
// idempotent by re-reading its state). Each result's LastPosition is the position of the last
// event of the whole append; the streams' versions are exact.
func (s *Postgres) AppendManyTx(ctx context.Context, tx DBTX, meta Metadata, appends []StreamAppend) ([]AppendResult, error) {
	if len(appends) == 0 {
		return nil, nil
	}
	if meta.IdempotencyKey != "" {
		return nil, errors.New("eventstore: AppendManyTx takes no idempotency key")
	}
	ids := make([]string, 0, len(appends))
	seen := make(map[string]bool, len(appends))
	for _, a := range appends {
		if a.Expected != NoStream && a.Expected <= 0 {
			return nil, fmt.Errorf("eventstore: AppendManyTx needs an exact expected version for %s", a.Stream.ID)
		}
		if seen[a.Stream.ID] {
			return nil, fmt.Errorf("%w: %s", ErrDuplicateStream, a.Stream.ID)
		}
		seen[a.Stream.ID] = true
		ids = append(ids, a.Stream.ID)
	}
	heads := make(map[string]streamHead, len(ids))
	var unknown []string
	for _, a := range appends {
		switch {
		case a.Head != nil:
			if a.Head.StreamID != a.Stream.ID || ExpectedVersion(a.Head.Version) != a.Expected {
				return nil, fmt.Errorf("eventstore: the head given for %s is not at the expected version", a.Stream.ID)
			}
			heads[a.Stream.ID] = streamHead{version: a.Head.Version, hash: a.Head.Hash, recordedAt: a.Head.RecordedAt}
		case a.Expected != NoStream:
			unknown = append(unknown, a.Stream.ID)
		}
	}
	if len(unknown) > 0 {
		found, err := s.HeadsTx(ctx, tx, unknown)
		if err != nil {
			return nil, err
		}
		for id, h := range found {
			heads[id] = streamHead{version: h.Version, hash: h.Hash, recordedAt: h.RecordedAt}
		}
	}

	metaJSON, err := json.Marshal(meta)
	if err != nil {
		return nil, err
	}
	if metaJSON, err = canonicalJSON(metaJSON); err != nil {
		return nil, err
	}
	var (
		streamIDs, streamTypes, types, datas []string
		domains                              []*string
		versions, schemas                    []int32
		ats                                  []time.Time
		prevs, hashes                        [][]byte
	)
	results := make([]AppendResult, len(appends))
	for i, a := range appends {
		h, ok := heads[a.Stream.ID]
		want := 0
		if a.Expected != NoStream {
			want = int(a.Expected)
		}
		if !ok {
			h = streamHead{hash: GenesisHash}
		}
		if h.version != want {
			return nil, &ConcurrencyError{StreamID: a.Stream.ID, Expected: a.Expected}
		}
		enc, err := encode(a.Events)
		if err != nil {
			return nil, err
		}
		at := s.stamp(h.recordedAt)
		var domain *string
		if a.Stream.Domain != "" {
			d := a.Stream.Domain
			domain = &d
		}
		prev := h.hash
		for j, e := range enc {
			v := h.version + 1 + j
			hash, err := s.chain.link(prev, chainLink{
				StreamID: a.Stream.ID, StreamType: a.Stream.Type, Domain: a.Stream.Domain, Version: v,
				Type: e.Type, SchemaVersion: e.SchemaVersion, Data: e.Data, Metadata: metaJSON,
				RecordedAt: formatTime(at),
			})
			if err != nil {
				return nil, err
			}
			streamIDs = append(streamIDs, a.Stream.ID)
			streamTypes = append(streamTypes, a.Stream.Type)
			domains = append(domains, domain)
			versions = append(versions, int32(v))
			types = append(types, e.Type)
			schemas = append(schemas, int32(e.SchemaVersion))
			datas = append(datas, string(e.Data))
			ats = append(ats, at)
			prevs = append(prevs, prev)
			hashes = append(hashes, hash)
			prev = hash
		}
		results[i] = AppendResult{StreamID: a.Stream.ID, FirstVersion: h.version + 1, LastVersion: h.version + len(enc), RecordedAt: at}
	}
	if len(versions) == 0 {
		return results, nil
	}
	var last int64
	var txid int64
	err = tx.QueryRow(ctx, insertAcross, string(metaJSON), streamIDs, streamTypes, domains, versions, types, schemas,
		datas, ats, prevs, hashes).Scan(&last, &txid)
	if err != nil {
		return nil, mapWriteError(err, "one of the streams", Any)
	}
	for i := range results {
		results[i].LastPosition, results[i].TransactionID = last, uint64(txid)
	}
	return results, nil
}

// HeadsTx returns the last event of each stream that has one, through q, in one query: its
// version, type, hash and recorded_at (not its data). For a bulk change that needs no more of a
// stream than where it ends (and AppendManyTx's Head).
func (s *Postgres) HeadsTx(ctx context.Context, q DBTX, streamIDs []string) (map[string]RecordedEvent, error) {
	rows, err := q.Query(ctx, `SELECT DISTINCT ON (stream_id) stream_id, stream_version, event_type, hash, recorded_at
		FROM events WHERE stream_id = ANY($1) ORDER BY stream_id, stream_version DESC`, streamIDs)
	if err != nil {
		return nil, fmt.Errorf("eventstore: heads: %w", err)
	}
	defer rows.Close()
	out := make(map[string]RecordedEvent, len(streamIDs))
	for rows.Next() {
		var e RecordedEvent
		if err := rows.Scan(&e.StreamID, &e.Version, &e.Type, &e.Hash, &e.RecordedAt); err != nil {
			return nil, fmt.Errorf("eventstore: heads: %w", err)
		}
		e.RecordedAt = e.RecordedAt.UTC()
		out[e.StreamID] = e
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("eventstore: heads: %w", err)
	}
	return out, nil
}

// insertAcross writes the events of many streams in one statement, in the order of the arrays
// (so each stream's versions go in ascending), under the same first-write rule as insertMany.
const insertAcross = `WITH ins AS (
	INSERT INTO events
	(stream_id, stream_type, stream_version, domain, event_type, schema_version, data, metadata, recorded_at, prev_hash, hash)
	SELECT u.id, u.st, u.v, u.dom, u.t, u.s, u.d::jsonb, $1::jsonb, u.at, u.p, u.h
	FROM unnest($2::text[], $3::text[], $4::text[], $5::int[], $6::text[], $7::int[], $8::text[], $9::timestamptz[],
		$10::bytea[], $11::bytea[]) WITH ORDINALITY AS u(id, st, dom, v, t, s, d, at, p, h, o)
	WHERE (SELECT events_first_write())
	ORDER BY u.o
	RETURNING position)
	SELECT coalesce(max(position), 0), pg_current_xact_id()::text::bigint FROM ins`
