package webhook_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sort"
	"testing"
	"time"

	"github.com/payledger/payledger/adapters/webhook"
	"github.com/payledger/payledger/eventstore"
	"github.com/payledger/payledger/projections"
	"github.com/payledger/payledger/projections/outbox"
	"github.com/payledger/payledger/projections/projectiontest"
)

// benchNode wires store, outbox and sender for a benchmark (no *testing.T
// helpers: those need a test).
func benchNode(b *testing.B, be projections.Backend, url string) (*webhook.Store, *projections.Set, *webhook.Sender) {
	b.Helper()
	ctx := context.Background()
	store, err := webhook.NewStore(ctx, be, nil)
	if err != nil {
		b.Fatal(err)
	}
	set, err := projections.NewSet(be, projections.Options{}, outbox.New(be, store))
	if err != nil {
		b.Fatal(err)
	}
	if err := set.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	sender, err := webhook.NewSender(webhook.SenderOptions{DB: be, Endpoints: store, Guard: webhook.Guard{AllowPrivate: true}, MaxPoll: 100 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	set.Runner(outbox.Name).OnCommit(func([]eventstore.RecordedEvent) { sender.Wake() })
	if _, err := store.Create(ctx, webhook.NewEndpoint{URL: url, Format: outbox.FormatStandard, Events: []string{"*"}}); err != nil {
		b.Fatal(err)
	}
	return store, set, sender
}

func benchBackends(b *testing.B, fn func(b *testing.B, be projections.Backend)) {
	for _, name := range []string{"sqlite", "postgres"} {
		b.Run(name, func(b *testing.B) {
			if name == "sqlite" {
				fn(b, projectiontest.SQLite(b))
			} else {
				fn(b, projectiontest.Postgres(b))
			}
		})
	}
}

func okReceiver(b *testing.B) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	b.Cleanup(srv.Close)
	return srv.URL + "/hook"
}

func pending(b *testing.B, be projections.Backend) int {
	var n int
	if err := be.DB().QueryRowx(`SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'pending'`).Scan(&n); err != nil {
		b.Fatal(err)
	}
	return n
}

// BenchmarkDeliveryThroughput: a backlog of queued deliveries drained to a
// local receiver; one op is one delivery. Run with -benchtime=4000x.
func BenchmarkDeliveryThroughput(b *testing.B) {
	benchBackends(b, func(b *testing.B, be projections.Backend) {
		ctx := context.Background()
		_, set, sender := benchNode(b, be, okReceiver(b))
		// Generate's histories publish about four events per invoice.
		ids, err := projectiontest.Generate(ctx, be, b.N/4+1, time.Now())
		if err != nil {
			b.Fatal(err)
		}
		projectiontest.Settle(b, be, ids)
		if err := set.CatchUp(ctx); err != nil {
			b.Fatal(err)
		}
		queued := pending(b, be)
		b.ResetTimer()
		start := time.Now()
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); _ = sender.Run(runCtx) }()
		for pending(b, be) > 0 {
			time.Sleep(5 * time.Millisecond)
		}
		elapsed := time.Since(start)
		b.StopTimer()
		cancel()
		<-done
		b.ReportMetric(float64(queued)/elapsed.Seconds(), "deliveries/s")
		b.ReportMetric(float64(queued), "deliveries")
	})
}

// BenchmarkCommitToFirstAttempt: invoices are appended at a steady pace
// while the projection and the sender run; reported are percentiles of
// the time from an event's commit (its recorded_at) to the start of its
// first delivery attempt. One op is one invoice; run with -benchtime=1000x.
func BenchmarkCommitToFirstAttempt(b *testing.B) {
	benchBackends(b, func(b *testing.B, be projections.Backend) {
		ctx := context.Background()
		_, set, sender := benchNode(b, be, okReceiver(b))
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan struct{}, 2)
		go func() { _ = set.Run(runCtx); done <- struct{}{} }()
		go func() { _ = sender.Run(runCtx); done <- struct{}{} }()
		b.ResetTimer()
		const per = 5 // invoices every 10 ms: 500 invoices/s, ~2,000 events/s
		var ids []string
		tick := time.NewTicker(10 * time.Millisecond)
		for n := 0; n < b.N; n += per {
			<-tick.C
			more, err := projectiontest.Generate(ctx, be, min(per, b.N-n), time.Now())
			if err != nil {
				b.Fatal(err)
			}
			ids = append(ids, more...)
		}
		tick.Stop()
		pos := projectiontest.Settle(b, be, ids)
		if err := set.WaitFor(ctx, pos); err != nil {
			b.Fatal(err)
		}
		for pending(b, be) > 0 {
			time.Sleep(5 * time.Millisecond)
		}
		b.StopTimer()
		cancel()
		<-done
		<-done
		rows, err := be.DB().Queryx(`SELECT a.started_at - m.recorded_at FROM webhook_attempts a
JOIN webhook_deliveries d ON d.id = a.delivery_id JOIN webhook_messages m ON m.event_id = d.event_id WHERE a.attempt = 1`)
		if err != nil {
			b.Fatal(err)
		}
		var lags []float64
		for rows.Next() {
			var us int64
			if err := rows.Scan(&us); err != nil {
				b.Fatal(err)
			}
			lags = append(lags, float64(us)/1000)
		}
		rows.Close()
		if len(lags) == 0 {
			b.Fatal("no attempts")
		}
		sort.Float64s(lags)
		pct := func(p float64) float64 { return lags[min(len(lags)-1, int(p*float64(len(lags))))] }
		b.ReportMetric(pct(0.5), "p50-ms")
		b.ReportMetric(pct(0.99), "p99-ms")
		b.ReportMetric(lags[len(lags)-1], "max-ms")
		b.ReportMetric(float64(len(lags)), "deliveries")
	})
}
