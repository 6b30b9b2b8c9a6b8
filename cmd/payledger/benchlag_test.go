package main

import (
	"math"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The estimate must land in the bucket that holds the rank, interpolated
// as PromQL does, so a reported p99 under 100 ms really means that at most
// 1 % of events took longer than the 0.1 s bucket bound allows.
func TestHistogramQuantile(t *testing.T) {
	tests := []struct {
		name    string
		observe []float64
		q       float64
		want    float64
	}{
		{"all in first bucket", []float64{0.0005, 0.0005, 0.0005, 0.0005}, 0.5, 0.0005},
		{"interpolated inside a bucket", []float64{0.003, 0.003, 0.004, 0.004}, 0.5, 0.0025 + (0.005-0.0025)*0.5},
		{"tail bucket", append(repeat(0.002, 99), 0.2), 0.99, 0.0025},
		{"p99 reaches the slow tail", append(repeat(0.002, 98), 0.2, 0.2), 0.99, 0.1 + (0.25-0.1)*0.5},
		{"beyond the last bound", []float64{40, 40}, 0.5, 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			h := prometheus.NewHistogramVec(prometheus.HistogramOpts{
				Name:    "payledger_projection_lag_seconds",
				Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
			}, []string{"projection"})
			reg.MustRegister(h)
			// A warm-up observed before the baseline must not count.
			h.WithLabelValues("status").Observe(20)
			base, err := lagHistograms(reg)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range tt.observe {
				h.WithLabelValues("status").Observe(v)
			}
			now, err := lagHistograms(reg)
			if err != nil {
				t.Fatal(err)
			}
			got := projectionLags(now, base)
			if len(got) != 1 {
				t.Fatalf("projectionLags = %v", got)
			}
			if got[0].projection != "status" || got[0].events != uint64(len(tt.observe)) {
				t.Fatalf("figure = %+v", got[0])
			}
			want := map[float64]time.Duration{0.5: got[0].p50, 0.99: got[0].p99}[tt.q]
			if d := math.Abs(want.Seconds() - tt.want); d > 1e-6 {
				t.Errorf("q%.2f = %v, want %vs", tt.q, want, tt.want)
			}
		})
	}
}

func repeat(v float64, n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = v
	}
	return out
}
