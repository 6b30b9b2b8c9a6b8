package projections

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"

	"github.com/payledger/payledger/eventstore"
)

// Dialect is the SQL flavour of the read-model database.
type Dialect string

const (
	Postgres Dialect = "postgres"
	SQLite   Dialect = "sqlite"
)

// DialectOf maps a database/sql driver name to its Dialect.
func DialectOf(driverName string) (Dialect, error) {
	switch driverName {
	case "postgres", "pgx":
		return Postgres, nil
	case "sqlite", "sqlite3":
		return SQLite, nil
	default:
		return "", fmt.Errorf("projections: unsupported database driver %q", driverName)
	}
}

// Projection is one read model.
type Projection interface {
	// Name is stable: it keys the checkpoint row and the CLI argument.
	Name() string
	// Migrate creates or upgrades the projection's tables (idempotent).
	Migrate(ctx context.Context, tx *sqlx.Tx, d Dialect) error
	// Apply applies a batch of events, in global order, to the tables.
	// The runner commits the checkpoint in the same transaction.
	Apply(ctx context.Context, tx *sqlx.Tx, batch []eventstore.RecordedEvent) error
	// Reset deletes every row the projection derived from events (and
	// drops in-memory caches), so that a replay from Start rebuilds it.
	Reset(ctx context.Context, tx *sqlx.Tx) error
	// Clone returns an independent instance over the same tables with
	// empty caches; Verify replays into a clone so the live one's caches
	// stay untouched.
	Clone() Projection
}

// Dumper is implemented by projections that Verify can compare: Dump
// returns every row keyed by its primary key, rendered canonically.
type Dumper interface {
	Dump(ctx context.Context, q sqlx.QueryerContext) (map[string]string, error)
}

// Backend is what the runners need from the store: the event log, its
// database (read models live in the same one) and a way to run a write
// transaction (SQLite funnels all writes through one writer).
type Backend interface {
	eventstore.Store
	DB() *sqlx.DB
	WriteTx(ctx context.Context, fn func(*sqlx.Tx) error) error
}
