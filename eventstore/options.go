package eventstore

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"
)

// Option configures a store.
type Option func(*settings)

type settings struct {
	secret         []byte
	clock          func() time.Time
	idempotencyTTL time.Duration
}

// DefaultIdempotencyTTL is how long an idempotency key is remembered.
const DefaultIdempotencyTTL = 24 * time.Hour

// WithKey gives the store its secret: 32 bytes derived from the master key
// (keyring.Derive(master, KeyPurpose)). The chain key and the request-hash key are derived from
// it. Without it the store uses a public constant, which is only good for tests: `mailplane
// verify`, which always uses the real key, then reports every such chain as tampered with.
func WithKey(secret []byte) Option {
	return func(s *settings) { s.secret = append([]byte(nil), secret...) }
}

// KeyPurpose is what the store's secret is derived for (keyring.Derive).
const KeyPurpose = "event store v1"

// WithClock replaces the clock that stamps recorded_at (tests simulate skew with it).
func WithClock(clock func() time.Time) Option {
	return func(s *settings) { s.clock = clock }
}

// WithIdempotencyTTL sets how long an idempotency key is remembered (default 24 h). An older
// record no longer answers a repeat; the cleanup job deletes it.
func WithIdempotencyTTL(d time.Duration) Option {
	return func(s *settings) { s.idempotencyTTL = d }
}

func newSettings(opts []Option) settings {
	s := settings{secret: []byte("mailplane: no key configured (tests only)"), clock: now, idempotencyTTL: DefaultIdempotencyTTL}
	for _, o := range opts {
		o(&s)
	}
	return s
}

func (s settings) subkey(purpose string) []byte {
	m := hmac.New(sha256.New, s.secret)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

func (s settings) chain() chain { return chain{key: s.subkey("hash chain")} }

// stamp returns the time to record events at: now, but never before the stream's previous
// event, so that recorded_at never goes backwards within a stream even when this process's
// clock is behind the one that wrote before it.
func (s settings) stamp(prev time.Time) time.Time {
	at := s.clock().UTC().Truncate(time.Microsecond)
	if at.Before(prev) {
		return prev
	}
	return at
}

// requestHasher keys request fingerprints, so that a stored fingerprint cannot confirm a guess
// of what the request held.
type requestHasher struct {
	key []byte
}

func (s settings) requests() requestHasher { return requestHasher{key: s.subkey("request hash")} }

// sum hashes the parts, each length-prefixed so that no two lists of parts collide.
func (h requestHasher) sum(parts ...[]byte) []byte {
	m := hmac.New(sha256.New, h.key)
	var n [8]byte
	for _, p := range parts {
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		m.Write(n[:])
		m.Write(p)
	}
	return m.Sum(nil)
}

// events fingerprints an append by what it writes, for callers that give no request hash.
func (h requestHasher) events(stream Stream, enc []encoded) []byte {
	parts := [][]byte{[]byte(stream.ID), []byte(stream.Type)}
	for _, e := range enc {
		parts = append(parts, []byte(e.Type), []byte(fmt.Sprint(e.SchemaVersion)), e.Data)
	}
	return h.sum(parts...)
}
