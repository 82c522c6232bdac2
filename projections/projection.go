// Package projections carries events from the event store to the consumers that build read
// models, over watermill's SQL subscriber reading the events table itself. Each projection has a
// stable name, which is its checkpoint identity: renaming one rebuilds it from position 0.
package projections

import (
	"context"
	"slices"

	"github.com/jackc/pgx/v5"

	"mailplane/eventstore"
)

// Projection turns events into a read model. Handle runs inside the transaction that also
// advances the projection's checkpoint, so its writes and the checkpoint commit together; it must
// use tx for every read-model write, and tolerate seeing an event again (a redelivery after a
// crash is rolled back with the checkpoint, but Handle is also run twice in tests to prove it).
//
// Handle returns an error wrapping ErrOutOfOrder or ErrUnknownMeaning (or
// eventstore.ErrUnknownEvent) when the event cannot follow what its read model holds or cannot
// be understood: the runner then stops the projection until an operator resumes it, where any
// other error is retried and, failing that, parked.
type Projection interface {
	Name() string
	// StreamTypes lists the stream types whose events the projection is handed (nil: every
	// stream type). On these, the runner checks each event's order and meaning before Handle
	// sees it; the events of other stream types pass the projection by.
	StreamTypes() []string
	Handle(ctx context.Context, tx pgx.Tx, e eventstore.RecordedEvent) error
}

// handles reports whether p is handed events of the stream type.
func handles(types []string, streamType string) bool {
	return types == nil || slices.Contains(types, streamType)
}
