package eventstore

import (
	"bytes"
	"context"
	"encoding/json"
	"sort"
	"sync"
	"time"
)

// Memory is an in-process event store with the same semantics as Postgres, for tests of code
// that only needs a Store. Every append is its own transaction, so the global order is simply
// the append order.
type Memory struct {
	mu       sync.Mutex
	registry *Registry
	settings
	chain    chain
	requests requestHasher
	events   []RecordedEvent
	streams  map[string][]int // stream id → indexes into events
	keys     map[[2]string]memoryKey
}

type memoryKey struct {
	hash   []byte
	result AppendResult
	at     time.Time
}

// NewMemory returns an empty in-memory store.
func NewMemory(registry *Registry, opts ...Option) *Memory {
	st := newSettings(opts)
	return &Memory{
		registry: registry,
		settings: st,
		chain:    st.chain(),
		requests: st.requests(),
		streams:  make(map[string][]int),
		keys:     make(map[[2]string]memoryKey),
	}
}

// Append implements Store.
func (m *Memory) Append(_ context.Context, stream Stream, expected ExpectedVersion, meta Metadata, events ...Event) (AppendResult, error) {
	enc, err := encode(events)
	if err != nil {
		return AppendResult{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()

	key := [2]string{meta.Actor, meta.IdempotencyKey}
	var reqHash []byte
	if meta.IdempotencyKey != "" {
		reqHash = meta.RequestHash
		if reqHash == nil {
			reqHash = m.requests.events(stream, enc)
		}
		if k, ok := m.keys[key]; ok && m.clock().Sub(k.at) < m.idempotencyTTL {
			if !bytes.Equal(k.hash, reqHash) {
				return AppendResult{}, ErrIdempotencyMismatch
			}
			res := k.result
			res.Replayed = true
			return res, nil
		}
	}

	idx := m.streams[stream.ID]
	version, prevHash := 0, GenesisHash
	var prevAt time.Time
	if len(idx) > 0 {
		last := m.events[idx[len(idx)-1]]
		version, prevHash, prevAt = last.Version, last.Hash, last.RecordedAt
	}
	if expected != Any && int(expected) != version {
		return AppendResult{}, &ConcurrencyError{StreamID: stream.ID, Expected: expected}
	}
	metaJSON, err := json.Marshal(meta)
	if err != nil {
		return AppendResult{}, err
	}
	if metaJSON, err = canonicalJSON(metaJSON); err != nil {
		return AppendResult{}, err
	}
	at := m.stamp(prevAt)
	txid := uint64(len(m.events) + 1)
	res := AppendResult{StreamID: stream.ID, FirstVersion: version + 1, TransactionID: txid, RecordedAt: at}
	for _, e := range enc {
		version++
		h, err := m.chain.link(prevHash, chainLink{
			StreamID: stream.ID, StreamType: stream.Type, Domain: stream.Domain, Version: version,
			Type: e.Type, SchemaVersion: e.SchemaVersion, Data: e.Data, Metadata: metaJSON,
			RecordedAt: formatTime(at),
		})
		if err != nil {
			return AppendResult{}, err
		}
		rec := RecordedEvent{
			Position: int64(len(m.events) + 1), TransactionID: txid, StreamID: stream.ID,
			StreamType: stream.Type, Domain: stream.Domain, Version: version, Type: e.Type,
			SchemaVersion: e.SchemaVersion, Data: e.Data, Metadata: meta, RecordedAt: at,
			PrevHash: prevHash, Hash: h, rawMetadata: metaJSON,
		}
		m.streams[stream.ID] = append(m.streams[stream.ID], len(m.events))
		m.events = append(m.events, rec)
		prevHash = h
		res.LastPosition = rec.Position
	}
	res.LastVersion = version
	if meta.IdempotencyKey != "" {
		m.keys[key] = memoryKey{hash: reqHash, result: res, at: at}
	}
	return res, nil
}

// Load implements Store.
func (m *Memory) Load(_ context.Context, streamID string, opts LoadOptions) ([]RecordedEvent, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	upTo := opts.UpToVersion
	if !opts.AsOf.IsZero() {
		// The largest version recorded at or before the moment, as the Postgres store does.
		asOf := 0
		for _, i := range m.streams[streamID] {
			if e := m.events[i]; !e.RecordedAt.After(opts.AsOf) && e.Version > asOf {
				asOf = e.Version
			}
		}
		if upTo == 0 || asOf < upTo {
			upTo = asOf
		}
		if upTo == 0 {
			return nil, nil
		}
	}
	var out []RecordedEvent
	for _, i := range m.streams[streamID] {
		e := m.events[i]
		if upTo > 0 && e.Version > upTo {
			break
		}
		if opts.SkipMetadata {
			e.Metadata = Metadata{}
		}
		out = append(out, e)
	}
	return m.upcastAll(out)
}

// ReadAll implements Store.
func (m *Memory) ReadAll(ctx context.Context, after Position, limit int) ([]RecordedEvent, error) {
	return m.ReadWindow(ctx, time.Time{}, time.Time{}, after, limit)
}

// ReadWindow implements Store; zero times leave that side open.
func (m *Memory) ReadWindow(_ context.Context, from, to time.Time, after Position, limit int) ([]RecordedEvent, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []RecordedEvent
	for _, e := range m.events {
		if !after.Less(e.GlobalPosition()) {
			continue
		}
		if (!from.IsZero() && e.RecordedAt.Before(from)) || (!to.IsZero() && !e.RecordedAt.Before(to)) {
			continue
		}
		out = append(out, e)
		if len(out) == limit {
			break
		}
	}
	return m.upcastAll(out)
}

// Verify implements Store.
func (m *Memory) Verify(context.Context) (VerifyReport, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ids := make([]string, 0, len(m.streams))
	for id := range m.streams {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	c := chainChecker{chain: m.chain}
	for _, id := range ids {
		for _, i := range m.streams[id] {
			c.check(m.events[i])
		}
	}
	return c.report, nil
}

func (m *Memory) upcastAll(events []RecordedEvent) ([]RecordedEvent, error) {
	if m.registry == nil {
		return events, nil
	}
	for i := range events {
		var err error
		events[i].Data, events[i].SchemaVersion, err = m.registry.Upcast(events[i].Type, events[i].SchemaVersion, events[i].Data)
		if err != nil {
			return nil, err
		}
	}
	return events, nil
}
