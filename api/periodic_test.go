package api_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"mailplane/api/apitest"
)

// startupRunDone waits for the run a periodic job makes when the River leader is elected
// (RunOnStart) to finish. Under load the election may come seconds after the Env starts: a run
// that late sees what the test set up meanwhile, or the clock it moved, and acts on its own (a
// GAL resync queued beside the test's request; a certificate renewed before the test looked
// at it as due). The next periodic run is a minute or an hour later.
func startupRunDone(t *testing.T, e *apitest.Env, kind string) {
	t.Helper()
	require.Eventually(t, func() bool {
		var n int
		require.NoError(t, e.Pool.QueryRow(context.Background(), `SELECT count(*) FROM river_job
			WHERE kind = $1 AND state = 'completed'`, kind).Scan(&n))
		return n > 0
	}, 60*time.Second, 20*time.Millisecond, "the periodic %s never ran at start-up", kind)
}
