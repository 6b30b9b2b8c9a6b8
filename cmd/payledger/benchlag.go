package main

import (
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// lagFigure is one projection's lag distribution over a bench run, read
// from the runners' payledger_projection_lag_seconds histogram: the time
// from an event being recorded to its commit into the read model.
type lagFigure struct {
	projection string
	events     uint64
	p50, p99   time.Duration
}

func (f lagFigure) String() string {
	return fmt.Sprintf("%s p50 %s p99 %s (%d events)", f.projection, f.p50.Round(10*time.Microsecond), f.p99.Round(10*time.Microsecond), f.events)
}

// lagHistograms gathers each projection's lag histogram from reg.
func lagHistograms(reg prometheus.Gatherer) (map[string]*dto.Histogram, error) {
	fams, err := reg.Gather()
	if err != nil {
		return nil, err
	}
	out := map[string]*dto.Histogram{}
	for _, fam := range fams {
		if fam.GetName() != "payledger_projection_lag_seconds" {
			continue
		}
		for _, m := range fam.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "projection" {
					out[l.GetValue()] = m.GetHistogram()
				}
			}
		}
	}
	return out, nil
}

// projectionLags reports each projection's lag over what was observed
// between base (nil: the process start) and now, so that a warm-up can be
// left out: histograms only grow, and the difference of two snapshots is
// the histogram of the interval.
func projectionLags(now, base map[string]*dto.Histogram) []lagFigure {
	var out []lagFigure
	for name, h := range now {
		if b := base[name]; b != nil {
			h = subtractHistogram(h, b)
		}
		if h.GetSampleCount() == 0 {
			continue
		}
		out = append(out, lagFigure{
			projection: name, events: h.GetSampleCount(),
			p50: seconds(histogramQuantile(0.50, h)), p99: seconds(histogramQuantile(0.99, h)),
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].projection < out[j].projection })
	return out
}

// subtractHistogram is a - b for two snapshots of one histogram (same
// buckets, b taken first).
func subtractHistogram(a, b *dto.Histogram) *dto.Histogram {
	count := a.GetSampleCount() - b.GetSampleCount()
	sum := a.GetSampleSum() - b.GetSampleSum()
	out := &dto.Histogram{SampleCount: &count, SampleSum: &sum}
	for i, bk := range a.GetBucket() {
		c := bk.GetCumulativeCount()
		if i < len(b.GetBucket()) {
			c -= b.GetBucket()[i].GetCumulativeCount()
		}
		out.Bucket = append(out.Bucket, &dto.Bucket{UpperBound: bk.UpperBound, CumulativeCount: &c})
	}
	return out
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// histogramQuantile estimates the q-quantile the way PromQL's
// histogram_quantile does: find the bucket holding the rank and
// interpolate linearly inside it (the first bucket starts at 0). A rank in
// the +Inf bucket reports the highest finite bound, which is then a lower
// bound of the true value.
func histogramQuantile(q float64, h *dto.Histogram) float64 {
	total := float64(h.GetSampleCount())
	if total == 0 {
		return math.NaN()
	}
	rank := q * total
	lower, below := 0.0, 0.0
	for _, b := range h.GetBucket() {
		upper, cum := b.GetUpperBound(), float64(b.GetCumulativeCount())
		if cum >= rank {
			if cum == below {
				return upper
			}
			return lower + (upper-lower)*(rank-below)/(cum-below)
		}
		lower, below = upper, cum
	}
	return lower
}
