package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"

	"github.com/payledger/payledger/eventstore"
)

// checkpointSchema is shared by all projections. Positions are stored as
// BIGINT: Postgres transaction ids and SQLite row ids both fit in 63 bits.
const checkpointSchema = `CREATE TABLE IF NOT EXISTS projection_checkpoints (
	name        TEXT PRIMARY KEY,
	commit_pos  BIGINT NOT NULL,
	prepare_pos BIGINT NOT NULL,
	updated_at  BIGINT NOT NULL
)`

func migrateCheckpoints(ctx context.Context, tx *sqlx.Tx) error {
	_, err := tx.ExecContext(ctx, checkpointSchema)
	return err
}

// Queryer is a *sqlx.DB or *sqlx.Tx.
type Queryer interface {
	sqlx.QueryerContext
	sqlx.ExecerContext
	Rebind(string) string
}

// LoadCheckpoint reads a projection's checkpoint (Start when none).
func LoadCheckpoint(ctx context.Context, q Queryer, name string) (eventstore.Position, error) {
	var c, p int64
	err := q.QueryRowxContext(ctx, q.Rebind(
		`SELECT commit_pos, prepare_pos FROM projection_checkpoints WHERE name = ?`), name).Scan(&c, &p)
	if errors.Is(err, sql.ErrNoRows) {
		return eventstore.Start, nil
	}
	if err != nil {
		return eventstore.Start, fmt.Errorf("projections: checkpoint of %s: %w", name, err)
	}
	return eventstore.Position{Commit: uint64(c), Prepare: uint64(p)}, nil
}

// lockCheckpoint reads a projection's checkpoint inside a write
// transaction and, on PostgreSQL, locks its row until the transaction
// ends. Two processes (two servers, or a server and `projections
// rebuild`) may run the same projection: the lock makes the second wait
// and then see that the checkpoint moved, instead of applying the same
// batch a second time. SQLite needs no lock: its writers are serialised.
func lockCheckpoint(ctx context.Context, tx *sqlx.Tx, name string) (eventstore.Position, error) {
	if tx.DriverName() != "postgres" {
		return LoadCheckpoint(ctx, tx, name)
	}
	// A read model is derived from the durable log and its checkpoint
	// commits with it, so a crash that loses the last commits only rolls
	// the projection back to an earlier checkpoint, from which it applies
	// the same events again. So its transactions need not wait for the WAL
	// flush. They must not: while one is open its xid holds back every $all
	// reader (the snapshot horizon), so each millisecond of fsync here is
	// projection lag everywhere. Anything durable that later depends on
	// these rows (a delivery attempt marked done) flushes the WAL past them.
	if _, err := tx.ExecContext(ctx, `SET LOCAL synchronous_commit = off`); err != nil {
		return eventstore.Start, fmt.Errorf("projections: lock checkpoint of %s: %w", name, err)
	}
	var c, p int64
	err := tx.QueryRowxContext(ctx,
		`SELECT commit_pos, prepare_pos FROM projection_checkpoints WHERE name = $1 FOR UPDATE`, name).Scan(&c, &p)
	if errors.Is(err, sql.ErrNoRows) {
		return eventstore.Start, nil
	}
	if err != nil {
		return eventstore.Start, fmt.Errorf("projections: lock checkpoint of %s: %w", name, err)
	}
	return eventstore.Position{Commit: uint64(c), Prepare: uint64(p)}, nil
}

// seedCheckpoint makes sure the projection has a checkpoint row to lock,
// so that even the first batch is applied by one process only.
func seedCheckpoint(ctx context.Context, tx *sqlx.Tx, name string) error {
	_, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO projection_checkpoints (name, commit_pos, prepare_pos, updated_at)
VALUES (?, 0, 0, 0) ON CONFLICT (name) DO NOTHING`), name)
	if err != nil {
		return fmt.Errorf("projections: seed checkpoint of %s: %w", name, err)
	}
	return nil
}

// advanceCheckpoint moves a projection's checkpoint from from to to inside
// the transaction that applies the events in between, or returns
// errCheckpointMoved, changing nothing, when the stored checkpoint is no
// longer from. One statement locks, compares and writes (on PostgreSQL it
// also turns off the commit's WAL flush, see lockCheckpoint): under READ
// COMMITTED an UPDATE that waited for another process's lock on the row
// re-checks its WHERE against the committed row, so of two processes
// applying the same batch exactly one goes on.
func advanceCheckpoint(ctx context.Context, tx *sqlx.Tx, name string, from, to eventstore.Position, nowMicro int64) error {
	q := `UPDATE projection_checkpoints SET commit_pos = ?, prepare_pos = ?, updated_at = ?
WHERE name = ? AND commit_pos = ? AND prepare_pos = ?`
	if deferred(tx) != nil {
		// Deferred (see deferral), nobody reads the row count: the
		// statement fails by itself when no row matched (a division by
		// zero), which fails the transaction, and txGroup reruns the batch
		// without deferring, where this function tells a moved checkpoint
		// from a missing row.
		return Exec(ctx, tx, tx.Rebind(`WITH u AS (`+q+` RETURNING 1)
SELECT set_config('synchronous_commit', 'off', true), 1 / count(*) FROM u`),
			int64(to.Commit), int64(to.Prepare), nowMicro, name, int64(from.Commit), int64(from.Prepare))
	}
	if tx.DriverName() == "postgres" {
		q += ` RETURNING set_config('synchronous_commit', 'off', true)`
	}
	res, err := tx.ExecContext(ctx, tx.Rebind(q), int64(to.Commit), int64(to.Prepare), nowMicro, name, int64(from.Commit), int64(from.Prepare))
	if err != nil {
		return fmt.Errorf("projections: advance checkpoint of %s: %w", name, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("projections: advance checkpoint of %s: %w", name, err)
	}
	if n == 1 {
		return nil
	}
	// No row matched: either the checkpoint moved, or the row is missing
	// (tables created before seedCheckpoint existed), which counts as
	// Start.
	stored, err := lockCheckpoint(ctx, tx, name)
	if err != nil {
		return err
	}
	if stored != from {
		return errCheckpointMoved
	}
	return saveCheckpoint(ctx, tx, name, to, nowMicro)
}

func saveCheckpoint(ctx context.Context, tx *sqlx.Tx, name string, pos eventstore.Position, nowMicro int64) error {
	_, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO projection_checkpoints (name, commit_pos, prepare_pos, updated_at)
VALUES (?, ?, ?, ?)
ON CONFLICT (name) DO UPDATE SET commit_pos = excluded.commit_pos, prepare_pos = excluded.prepare_pos, updated_at = excluded.updated_at`),
		name, int64(pos.Commit), int64(pos.Prepare), nowMicro)
	if err != nil {
		return fmt.Errorf("projections: save checkpoint of %s: %w", name, err)
	}
	return nil
}
