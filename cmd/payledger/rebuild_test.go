package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/payledger/payledger/eventstore"
	"github.com/payledger/payledger/internal/pgtest"
	"github.com/payledger/payledger/ledger"
	"github.com/payledger/payledger/projections"
	"github.com/payledger/payledger/projections/status"
)

// TestProjectionsRebuildCommand runs `payledger projections rebuild` on a
// ledger written by the application: it draws the progress line (events,
// rate, ETA), leaves the status read model exactly as live processing
// built it, and names an unknown projection in a usage error.
func TestProjectionsRebuildCommand(t *testing.T) {
	t.Parallel()
	tiers := map[string]func(t *testing.T) map[string]string{
		"sqlite": func(t *testing.T) map[string]string { return map[string]string{"PAYLEDGER_DATA_DIR": t.TempDir()} },
		"postgres": func(t *testing.T) map[string]string {
			return map[string]string{"PAYLEDGER_DATABASE_URL": pgtest.New(t)}
		},
	}
	for name, settings := range tiers {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			vars := settings(t)
			env := func(out, errOut *bytes.Buffer) *environment {
				return &environment{stdout: out, stderr: errOut, getenv: func(k string) string { return vars[k] }}
			}
			ctx := context.Background()
			var sink bytes.Buffer
			a, err := open(ctx, env(&sink, &sink))
			if err != nil {
				t.Fatal(err)
			}
			var last eventstore.Position
			for i := range 25 {
				res, err := a.invoices.Create(ctx, ledger.InvoiceRequest{Amount: "10.00", Currency: "USD", Provider: "sandbox", Description: "rebuild"}, "")
				if err != nil {
					t.Fatal(err)
				}
				last = res.Result.Position
				if i%3 == 0 {
					l, err := a.invoices.IssueLink(ctx, res.State.ID, 0)
					if err != nil {
						t.Fatal(err)
					}
					last = l.Result.Position
				}
			}
			// Wait for the last write itself: on PostgreSQL a catch-up
			// stops at the cluster's horizon, which another package's open
			// transaction may hold behind our writes.
			runCtx, stopRun := context.WithCancel(ctx)
			ran := make(chan struct{})
			go func() { defer close(ran); _ = a.set.Run(runCtx) }()
			wait, stop := context.WithTimeout(ctx, 30*time.Second)
			defer stop()
			if err := a.set.WaitFor(wait, last); err != nil {
				t.Fatal(err)
			}
			before := dumpStatus(t, a)
			stopRun()
			<-ran
			a.Close()
			if len(before) != 25 {
				t.Fatalf("live status model has %d rows, want 25", len(before))
			}

			var out, errOut bytes.Buffer
			if code := run(ctx, []string{"projections", "rebuild", status.Name}, env(&out, &errOut)); code != 0 {
				t.Fatalf("rebuild: exit %d: %s", code, errOut.String())
			}
			for _, want := range []string{"status", "events", "ev/s", "ETA"} {
				if !strings.Contains(errOut.String(), want) {
					t.Fatalf("progress line lacks %q: %q", want, errOut.String())
				}
			}
			if !strings.Contains(out.String(), "rebuilt 1 projection") {
				t.Fatalf("stdout %q", out.String())
			}

			a, err = open(ctx, env(&sink, &sink))
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			after := dumpStatus(t, a)
			for k, v := range before {
				if after[k] != v {
					t.Fatalf("row %s changed by the rebuild:\nlive    %s\nrebuilt %s", k, v, after[k])
				}
			}
			if len(after) != len(before) {
				t.Fatalf("rebuilt %d rows, live had %d", len(after), len(before))
			}

			out.Reset()
			errOut.Reset()
			if code := run(ctx, []string{"projections", "rebuild", "nonesuch"}, env(&out, &errOut)); code == 0 || !strings.Contains(errOut.String(), "nonesuch") {
				t.Fatalf("unknown projection: exit %d, %q", code, errOut.String())
			}
		})
	}
}

func dumpStatus(t *testing.T, a *app) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := a.set.Runner(status.Name).Projection().(projections.Dumper).Dump(ctx, a.be.DB())
	if err != nil {
		t.Fatal(err)
	}
	return d
}
