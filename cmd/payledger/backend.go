package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/jmoiron/sqlx"

	"github.com/payledger/payledger/eventstore"
	"github.com/payledger/payledger/eventstore/kurrentdb"
	"github.com/payledger/payledger/eventstore/postgres"
	"github.com/payledger/payledger/eventstore/sqlite"
)

// backend is the event log plus the SQL database the read models, keys and
// idempotency records live in. In the embedded and single-node tiers both
// are one database; with KurrentDB the log is remote and SQL is Postgres.
type backend interface {
	eventstore.Store
	DB() *sqlx.DB
	WriteTx(ctx context.Context, fn func(*sqlx.Tx) error) error
	Head(ctx context.Context) (eventstore.Position, error)
}

// tier names the deployment tier for logs.
func tier(c config) string {
	switch {
	case c.EventStoreURL != "":
		return "kurrentdb+postgres"
	case c.DatabaseURL != "":
		return "postgres"
	default:
		return "embedded sqlite"
	}
}

func openBackend(ctx context.Context, c config) (backend, error) {
	switch {
	case c.EventStoreURL != "":
		pg, err := postgres.Open(ctx, c.DatabaseURL)
		if err != nil {
			return nil, fmt.Errorf("PAYLEDGER_DATABASE_URL: %w", err)
		}
		kd, err := kurrentdb.Open(ctx, c.EventStoreURL)
		if err != nil {
			pg.Close()
			return nil, fmt.Errorf("PAYLEDGER_EVENTSTORE_URL: %w", err)
		}
		return &kurrentBackend{Store: kd, sql: pg}, nil
	case c.DatabaseURL != "":
		pg, err := postgres.Open(ctx, c.DatabaseURL)
		if err != nil {
			return nil, fmt.Errorf("PAYLEDGER_DATABASE_URL: %w", err)
		}
		return pg, nil
	default:
		if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("PAYLEDGER_DATA_DIR: %w", err)
		}
		s, err := sqlite.Open(ctx, filepath.Join(c.DataDir, "ledger.db"))
		if err != nil {
			return nil, fmt.Errorf("PAYLEDGER_DATA_DIR: %w", err)
		}
		return s, nil
	}
}

// kurrentBackend keeps events on KurrentDB and everything else in Postgres.
type kurrentBackend struct {
	*kurrentdb.Store
	sql *postgres.Store
}

func (k *kurrentBackend) DB() *sqlx.DB { return k.sql.DB() }

// WriteDB is the Postgres store's read-model pool (see numbers.Reserve).
func (k *kurrentBackend) WriteDB() *sqlx.DB { return k.sql.WriteDB() }

func (k *kurrentBackend) WriteTx(ctx context.Context, fn func(*sqlx.Tx) error) error {
	return k.sql.WriteTx(ctx, fn)
}

// Head is unknown without scanning $all on KurrentDB; returning the start
// makes read-your-writes waits return at once, and callers fall back to
// their own bounded retries.
func (k *kurrentBackend) Head(context.Context) (eventstore.Position, error) {
	return eventstore.Start, nil
}

func (k *kurrentBackend) Close() error {
	err := k.Store.Close()
	if e := k.sql.Close(); err == nil {
		err = e
	}
	return err
}
