package postgres_test

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/payledger/payledger/eventstore"
	"github.com/payledger/payledger/eventstore/postgres"
	"github.com/payledger/payledger/internal/pgtest"
)

// benchData is a typical event body: an invoice event is a few hundred
// bytes of JSON.
var benchData = []byte(`{"invoice_id":"inv_0190d2b2c7a97e3f9a1b2c3d4e5f6a7b","amount":"125.00","currency":"USD","number":"INV-000123","expires_at":"2026-12-07T20:00:00Z","merchant_reference":"order-8841","description":"Annual subscription, standard tier"}`)

var benchMeta = []byte(`{"correlation_id":"req_5f2c9a","idempotency_key":"k-8841-create"}`)

// Writer counts and batch sizes of issue 2's figures.
var (
	benchWriters   = []int{1, 8, 32}
	benchBatchSize = []int{1, 10}
)

func benchStore(b *testing.B) *postgres.Store {
	b.Helper()
	s, err := postgres.Open(context.Background(), pgtest.New(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// parallel runs op b.N times spread over writers goroutines, each with its
// own worker index, and reports events per second.
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

// BenchmarkAppend: durable appends, each writer appending to its own
// streams with the exact expected version (the application's pattern),
// starting a new stream every 50 appends as invoices do.
func BenchmarkAppend(b *testing.B) {
	for _, per := range benchBatchSize {
		for _, writers := range benchWriters {
			b.Run(fmt.Sprintf("events=%d/writers=%d", per, writers), func(b *testing.B) {
				s := benchStore(b)
				ctx := context.Background()
				run := uuid.NewString()[:8]
				versions := make([]uint64, writers)
				parallel(b, writers, per, func(w, i int) error {
					stream := fmt.Sprintf("bench-%s-%d-%d", run, w, i/50)
					if i%50 == 0 {
						versions[w] = 0
					}
					evs := make([]eventstore.EventData, per)
					for k := range evs {
						evs[k] = eventstore.EventData{ID: uuid.Must(uuid.NewV7()).String(), Type: "invoice.created", Data: benchData, Metadata: benchMeta}
					}
					res, err := s.Append(ctx, stream, eventstore.Exact(versions[w]), evs...)
					versions[w] = res.NextExpected
					return err
				})
			})
		}
	}
}

// BenchmarkPlainInsert is the ceiling for BenchmarkAppend on the same
// server in the same run: one autocommitted INSERT per event into a table
// with the events table's columns and indexes, with no version check and
// no hash chain.
func BenchmarkPlainInsert(b *testing.B) {
	for _, writers := range benchWriters {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			s := benchStore(b)
			ctx := context.Background()
			if _, err := s.DB().ExecContext(ctx, `CREATE TABLE plain_events (LIKE events INCLUDING ALL)`); err != nil {
				b.Fatal(err)
			}
			ins, err := s.DB().PrepareContext(ctx, `INSERT INTO plain_events (stream_id, stream_version, event_id, event_type, data, metadata) VALUES ($1, $2, $3, $4, $5, $6)`)
			if err != nil {
				b.Fatal(err)
			}
			defer ins.Close()
			run := uuid.NewString()[:8]
			meta := string(benchMeta[:len(benchMeta)-1]) + `,"prev_hash":"` + fmt.Sprintf("%064d", 0) + `","hash":"` + fmt.Sprintf("%064d", 1) + `"}`
			parallel(b, writers, 1, func(w, i int) error {
				_, err := ins.ExecContext(ctx, fmt.Sprintf("bench-%s-%d-%d", run, w, i/50), i%50+1, uuid.NewString(), "invoice.created", string(benchData), meta)
				return err
			})
		})
	}
}

// BenchmarkReadAll replays $all from the start in batches over a store
// pre-filled with 100,000 events (bulk-loaded: the replay cost does not
// depend on how the rows got there).
func BenchmarkReadAll(b *testing.B) {
	benchReplay(b, 100_000, func(ctx context.Context, s *postgres.Store, batch int) (int, error) {
		n, pos := 0, eventstore.Start
		for {
			evs, err := s.ReadAll(ctx, pos, batch)
			if err != nil {
				return n, err
			}
			n += len(evs)
			if len(evs) < batch {
				return n, nil
			}
			pos = evs[len(evs)-1].Position
		}
	})
}

// BenchmarkReplayAll is BenchmarkReadAll through ReplayAll (one query per
// 100,000 rows instead of one per batch), over 300,000 events: issue 2
// asks for a $all replay of at least 300,000 events/s.
func BenchmarkReplayAll(b *testing.B) {
	benchReplay(b, 300_000, func(ctx context.Context, s *postgres.Store, batch int) (int, error) {
		n := 0
		_, err := s.ReplayAll(ctx, eventstore.Start, batch, func(evs []eventstore.RecordedEvent) error {
			n += len(evs)
			return nil
		})
		return n, err
	})
}

// benchReplay fills a store with events and reports how fast replay reads
// all of them back, for batches of 1,000 and 5,000.
func benchReplay(b *testing.B, events int, replay func(ctx context.Context, s *postgres.Store, batch int) (int, error)) {
	s := benchStore(b)
	fill(b, s.DB().DB, events)
	for _, batch := range []int{1000, 5000} {
		b.Run("batch="+strconv.Itoa(batch), func(b *testing.B) {
			ctx := context.Background()
			total := 0
			b.ResetTimer()
			for b.Loop() {
				n, err := replay(ctx, s, batch)
				if err != nil {
					b.Fatal(err)
				}
				if n != events {
					b.Fatalf("replayed %d events, want %d", n, events)
				}
				total += n
			}
			b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

func fill(b *testing.B, db *sql.DB, n int) {
	b.Helper()
	meta := string(benchMeta[:len(benchMeta)-1]) + `,"prev_hash":"` + fmt.Sprintf("%064d", 0) + `","hash":"` + fmt.Sprintf("%064d", 1) + `"}`
	// Several transactions, so that positions span many tx_ids as in life.
	for start := 0; start < n; start += 10_000 {
		_, err := db.Exec(`INSERT INTO events (stream_id, stream_version, event_id, event_type, data, metadata)
SELECT 'fill-' || (g / 10), g % 10 + 1, gen_random_uuid(), 'invoice.created', $3, $4
FROM generate_series($1::int, $2::int - 1) g`, start, min(start+10_000, n), string(benchData), meta)
		if err != nil {
			b.Fatal(err)
		}
	}
	if _, err := db.Exec(`ANALYZE events`); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkAppendVsInsert alternates short phases of durable single-event
// appends and plain INSERTs with the same number of writers, so that load
// from other processes on the machine hits both alike, and reports the
// ratio (issue 2 asks for at least 0.70 at 8-32 writers). Run it with
// -benchtime=1x: each iteration is rounds × 2 phases of phase.
func BenchmarkAppendVsInsert(b *testing.B) {
	const rounds, phase = 6, 500 * time.Millisecond
	for _, writers := range []int{8, 32} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			s := benchStore(b)
			ctx := context.Background()
			if _, err := s.DB().ExecContext(ctx, `CREATE TABLE plain_events (LIKE events INCLUDING ALL)`); err != nil {
				b.Fatal(err)
			}
			ins, err := s.DB().PrepareContext(ctx, `INSERT INTO plain_events (stream_id, stream_version, event_id, event_type, data, metadata) VALUES ($1, $2, $3, $4, $5, $6)`)
			if err != nil {
				b.Fatal(err)
			}
			defer ins.Close()
			meta := string(benchMeta[:len(benchMeta)-1]) + `,"prev_hash":"` + fmt.Sprintf("%064d", 0) + `","hash":"` + fmt.Sprintf("%064d", 1) + `"}`
			run := uuid.NewString()[:8]
			var appended, inserted int64
			var appendTime, insertTime time.Duration
			seq, plainSeq := make([]int, writers), make([]int, writers)
			versions := make([]uint64, writers)
			timed := func(op func(w int) error) (int64, time.Duration) {
				var n atomic.Int64
				var wg sync.WaitGroup
				stop := time.Now().Add(phase)
				start := time.Now()
				for w := 0; w < writers; w++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for time.Now().Before(stop) {
							if err := op(w); err != nil {
								b.Error(err)
								return
							}
							n.Add(1)
						}
					}()
				}
				wg.Wait()
				return n.Load(), time.Since(start)
			}
			for b.Loop() {
				for r := 0; r < rounds; r++ {
					n, d := timed(func(w int) error {
						i := seq[w]
						seq[w]++
						if i%50 == 0 {
							versions[w] = 0
						}
						res, err := s.Append(ctx, fmt.Sprintf("bench-%s-%d-%d", run, w, i/50), eventstore.Exact(versions[w]),
							eventstore.EventData{ID: uuid.Must(uuid.NewV7()).String(), Type: "invoice.created", Data: benchData, Metadata: benchMeta})
						versions[w] = res.NextExpected
						return err
					})
					appended, appendTime = appended+n, appendTime+d
					n, d = timed(func(w int) error {
						i := plainSeq[w]
						plainSeq[w]++
						_, err := ins.ExecContext(ctx, fmt.Sprintf("plain-%s-%d-%d", run, w, i/50), i%50+1, uuid.NewString(), "invoice.created", string(benchData), meta)
						return err
					})
					inserted, insertTime = inserted+n, insertTime+d
				}
			}
			a := float64(appended) / appendTime.Seconds()
			p := float64(inserted) / insertTime.Seconds()
			b.ReportMetric(a, "append-events/s")
			b.ReportMetric(p, "insert-events/s")
			b.ReportMetric(a/p, "ratio")
		})
	}
}
