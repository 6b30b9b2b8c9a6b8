package projections

import (
	"context"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/jmoiron/sqlx"
)

// txGroup commits the live runners' batches of one Set together. Every
// runner of a Set is woken by the same append and has a small batch to
// commit; seven read-model transactions per wake-up are seven BEGINs,
// checkpoint updates and COMMITs, which under HTTP load were about two
// fifths of the statements the database ran. So a runner whose batch is
// ready while another runner's transaction is being committed waits for
// it, and then all the batches that arrived meanwhile go into one
// transaction, each with its own checkpoint check. A batch that finds no
// transaction running is committed at once: there is no timer.
//
// A combined transaction that fails (one projection's error, a checkpoint
// another process moved, a deadlock) is rolled back and each of its
// batches committed on its own, so each runner gets exactly the error it
// would have had alone and one projection's failure never holds back the
// others. Projections already tolerate a rolled-back Apply (see doc.go).
//
// On PostgreSQL these transactions defer the batches' writes to one round
// trip before the commit (see deferral); the reruns do not.
type txGroup struct {
	b Backend
	// combined counts transactions that carried several batches, retried
	// the transactions rolled back and run again one batch at a time.
	combined, retried atomic.Int64

	mu      sync.Mutex
	queue   []*txJob
	leaders int // goroutines committing (at most maxTxLeaders); the others queue
}

// maxTxLeaders is how many combined transactions may run at once. With
// one, the read models' Go work and their database backend shared one
// core while the HTTP load had two, and at saturation they fell ~0.4 s
// behind; with seven the batches would rarely combine. Three had the best
// request latency and lag of 2, 3 and 4 under PostgreSQL HTTP load (see
// docs/benchmarks.md).
const maxTxLeaders = 3

type txJob struct {
	name string // the projection's: orders the batches of a transaction
	fn   func(*sqlx.Tx) error
	res  chan error    // buffered: the leader never blocks on it
	lead chan struct{} // buffered: "you commit the queue now"
}

// commit runs fn in a write transaction, alone or with other runners'
// batches, and returns once that transaction has ended.
func (g *txGroup) commit(ctx context.Context, name string, fn func(*sqlx.Tx) error) error {
	j := &txJob{name: name, fn: fn, res: make(chan error, 1), lead: make(chan struct{}, 1)}
	g.mu.Lock()
	lead := g.leaders < maxTxLeaders
	if lead {
		g.leaders++
	} else {
		g.queue = append(g.queue, j)
	}
	g.mu.Unlock()
	for {
		if lead {
			g.lead(ctx, j)
		}
		// Not ctx.Done: a batch in a running transaction must learn what
		// became of it.
		select {
		case err := <-j.res:
			return err
		case <-j.lead:
			lead = true
		}
	}
}

// lead commits own with everything queued, and hands the lead to the
// first batch queued meanwhile, so that the caller goes back to its own
// runner after one transaction.
func (g *txGroup) lead(ctx context.Context, own *txJob) {
	// Other runners' batches ride on this transaction: the caller's
	// cancellation must not abort theirs.
	ctx = context.WithoutCancel(ctx)
	g.mu.Lock()
	jobs := append([]*txJob{own}, g.queue...)
	g.queue = nil
	g.mu.Unlock()
	// Always in the same order, so that two processes' combined
	// transactions lock the checkpoint rows in the same order and cannot
	// deadlock on them.
	sort.Slice(jobs, func(a, b int) bool { return jobs[a].name < jobs[b].name })
	errs := g.run(ctx, jobs)
	for i, j := range jobs {
		j.res <- errs[i]
	}
	g.mu.Lock()
	if len(g.queue) > 0 {
		// The lead passes on; the new leader's batch leaves the queue, so
		// that no batch is handed the lead twice.
		next := g.queue[0]
		g.queue = g.queue[1:]
		next.lead <- struct{}{}
	} else {
		g.leaders--
	}
	g.mu.Unlock()
}

func (g *txGroup) run(ctx context.Context, jobs []*txJob) []error {
	errs := make([]error, len(jobs))
	if len(jobs) > 1 {
		g.combined.Add(1)
	}
	err := g.b.WriteTx(ctx, func(tx *sqlx.Tx) error {
		defer deferWrites(tx)()
		for _, j := range jobs {
			if err := j.fn(tx); err != nil {
				return err
			}
		}
		return Flush(ctx, tx)
	})
	if err == nil {
		return errs
	}
	// Rerun each batch alone and without deferred writes: its error is
	// then its own, and a moved checkpoint is told apart (see
	// advanceCheckpoint).
	g.retried.Add(1)
	for i, j := range jobs {
		errs[i] = g.b.WriteTx(ctx, j.fn)
	}
	return errs
}
