// Package eventstore is mailplane's event store: append-only streams in PostgreSQL with
// optimistic concurrency, a gap-safe global order, per-stream hash chains, idempotency keys and
// upcasting of old event versions (DESIGN.md §2).
package eventstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Event is a fact to append. Its JSON form is what gets stored; SchemaVersion, when the type
// declares one, is stored beside it so that later code can upcast it.
type Event interface {
	EventType() string
}

// Versioned is implemented by events whose schema has changed at least once.
type Versioned interface {
	SchemaVersion() int
}

// Stream names the stream an append goes to.
type Stream struct {
	ID   string
	Type string
	// Domain is the mail domain the stream belongs to; empty for global streams.
	Domain string
}

// ExpectedVersion is what an append expects the stream's current version to be.
type ExpectedVersion int64

const (
	// Any appends whatever the stream's version is.
	Any ExpectedVersion = -1
	// NoStream expects the stream to have no events yet.
	NoStream ExpectedVersion = 0
)

// Exact expects the stream to be at version v (v = 0 is the same as NoStream).
func Exact(v int) ExpectedVersion { return ExpectedVersion(v) }

// Metadata travels with every event: who did it, from where, in answer to what.
type Metadata struct {
	Actor          string `json:"actor,omitempty"`
	RequestID      string `json:"request_id,omitempty"`
	CorrelationID  string `json:"correlation_id,omitempty"`
	CausationID    string `json:"causation_id,omitempty"`
	SourceIP       string `json:"source_ip,omitempty"`
	IdempotencyKey string `json:"idempotency_key,omitempty"`
	// SessionID is the login session (or service token) whose bearer token made the request:
	// "who acted" down to the token, since one account may hold several sessions.
	SessionID string `json:"session_id,omitempty"`
	// RequestHash identifies the request an idempotency key was first used for. When empty, a
	// hash of the appended events stands in for it. It is not stored with the events.
	RequestHash []byte `json:"-"`
}

// Position is a place in the global order. Readers order by (TransactionID, Position): the
// transaction id is taken when a transaction first writes, so an event committed late by an old
// transaction still sorts before newer ones and no reader skips it.
type Position struct {
	TransactionID uint64 `json:"transaction_id"`
	Position      int64  `json:"position"`
}

// Less reports whether p comes before q in the global order.
func (p Position) Less(q Position) bool {
	if p.TransactionID != q.TransactionID {
		return p.TransactionID < q.TransactionID
	}
	return p.Position < q.Position
}

// RecordedEvent is an event as stored, with its data upcast to the current schema version.
type RecordedEvent struct {
	Position      int64
	TransactionID uint64
	StreamID      string
	StreamType    string
	Domain        string
	Version       int
	Type          string
	// SchemaVersion is the version of Data (after upcasting: the registry's current one).
	SchemaVersion int
	Data          json.RawMessage
	Metadata      Metadata
	RecordedAt    time.Time
	PrevHash      []byte
	Hash          []byte

	// rawMetadata is the metadata as stored, kept for hash checks.
	rawMetadata []byte
}

// StoredMetadata is the metadata exactly as stored, which the hash chain covers.
func (e RecordedEvent) StoredMetadata() json.RawMessage { return e.rawMetadata }

// GlobalPosition returns the event's place in the global order.
func (e RecordedEvent) GlobalPosition() Position {
	return Position{TransactionID: e.TransactionID, Position: e.Position}
}

// AppendResult says what an append wrote (or, for a repeated idempotency key, what the first
// append wrote).
type AppendResult struct {
	StreamID      string
	FirstVersion  int
	LastVersion   int
	TransactionID uint64
	LastPosition  int64
	// RecordedAt is when the events were recorded (zero for a replay).
	RecordedAt time.Time
	// Replayed is true when the idempotency key had been used: nothing was appended.
	Replayed bool
}

// GlobalPosition returns the position of the last event written.
func (r AppendResult) GlobalPosition() Position {
	return Position{TransactionID: r.TransactionID, Position: r.LastPosition}
}

// LoadOptions narrow a stream load.
type LoadOptions struct {
	// UpToVersion stops at this version (0: no limit).
	UpToVersion int
	// AsOf stops at events recorded at or before this moment (zero: no limit).
	AsOf time.Time
	// SkipMetadata leaves each event's Metadata undecoded (zero), for callers that only fold
	// the events: decoding it was a third of the CPU of loading a 1,000-event stream
	// (docs/benchmarks.md, "Issue 10 — audit"). StoredMetadata still holds it as stored.
	SkipMetadata bool
}

var (
	// ErrConcurrency means the stream was not at the expected version.
	ErrConcurrency = errors.New("eventstore: concurrency conflict")
	// ErrIdempotencyMismatch means an idempotency key was reused for a different request.
	ErrIdempotencyMismatch = errors.New("eventstore: idempotency key reused with a different request")
	// ErrNoEvents means an append was asked to write nothing.
	ErrNoEvents = errors.New("eventstore: no events to append")
	// ErrIdempotencyKeyInUse means another request recorded the same idempotency key while this
	// one ran; trying again finds that request's record (a replay, or ErrIdempotencyMismatch).
	ErrIdempotencyKeyInUse = errors.New("eventstore: idempotency key used concurrently")
	// ErrNotFirstWrite means a transaction wrote something before its append (DESIGN.md §2).
	ErrNotFirstWrite = errors.New("eventstore: an append must be the first write of its transaction")
	// ErrRekeyPending means chains from before keyed hashing wait to be re-keyed
	// (RekeyLegacyChains); nothing is appended until then.
	ErrRekeyPending = errors.New("eventstore: the hash chains wait to be re-keyed (run mailplane migrate)")
	// ErrUnknownEvent means the registry does not know an event type.
	ErrUnknownEvent = errors.New("eventstore: unknown event type")
)

// ConcurrencyError details an ErrConcurrency.
type ConcurrencyError struct {
	StreamID string
	Expected ExpectedVersion
}

func (e *ConcurrencyError) Error() string {
	return fmt.Sprintf("eventstore: stream %q is not at version %d", e.StreamID, e.Expected)
}

// Unwrap lets errors.Is(err, ErrConcurrency) match.
func (e *ConcurrencyError) Unwrap() error { return ErrConcurrency }

// encoded is an event marshalled for storage.
type encoded struct {
	Type          string
	SchemaVersion int
	Data          []byte
}

func encode(events []Event) ([]encoded, error) {
	if len(events) == 0 {
		return nil, ErrNoEvents
	}
	out := make([]encoded, len(events))
	for i, ev := range events {
		data, err := json.Marshal(ev)
		if err != nil {
			return nil, fmt.Errorf("eventstore: marshal %s: %w", ev.EventType(), err)
		}
		sv := 1
		if v, ok := ev.(Versioned); ok {
			sv = v.SchemaVersion()
		}
		if err := checkIJSON(data); err != nil {
			return nil, fmt.Errorf("eventstore: %s: %w", ev.EventType(), err)
		}
		// Canonical form here makes the stored jsonb and the hashed bytes agree.
		canon, err := canonicalJSON(data)
		if err != nil {
			return nil, fmt.Errorf("eventstore: canonicalise %s: %w", ev.EventType(), err)
		}
		out[i] = encoded{Type: ev.EventType(), SchemaVersion: sv, Data: canon}
	}
	return out, nil
}
