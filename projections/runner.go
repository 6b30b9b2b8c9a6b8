package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/payledger/payledger/eventstore"
)

// Options tune the runners of a Set.
type Options struct {
	// BatchSize is the number of events read and applied per transaction
	// (default 500; rebuilds use RebuildBatchSize).
	BatchSize int
	// RebuildBatchSize is used by Rebuild and Verify (default 5000).
	RebuildBatchSize int
	// MinPoll and MaxPoll bound the polling backoff used when no in-process
	// wake-up arrives (appends by other processes). Defaults 10 ms, 1 s.
	MinPoll, MaxPoll time.Duration
	// Metrics receives lag figures; nil creates unregistered collectors.
	Metrics *Metrics
	// Logger for failures; nil uses slog.Default().
	Logger *slog.Logger
	// Now is the clock for lag measurement; nil uses time.Now.
	Now func() time.Time
}

func (o *Options) defaults() {
	if o.BatchSize <= 0 {
		o.BatchSize = 500
	}
	if o.RebuildBatchSize <= 0 {
		o.RebuildBatchSize = 5000
	}
	if o.MinPoll <= 0 {
		o.MinPoll = 10 * time.Millisecond
	}
	if o.MaxPoll <= 0 {
		o.MaxPoll = time.Second
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(nil)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Runner feeds one projection from the store.
type Runner struct {
	b    Backend
	p    Projection
	opts Options
	tail *tail    // shared with the Set's other runners; nil: read alone
	txs  *txGroup // commits live batches with the other runners'; nil: alone

	// work serialises batches with Rebuild/Verify of the same projection.
	work sync.Mutex

	mu       sync.Mutex
	cp       eventstore.Position
	loaded   bool
	advanced chan struct{} // closed and replaced whenever cp moves
	afters   []func([]eventstore.RecordedEvent)
}

func newRunner(b Backend, p Projection, opts Options, t *tail, txs *txGroup) *Runner {
	return &Runner{b: b, p: p, opts: opts, tail: t, txs: txs, advanced: make(chan struct{})}
}

// Name is the projection's name.
func (r *Runner) Name() string { return r.p.Name() }

// Projection returns the projection the runner feeds.
func (r *Runner) Projection() Projection { return r.p }

// OnCommit registers fn to be called (synchronously, on the runner's
// goroutine) after each committed batch. The webhook dispatcher uses it to
// wake up without polling.
func (r *Runner) OnCommit(fn func(batch []eventstore.RecordedEvent)) {
	r.mu.Lock()
	r.afters = append(r.afters, fn)
	r.mu.Unlock()
}

// Checkpoint returns the position of the last committed batch.
func (r *Runner) Checkpoint() eventstore.Position {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cp
}

func (r *Runner) setCheckpoint(p eventstore.Position) {
	r.mu.Lock()
	r.cp = p
	r.loaded = true
	close(r.advanced)
	r.advanced = make(chan struct{})
	r.mu.Unlock()
}

// WaitFor returns when the projection has committed every event up to and
// including pos, or ctx is done (its error then).
func (r *Runner) WaitFor(ctx context.Context, pos eventstore.Position) error {
	for {
		r.mu.Lock()
		done := r.loaded && !r.cp.Less(pos)
		ch := r.advanced
		r.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("projections: %s waiting for %s: %w", r.Name(), pos, ctx.Err())
		}
	}
}

// load reads the stored checkpoint into memory.
func (r *Runner) load(ctx context.Context) error {
	cp, err := LoadCheckpoint(ctx, r.b.DB(), r.Name())
	if err != nil {
		return err
	}
	r.setCheckpoint(cp)
	return nil
}

// Run applies batches until ctx is done. Transient failures are logged and
// retried with backoff; Run returns only ctx's error.
func (r *Runner) Run(ctx context.Context) error {
	wait := r.opts.MinPoll
	// polled: the last wait ended on the timer, not on an in-process
	// append. Then the read goes to the store itself: the events a poll is
	// for were appended by another process, and an answer shared with the
	// other runners may predate them.
	polled := false
	for {
		if !r.isLoaded() {
			if err := r.load(ctx); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				r.opts.Logger.Error("projection checkpoint", "projection", r.Name(), "err", err)
				if !sleep(ctx, wait) {
					return ctx.Err()
				}
				wait = min(wait*2, r.opts.MaxPoll)
				continue
			}
		}
		// Take the wake-up channel before reading, so an append that
		// commits between the read and the wait is not missed.
		changed := r.b.Changed()
		share := changed
		if polled {
			share = nil
		}
		n, err := r.step(ctx, r.opts.BatchSize, true, share)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			r.opts.Logger.Error("projection batch", "projection", r.Name(), "err", err)
			if !sleep(ctx, wait) {
				return ctx.Err()
			}
			wait = min(wait*2, r.opts.MaxPoll)
			continue
		}
		polled = false
		if n > 0 {
			wait = r.opts.MinPoll
			continue
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-changed:
			t.Stop()
			wait = r.opts.MinPoll
		case <-t.C:
			wait = min(wait*2, r.opts.MaxPoll)
			polled = true
		}
	}
}

func (r *Runner) isLoaded() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.loaded
}

// CatchUp applies batches until the projection has reached the store's
// current end. Tests and the CLI use it instead of Run.
func (r *Runner) CatchUp(ctx context.Context) error {
	if err := r.load(ctx); err != nil {
		return err
	}
	for {
		n, err := r.step(ctx, r.opts.BatchSize, true, nil)
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
	}
}

// step reads and applies one batch; it returns the number of events. The
// read is shared with the Set's other runners (see tail) when changed is
// the store's Changed channel taken before the call, and the store's own
// when changed is nil.
func (r *Runner) step(ctx context.Context, limit int, live bool, changed <-chan struct{}) (int, error) {
	r.work.Lock()
	defer r.work.Unlock()
	from := r.Checkpoint()
	var batch []eventstore.RecordedEvent
	var err error
	if changed != nil && r.tail != nil {
		batch, err = r.tail.read(ctx, from, limit, changed)
	} else {
		batch, err = r.b.ReadAll(ctx, from, limit)
	}
	if err != nil {
		return 0, fmt.Errorf("read $all after %s: %w", from, err)
	}
	if len(batch) == 0 {
		return 0, nil
	}
	n, err := r.apply(ctx, from, batch, live)
	if errors.Is(err, errCheckpointMoved) {
		return 1, r.load(ctx) // re-read and go again at once
	}
	return n, err
}

// apply commits batch, the events read after from, into the read model
// with the new checkpoint; r.work must be held. It returns
// errCheckpointMoved, and changes nothing, when the stored checkpoint is no
// longer from.
func (r *Runner) apply(ctx context.Context, from eventstore.Position, batch []eventstore.RecordedEvent, live bool) (int, error) {
	last := batch[len(batch)-1].Position
	fn := func(tx *sqlx.Tx) error {
		// The stored checkpoint, not the in-memory one, decides: another
		// process (or a rebuild) may have moved it.
		if err := advanceCheckpoint(ctx, tx, r.Name(), from, last, r.opts.Now().UnixMicro()); err != nil {
			return err
		}
		if err := r.p.Apply(ctx, tx, batch); err != nil {
			return fmt.Errorf("%s: apply: %w", r.Name(), err)
		}
		return nil
	}
	var err error
	if live && r.txs != nil {
		err = r.txs.commit(ctx, r.Name(), fn)
	} else {
		err = r.b.WriteTx(ctx, fn) // a rebuild's large batches go alone
	}
	if err != nil {
		return 0, err
	}
	r.setCheckpoint(last)
	if live {
		now := r.opts.Now()
		name := r.Name()
		h := r.opts.Metrics.Lag.WithLabelValues(name)
		for _, e := range batch {
			h.Observe(now.Sub(e.RecordedAt).Seconds())
		}
		r.opts.Metrics.LastLag.WithLabelValues(name).Set(now.Sub(batch[len(batch)-1].RecordedAt).Seconds())
	}
	r.opts.Metrics.Events.WithLabelValues(r.Name()).Add(float64(len(batch)))
	r.mu.Lock()
	afters := append([]func([]eventstore.RecordedEvent){}, r.afters...)
	r.mu.Unlock()
	for _, fn := range afters {
		fn(batch)
	}
	return len(batch), nil
}

var errCheckpointMoved = errors.New("projections: checkpoint moved under the runner")

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
