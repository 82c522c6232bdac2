package eventstore

import (
	"bytes"
	"context"
	"fmt"
)

// BrokenLink is the first event of a stream whose chain does not hold.
type BrokenLink struct {
	StreamID string
	Version  int
	Position int64
	Reason   string
}

func (b BrokenLink) String() string {
	return fmt.Sprintf("stream %s version %d (position %d): %s", b.StreamID, b.Version, b.Position, b.Reason)
}

// VerifyReport sums up a walk over every hash chain.
type VerifyReport struct {
	Streams int
	Events  int
	// Broken holds the first broken link of each stream that has one.
	Broken []BrokenLink
	// RekeyPending is true while chains from before keyed hashing wait to be re-keyed: they
	// were checked with nothing but their structure, since this store's key did not make them.
	RekeyPending bool
}

// OK reports whether every chain held.
func (r VerifyReport) OK() bool { return len(r.Broken) == 0 && !r.RekeyPending }

// chainChecker follows one stream at a time through events given in (stream, version) order.
type chainChecker struct {
	chain   chain
	report  VerifyReport
	stream  string
	version int
	hash    []byte
	broken  bool
}

func (c *chainChecker) check(e RecordedEvent) {
	c.report.Events++
	if e.StreamID != c.stream {
		c.report.Streams++
		c.stream, c.version, c.hash, c.broken = e.StreamID, 0, GenesisHash, false
	}
	if c.broken {
		return
	}
	fail := func(format string, args ...any) {
		c.broken = true
		c.report.Broken = append(c.report.Broken, BrokenLink{
			StreamID: e.StreamID, Version: e.Version, Position: e.Position, Reason: fmt.Sprintf(format, args...),
		})
	}
	switch {
	case e.Version != c.version+1:
		fail("expected version %d: an event is missing", c.version+1)
	case !bytes.Equal(e.PrevHash, c.hash):
		fail("previous hash does not match the hash of version %d", c.version)
	default:
		h, err := c.chain.recompute(e)
		if err != nil {
			fail("cannot canonicalise: %v", err)
		} else if !bytes.Equal(h, e.Hash) {
			fail("content does not match its hash: the event was changed")
		}
	}
	c.version, c.hash = e.Version, e.Hash
}

// Verify walks every stream's hash chain and reports the first broken link of each.
func (s *Postgres) Verify(ctx context.Context) (VerifyReport, error) {
	pending, err := s.RekeyPending(ctx)
	if err != nil {
		return VerifyReport{}, fmt.Errorf("eventstore: verify: %w", err)
	}
	if pending {
		return VerifyReport{RekeyPending: true}, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT `+selectColumns+` FROM events ORDER BY stream_id, stream_version`)
	if err != nil {
		return VerifyReport{}, fmt.Errorf("eventstore: verify: %w", err)
	}
	defer rows.Close()
	c := chainChecker{chain: s.chain}
	for rows.Next() {
		e, err := scanRaw(rows, true)
		if err != nil {
			return c.report, err
		}
		c.check(e)
	}
	if err := rows.Err(); err != nil {
		return c.report, fmt.Errorf("eventstore: verify: %w", err)
	}
	return c.report, nil
}
