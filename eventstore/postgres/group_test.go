package postgres_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/payledger/payledger/eventstore"
	"github.com/payledger/payledger/eventstore/postgres"
	"github.com/payledger/payledger/eventstore/storetest"
)

// TestGroupCommitManyWriters races 64 writers so that the committer
// combines their appends: each writer appends to its own streams with the
// exact expected version, re-appends one of its appends (idempotent retry),
// appends once to a stream every writer shares, and tries once to reuse an
// event id of another writer. Every acknowledged event must be stored once,
// in its stream's order and in $all's, and every refused one not at all.
func TestGroupCommitManyWriters(t *testing.T) {
	t.Parallel()
	s := open(t)
	const writers, rounds = 64, 12
	type ack struct {
		stream string
		ids    []string
		res    eventstore.AppendResult
	}
	var (
		mu      sync.Mutex
		acked   []ack
		refused = map[string]bool{}
		firstID = make([]string, writers) // each writer's first event id
		ready   sync.WaitGroup
		wg      sync.WaitGroup
	)
	start := time.Now()
	ready.Add(writers)
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := t.Context()
			record := func(stream string, evs []eventstore.EventData, res eventstore.AppendResult) {
				mu.Lock()
				defer mu.Unlock()
				a := ack{stream: stream, res: res}
				for _, e := range evs {
					a.ids = append(a.ids, e.ID)
				}
				acked = append(acked, a)
			}
			var version uint64
			stream := fmt.Sprintf("w%d", w)
			for i := 0; i < rounds; i++ {
				evs := make([]eventstore.EventData, 1+i%3)
				for k := range evs {
					evs[k] = storetest.Event("x", fmt.Sprintf(`{"w":%d,"i":%d,"k":%d}`, w, i, k))
				}
				res, err := s.Append(ctx, stream, eventstore.Exact(version), evs...)
				if err != nil {
					errs <- fmt.Errorf("writer %d round %d: %w", w, i, err)
					ready.Done()
					return
				}
				record(stream, evs, res)
				if i == 0 {
					firstID[w] = evs[0].ID
					ready.Done()
					ready.Wait() // every writer has one event: the reuse below has a target
				}
				if i == 3 {
					// The acknowledgement was "lost": the retry must return it again.
					again, err := s.Append(ctx, stream, eventstore.Exact(version), evs...)
					if err != nil || again != res {
						errs <- fmt.Errorf("writer %d: re-append gave %+v, %v; want %+v", w, again, err, res)
						return
					}
				}
				version = res.NextExpected
				if i == 5 {
					e := storetest.Event("x", `{"shared":true}`)
					res, err := s.Append(ctx, "shared", eventstore.Any, e)
					if err != nil {
						errs <- fmt.Errorf("writer %d shared append: %w", w, err)
						return
					}
					record("shared", []eventstore.EventData{e}, res)
				}
				if i == 7 {
					dup := storetest.Event("x", `{}`)
					dup.ID = firstID[(w+1)%writers]
					_, err := s.Append(ctx, fmt.Sprintf("dup%d", w), eventstore.NoStream, dup, storetest.Event("x", `{}`))
					if !errors.Is(err, eventstore.ErrDuplicateEvent) {
						errs <- fmt.Errorf("writer %d: reusing another stream's event id gave %v, want ErrDuplicateEvent", w, err)
						return
					}
					mu.Lock()
					refused[fmt.Sprintf("dup%d", w)] = true
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("writers done after %v", time.Since(start))
	combined, retried := postgres.GroupStats(s)
	t.Logf("%d combined statements, %d retried one by one", combined, retried)
	if combined == 0 {
		t.Fatal("64 concurrent writers never had their appends combined: the test did not exercise group commit")
	}

	ctx := t.Context()
	want := map[string]ack{} // by event id
	perStream := map[string]int{}
	for _, a := range acked {
		perStream[a.stream] += len(a.ids)
		for _, id := range a.ids {
			want[id] = a
		}
	}
	for stream, n := range perStream {
		evs, err := s.ReadStream(ctx, stream, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != n {
			t.Fatalf("stream %s holds %d events, %d were acknowledged", stream, len(evs), n)
		}
		if err := eventstore.VerifyStream(evs); err != nil {
			t.Fatal(err)
		}
	}
	for stream := range refused {
		if evs, err := s.ReadStream(ctx, stream, 0); err != nil || len(evs) != 0 {
			t.Fatalf("refused append to %s left %d events (%v)", stream, len(evs), err)
		}
	}
	var all []eventstore.RecordedEvent
	for pos := eventstore.Start; len(all) < len(want); {
		more := waitFor(t, s, pos, 1)
		if len(more) == 0 {
			break
		}
		all = append(all, more...)
		pos = more[len(more)-1].Position
	}
	if len(all) != len(want) {
		t.Fatalf("$all holds %d events, %d were acknowledged", len(all), len(want))
	}
	last := map[string]uint64{}
	for i, e := range all {
		if i > 0 && !all[i-1].Position.Less(e.Position) {
			t.Fatalf("$all positions out of order at %d: %v then %v", i, all[i-1].Position, e.Position)
		}
		a, ok := want[e.ID]
		if !ok || a.stream != e.Stream {
			t.Fatalf("$all holds event %s of %s that was not acknowledged there", e.ID, e.Stream)
		}
		if e.StreamVersion != last[e.Stream]+1 {
			t.Fatalf("$all has %s version %d after version %d", e.Stream, e.StreamVersion, last[e.Stream])
		}
		last[e.Stream] = e.StreamVersion
		if e.ID == a.ids[len(a.ids)-1] && e.Position != a.res.Position {
			t.Fatalf("append to %s reported position %v, its last event is at %v", e.Stream, a.res.Position, e.Position)
		}
		delete(want, e.ID)
	}
}
