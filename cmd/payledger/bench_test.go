package main

import (
	"bytes"
	"context"
	"regexp"
	"strconv"
	"testing"
)

// TestBenchRate runs the load command end to end on the embedded store at
// a fixed arrival rate after a warm-up: it must count rate × duration
// iterations, none of the warm-up's and not as many as the clients
// manage, all succeeding, and report the lag of every projection.
func TestBenchRate(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	env := &environment{stdout: &out, stderr: &errOut, getenv: func(string) string { return "" }}
	code := run(context.Background(), []string{"bench", "--store", "sqlite", "--clients", "8", "--rate", "40", "--warmup", "500ms", "--duration", "1500ms"}, env)
	if code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out.String(), errOut.String())
	}
	m := regexp.MustCompile(`offered 40/s warmup=500ms duration=\S+: (\d+) invoice creations \+ payment links, .* failures 0\n`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no summary line with the offered rate in:\n%s", out.String())
	}
	// 40/s for 1.5 s schedules 60 iterations; one may fall on the deadline.
	if n, _ := strconv.Atoi(m[1]); n < 59 || n > 60 {
		t.Fatalf("%d iterations at 40/s for 1.5 s, want 60", n)
	}
	if got := regexp.MustCompile(`projection lag during the load: status p50 `).FindString(out.String()); got == "" {
		t.Fatalf("no status lag in:\n%s", out.String())
	}
}
