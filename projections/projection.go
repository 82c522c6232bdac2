// Package projections carries events from the event store to the consumers that build read
// models, over watermill's SQL subscriber reading the events table itself. Each projection has a
// stable name, which is its checkpoint identity: renaming one rebuilds it from position 0.
package projections

import (
	"context"

	"github.com/jackc/pgx/v5"

	"mailplane/eventstore"
)

// Projection turns events into a read model. Handle runs inside the transaction that also
// advances the projection's checkpoint, so its writes and the checkpoint commit together; it must
// use tx for every read-model write, and tolerate seeing an event again (a redelivery after a
// crash is rolled back with the checkpoint, but Handle is also run twice in tests to prove it).
type Projection interface {
	Name() string
	Handle(ctx context.Context, tx pgx.Tx, e eventstore.RecordedEvent) error
}
