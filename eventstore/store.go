package eventstore

import (
	"context"
	"time"
)

// Store is what every event store implementation offers; the conformance suite in
// eventstoretest runs against this interface. The Postgres store adds transactional variants.
type Store interface {
	Append(ctx context.Context, stream Stream, expected ExpectedVersion, meta Metadata, events ...Event) (AppendResult, error)
	Load(ctx context.Context, streamID string, opts LoadOptions) ([]RecordedEvent, error)
	ReadAll(ctx context.Context, after Position, limit int) ([]RecordedEvent, error)
	ReadWindow(ctx context.Context, from, to time.Time, after Position, limit int) ([]RecordedEvent, error)
	Verify(ctx context.Context) (VerifyReport, error)
}

var (
	_ Store = (*Postgres)(nil)
	_ Store = (*Memory)(nil)
)
