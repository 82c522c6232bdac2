package projections

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
)

// backoff decides how long the subscriber sleeps between polls. While events keep arriving it
// polls again almost at once, so a reader waiting for its write waits milliseconds; once the
// events stop for a while it falls back to the configured idle interval, which bounds how much
// an idle projection queries the database.
type backoff struct {
	idle, busy, retry time.Duration
	// busyFor is how long after the last event polling stays fast.
	busyFor time.Duration
	last    atomic.Int64 // unix nanos of the last non-empty poll
}

// HandleError implements watermill-sql's BackoffManager.
func (b *backoff) HandleError(logger watermill.LoggerAdapter, noMsg bool, err error) time.Duration {
	now := time.Now()
	switch {
	case errors.Is(err, context.Canceled):
		// The projection is stopping (shutdown, a lost lease): nothing went wrong, and an error
		// in the log would send an operator looking for one.
		return b.retry
	case err != nil:
		logger.Error("Error querying for events", err, watermill.LogFields{"wait_time": b.retry})
		return b.retry
	case !noMsg:
		b.last.Store(now.UnixNano())
		return 0
	case now.Sub(time.Unix(0, b.last.Load())) < b.busyFor:
		return b.busy
	}
	return b.idle
}
