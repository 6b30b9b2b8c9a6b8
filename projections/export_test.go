package projections

import (
	"context"

	"github.com/jmoiron/sqlx"

	"github.com/payledger/payledger/eventstore"
)

// Tail exposes the shared $all reader to the external tests.
type Tail struct{ t *tail }

func NewTail(b Backend, keep int) Tail { return Tail{newTail(b, keep)} }

func (t Tail) Read(ctx context.Context, from eventstore.Position, limit int, changed <-chan struct{}) ([]eventstore.RecordedEvent, error) {
	return t.t.read(ctx, from, limit, changed)
}

// TxGroup exposes the runners' transaction combiner to the external tests.
type TxGroup struct{ g *txGroup }

const MaxTxLeaders = maxTxLeaders

func NewTxGroup(b Backend) TxGroup { return TxGroup{&txGroup{b: b}} }

func (g TxGroup) Commit(ctx context.Context, name string, fn func(*sqlx.Tx) error) error {
	return g.g.commit(ctx, name, fn)
}

// Occupy pretends n more transactions are running (n < 0 ends them).
func (g TxGroup) Occupy(n int) {
	g.g.mu.Lock()
	g.g.leaders += n
	g.g.mu.Unlock()
}

func (g TxGroup) Queued() int {
	g.g.mu.Lock()
	defer g.g.mu.Unlock()
	return len(g.g.queue)
}

func (g TxGroup) Counts() (combined, retried int64) {
	return g.g.combined.Load(), g.g.retried.Load()
}

// DeferWrites exposes the live batches' deferred writes (see deferral).
func DeferWrites(tx *sqlx.Tx) (end func()) { return deferWrites(tx) }

// Inline exposes the literal rendering of deferred statements.
func Inline(query string, args ...any) (string, bool) { return inline(query, args) }

// AdvanceCheckpoint exposes the checkpoint step of every batch.
func AdvanceCheckpoint(ctx context.Context, tx *sqlx.Tx, name string, from, to eventstore.Position) error {
	return advanceCheckpoint(ctx, tx, name, from, to, 0)
}

var ErrCheckpointMoved = errCheckpointMoved
