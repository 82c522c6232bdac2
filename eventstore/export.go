package eventstore

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"
)

// An export is JSON lines, each with a "kind": one "export" header, the domain's events
// ("event", in the gap-safe global order), the anchors that cover them ("anchor", oldest
// first) and one "end" trailer. It holds everything an auditor needs to check it without the
// database (VerifyExport): every event as stored, with the fields its hash chain covers, and
// the signed anchors whose heads pin the chains.
const (
	ExportKindHeader = "export"
	ExportKindEvent  = "event"
	ExportKindAnchor = "anchor"
	ExportKindEnd    = "end"
	// ExportFormat is the version of the line format.
	ExportFormat = 1
)

// ExportHeader opens an export.
type ExportHeader struct {
	Kind   string `json:"kind"`
	Format int    `json:"format"`
	Domain string `json:"domain"`
	// Through is the global head the export was taken at: it holds every event of the domain
	// up to it, and the anchors up to it that cover them. Anchors after it are not its to match.
	Through    Position  `json:"through"`
	ExportedAt time.Time `json:"exported_at"`
}

// ExportEvent is one event as stored. Position and TransactionID locate it; every other field
// is covered by its stream's hash chain.
type ExportEvent struct {
	Kind          string          `json:"kind"`
	Position      int64           `json:"position"`
	TransactionID uint64          `json:"transaction_id"`
	Stream        string          `json:"stream"`
	StreamType    string          `json:"stream_type"`
	Domain        string          `json:"domain"`
	Version       int             `json:"version"`
	Type          string          `json:"type"`
	SchemaVersion int             `json:"schema_version"`
	Data          json.RawMessage `json:"data"`
	Metadata      json.RawMessage `json:"metadata"`
	// RecordedAt is written at the microsecond precision the chain hashes it with.
	RecordedAt string `json:"recorded_at"`
	PrevHash   string `json:"prev_hash"`
	Hash       string `json:"hash"`
}

// ExportAnchor is a signed anchor as `mailplane anchors export` writes it, marked as a line of
// an export. An anchor present only so that the next one's digest and link can be checked
// comes without its heads.
type ExportAnchor struct {
	Kind string `json:"kind"`
	Anchor
}

// ExportEnd closes an export; its counts tell a file cut short from a complete one. Digest is
// the hex SHA-256 of every line before it (each with its newline), and Signature the
// installation's Ed25519 signature (the anchor key) over the end line's signed form, so that
// every byte of the file — positions and the header included, which no chain covers — is
// vouched for by a key the database's holder does not have. Both are empty from a server
// without the key.
type ExportEnd struct {
	Kind      string `json:"kind"`
	Domain    string `json:"domain"`
	Events    int64  `json:"events"`
	Anchors   int    `json:"anchors"`
	Digest    string `json:"digest,omitempty"`
	Signature string `json:"signature,omitempty"`
}

// signedForm is what the end line's signature covers, in RFC 8785 form. Its "kind" member
// keeps it apart from an anchor's signed form, which has none: one signature cannot pass for
// the other.
func (e ExportEnd) signedForm() ([]byte, error) {
	b, err := json.Marshal(map[string]any{"kind": "export-end", "domain": e.Domain, "events": e.Events,
		"anchors": e.Anchors, "digest": e.Digest})
	if err != nil {
		return nil, err
	}
	return canonicalJSON(b)
}

// signExport signs an export's end line with the anchor key.
func (a *Anchors) signExport(e *ExportEnd) error {
	signed, err := e.signedForm()
	if err != nil {
		return err
	}
	e.Signature = hex.EncodeToString(ed25519.Sign(a.priv, signed))
	return nil
}

// NewExportEvent is the export line of a stored event (read with DomainQuery.Stored).
func NewExportEvent(e RecordedEvent) ExportEvent {
	return ExportEvent{
		Kind: ExportKindEvent, Position: e.Position, TransactionID: e.TransactionID, Stream: e.StreamID,
		StreamType: e.StreamType, Domain: e.Domain, Version: e.Version, Type: e.Type,
		SchemaVersion: e.SchemaVersion, Data: e.Data, Metadata: e.rawMetadata,
		RecordedAt: formatTime(e.RecordedAt), PrevHash: hex.EncodeToString(e.PrevHash), Hash: hex.EncodeToString(e.Hash),
	}
}

// exportPage is how many events an export reads and writes at a time: its memory stays flat
// however long the history is.
const exportPage = 1000

// ExportOptions say what to export and how.
type ExportOptions struct {
	Domain     string
	ExportedAt time.Time
	// PageTimeout bounds each read (default 30s); the export as a whole is bounded by ctx and
	// by its writer.
	PageTimeout time.Duration
	// Flush, when set, runs after each page is written (an HTTP response's Flush).
	Flush func()
	// Signer signs the end line (the installation's anchor key); nil leaves it unsigned.
	Signer *Anchors
}

// ExportDomain writes the domain's history as an export (see ExportHeader): every event up to
// the gap-safe head as it is when the export starts, as stored, a page at a time, then the
// anchors up to that head that cover them, then the end line. The caller waits for the domain's
// events to be stable first (AwaitDomainStable) when it must include its own latest writes.
func (s *Postgres) ExportDomain(ctx context.Context, w io.Writer, o ExportOptions) error {
	if o.PageTimeout <= 0 {
		o.PageTimeout = 30 * time.Second
	}
	if o.Flush == nil {
		o.Flush = func() {}
	}
	page := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, o.PageTimeout) }
	// The export stops at the head as it is now, so that its anchors and its events describe
	// the same moment however long the writing takes.
	pctx, cancel := page()
	through, err := s.GapSafeHead(pctx)
	cancel()
	if err != nil {
		return err
	}
	digest := sha256.New()
	enc := json.NewEncoder(io.MultiWriter(w, digest))
	enc.SetEscapeHTML(false)
	if err := enc.Encode(ExportHeader{Kind: ExportKindHeader, Format: ExportFormat, Domain: o.Domain,
		Through: through, ExportedAt: o.ExportedAt.UTC()}); err != nil {
		return err
	}
	var count int64
	after := Position{}
	for done := false; !done; {
		pctx, cancel := page()
		events, err := s.ReadDomain(pctx, DomainQuery{Domain: o.Domain, After: after, Limit: exportPage, Stored: true})
		cancel()
		if err != nil {
			return err
		}
		done = len(events) < exportPage
		for _, e := range events {
			if through.Less(e.GlobalPosition()) {
				done = true
				break
			}
			if err := enc.Encode(NewExportEvent(e)); err != nil {
				return err
			}
			count++
			after = e.GlobalPosition()
		}
		o.Flush()
	}
	pctx, cancel = page()
	anchors, err := s.AnchorsCovering(pctx, o.Domain, through)
	cancel()
	if err != nil {
		return err
	}
	for _, a := range anchors {
		if err := enc.Encode(ExportAnchor{Kind: ExportKindAnchor, Anchor: a}); err != nil {
			return err
		}
	}
	end := ExportEnd{Kind: ExportKindEnd, Domain: o.Domain, Events: count, Anchors: len(anchors)}
	if o.Signer != nil {
		end.Digest = hex.EncodeToString(digest.Sum(nil))
		if err := o.Signer.signExport(&end); err != nil {
			return err
		}
	}
	last := json.NewEncoder(w)
	last.SetEscapeHTML(false)
	if err := last.Encode(end); err != nil {
		return err
	}
	o.Flush()
	return nil
}

// ChainKey is the key the hash chains are computed with, from the store's secret
// (keyring.Derive(master, KeyPurpose)). It is all an auditor needs to recompute the chains of an
// export; it can neither decrypt a secret nor sign an anchor.
func ChainKey(storeSecret []byte) []byte {
	return settings{secret: storeSecret}.chain().key
}

// GapSafeHead is the last position a gap-safe reader can see now: no event can be committed at
// or before it later.
func (s *Postgres) GapSafeHead(ctx context.Context) (Position, error) {
	var p Position
	var txid int64
	err := s.pool.QueryRow(ctx, `SELECT transaction_id::text::bigint, position FROM events
		WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot())
		ORDER BY events.transaction_id DESC, events.position DESC LIMIT 1`).Scan(&txid, &p.Position)
	if errors.Is(err, pgx.ErrNoRows) {
		return Position{}, nil
	}
	if err != nil {
		return Position{}, fmt.Errorf("eventstore: gap-safe head: %w", err)
	}
	p.TransactionID = uint64(txid)
	return p, nil
}

// AnchorsCovering returns the anchors up to through that signed a head of one of the domain's
// streams, with their heads, each preceded by the anchor before it (without heads) when that one
// covers nothing of the domain: its digest and hash are what the covering anchor's digest and
// link are checked against.
func (s *Postgres) AnchorsCovering(ctx context.Context, domainName string, through Position) ([]Anchor, error) {
	q := s.pool
	rows, err := q.Query(ctx, `SELECT DISTINCT h.seq FROM anchor_heads h
		WHERE h.stream_id IN (SELECT DISTINCT stream_id FROM events WHERE domain = $1)
		ORDER BY h.seq`, domainName)
	if err != nil {
		return nil, fmt.Errorf("eventstore: anchors of %s: %w", domainName, err)
	}
	covering, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("eventstore: anchors of %s: %w", domainName, err)
	}
	if len(covering) == 0 {
		return nil, nil
	}
	wanted := map[int64]bool{}
	seqs := make([]int64, 0, 2*len(covering))
	for _, seq := range covering {
		if seq > 1 && !wanted[seq-1] {
			seqs = append(seqs, seq-1)
		}
		wanted[seq] = true
		seqs = append(seqs, seq)
	}
	list, err := anchorsBySeq(ctx, q, seqs, covering)
	if err != nil {
		return nil, err
	}
	out := list[:0]
	for _, a := range list {
		if !through.Less(a.At()) {
			out = append(out, a)
		}
	}
	return out, nil
}

// anchorsBySeq reads the anchors numbered seqs, oldest first, with the heads of those numbered
// withHeads.
func anchorsBySeq(ctx context.Context, q DBTX, seqs, withHeads []int64) ([]Anchor, error) {
	rows, err := q.Query(ctx, `SELECT `+anchorColumns+` FROM anchors WHERE seq = ANY($1) ORDER BY seq`, seqs)
	if err != nil {
		return nil, fmt.Errorf("eventstore: anchors: %w", err)
	}
	list, err := pgx.CollectRows(rows, scanAnchor)
	if err != nil {
		return nil, fmt.Errorf("eventstore: anchors: %w", err)
	}
	bySeq := make(map[int64]*Anchor, len(list))
	for i := range list {
		bySeq[list[i].Seq] = &list[i]
	}
	for _, seq := range withHeads {
		if a := bySeq[seq]; a != nil {
			a.Heads = []AnchorHead{}
		}
	}
	hrows, err := q.Query(ctx, `SELECT seq, stream_id, version, hash FROM anchor_heads WHERE seq = ANY($1)`, withHeads)
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
		return nil, fmt.Errorf("eventstore: anchor heads: %w", err)
	}
	for i := range list {
		sortHeads(list[i].Heads) // byte order, as signed
	}
	return list, nil
}

// anchorColumns is what scanAnchor reads.
const anchorColumns = `seq, transaction_id::text::bigint, position, events, streams, heads_digest,
	prev_hash, recorded_at, public_key, signature, order_transaction_id::text::bigint, order_position`

func scanAnchor(r pgx.CollectableRow) (Anchor, error) {
	var a Anchor
	var txid int64
	var orderTxid, orderPos *int64
	err := r.Scan(&a.Seq, &txid, &a.Position.Position, &a.Events, &a.Streams, &a.HeadsDigest,
		&a.PrevHash, &a.RecordedAt, &a.PublicKey, &a.Signature, &orderTxid, &orderPos)
	a.Position.TransactionID = uint64(txid)
	if orderTxid != nil && orderPos != nil {
		a.Order = &Position{TransactionID: uint64(*orderTxid), Position: *orderPos}
	}
	a.RecordedAt = a.RecordedAt.UTC()
	return a, err
}
