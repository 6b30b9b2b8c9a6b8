package numbers

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/jmoiron/sqlx"
)

// First is the first number handed out on a fresh database.
const First = 1001

// Database is what the allocator needs from the event store's SQL
// database; eventstore/postgres and eventstore/sqlite both provide it.
// Writes go through WriteTx because SQLite has a single writer connection.
type Database interface {
	DB() *sqlx.DB
	WriteTx(ctx context.Context, fn func(*sqlx.Tx) error) error
}

// Sequence implements ledger.Numberer over a SQL database.
type Sequence struct {
	db       Database
	postgres bool
}

// New prepares the schema (idempotently) and returns the allocator.
func New(ctx context.Context, db Database) (*Sequence, error) {
	d := db.DB().DriverName()
	s := &Sequence{db: db, postgres: strings.Contains(d, "postgres") || strings.Contains(d, "pgx")}
	if err := s.Migrate(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Migrate creates the sequence or counter if missing.
func (s *Sequence) Migrate(ctx context.Context) error {
	var stmts []string
	if s.postgres {
		stmts = []string{fmt.Sprintf(`CREATE SEQUENCE IF NOT EXISTS payledger_invoice_number START WITH %d`, First)}
	} else {
		stmts = []string{
			`CREATE TABLE IF NOT EXISTS payledger_invoice_number (id INTEGER PRIMARY KEY CHECK (id = 1), last INTEGER NOT NULL)`,
			fmt.Sprintf(`INSERT INTO payledger_invoice_number (id, last) VALUES (1, %d) ON CONFLICT (id) DO NOTHING`, First-1),
		}
	}
	return s.db.WriteTx(ctx, func(tx *sqlx.Tx) error {
		for _, q := range stmts {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("numbers: migrate: %w", err)
			}
		}
		return nil
	})
}

// Next returns the next invoice number.
func (s *Sequence) Next(ctx context.Context) (int64, error) {
	var n int64
	if s.postgres {
		// nextval is not transactional and needs no commit of its own.
		if err := s.db.DB().QueryRowContext(ctx, `SELECT nextval('payledger_invoice_number')`).Scan(&n); err != nil {
			return 0, fmt.Errorf("numbers: next: %w", err)
		}
		return n, nil
	}
	err := s.db.WriteTx(ctx, func(tx *sqlx.Tx) error {
		return tx.QueryRowContext(ctx, `UPDATE payledger_invoice_number SET last = last + 1 WHERE id = 1 RETURNING last`).Scan(&n)
	})
	if err != nil {
		return 0, fmt.Errorf("numbers: next: %w", err)
	}
	return n, nil
}

// References binds names (reference ids, idempotency keys) to invoice ids,
// first writer wins. It lets an invoice created "by reference" keep a
// time-ordered id (lists sort by id) while concurrent creates of the same
// reference still land on one stream.
//
// A reservation whose invoice never got created (a crash in between) is
// harmless: the next create with that name finds the reservation, sees no
// invoice and creates it under the reserved id.
type References struct {
	db       Database
	postgres bool
	seq      *Sequence // ReserveNumbered's numbers; nil: it draws none
}

// NewReferences migrates the table and returns the reservations.
// ReserveNumbered draws invoice numbers from seq, which must be on the
// same database; seq may be nil.
func NewReferences(ctx context.Context, db Database, seq *Sequence) (*References, error) {
	d := db.DB().DriverName()
	r := &References{db: db, postgres: strings.Contains(d, "postgres") || strings.Contains(d, "pgx"), seq: seq}
	err := db.WriteTx(ctx, func(tx *sqlx.Tx) error {
		_, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS payledger_invoice_refs (
			name TEXT PRIMARY KEY,
			invoice_id TEXT NOT NULL)`)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("numbers: migrate references: %w", err)
	}
	return r, nil
}

// writeDB is the PostgreSQL store's pool for single read-model statements
// outside a transaction (eventstore/postgres.Store.WriteDB).
type writeDB interface{ WriteDB() *sqlx.DB }

// reserveSQL inserts the binding unless there is one, and returns the
// binding either way, in one round trip, with %s (the next invoice number,
// or NULL) only when it bound the name: a repeated reference or key burns
// no number. It is safe without a WAL flush of its own: the invoice's
// append commits durably after this, and the WAL is flushed in order, so a
// durable invoice implies a durable reservation. (The sequence is not
// transactional anyway: a number drawn here is as final as one drawn by
// Sequence.Next.) The binding comes back empty only when a concurrent
// reservation of the same name committed during the statement (see
// reserve).
const reserveSQL = `WITH ins AS (
	INSERT INTO payledger_invoice_refs (name, invoice_id) VALUES ($1, $2)
	ON CONFLICT (name) DO NOTHING
	RETURNING invoice_id, set_config('synchronous_commit', 'off', true))
SELECT invoice_id, %s FROM ins
UNION ALL
SELECT invoice_id, NULL::bigint FROM payledger_invoice_refs WHERE name = $1
LIMIT 1`

var (
	reservePlain    = fmt.Sprintf(reserveSQL, "NULL::bigint")
	reserveNumbered = fmt.Sprintf(reserveSQL, "nextval('payledger_invoice_number')")
)

// Reserve binds name to id unless it is bound already, and returns the id
// it is bound to.
func (r *References) Reserve(ctx context.Context, name, id string) (string, error) {
	bound, _, err := r.reserve(ctx, name, id, false)
	return bound, err
}

// ReserveNumbered is Reserve that also returns the next invoice number
// when this call bound name to id, saving Create a round trip. The number
// is 0 when name was bound already, and also when numbers cannot be drawn
// in the same statement (SQLite, or no sequence given): the caller then
// draws one itself if it needs one.
func (r *References) ReserveNumbered(ctx context.Context, name, id string) (string, int64, error) {
	return r.reserve(ctx, name, id, r.seq != nil && r.seq.postgres)
}

func (r *References) reserve(ctx context.Context, name, id string, draw bool) (string, int64, error) {
	var bound string
	if w, ok := r.db.(writeDB); ok && r.postgres {
		stmt := reservePlain
		if draw {
			stmt = reserveNumbered
		}
		var n sql.NullInt64
		err := w.WriteDB().QueryRowContext(ctx, stmt, name, id).Scan(&bound, &n)
		if errors.Is(err, sql.ErrNoRows) {
			// A concurrent reservation of name committed while this one
			// waited on its key: the statement's snapshot predates it, a
			// new one sees it.
			err = w.WriteDB().QueryRowContext(ctx, `SELECT invoice_id FROM payledger_invoice_refs WHERE name = $1`, name).Scan(&bound)
		}
		if err != nil {
			return "", 0, fmt.Errorf("numbers: reserve: %w", err)
		}
		return bound, n.Int64, nil
	}
	q := func(s string) string {
		if r.postgres {
			return sqlx.Rebind(sqlx.DOLLAR, s)
		}
		return s
	}
	err := r.db.WriteTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, q(`INSERT INTO payledger_invoice_refs (name, invoice_id) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`), name, id); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, q(`SELECT invoice_id FROM payledger_invoice_refs WHERE name = ?`), name).Scan(&bound)
	})
	if err != nil {
		return "", 0, fmt.Errorf("numbers: reserve: %w", err)
	}
	return bound, 0, nil
}
