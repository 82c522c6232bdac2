package eventstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// RekeyReport says what re-keying the legacy chains did.
type RekeyReport struct {
	// Done is false when there was nothing to re-key.
	Done    bool
	Streams int
	Events  int
}

// ErrLegacyChainBroken means a chain from before keyed hashing does not verify under its own
// scheme: re-keying it would launder the tampering, so it is refused.
var ErrLegacyChainBroken = errors.New("eventstore: a legacy hash chain is broken")

// rekeyLock serialises re-keying across processes starting at once.
const rekeyLock = 0x6d707265 // "mpre"

// RekeyLegacyChains re-keys, once, the chains written before keyed hashing (migration 00004
// marks them pending): in one transaction it verifies every legacy chain (SHA-256 over the old
// canonical form), refusing to go on if one is broken; rewrites every prev_hash and hash with
// this store's keyed chain, the append-only trigger switched off inside the transaction only;
// verifies the result; and marks the re-key done. Nothing changes unless all of it succeeds.
// It needs the table owner's rights (the migrating role).
func (s *Postgres) RekeyLegacyChains(ctx context.Context) (RekeyReport, error) {
	var rep RekeyReport
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(rekeyLock)); err != nil {
			return err
		}
		var id int64
		err := tx.QueryRow(ctx, `SELECT id FROM event_chain_rekeys WHERE state = 'pending' ORDER BY id LIMIT 1`).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("eventstore: rekey: %w", err)
		}
		events, err := s.allByStream(ctx, tx)
		if err != nil {
			return err
		}
		var broken []string
		var stream string
		var prev []byte
		for _, e := range events {
			if e.StreamID != stream {
				stream, prev = e.StreamID, GenesisHash
				rep.Streams++
			}
			want, err := legacyHash(e)
			if err != nil || !bytes.Equal(e.PrevHash, prev) || !bytes.Equal(want, e.Hash) {
				broken = append(broken, fmt.Sprintf("%s v%d (position %d)", e.StreamID, e.Version, e.Position))
			}
			prev = e.Hash
		}
		if len(broken) > 0 {
			return fmt.Errorf("%w: %s; nothing was re-keyed", ErrLegacyChainBroken, strings.Join(broken, ", "))
		}

		positions := make([]int64, len(events))
		prevs := make([][]byte, len(events))
		hashes := make([][]byte, len(events))
		stream = ""
		for i, e := range events {
			if e.StreamID != stream {
				stream, prev = e.StreamID, GenesisHash
			}
			e.PrevHash = prev
			h, err := s.chain.recompute(e)
			if err != nil {
				return fmt.Errorf("eventstore: rekey %s v%d: %w", e.StreamID, e.Version, err)
			}
			positions[i], prevs[i], hashes[i] = e.Position, prev, h
			prev = h
		}
		if _, err := tx.Exec(ctx, `ALTER TABLE events DISABLE TRIGGER events_append_only`); err != nil {
			return fmt.Errorf("eventstore: rekey: %w", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE events e SET prev_hash = u.p, hash = u.h
			FROM unnest($1::bigint[], $2::bytea[], $3::bytea[]) AS u(pos, p, h) WHERE e.position = u.pos`,
			positions, prevs, hashes); err != nil {
			return fmt.Errorf("eventstore: rekey: %w", err)
		}
		if _, err := tx.Exec(ctx, `ALTER TABLE events ENABLE TRIGGER events_append_only`); err != nil {
			return fmt.Errorf("eventstore: rekey: %w", err)
		}
		rep.Events = len(events)
		// Check what was written, read back through the same transaction.
		after, err := s.allByStream(ctx, tx)
		if err != nil {
			return err
		}
		c := chainChecker{chain: s.chain}
		for _, e := range after {
			c.check(e)
		}
		if !c.report.OK() {
			return fmt.Errorf("eventstore: rekey: the re-keyed chains do not verify: %v", c.report.Broken)
		}
		_, err = tx.Exec(ctx, `UPDATE event_chain_rekeys SET state = 'done', done_at = now(), streams = $2, events = $3
			WHERE id = $1`, id, rep.Streams, rep.Events)
		rep.Done = err == nil
		return err
	})
	if err != nil {
		return RekeyReport{}, err
	}
	return rep, nil
}

// RekeyPending reports whether legacy chains wait to be re-keyed.
func (s *Postgres) RekeyPending(ctx context.Context) (bool, error) {
	var pending bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM event_chain_rekeys WHERE state = 'pending')`).Scan(&pending)
	return pending, err
}

func (s *Postgres) allByStream(ctx context.Context, q DBTX) ([]RecordedEvent, error) {
	rows, err := q.Query(ctx, `SELECT `+selectColumns+` FROM events ORDER BY stream_id, stream_version`)
	if err != nil {
		return nil, fmt.Errorf("eventstore: read events: %w", err)
	}
	defer rows.Close()
	var out []RecordedEvent
	for rows.Next() {
		e, err := scanRaw(rows, true)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// legacyHash is the chain before keyed hashing: SHA-256(prev ‖ JSON of the link), the JSON in
// its former canonical form (sorted keys, Go's escaping, numbers in their shortest form). Kept
// only to verify old chains before they are re-keyed.
func legacyHash(e RecordedEvent) ([]byte, error) {
	data, err := legacyCanonicalJSON(e.Data)
	if err != nil {
		return nil, err
	}
	meta, err := legacyCanonicalJSON(e.rawMetadata)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(chainLink{
		StreamID: e.StreamID, StreamType: e.StreamType, Domain: e.Domain, Version: e.Version,
		Type: e.Type, SchemaVersion: e.SchemaVersion, Data: data, Metadata: meta,
		RecordedAt: formatTime(e.RecordedAt),
	})
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	h.Write(e.PrevHash)
	h.Write(b)
	return h.Sum(nil), nil
}

func legacyCanonicalJSON(raw []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	v, err := legacyNumbers(v)
	if err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

func legacyNumbers(v any) (any, error) {
	switch x := v.(type) {
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return json.Number(strconv.FormatInt(i, 10)), nil
		}
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil || math.IsInf(f, 0) {
			return nil, fmt.Errorf("number %q out of range", x)
		}
		if f == math.Trunc(f) && math.Abs(f) < 1e15 {
			return json.Number(strconv.FormatInt(int64(f), 10)), nil
		}
		return json.Number(strconv.FormatFloat(f, 'g', -1, 64)), nil
	case map[string]any:
		for k, e := range x {
			n, err := legacyNumbers(e)
			if err != nil {
				return nil, err
			}
			x[k] = n
		}
	case []any:
		for i, e := range x {
			n, err := legacyNumbers(e)
			if err != nil {
				return nil, err
			}
			x[i] = n
		}
	}
	return v, nil
}
