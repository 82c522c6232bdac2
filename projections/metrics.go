package projections

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// metricsTimeout bounds the queries of one scrape.
const metricsTimeout = 5 * time.Second

// Metrics is a prometheus.Collector that reads, at scrape time, what the database says of each
// projection. Any process serving /metrics then tells the same truth, whether it runs the
// projections or not, where a counter kept by the running process would go silent with it.
type Metrics struct {
	pool   *pgxpool.Pool
	logger *slog.Logger
	names  []string

	position, lagEvents, lagSeconds, deadLetters, stopped, up *prometheus.Desc
}

// NewMetrics returns the collector for the named projections.
func NewMetrics(pool *pgxpool.Pool, logger *slog.Logger, names ...string) *Metrics {
	label := []string{"projection"}
	return &Metrics{
		pool: pool, logger: logger, names: names,
		position: prometheus.NewDesc("mailplane_projection_position",
			"Global position of the last event the projection's checkpoint has passed.", label, nil),
		lagEvents: prometheus.NewDesc("mailplane_projection_lag_events",
			"Events after the projection's checkpoint (counted up to 1,000,000).", label, nil),
		lagSeconds: prometheus.NewDesc("mailplane_projection_lag_seconds",
			"Age of the oldest event the projection has not handled yet (0 when caught up).", label, nil),
		deadLetters: prometheus.NewDesc("mailplane_projection_dead_letters",
			"Unresolved dead letters of the projection.", label, nil),
		stopped: prometheus.NewDesc("mailplane_projection_stopped",
			"1 while the projection is stopped until an operator resumes it.", label, nil),
		up: prometheus.NewDesc("mailplane_projection_status_up",
			"1 if the projections' state could be read from the database for this scrape.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.position, m.lagEvents, m.lagSeconds, m.deadLetters, m.stopped, m.up} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), metricsTimeout)
	defer cancel()
	infos, err := Inspect(ctx, m.pool, m.names...)
	if err != nil {
		// Reported as a metric rather than a failed scrape, which would hide every other metric
		// of the process.
		m.logger.Error("projection metrics", "err", err)
		ch <- prometheus.MustNewConstMetric(m.up, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(m.up, prometheus.GaugeValue, 1)
	for _, in := range infos {
		stopped := 0.0
		if in.State == StateStopped {
			stopped = 1
		}
		ch <- prometheus.MustNewConstMetric(m.position, prometheus.GaugeValue, float64(in.Position), in.Name)
		ch <- prometheus.MustNewConstMetric(m.lagEvents, prometheus.GaugeValue, float64(in.LagEvents), in.Name)
		ch <- prometheus.MustNewConstMetric(m.lagSeconds, prometheus.GaugeValue, in.LagSeconds, in.Name)
		ch <- prometheus.MustNewConstMetric(m.deadLetters, prometheus.GaugeValue, float64(in.DeadLetters), in.Name)
		ch <- prometheus.MustNewConstMetric(m.stopped, prometheus.GaugeValue, stopped, in.Name)
	}
}
