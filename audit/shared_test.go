package audit

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/payledger/payledger/eventstore"
	"github.com/payledger/payledger/projections/projectiontest"
)

// Three replays of different speeds, one of which stops early, read the
// log through one shared read: every replay gets every event in order,
// none falls back to the store, and the small window never deadlocks.
func TestSharedLogServesEveryReplayFromOneRead(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := projectiontest.SQLite(t)
	if _, err := projectiontest.Generate(ctx, b, 30, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	all, err := b.ReadAll(ctx, eventstore.Start, 1000)
	if err != nil {
		t.Fatal(err)
	}
	src := &projectiontest.Counting{Backend: b}
	const size = 10
	l := newSharedLog(src, size, 2)
	readers := []*sharedReader{l.reader(), l.reader(), l.reader()}
	got := make([][]eventstore.RecordedEvent, len(readers))
	var wg sync.WaitGroup
	for i, r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer r.done()
			pos := eventstore.Start
			for n := 0; ; n++ {
				if i == 2 && n == 3 {
					return // a read model whose checkpoint is here
				}
				batch, err := r.ReadAll(ctx, pos, size)
				if err != nil {
					t.Error(err)
					return
				}
				if len(batch) == 0 {
					return
				}
				got[i] = append(got[i], batch...)
				pos = batch[len(batch)-1].Position
				time.Sleep(time.Duration(i) * time.Millisecond)
			}
		}()
	}
	pos, published := eventstore.Start, 0
	for {
		batch, err := src.ReadAll(ctx, pos, size)
		if err != nil {
			t.Fatal(err)
		}
		l.publish(ctx, pos, batch)
		published++
		if len(batch) == 0 {
			break
		}
		pos = batch[len(batch)-1].Position
	}
	l.close()
	wg.Wait()
	if n := src.Reads.Load(); n != int64(published) {
		t.Fatalf("the store was read %d times, the pass read it %d times", n, published)
	}
	for i, want := range []int{len(all), len(all), 3 * size} {
		if len(got[i]) != want {
			t.Fatalf("replay %d got %d events, want %d", i, len(got[i]), want)
		}
		for j, e := range got[i] {
			if e.ID != all[j].ID {
				t.Fatalf("replay %d event %d is %s, want %s", i, j, e.ID, all[j].ID)
			}
		}
	}
}
