package projections_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/payledger/payledger/eventstore"
	"github.com/payledger/payledger/projections"
	"github.com/payledger/payledger/projections/deadlines"
	"github.com/payledger/payledger/projections/links"
	"github.com/payledger/payledger/projections/projectiontest"
	"github.com/payledger/payledger/projections/status"
)

// replayBackend gives a backend the streaming ReplayAll a store may offer,
// built on ReadAll, so that the rebuild's use of it is tested before any
// store has it. fail, when set, is returned after the first batch.
type replayBackend struct {
	projections.Backend
	calls, batches atomic.Int64
	fail           error
}

func (r *replayBackend) ReplayAll(ctx context.Context, after eventstore.Position, batch int, fn func([]eventstore.RecordedEvent) error) (eventstore.Position, error) {
	r.calls.Add(1)
	for {
		evs, err := r.ReadAll(ctx, after, batch)
		if err != nil {
			return after, err
		}
		if len(evs) == 0 {
			return after, nil
		}
		r.batches.Add(1)
		if err := fn(evs); err != nil {
			return after, err
		}
		after = evs[len(evs)-1].Position
		if r.fail != nil {
			return after, r.fail
		}
	}
}

func TestRebuildThroughReplayAll(t *testing.T) {
	t.Parallel()
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		ctx := context.Background()
		set, _, _, _ := newSet(t, b)
		startSet(t, set)
		waitFor(t, set, history(t, b, 1000))
		live := dumpAll(t, b, set)

		rb := &replayBackend{Backend: b}
		rebuilder, err := projections.NewSet(rb, projections.Options{RebuildBatchSize: 500},
			status.New(b, b.DB()), links.New(b, b.DB()), deadlines.New(b, b.DB()))
		if err != nil {
			t.Fatal(err)
		}
		if err := rebuilder.Rebuild(ctx, "", nil); err != nil {
			t.Fatal(err)
		}
		if rb.calls.Load() != 3 || rb.batches.Load() < 3*2 {
			t.Fatalf("ReplayAll called %d times for %d batches", rb.calls.Load(), rb.batches.Load())
		}
		rebuilt := dumpAll(t, b, rebuilder)
		if len(rebuilt) != len(live) || len(live) < 1000 {
			t.Fatalf("rebuilt %d rows, live %d", len(rebuilt), len(live))
		}
		for k, v := range live {
			if rebuilt[k] != v {
				t.Fatalf("row %s: live %s, rebuilt %s", k, v, rebuilt[k])
			}
		}

		boom := errors.New("replay broke")
		failing := &replayBackend{Backend: b, fail: boom}
		fs, err := projections.NewSet(failing, projections.Options{RebuildBatchSize: 500}, status.New(b, b.DB()))
		if err != nil {
			t.Fatal(err)
		}
		if err := fs.Rebuild(ctx, "", nil); !errors.Is(err, boom) {
			t.Fatalf("rebuild over a failing replay: %v", err)
		}
	})
}

// TestRebuildThroughReplayAllBesideLiveRunner is TestRebuildBesideLiveRunner
// with the rebuild streaming through ReplayAll: when the checkpoint moves,
// the stream is abandoned mid-replay and every event is still applied once.
func TestRebuildThroughReplayAllBesideLiveRunner(t *testing.T) {
	t.Parallel()
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		rb := &replayBackend{Backend: b}
		rebuildBesideLiveRunner(t, b, rb)
		if rb.calls.Load() == 0 {
			t.Fatal("ReplayAll never called")
		}
	})
}
