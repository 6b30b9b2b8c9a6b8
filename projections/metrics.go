package projections

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the runners' Prometheus collectors, labelled by projection.
type Metrics struct {
	// Lag is the time from an event's RecordedAt to its commit into the
	// read model (the end-to-end delay a reader sees).
	Lag *prometheus.HistogramVec
	// LastLag is the lag of the last applied batch's newest event.
	LastLag *prometheus.GaugeVec
	// Events counts applied events.
	Events *prometheus.CounterVec
}

// NewMetrics creates the collectors and registers them with reg (nil: not
// registered, e.g. in tests that build many Sets).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Lag: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "payledger_projection_lag_seconds",
			Help: "Time from an event being recorded to its projection commit.",
			// Finer around the 100 ms target: between 50 and 250 ms a
			// quantile is interpolated inside one bucket, and a p99 of
			// 160 ms read as 240 ms.
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .075, .1, .125, .15, .2, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"projection"}),
		LastLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "payledger_projection_last_lag_seconds",
			Help: "Lag of the newest event of the last committed batch.",
		}, []string{"projection"}),
		Events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "payledger_projection_events_total",
			Help: "Events applied by a projection.",
		}, []string{"projection"}),
	}
	if reg != nil {
		reg.MustRegister(m.Lag, m.LastLag, m.Events)
	}
	return m
}
