package webhook_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
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
		// When the outbox committed each event: splits the lag into the
		// projection's part (commit to outbox row, which on PostgreSQL
		// includes waiting for the snapshot horizon) and the sender's part
		// (outbox row to first attempt).
		var mu sync.Mutex
		queuedAt := map[string]time.Time{}
		set.Runner(outbox.Name).OnCommit(func(batch []eventstore.RecordedEvent) {
			now := time.Now()
			mu.Lock()
			for _, e := range batch {
				queuedAt[outbox.EventID(e.ID)] = now
			}
			mu.Unlock()
		})
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
		rows, err := be.DB().Queryx(`SELECT m.event_id, m.recorded_at, a.started_at FROM webhook_attempts a
JOIN webhook_deliveries d ON d.id = a.delivery_id JOIN webhook_messages m ON m.event_id = d.event_id WHERE a.attempt = 1`)
		if err != nil {
			b.Fatal(err)
		}
		var total, queued []float64
		for rows.Next() {
			var id string
			var rec, start int64
			if err := rows.Scan(&id, &rec, &start); err != nil {
				b.Fatal(err)
			}
			total = append(total, float64(start-rec)/1000)
			if q, ok := queuedAt[id]; ok {
				queued = append(queued, float64(start-q.UnixMicro())/1000)
			}
		}
		rows.Close()
		if len(total) == 0 || len(queued) == 0 {
			b.Fatal("no attempts")
		}
		pct := func(xs []float64, p float64) float64 {
			sort.Float64s(xs)
			return xs[min(len(xs)-1, int(p*float64(len(xs))))]
		}
		b.ReportMetric(pct(total, 0.5), "p50-ms")
		b.ReportMetric(pct(total, 0.99), "p99-ms")
		b.ReportMetric(pct(queued, 0.5), "sender-p50-ms")
		b.ReportMetric(pct(queued, 0.99), "sender-p99-ms")
		b.ReportMetric(float64(len(total)), "deliveries")
	})
}
