package projections

import (
	"context"
	"sort"
	"sync"

	"github.com/payledger/payledger/eventstore"
)

// tail shares the $all reads of a Set's live runners. Every runner is woken
// by the same commit and, unless one is slow, asks for the same events
// after nearly the same checkpoint; read separately, each of seven read
// models costs the store its own query (and on PostgreSQL its own horizon
// lookup) for every batch. So the tail keeps the events most recently
// read, one contiguous run of $all, and answers from it when it can, and a
// read already under way for the same position is joined rather than
// repeated.
//
// Any part of a contiguous run is a correct answer for a later caller too:
// events are immutable, and the store never returns an event before one
// that can still commit ahead of it. What the tail must not do is answer
// "nothing new" to a runner that would then sleep through an append it
// was meant to be woken by. The runner takes the store's Changed channel
// before it reads; a read that started while that same channel was
// current saw every append notified before it, and the channel will wake
// the runner for every later one. So an empty answer, and a read to join,
// are only taken from a read that started under the caller's channel.
type tail struct {
	b   Backend
	max int // events kept

	mu      sync.Mutex
	from    eventstore.Position        // evs are the events after from
	evs     []eventstore.RecordedEvent // in $all order
	changed <-chan struct{}            // current when the read that ended evs started
	seq     uint64                     // that read's start order
	started uint64                     // reads started so far
	flight  *flight
}

// flight is a read under way.
type flight struct {
	from    eventstore.Position
	limit   int
	changed <-chan struct{}
	done    chan struct{}
	evs     []eventstore.RecordedEvent
	err     error
}

func newTail(b Backend, keep int) *tail {
	return &tail{b: b, max: keep}
}

// read returns up to limit events after from, as the store's ReadAll
// would at some instant after changed was taken from the store.
func (t *tail) read(ctx context.Context, from eventstore.Position, limit int, changed <-chan struct{}) ([]eventstore.RecordedEvent, error) {
	t.mu.Lock()
	if evs, ok := t.cached(from, limit, changed); ok {
		t.mu.Unlock()
		return evs, nil
	}
	if f := t.flight; f != nil && f.from == from && f.changed == changed && f.limit >= limit {
		t.mu.Unlock()
		select {
		case <-f.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if f.err != nil {
			return nil, f.err
		}
		return clip(f.evs, limit), nil
	}
	t.started++
	seq := t.started
	f := &flight{from: from, limit: limit, changed: changed, done: make(chan struct{})}
	t.flight = f
	t.mu.Unlock()

	f.evs, f.err = t.b.ReadAll(ctx, from, limit)

	t.mu.Lock()
	if t.flight == f {
		t.flight = nil
	}
	if f.err == nil {
		t.keep(from, f.evs, changed, seq)
	}
	t.mu.Unlock()
	close(f.done)
	if f.err != nil {
		return nil, f.err
	}
	return clip(f.evs, limit), nil
}

// cached answers from the kept run when from lies in it. t.mu is held.
func (t *tail) cached(from eventstore.Position, limit int, changed <-chan struct{}) ([]eventstore.RecordedEvent, bool) {
	i, ok := t.index(from)
	if !ok {
		return nil, false
	}
	rest := t.evs[i:]
	if len(rest) == 0 && changed != t.changed {
		return nil, false // maybe stale: read again
	}
	return clip(rest, limit), true
}

// index is where the events after from begin in t.evs, if from is the
// run's start or one of its events. t.mu is held.
func (t *tail) index(from eventstore.Position) (int, bool) {
	if from == t.from {
		return 0, true
	}
	i := sort.Search(len(t.evs), func(i int) bool { return !t.evs[i].Position.Less(from) })
	if i < len(t.evs) && t.evs[i].Position == from {
		return i + 1, true
	}
	return 0, false
}

// keep records the read of evs after from that started as the seq'th
// under changed. The kept run grows when the read reaches further than
// it, and is replaced when the read does not start inside it; in both
// cases the run's end, and so its channel, are the read's. t.mu is held.
func (t *tail) keep(from eventstore.Position, evs []eventstore.RecordedEvent, changed <-chan struct{}, seq uint64) {
	i, ok := t.index(from)
	switch end := i + len(evs); {
	case !ok:
		t.from, t.evs = from, evs
	case end > len(t.evs):
		// Both are runs of $all without gaps, so the read's first events
		// are the run's last ones: only the new ones are added, past the
		// end of every slice handed out (clip caps them), so no caller
		// sees the array change.
		t.evs = append(t.evs, evs[len(t.evs)-i:]...)
	case end == len(t.evs) && seq > t.seq:
		// The same end, seen by a later read: its channel is newer.
	default:
		return // an older or shorter read: the run already holds more
	}
	t.changed, t.seq = changed, seq
	if n := len(t.evs) - t.max; n > 0 {
		t.from = t.evs[n-1].Position
		t.evs = t.evs[n:]
	}
}

// clip returns at most limit events, as a slice that cannot be appended
// into the shared array.
func clip(evs []eventstore.RecordedEvent, limit int) []eventstore.RecordedEvent {
	if len(evs) > limit {
		evs = evs[:limit]
	}
	return evs[:len(evs):len(evs)]
}
