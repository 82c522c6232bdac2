package eventstore

// Internals the external tests need.
var (
	CanonicalJSON = canonicalJSON
	LegacyHash    = legacyHash
)

// RawMetadata returns the metadata as stored (what the chains hash).
func (e RecordedEvent) RawMetadata() []byte { return e.rawMetadata }

// Recompute returns what the store's chain says e's hash must be.
func (s *Postgres) Recompute(e RecordedEvent) ([]byte, error) { return s.chain.recompute(e) }
