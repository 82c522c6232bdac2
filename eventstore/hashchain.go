package eventstore

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"
)

// GenesisHash is the previous hash of every stream's first event.
var GenesisHash = make([]byte, sha256.Size)

// canonicalJSON re-encodes a JSON document in one deterministic form: object keys sorted, no
// insignificant space, numbers in their shortest form. PostgreSQL's jsonb keeps values but not
// their spelling, so the hash is taken over this form, which the same data always produces
// whether it comes from a Go struct or back out of jsonb.
func canonicalJSON(raw []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	v, err := normaliseNumbers(v)
	if err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

func normaliseNumbers(v any) (any, error) {
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
			n, err := normaliseNumbers(e)
			if err != nil {
				return nil, err
			}
			x[k] = n
		}
	case []any:
		for i, e := range x {
			n, err := normaliseNumbers(e)
			if err != nil {
				return nil, err
			}
			x[i] = n
		}
	}
	return v, nil
}

// chainLink is what one event contributes to its stream's hash chain. Everything an auditor
// relies on is in it: where the event sits, what it says, who caused it and when.
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

// linkHash returns SHA-256(prev ‖ canonical event). data and metadata must be canonical JSON.
func linkHash(prev []byte, l chainLink) ([]byte, error) {
	b, err := json.Marshal(l)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	h.Write(prev)
	h.Write(b)
	return h.Sum(nil), nil
}

// recomputeHash hashes a stored event (not upcast) as read back.
func recomputeHash(e RecordedEvent) ([]byte, error) {
	data, err := canonicalJSON(e.Data)
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	meta, err := canonicalJSON(e.rawMetadata)
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	return linkHash(e.PrevHash, chainLink{
		StreamID: e.StreamID, StreamType: e.StreamType, Domain: e.Domain, Version: e.Version,
		Type: e.Type, SchemaVersion: e.SchemaVersion, Data: data, Metadata: meta,
		RecordedAt: formatTime(e.RecordedAt),
	})
}

func formatTime(t time.Time) string { return t.UTC().Format(timeFormat) }

// now returns the current time at the precision PostgreSQL stores.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }
