package eventstore

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"
	"time"

	"github.com/gowebpki/jcs"
)

// GenesisHash is the previous hash of every stream's first event.
var GenesisHash = make([]byte, sha256.Size)

// maxSafeInteger is the largest integer an IEEE double holds exactly (2^53 - 1). RFC 8785
// canonicalises numbers as doubles, so a larger integer would hash like its neighbours: events
// are refused an integer beyond it (I-JSON, RFC 7493), and domain validation keeps every count
// and quota below it. Integral values spelt with an exponent or a fraction are doubles to begin
// with (Go writes float64 fields that way), so hashing them as doubles loses nothing a Go reader
// would see; and a stored integer changed to a neighbour beyond the bound no longer hashes like
// the original, which was within it.
const maxSafeInteger = 1<<53 - 1

// ErrNotIJSON means an event holds an integer RFC 8785 cannot canonicalise faithfully.
var ErrNotIJSON = errors.New("eventstore: not I-JSON")

// canonicalJSON returns the RFC 8785 (JCS) form of a JSON document: object members sorted by
// their UTF-16 code units, no insignificant space, numbers as ECMAScript prints doubles, strings
// with the minimal escapes. PostgreSQL's jsonb keeps values but not their spelling; this form is
// the same whether the data comes from a Go struct or back out of jsonb, so the chain is taken
// over it, and anyone can recompute it from the RFC alone.
func canonicalJSON(raw []byte) ([]byte, error) {
	out, err := jcs.Transform(raw)
	if err != nil {
		return nil, fmt.Errorf("eventstore: canonicalise: %w", err)
	}
	return out, nil
}

// checkIJSON refuses integers spelt beyond ±(2^53 - 1), which a double would round; it runs on
// what is about to be appended.
func checkIJSON(raw []byte) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("eventstore: canonicalise: %w", err)
		}
		n, ok := tok.(json.Number)
		if !ok || strings.ContainsAny(string(n), ".eE") {
			continue
		}
		i, ok := new(big.Int).SetString(string(n), 10)
		if !ok || i.CmpAbs(big.NewInt(maxSafeInteger)) > 0 {
			return fmt.Errorf("%w: integer %s is beyond ±2^53-1", ErrNotIJSON, n)
		}
	}
}

// chainLink is what one event contributes to its stream's hash chain. Everything an auditor
// relies on is in it: where the event sits, what it says, who caused it and when. Only the
// transaction id is left out: a logical restore has to rewrite it (docs/operations.md).
type chainLink struct {
	StreamID      string          `json:"stream_id"`
	StreamType    string          `json:"stream_type"`
	Domain        string          `json:"domain"`
	Version       int             `json:"version"`
	Type          string          `json:"type"`
	SchemaVersion int             `json:"schema_version"`
	Data          json.RawMessage `json:"data"`
	Metadata      json.RawMessage `json:"metadata"`
	RecordedAt    string          `json:"recorded_at"`
}

// timeFormat fixes recorded_at to the microsecond precision PostgreSQL keeps.
const timeFormat = "2006-01-02T15:04:05.000000Z"

// chain computes the keyed hash chain: HMAC-SHA-256(key, prev ‖ JCS(link)). The key is derived
// from the master key, which is not in the database, so whoever holds only the database cannot
// recompute a chain after changing an event.
type chain struct {
	key []byte
}

// link returns the hash of one event given its predecessor's.
func (c chain) link(prev []byte, l chainLink) ([]byte, error) {
	b, err := json.Marshal(l)
	if err != nil {
		return nil, err
	}
	canon, err := canonicalJSON(b)
	if err != nil {
		return nil, err
	}
	m := hmac.New(sha256.New, c.key)
	m.Write(prev)
	m.Write(canon)
	return m.Sum(nil), nil
}

// recompute hashes a stored event (not upcast) as read back.
func (c chain) recompute(e RecordedEvent) ([]byte, error) {
	return c.link(e.PrevHash, chainLink{
		StreamID: e.StreamID, StreamType: e.StreamType, Domain: e.Domain, Version: e.Version,
		Type: e.Type, SchemaVersion: e.SchemaVersion, Data: e.Data, Metadata: e.rawMetadata,
		RecordedAt: formatTime(e.RecordedAt),
	})
}

func formatTime(t time.Time) string { return t.UTC().Format(timeFormat) }

// now returns the current time at the precision PostgreSQL stores.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }
