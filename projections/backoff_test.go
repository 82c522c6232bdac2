package projections

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/stretchr/testify/require"
)

// errorCounter is a watermill logger that counts what is logged at error level.
type errorCounter struct {
	watermill.LoggerAdapter
	errors int
}

func (c *errorCounter) Error(string, error, watermill.LogFields) { c.errors++ }

// A poll cut short because the projection is stopping is not an error in the log (the load
// runs counted one at every shutdown); a failing poll still is, and both wait the retry pause.
func TestBackoffLogsOnlyRealErrors(t *testing.T) {
	b := &backoff{idle: 25 * time.Millisecond, busy: 2 * time.Millisecond, retry: time.Second, busyFor: time.Second}
	log := &errorCounter{LoggerAdapter: watermill.NopLogger{}}
	stopping := fmt.Errorf("could not begin tx for querying: %w", context.Canceled)
	require.Equal(t, time.Second, b.HandleError(log, true, stopping))
	require.Zero(t, log.errors)
	require.Equal(t, time.Second, b.HandleError(log, true, errors.New("connection refused")))
	require.Equal(t, 1, log.errors)
	require.Zero(t, b.HandleError(log, false, nil))
	require.Equal(t, 2*time.Millisecond, b.HandleError(log, true, nil))
}
