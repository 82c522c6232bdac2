package eventstore

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// AnchorKeyPurpose is what the anchor signing key is derived for (keyring.Derive).
const AnchorKeyPurpose = "anchor signing v1"

// Anchor is a signed statement of the global head: every event up to Position, in the gap-safe
// (transaction_id, position) order, and the head of every stream as of then. HeadsDigest is built
// incrementally — SHA-256(previous anchor's digest ‖ digest of the heads that changed since it) —
// so it commits to every stream's head while costing only the changes to compute and check.
// PrevHash links each anchor to the one before it.
type Anchor struct {
	Seq         int64        `json:"seq"`
	Position    Position     `json:"position"`
	Events      int64        `json:"events"`
	Streams     int64        `json:"streams"`
	HeadsDigest []byte       `json:"heads_digest"`
	PrevHash    []byte       `json:"prev_hash"`
	RecordedAt  time.Time    `json:"recorded_at"`
	PublicKey   []byte       `json:"public_key"`
	Signature   []byte       `json:"signature"`
	Heads       []AnchorHead `json:"heads"`
	// Order is where the anchor's window ends in this database's order when a logical restore
	// rewrote the transaction ids (RewriteRestoredOrder); nil when it is Position. It is not
	// signed: Position is what was signed, in the order of the cluster that signed it.
	Order *Position `json:"order,omitempty"`
}

// At is where the anchor's window ends in this database's (transaction_id, position) order.
func (a Anchor) At() Position {
	if a.Order != nil {
		return *a.Order
	}
	return a.Position
}

// AnchorHead is a stream's head as an anchor saw it.
type AnchorHead struct {
	StreamID string `json:"stream_id"`
	Version  int    `json:"version"`
	Hash     []byte `json:"hash"`
}

// signedForm is what the signature covers, in RFC 8785 form.
func (a Anchor) signedForm() ([]byte, error) {
	b, err := json.Marshal(map[string]any{
		"seq":            a.Seq,
		"transaction_id": a.Position.TransactionID,
		"position":       a.Position.Position,
		"events":         a.Events,
		"streams":        a.Streams,
		"heads_digest":   hex.EncodeToString(a.HeadsDigest),
		"prev_hash":      hex.EncodeToString(a.PrevHash),
		"recorded_at":    formatTime(a.RecordedAt),
	})
	if err != nil {
		return nil, err
	}
	return canonicalJSON(b)
}

// Hash is what the next anchor's PrevHash must be.
func (a Anchor) Hash() ([]byte, error) {
	b, err := a.signedForm()
	if err != nil {
		return nil, err
	}
	h := sha256.Sum256(b)
	return h[:], nil
}

// headsDelta digests a set of stream heads (sorted by stream id).
func headsDelta(heads []AnchorHead) []byte {
	rows := make([][]any, len(heads))
	for i, h := range heads {
		rows[i] = []any{h.StreamID, h.Version, hex.EncodeToString(h.Hash)}
	}
	b, _ := json.Marshal(rows) // strings and small ints only: cannot fail
	canon, _ := canonicalJSON(b)
	d := sha256.Sum256(canon)
	return d[:]
}

func chainDigest(prev, delta []byte) []byte {
	h := sha256.New()
	h.Write(prev)
	h.Write(delta)
	return h.Sum(nil)
}

var zeroHash = make([]byte, sha256.Size)

// Anchors records and reads signed anchors.
type Anchors struct {
	pool *pgxpool.Pool
	priv ed25519.PrivateKey
	pub  ed25519.PublicKey
	now  func() time.Time
}

// NewAnchors returns the anchor recorder, signing with the Ed25519 key whose seed is given
// (32 bytes, keyring.Derive(master, AnchorKeyPurpose)).
func NewAnchors(pool *pgxpool.Pool, seed []byte) (*Anchors, error) {
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("eventstore: anchor key seed must be %d bytes", ed25519.SeedSize)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	return &Anchors{pool: pool, priv: priv, pub: priv.Public().(ed25519.PublicKey), now: now}, nil
}

// PublicKey is the key anchors verify with; it can be published for offline checks.
func (a *Anchors) PublicKey() ed25519.PublicKey { return a.pub }

// anchorLock keeps two recorders from racing for the same sequence number.
const anchorLock = 0x6d70616e63 // "mpanc"

// Record signs an anchor of the current gap-safe head if anything was appended since the last
// one; ok is false when nothing changed.
func (a *Anchors) Record(ctx context.Context) (anchor Anchor, ok bool, err error) {
	err = pgx.BeginTxFunc(ctx, a.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(anchorLock)); err != nil {
			return err
		}
		last, found, err := latestAnchor(ctx, tx)
		if err != nil {
			return err
		}
		// The head stops before the oldest transaction in flight, so no event can ever be
		// committed at or below an anchor's position after it was taken.
		var head Position
		var txid int64
		err = tx.QueryRow(ctx, `SELECT transaction_id::text::bigint, position FROM events
			WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot())
			ORDER BY events.transaction_id DESC, events.position DESC LIMIT 1`).Scan(&txid, &head.Position)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("eventstore: anchor head: %w", err)
		}
		head.TransactionID = uint64(txid)
		at := last.At()
		if found && !at.Less(head) {
			return nil // nothing new
		}
		next := Anchor{Seq: 1, PrevHash: zeroHash, Position: head, RecordedAt: a.now()}
		prevDigest := zeroHash
		if found {
			next.Seq = last.Seq + 1
			next.Events, next.Streams, prevDigest = last.Events, last.Streams, last.HeadsDigest
			if next.PrevHash, err = last.Hash(); err != nil {
				return err
			}
			if next.RecordedAt.Before(last.RecordedAt) {
				next.RecordedAt = last.RecordedAt
			}
		}
		var n, created int64
		err = tx.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE stream_version = 1) FROM events
			WHERE (transaction_id, position) > ($1::bigint::text::xid8, $2) AND (transaction_id, position) <= ($3::bigint::text::xid8, $4)`,
			int64(at.TransactionID), at.Position, txid, head.Position).Scan(&n, &created)
		if err != nil {
			return fmt.Errorf("eventstore: anchor counts: %w", err)
		}
		rows, err := tx.Query(ctx, `SELECT DISTINCT ON (stream_id) stream_id, stream_version, hash FROM events
			WHERE (transaction_id, position) > ($1::bigint::text::xid8, $2) AND (transaction_id, position) <= ($3::bigint::text::xid8, $4)
			ORDER BY stream_id, stream_version DESC`,
			int64(at.TransactionID), at.Position, txid, head.Position)
		if err != nil {
			return fmt.Errorf("eventstore: anchor heads: %w", err)
		}
		next.Heads, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (AnchorHead, error) {
			var h AnchorHead
			return h, r.Scan(&h.StreamID, &h.Version, &h.Hash)
		})
		if err != nil {
			return fmt.Errorf("eventstore: anchor heads: %w", err)
		}
		sortHeads(next.Heads)
		next.Events += n
		next.Streams += created
		next.HeadsDigest = chainDigest(prevDigest, headsDelta(next.Heads))
		next.PublicKey = a.pub
		signed, err := next.signedForm()
		if err != nil {
			return err
		}
		next.Signature = ed25519.Sign(a.priv, signed)
		if _, err := tx.Exec(ctx, `INSERT INTO anchors
			(seq, transaction_id, position, events, streams, heads_digest, prev_hash, recorded_at, public_key, signature)
			VALUES ($1, $2::bigint::text::xid8, $3, $4, $5, $6, $7, $8, $9, $10)`,
			next.Seq, txid, head.Position, next.Events, next.Streams, next.HeadsDigest, next.PrevHash,
			next.RecordedAt, next.PublicKey, next.Signature); err != nil {
			return fmt.Errorf("eventstore: record anchor: %w", err)
		}
		ids := make([]string, len(next.Heads))
		versions := make([]int32, len(next.Heads))
		hashes := make([][]byte, len(next.Heads))
		for i, h := range next.Heads {
			ids[i], versions[i], hashes[i] = h.StreamID, int32(h.Version), h.Hash
		}
		if _, err := tx.Exec(ctx, `INSERT INTO anchor_heads (seq, stream_id, version, hash)
			SELECT $1, u.s, u.v, u.h FROM unnest($2::text[], $3::int[], $4::bytea[]) AS u(s, v, h)`,
			next.Seq, ids, versions, hashes); err != nil {
			return fmt.Errorf("eventstore: record anchor heads: %w", err)
		}
		anchor, ok = next, true
		return nil
	})
	return anchor, ok, err
}

func sortHeads(h []AnchorHead) {
	slices.SortFunc(h, func(a, b AnchorHead) int { return strings.Compare(a.StreamID, b.StreamID) })
}

func latestAnchor(ctx context.Context, q DBTX) (Anchor, bool, error) {
	list, err := listAnchors(ctx, q, `ORDER BY seq DESC LIMIT 1`, false)
	if err != nil || len(list) == 0 {
		return Anchor{}, false, err
	}
	return list[0], true, nil
}

// ListAnchors returns the anchors after seq, oldest first, with the heads each covers.
func ListAnchors(ctx context.Context, q DBTX, afterSeq int64) ([]Anchor, error) {
	return listAnchors(ctx, q, `WHERE seq > `+fmt.Sprint(afterSeq)+` ORDER BY seq`, true)
}

func listAnchors(ctx context.Context, q DBTX, tail string, withHeads bool) ([]Anchor, error) {
	rows, err := q.Query(ctx, `SELECT `+anchorColumns+` FROM anchors `+tail)
	if err != nil {
		return nil, fmt.Errorf("eventstore: anchors: %w", err)
	}
	list, err := pgx.CollectRows(rows, scanAnchor)
	if err != nil || !withHeads || len(list) == 0 {
		return list, err
	}
	bySeq := make(map[int64]*Anchor, len(list))
	for i := range list {
		list[i].Heads = []AnchorHead{}
		bySeq[list[i].Seq] = &list[i]
	}
	hrows, err := q.Query(ctx, `SELECT seq, stream_id, version, hash FROM anchor_heads
		WHERE seq BETWEEN $1 AND $2 ORDER BY seq, stream_id`, list[0].Seq, list[len(list)-1].Seq)
	if err != nil {
		return nil, fmt.Errorf("eventstore: anchor heads: %w", err)
	}
	defer hrows.Close()
	for hrows.Next() {
		var seq int64
		var h AnchorHead
		if err := hrows.Scan(&seq, &h.StreamID, &h.Version, &h.Hash); err != nil {
			return nil, err
		}
		if a := bySeq[seq]; a != nil {
			a.Heads = append(a.Heads, h)
		}
	}
	if err := hrows.Err(); err != nil {
		return nil, err
	}
	for i := range list {
		sortHeads(list[i].Heads) // byte order, as signed; the database's collation may differ
	}
	return list, nil
}
