package postgres

import (
	"context"
	"database/sql"

	"github.com/payledger/payledger/eventstore"
)

// AppendInTx runs the store's append statement inside tx, which the test
// keeps open, so that it can prove $all readers wait for it. It does not
// touch the head cache or wake readers: the transaction may never commit.
func AppendInTx(ctx context.Context, s *Store, tx *sql.Tx, stream string, expected eventstore.ExpectedVersion, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	q := func(ctx context.Context, st *sql.Stmt, args ...any) (*sql.Rows, error) {
		return tx.StmtContext(ctx, st).QueryContext(ctx, args...)
	}
	return s.append(ctx, q, false, stream, expected, events)
}

// AppendPool is the pool the append statements are prepared on; a
// transaction for AppendInTx must be begun on it.
func AppendPool(s *Store) *sql.DB { return s.ap.DB }

// GroupStats reports how many statements carried several appends and how
// many of those failed and were run again one append at a time.
func GroupStats(s *Store) (combined, retried int64) {
	return s.group.combined.Load(), s.group.retried.Load()
}

// SetReplayChunk makes ReplayAll query n rows at a time, so that tests
// cross query boundaries with few events.
func SetReplayChunk(s *Store, n int) { s.replayRowsSet = n }
