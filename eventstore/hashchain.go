package eventstore

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

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
// what is about to be appended (json.Marshal's output, so valid JSON). It scans the bytes for
// number tokens outside strings rather than decoding: the append path runs it for every event.
func checkIJSON(raw []byte) error {
	inString, escaped := false, false
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '-' || (c >= '0' && c <= '9'):
			j := i + 1
			integer := true
			for j < len(raw) && strings.IndexByte("0123456789.eE+-", raw[j]) >= 0 {
				if raw[j] == '.' || raw[j] == 'e' || raw[j] == 'E' {
					integer = false
				}
				j++
			}
			// 16 characters hold every integer up to ±999,999,999,999,999 (< 2^53).
			if integer && j-i > 15 {
				n, ok := new(big.Int).SetString(string(raw[i:j]), 10)
				if !ok || n.CmpAbs(big.NewInt(maxSafeInteger)) > 0 {
					return fmt.Errorf("%w: integer %s is beyond ±2^53-1", ErrNotIJSON, raw[i:j])
				}
			}
			i = j - 1
		}
	}
	return nil
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

// link returns the hash of one event given its predecessor's. The link's data and metadata
// must be in RFC 8785 form already (encode and recompute make them so).
func (c chain) link(prev []byte, l chainLink) ([]byte, error) {
	canon, err := l.canonical()
	if err != nil {
		return nil, err
	}
	m := hmac.New(sha256.New, c.key)
	m.Write(prev)
	m.Write(canon)
	return m.Sum(nil), nil
}

// canonical is the link in RFC 8785 form. Its members are known, so it is written directly —
// names in their sorted order, strings with JCS's escapes, data and metadata as they are —
// rather than marshalled and canonicalised again, which parsed every event's data a second time
// on the append path. A string that is not valid UTF-8 takes the general way (and fails there).
func (l chainLink) canonical() ([]byte, error) {
	strs := []string{l.Domain, l.RecordedAt, l.StreamID, l.StreamType, l.Type}
	for _, s := range strs {
		if !utf8.ValidString(s) {
			b, err := json.Marshal(l)
			if err != nil {
				return nil, err
			}
			return canonicalJSON(b)
		}
	}
	b := make([]byte, 0, 160+len(l.Data)+len(l.Metadata)+len(l.StreamID))
	b = append(b, `{"data":`...)
	b = append(b, l.Data...)
	b = append(b, `,"domain":`...)
	b = jcsString(b, l.Domain)
	b = append(b, `,"metadata":`...)
	b = append(b, l.Metadata...)
	b = append(b, `,"recorded_at":`...)
	b = jcsString(b, l.RecordedAt)
	b = append(b, `,"schema_version":`...)
	b = strconv.AppendInt(b, int64(l.SchemaVersion), 10)
	b = append(b, `,"stream_id":`...)
	b = jcsString(b, l.StreamID)
	b = append(b, `,"stream_type":`...)
	b = jcsString(b, l.StreamType)
	b = append(b, `,"type":`...)
	b = jcsString(b, l.Type)
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, int64(l.Version), 10)
	return append(b, '}'), nil
}

// jcsString appends s as RFC 8785 writes a string (§3.2.2.2): quotation mark and reverse
// solidus escaped, control characters as \b \t \n \f \r or \u00xx, everything else as it is.
func jcsString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\b':
			b = append(b, '\\', 'b')
		case c == '\t':
			b = append(b, '\\', 't')
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\f':
			b = append(b, '\\', 'f')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// recompute hashes a stored event (not upcast) as read back.
func (c chain) recompute(e RecordedEvent) ([]byte, error) {
	data, err := canonicalJSON(e.Data)
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	meta, err := canonicalJSON(e.rawMetadata)
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	return c.link(e.PrevHash, chainLink{
		StreamID: e.StreamID, StreamType: e.StreamType, Domain: e.Domain, Version: e.Version,
		Type: e.Type, SchemaVersion: e.SchemaVersion, Data: data, Metadata: meta,
		RecordedAt: formatTime(e.RecordedAt),
	})
}

func formatTime(t time.Time) string { return t.UTC().Format(timeFormat) }

// now returns the current time at the precision PostgreSQL stores.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }
