package projections

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/jmoiron/sqlx"

	"github.com/payledger/payledger/eventstore"
)

// Set is every projection of a process, one Runner each.
type Set struct {
	b       Backend
	dialect Dialect
	opts    Options
	runners []*Runner
	byName  map[string]*Runner
}

// NewSet builds runners for projs over the backend. Names must be unique.
// Call Migrate, then Run (serve) or CatchUp/Rebuild (CLI).
func NewSet(b Backend, opts Options, projs ...Projection) (*Set, error) {
	opts.defaults()
	d, err := DialectOf(b.DB().DriverName())
	if err != nil {
		return nil, err
	}
	s := &Set{b: b, dialect: d, opts: opts, byName: map[string]*Runner{}}
	shared, txs := newTail(b, 4*opts.BatchSize), &txGroup{b: b}
	for _, p := range projs {
		if _, dup := s.byName[p.Name()]; dup {
			return nil, fmt.Errorf("projections: duplicate projection %q", p.Name())
		}
		r := newRunner(b, p, opts, shared, txs)
		s.runners = append(s.runners, r)
		s.byName[p.Name()] = r
	}
	return s, nil
}

// Dialect is the read-model database's dialect.
func (s *Set) Dialect() Dialect { return s.dialect }

// Names lists the projections in registration order.
func (s *Set) Names() []string {
	out := make([]string, len(s.runners))
	for i, r := range s.runners {
		out[i] = r.Name()
	}
	return out
}

// Runner returns the named runner (nil if unknown).
func (s *Set) Runner(name string) *Runner { return s.byName[name] }

// Migrate creates the checkpoint table and every projection's tables.
func (s *Set) Migrate(ctx context.Context) error {
	return s.b.WriteTx(ctx, func(tx *sqlx.Tx) error {
		if err := migrateCheckpoints(ctx, tx); err != nil {
			return fmt.Errorf("projections: migrate checkpoints: %w", err)
		}
		for _, r := range s.runners {
			if err := r.p.Migrate(ctx, tx, s.dialect); err != nil {
				return fmt.Errorf("projections: migrate %s: %w", r.Name(), err)
			}
			if err := seedCheckpoint(ctx, tx, r.Name()); err != nil {
				return err
			}
		}
		return nil
	})
}

// Run starts every runner and blocks until ctx is done.
func (s *Set) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, r := range s.runners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = r.Run(ctx)
		}()
	}
	wg.Wait()
	return ctx.Err()
}

// CatchUp brings every projection to the store's current end.
func (s *Set) CatchUp(ctx context.Context) error {
	for _, r := range s.runners {
		if err := r.CatchUp(ctx); err != nil {
			return fmt.Errorf("projections: %s: %w", r.Name(), err)
		}
	}
	return nil
}

// WaitFor returns when every projection has committed pos (read-your-
// writes for a caller that just appended at pos). Bound it with ctx.
func (s *Set) WaitFor(ctx context.Context, pos eventstore.Position) error {
	for _, r := range s.runners {
		if err := r.WaitFor(ctx, pos); err != nil {
			return err
		}
	}
	return nil
}

// Lagging returns the names of projections whose checkpoint is behind pos
// (for /readyz).
func (s *Set) Lagging(pos eventstore.Position) []string {
	var out []string
	for _, r := range s.runners {
		if r.Checkpoint().Less(pos) {
			out = append(out, r.Name())
		}
	}
	return out
}

// ErrUnknownProjection is returned for a name no projection has.
var ErrUnknownProjection = errors.New("projections: unknown projection")

func (s *Set) pick(name string) ([]*Runner, error) {
	if name == "" {
		return s.runners, nil
	}
	r := s.byName[name]
	if r == nil {
		return nil, fmt.Errorf("%w %q (known: %v)", ErrUnknownProjection, name, s.Names())
	}
	return []*Runner{r}, nil
}

// countEvents is the progress total; unknown (-1) if the backend's table
// is not called events.
func (s *Set) countEvents(ctx context.Context) int {
	var n int
	if err := s.b.DB().QueryRowxContext(ctx, `SELECT COUNT(*) FROM events`).Scan(&n); err != nil {
		return -1
	}
	return n
}

// Rebuild drops the named projection's rows (every projection's for ""),
// resets its checkpoint and replays the whole log into it. progress (may
// be nil) is called after each batch with the events done and the total
// (-1 when unknown). Live runners of the same Set pause meanwhile.
func (s *Set) Rebuild(ctx context.Context, name string, progress func(done, total int)) error {
	rs, err := s.pick(name)
	if err != nil {
		return err
	}
	for _, r := range rs {
		total := s.countEvents(ctx)
		if err := r.rebuild(ctx, total, progress); err != nil {
			return fmt.Errorf("projections: rebuild %s: %w", r.Name(), err)
		}
	}
	return nil
}

func (r *Runner) rebuild(ctx context.Context, total int, progress func(done, total int)) error {
	r.work.Lock()
	err := r.b.WriteTx(ctx, func(tx *sqlx.Tx) error {
		// Lock first, so a runner of another process finishes its batch
		// before the rows go, and then finds its checkpoint moved.
		if _, err := lockCheckpoint(ctx, tx, r.Name()); err != nil {
			return err
		}
		if err := r.p.Reset(ctx, tx); err != nil {
			return err
		}
		return saveCheckpoint(ctx, tx, r.Name(), eventstore.Start, r.opts.Now().UnixMicro())
	})
	r.work.Unlock()
	if err != nil {
		return err
	}
	r.setCheckpoint(eventstore.Start)
	done := 0
	if progress != nil {
		progress(0, total)
	}
	// A replay alternates reading the log and writing read-model rows.
	// Reading runs one batch ahead, so the database's work for the next
	// batch and the decoding of it overlap with applying this one.
	ahead := startReadAhead(ctx, r.b, eventstore.Start, r.opts.RebuildBatchSize, 2)
	defer ahead.stop()
	from := eventstore.Start
	for {
		batch, err := ahead.next()
		if err != nil {
			return fmt.Errorf("read $all after %s: %w", from, err)
		}
		if len(batch) == 0 {
			return nil
		}
		r.work.Lock()
		n, err := r.apply(ctx, from, batch, false)
		r.work.Unlock()
		if errors.Is(err, errCheckpointMoved) {
			// Another runner of this projection (this process's live one,
			// or another server's) applied events in between: go on from
			// where it left the checkpoint, one batch at a time.
			ahead.stop()
			return r.rebuildSteps(ctx, done, total, progress)
		}
		if err != nil {
			return err
		}
		from = batch[len(batch)-1].Position
		done += n
		if progress != nil {
			progress(done, total)
		}
	}
}

// rebuildSteps finishes a rebuild without read-ahead, re-reading the
// stored checkpoint before every batch.
func (r *Runner) rebuildSteps(ctx context.Context, done, total int, progress func(done, total int)) error {
	if err := r.load(ctx); err != nil {
		return err
	}
	for {
		n, err := r.step(ctx, r.opts.RebuildBatchSize, false, nil)
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		done += n
		if progress != nil {
			progress(done, total)
		}
	}
}

// readAhead reads $all in batches on its own goroutine, up to depth
// batches ahead of the consumer. It ends after the first empty batch (the
// log's readable end at that moment) or the first error, which next
// returns.
type readAhead struct {
	ch     chan aheadBatch
	cancel context.CancelFunc
	done   chan struct{}
}

type aheadBatch struct {
	events []eventstore.RecordedEvent
	err    error
}

// replayer is the streaming read of $all a store may offer: fn gets
// consecutive batches after the position, up to the head as of the call,
// and may keep each batch (the read-ahead hands it to another goroutine);
// the last position passed to fn is returned. A store that has it can
// answer a whole replay from one query instead of one per batch.
type replayer interface {
	ReplayAll(ctx context.Context, after eventstore.Position, batch int, fn func([]eventstore.RecordedEvent) error) (eventstore.Position, error)
}

func startReadAhead(ctx context.Context, b Backend, from eventstore.Position, size, depth int) *readAhead {
	ctx, cancel := context.WithCancel(ctx)
	ra := &readAhead{ch: make(chan aheadBatch, depth), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(ra.done)
		defer close(ra.ch)
		send := func(evs []eventstore.RecordedEvent, err error) bool {
			select {
			case ra.ch <- aheadBatch{events: evs, err: err}:
				return true
			case <-ctx.Done():
				return false
			}
		}
		if rp, ok := b.(replayer); ok {
			// The position is tracked here rather than taken from the
			// result, so that a replay that passed nothing resumes at from.
			_, err := rp.ReplayAll(ctx, from, size, func(evs []eventstore.RecordedEvent) error {
				if len(evs) == 0 {
					return nil // an empty batch would read as the end
				}
				if !send(evs, nil) {
					return ctx.Err()
				}
				from = evs[len(evs)-1].Position
				return nil
			})
			if err != nil {
				send(nil, err)
				return
			}
			// What was appended while it ran is read as before, up to the
			// first empty batch.
		}
		for {
			evs, err := b.ReadAll(ctx, from, size)
			if !send(evs, err) || err != nil || len(evs) == 0 {
				return
			}
			from = evs[len(evs)-1].Position
		}
	}()
	return ra
}

// next returns the following batch; an empty one means the end.
func (ra *readAhead) next() ([]eventstore.RecordedEvent, error) {
	b, ok := <-ra.ch
	if !ok {
		return nil, context.Canceled
	}
	return b.events, b.err
}

// stop ends the reader and waits for it; it is safe to call twice.
func (ra *readAhead) stop() {
	ra.cancel()
	<-ra.done
}

// Mismatch is one row where a read model differs from a fresh replay.
type Mismatch struct {
	Projection string `json:"projection"`
	Key        string `json:"key"`
	Live       string `json:"live"`    // empty: row missing from the live table
	Rebuilt    string `json:"rebuilt"` // empty: row only in the live table
}

func (m Mismatch) String() string {
	switch {
	case m.Live == "":
		return fmt.Sprintf("%s %s: missing from the read model (replay has %s)", m.Projection, m.Key, m.Rebuilt)
	case m.Rebuilt == "":
		return fmt.Sprintf("%s %s: in the read model but not in a replay (%s)", m.Projection, m.Key, m.Live)
	default:
		return fmt.Sprintf("%s %s: read model %s, replay %s", m.Projection, m.Key, m.Live, m.Rebuilt)
	}
}

var errRollback = errors.New("projections: verify rolls back")

// Verify replays every comparable projection (those implementing Dumper)
// from Start up to its checkpoint inside a transaction that is rolled
// back, and diffs the result against the live rows. An empty result means
// every read model equals a fresh replay. The names of projections that
// cannot be compared are skipped (see Dumper).
func (s *Set) Verify(ctx context.Context) ([]Mismatch, error) {
	var out []Mismatch
	for _, r := range s.runners {
		if _, ok := r.p.(Dumper); !ok {
			continue
		}
		ms, err := r.verify(ctx)
		if err != nil {
			return out, fmt.Errorf("projections: verify %s: %w", r.Name(), err)
		}
		out = append(out, ms...)
	}
	return out, nil
}

func (r *Runner) verify(ctx context.Context) ([]Mismatch, error) {
	r.work.Lock()
	defer r.work.Unlock()
	clone := r.p.Clone()
	var out []Mismatch
	err := r.b.WriteTx(ctx, func(tx *sqlx.Tx) error {
		// A runner elsewhere (a serving process) may commit a batch while
		// this runs; under READ COMMITTED it could land between reading
		// the checkpoint and dumping the live rows, which would then hold
		// rows a replay up to that checkpoint never produces. One snapshot
		// keeps the checkpoint and every dump consistent.
		if d, _ := DialectOf(tx.DriverName()); d == Postgres {
			if _, err := tx.ExecContext(ctx, `SET TRANSACTION ISOLATION LEVEL REPEATABLE READ`); err != nil {
				return err
			}
		}
		cp, err := LoadCheckpoint(ctx, tx, r.Name())
		if err != nil {
			return err
		}
		live, err := r.p.(Dumper).Dump(ctx, tx)
		if err != nil {
			return err
		}
		if err := clone.Reset(ctx, tx); err != nil {
			return err
		}
		pos := eventstore.Start
		for pos.Less(cp) {
			batch, err := r.b.ReadAll(ctx, pos, r.opts.RebuildBatchSize)
			if err != nil {
				return err
			}
			if len(batch) == 0 {
				break
			}
			cut := len(batch)
			for i, e := range batch {
				if cp.Less(e.Position) {
					cut = i
					break
				}
			}
			if cut > 0 {
				if err := clone.Apply(ctx, tx, batch[:cut]); err != nil {
					return err
				}
			}
			if cut < len(batch) {
				break
			}
			pos = batch[len(batch)-1].Position
		}
		fresh, err := clone.(Dumper).Dump(ctx, tx)
		if err != nil {
			return err
		}
		out = diff(r.Name(), live, fresh)
		return errRollback
	})
	if !errors.Is(err, errRollback) {
		return nil, err
	}
	return out, nil
}

func diff(name string, live, fresh map[string]string) []Mismatch {
	var out []Mismatch
	for k, v := range live {
		if f, ok := fresh[k]; !ok || f != v {
			out = append(out, Mismatch{Projection: name, Key: k, Live: v, Rebuilt: f})
		}
	}
	for k, f := range fresh {
		if _, ok := live[k]; !ok {
			out = append(out, Mismatch{Projection: name, Key: k, Rebuilt: f})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}
