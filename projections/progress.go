package projections

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// ProgressPrinter returns a progress callback for Rebuild that draws a
// one-line bar on w (a terminal): events done/total, events per second and
// the estimated time left. It redraws at most every 100 ms and ends the
// line when done reaches total.
func ProgressPrinter(w io.Writer, name string) func(done, total int) {
	start := time.Now()
	var last time.Time
	return func(done, total int) {
		now := time.Now()
		finished := total >= 0 && done >= total
		if !finished && now.Sub(last) < 100*time.Millisecond {
			return
		}
		last = now
		el := now.Sub(start).Seconds()
		rate := 0.0
		if el > 0 {
			rate = float64(done) / el
		}
		if total < 0 {
			fmt.Fprintf(w, "\r%-14s %10d events  %9.0f ev/s", name, done, rate)
			return
		}
		const width = 30
		frac := 1.0
		if total > 0 {
			frac = float64(done) / float64(total)
		}
		bar := strings.Repeat("#", int(frac*width)) + strings.Repeat(".", width-int(frac*width))
		eta := "--"
		if rate > 0 && done < total {
			eta = (time.Duration(float64(total-done) / rate * float64(time.Second))).Round(time.Second).String()
		}
		fmt.Fprintf(w, "\r%-14s [%s] %d/%d events  %.0f ev/s  ETA %s ", name, bar, done, total, rate, eta)
		if finished {
			fmt.Fprintln(w)
		}
	}
}
