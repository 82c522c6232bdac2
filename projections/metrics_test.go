package projections_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"mailplane/projections"
)

// gauge gathers the named metric of one projection from reg.
func gauge(t *testing.T, reg *prometheus.Registry, name, projection string) float64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if projection == "" && len(m.GetLabel()) == 0 {
				return m.GetGauge().GetValue()
			}
			for _, l := range m.GetLabel() {
				if l.GetName() == "projection" && l.GetValue() == projection {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	t.Fatalf("no metric %s{projection=%q}", name, projection)
	return 0
}

// The metrics come from the database at scrape time: a process that runs no projection at all
// reports the same truth as the one that does.
func TestMetricsReportWhatTheDatabaseSays(t *testing.T) {
	b := setup(t)
	appendMany(t, b, 3, 2)
	reg := prometheus.NewRegistry()
	require.NoError(t, reg.Register(projections.NewMetrics(b.pool, quiet(), "tally")))

	run(t, b, stopConfig, &tally{name: "tally"})
	waitCaughtUp(t, b, "tally")
	cp, err := checkpointOf(b, "tally")
	require.NoError(t, err)
	require.Equal(t, float64(cp.Position), gauge(t, reg, "mailplane_projection_position", "tally"))
	require.Zero(t, gauge(t, reg, "mailplane_projection_lag_events", "tally"))
	require.Zero(t, gauge(t, reg, "mailplane_projection_lag_seconds", "tally"))
	require.Zero(t, gauge(t, reg, "mailplane_projection_stopped", "tally"))
	require.Zero(t, gauge(t, reg, "mailplane_projection_dead_letters", "tally"))

	rawInsert(t, b.pool, "s-1", "thing", 4, "ThingRenamed", 2)
	appendMany2(t, b)
	waitStopped(t, b, "tally")
	time.Sleep(50 * time.Millisecond)
	require.Equal(t, float64(1), gauge(t, reg, "mailplane_projection_stopped", "tally"))
	require.Equal(t, float64(6), gauge(t, reg, "mailplane_projection_lag_events", "tally"), "the gap and five more")
	require.Greater(t, gauge(t, reg, "mailplane_projection_lag_seconds", "tally"), 0.05)
	require.Equal(t, float64(1), gauge(t, reg, "mailplane_projection_status_up", ""))

	_, err = b.pool.Exec(t.Context(), `INSERT INTO projection_dead_letters (projection, position, stream_id, event_type, error, attempts)
		VALUES ('tally', 1, 's-0', 'ThingRenamed', 'boom', 5)`)
	require.NoError(t, err)
	require.Equal(t, float64(1), gauge(t, reg, "mailplane_projection_dead_letters", "tally"))
}
