package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"

	"github.com/payledger/payledger/eventstore"
)

var benchData = []byte(`{"invoice_id":"inv_0190d2b2c7a97e3f9a1b2c3d4e5f6a7b","amount":"125.00","currency":"USD","number":"INV-000123","expires_at":"2026-12-07T20:00:00Z","merchant_reference":"order-8841","description":"Annual subscription, standard tier"}`)

var benchMeta = []byte(`{"correlation_id":"req_5f2c9a","idempotency_key":"k-8841-create"}`)

func parallel(b *testing.B, writers, eventsPerOp int, op func(worker, i int) error) {
	b.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	b.ResetTimer()
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				if next.Add(1) > int64(b.N) {
					return
				}
				if err := op(w, i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N*eventsPerOp)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkAppend: durable (synchronous=FULL) appends, each writer to its
// own streams with the exact expected version, a new stream every 50.
func BenchmarkAppend(b *testing.B) {
	for _, per := range []int{1, 10} {
		for _, writers := range []int{1, 8, 32} {
			b.Run(fmt.Sprintf("events=%d/writers=%d", per, writers), func(b *testing.B) {
				s := open(b, filepath.Join(b.TempDir(), "bench.db"))
				ctx := context.Background()
				versions := make([]uint64, writers)
				parallel(b, writers, per, func(w, i int) error {
					if i%50 == 0 {
						versions[w] = 0
					}
					evs := make([]eventstore.EventData, per)
					for k := range evs {
						evs[k] = eventstore.EventData{ID: uuid.NewString(), Type: "invoice.created", Data: benchData, Metadata: benchMeta}
					}
					res, err := s.Append(ctx, fmt.Sprintf("bench-%d-%d", w, i/50), eventstore.Exact(versions[w]), evs...)
					versions[w] = res.NextExpected
					return err
				})
			})
		}
	}
}

// BenchmarkReadAll replays $all from the start in batches.
func BenchmarkReadAll(b *testing.B) {
	const replayEvents = 100_000
	s := open(b, filepath.Join(b.TempDir(), "bench.db"))
	ctx := context.Background()
	evs := make([]eventstore.EventData, 100)
	for n := 0; n < replayEvents; n += len(evs) {
		for k := range evs {
			evs[k] = eventstore.EventData{ID: uuid.NewString(), Type: "invoice.created", Data: benchData, Metadata: benchMeta}
		}
		if _, err := s.Append(ctx, "fill-"+strconv.Itoa(n), eventstore.NoStream, evs...); err != nil {
			b.Fatal(err)
		}
	}
	for _, batch := range []int{1000, 5000} {
		b.Run("batch="+strconv.Itoa(batch), func(b *testing.B) {
			total := 0
			for b.Loop() {
				pos := eventstore.Start
				for {
					got, err := s.ReadAll(ctx, pos, batch)
					if err != nil {
						b.Fatal(err)
					}
					total += len(got)
					if len(got) < batch {
						break
					}
					pos = got[len(got)-1].Position
				}
			}
			b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
