package audit

import (
	"context"
	"sync"

	"github.com/payledger/payledger/eventstore"
	"github.com/payledger/payledger/projections"
)

// sharedLog lets the chain pass and every read model's replay use one read
// of $all instead of one each: reading and decoding the log is a large
// part of a verification. The chain pass reads each batch from the store
// and publishes it; a replay's ReadAll(after) takes the published batch
// that follows `after`. A batch is kept until every replay has taken it or
// finished, and the chain pass waits while `window` batches are kept, so
// memory is bounded by how far the slowest replay lags, not by the log.
//
// Anything unexpected (a replay asking for another position or size, the
// chain pass ending before a replay is done) makes that replay read the
// store itself, which is always correct, only slower.
type sharedLog struct {
	src    projections.Backend
	size   int
	window int

	mu      sync.Mutex
	cond    *sync.Cond
	base    int // sequence number of batches[0]
	batches []sharedBatch
	readers map[*sharedReader]struct{}
	closed  bool
}

type sharedBatch struct {
	after  eventstore.Position
	events []eventstore.RecordedEvent
}

func newSharedLog(src projections.Backend, size, window int) *sharedLog {
	l := &sharedLog{src: src, size: size, window: window, readers: map[*sharedReader]struct{}{}}
	l.cond = sync.NewCond(&l.mu)
	return l
}

// reader registers one replay; call it before the chain pass starts and
// done when the replay has ended.
func (l *sharedLog) reader() *sharedReader {
	r := &sharedReader{Backend: l.src, log: l}
	l.mu.Lock()
	l.readers[r] = struct{}{}
	l.mu.Unlock()
	return r
}

// publish hands the batch read after `after` to the replays, waiting while
// the window is full.
func (l *sharedLog) publish(ctx context.Context, after eventstore.Position, events []eventstore.RecordedEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for len(l.batches) >= l.window && len(l.readers) > 0 && ctx.Err() == nil {
		l.cond.Wait()
	}
	if len(l.readers) == 0 {
		return // every replay is done or reads the store itself
	}
	l.batches = append(l.batches, sharedBatch{after: after, events: events})
	l.cond.Broadcast()
}

// close ends publishing: replays that need more read the store.
func (l *sharedLog) close() {
	l.mu.Lock()
	l.closed = true
	l.cond.Broadcast()
	l.mu.Unlock()
}

// release drops the batches every remaining replay has taken.
func (l *sharedLog) release() {
	low := l.base + len(l.batches)
	for r := range l.readers {
		low = min(low, r.next)
	}
	if drop := low - l.base; drop > 0 {
		clear(l.batches[:drop])
		l.batches = l.batches[drop:]
		l.base = low
	}
	l.cond.Broadcast()
}

// sharedReader is the Backend one replay reads through.
type sharedReader struct {
	projections.Backend
	log      *sharedLog
	next     int // sequence number of the next batch to take
	pos      eventstore.Position
	detached bool
}

func (r *sharedReader) ReadAll(ctx context.Context, after eventstore.Position, limit int) ([]eventstore.RecordedEvent, error) {
	l := r.log
	l.mu.Lock()
	if !r.detached && (after != r.pos || limit != l.size) {
		r.detachLocked()
	}
	for !r.detached {
		if i := r.next - l.base; i < len(l.batches) {
			b := l.batches[i]
			if b.after != after {
				r.detachLocked()
				break
			}
			r.next++
			if len(b.events) > 0 {
				r.pos = b.events[len(b.events)-1].Position
			}
			l.release()
			l.mu.Unlock()
			return b.events, nil
		}
		if l.closed || ctx.Err() != nil {
			r.detachLocked()
			break
		}
		l.cond.Wait()
	}
	l.mu.Unlock()
	return r.Backend.ReadAll(ctx, after, limit)
}

func (r *sharedReader) detachLocked() {
	if r.detached {
		return
	}
	r.detached = true
	delete(r.log.readers, r)
	r.log.release()
}

// done unregisters the replay so that the chain pass no longer waits for
// it.
func (r *sharedReader) done() {
	r.log.mu.Lock()
	r.detachLocked()
	r.log.mu.Unlock()
}
