package projections_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/payledger/payledger/eventstore"
	"github.com/payledger/payledger/projections"
	"github.com/payledger/payledger/projections/projectiontest"
)

// appendEvents appends n events and waits until $all shows every event
// appended so far (on PostgreSQL other packages' open transactions can
// hold the horizon back for a while).
func appendEvents(t *testing.T, b eventstore.Store, n int) {
	t.Helper()
	ctx := context.Background()
	for range n {
		if _, err := b.Append(ctx, "tail-test", eventstore.Any, eventstore.EventData{
			ID: uuid.Must(uuid.NewV7()).String(), Type: "test.event", Data: []byte(`{}`),
		}); err != nil {
			t.Fatal(err)
		}
	}
	all, err := b.ReadStream(ctx, "tail-test", 1)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		evs, err := b.ReadAll(ctx, eventstore.Start, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == len(all) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("$all shows %d of %d events after 30 s", len(evs), len(all))
		}
	}
}

// tailOver appends n events to b and returns a tail keeping keep events
// over b, and the count of the reads that reach b.
func tailOver(t *testing.T, b projections.Backend, keep, n int) (projections.Tail, *projectiontest.Counting) {
	t.Helper()
	cb := &projectiontest.Counting{Backend: b}
	appendEvents(t, b, n)
	return projections.NewTail(cb, keep), cb
}

// ids lists the events' ids, for comparing answers.
func ids(evs []eventstore.RecordedEvent) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}

// TestTailSharesReads: answers come from the kept run when they can (any
// part of it, any limit, and "nothing new" only under the channel the
// read started under), and from the store when they cannot.
func TestTailSharesReads(t *testing.T) {
	t.Parallel()
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		ctx := context.Background()
		tl, cb := tailOver(t, b, 100, 5)
		all, err := b.ReadAll(ctx, eventstore.Start, 100)
		if err != nil || len(all) != 5 {
			t.Fatalf("%d events, %v", len(all), err)
		}
		ch := b.Changed()

		steps := []struct {
			name      string
			from      eventstore.Position
			limit     int
			changed   <-chan struct{}
			want      []eventstore.RecordedEvent
			wantReads int64
		}{
			{"first read goes to the store", eventstore.Start, 100, ch, all, 1},
			{"the same read again is kept", eventstore.Start, 100, ch, all, 1},
			{"a smaller limit", eventstore.Start, 2, ch, all[:2], 1},
			{"from inside the run", all[1].Position, 100, ch, all[2:], 1},
			{"nothing new under the same channel", all[4].Position, 100, ch, nil, 1},
			{"from inside, limited", all[0].Position, 3, ch, all[1:4], 1},
		}
		for _, s := range steps {
			got, err := tl.Read(ctx, s.from, s.limit, s.changed)
			if err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
			if g, w := ids(got), ids(s.want); !slices.Equal(g, w) {
				t.Fatalf("%s: got %v, want %v", s.name, g, w)
			}
			if n := cb.Reads.Load(); n != s.wantReads {
				t.Fatalf("%s: %d store reads, want %d", s.name, n, s.wantReads)
			}
		}

		// An append closes ch. Under the new channel "nothing new" is not
		// taken from the run: the store is asked, and the run grows.
		appendEvents(t, b, 1)
		select {
		case <-ch:
		default:
			t.Fatal("append did not close the Changed channel")
		}
		ch2 := b.Changed()
		got, err := tl.Read(ctx, all[4].Position, 100, ch2)
		if err != nil || len(got) != 1 || cb.Reads.Load() != 2 {
			t.Fatalf("after an append: %d events, %d store reads, %v", len(got), cb.Reads.Load(), err)
		}
		sixth := got[0]
		if got, err := tl.Read(ctx, all[2].Position, 100, ch2); err != nil || len(got) != 3 || got[2].ID != sixth.ID || cb.Reads.Load() != 2 {
			t.Fatalf("the grown run: %v, %d store reads, %v", ids(got), cb.Reads.Load(), err)
		}
		if got, err := tl.Read(ctx, sixth.Position, 100, ch2); err != nil || len(got) != 0 || cb.Reads.Load() != 2 {
			t.Fatalf("at the end under the new channel: %v, %d store reads, %v", ids(got), cb.Reads.Load(), err)
		}
	})
}

// TestTailJoinsOneRead: runners woken by one append and reading from one
// checkpoint cost the store one read between them, and all get it whole.
func TestTailJoinsOneRead(t *testing.T) {
	t.Parallel()
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		ctx := context.Background()
		tl, cb := tailOver(t, b, 100, 7)
		ch := b.Changed()
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for range 16 {
			wg.Go(func() {
				got, err := tl.Read(ctx, eventstore.Start, 100, ch)
				if err == nil && len(got) != 7 {
					err = fmt.Errorf("a reader got %d events, want 7", len(got))
				}
				if err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if n := cb.Reads.Load(); n != 1 {
			t.Fatalf("%d store reads for 16 readers, want 1", n)
		}
	})
}

// TestTailKeepsTheLatest: the run holds at most keep events, the latest;
// a read from before it goes to the store.
func TestTailKeepsTheLatest(t *testing.T) {
	t.Parallel()
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		ctx := context.Background()
		tl, cb := tailOver(t, b, 3, 5)
		ch := b.Changed()
		all, err := tl.Read(ctx, eventstore.Start, 100, ch)
		if err != nil || len(all) != 5 {
			t.Fatalf("%d events, %v", len(all), err)
		}
		if got, err := tl.Read(ctx, all[1].Position, 100, ch); err != nil || len(got) != 3 || cb.Reads.Load() != 1 {
			t.Fatalf("from the run's start: %v, %d store reads, %v", ids(got), cb.Reads.Load(), err)
		}
		if got, err := tl.Read(ctx, all[0].Position, 100, ch); err != nil || len(got) != 4 || cb.Reads.Load() != 2 {
			t.Fatalf("from before the run: %v, %d store reads, %v", ids(got), cb.Reads.Load(), err)
		}
	})
}
