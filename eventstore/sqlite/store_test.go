package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/payledger/payledger/eventstore"
	"github.com/payledger/payledger/eventstore/sqlite"
	"github.com/payledger/payledger/eventstore/storetest"
)

func open(t testing.TB, path string) *sqlite.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) eventstore.Store {
		return open(t, filepath.Join(t.TempDir(), "events.db"))
	})
}

// TestReopen proves the events are in the file: a second store on the same
// path sees them, with the chain intact, and keeps appending to it.
func TestReopen(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "sub", "events.db")
	ctx := context.Background()
	s := open(t, path)
	if _, err := s.Append(ctx, "s", eventstore.NoStream, storetest.Event("x", `{"a":1}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := open(t, path)
	if _, err := s2.Append(ctx, "s", eventstore.Exact(1), storetest.Event("x", `{"a":2}`)); err != nil {
		t.Fatal(err)
	}
	evs, err := s2.ReadStream(ctx, "s", 0)
	if err != nil || len(evs) != 2 {
		t.Fatalf("after reopen: %d events, %v", len(evs), err)
	}
	if err := eventstore.VerifyStream(evs); err != nil {
		t.Fatal(err)
	}
	head, err := s2.Head(ctx)
	if err != nil || head != evs[1].Position {
		t.Fatalf("Head = %v, %v; want %v", head, err, evs[1].Position)
	}
}

// TestReadModelWrites shows the intended split: read-model writes through
// WriteTx, reads through DB, whose connections refuse writes.
func TestReadModelWrites(t *testing.T) {
	t.Parallel()
	s := open(t, filepath.Join(t.TempDir(), "events.db"))
	ctx := context.Background()
	err := s.WriteTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `CREATE TABLE rm (k TEXT PRIMARY KEY, v TEXT)`); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO rm VALUES ('a', 'b')`)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var v string
	if err := s.DB().GetContext(ctx, &v, `SELECT v FROM rm WHERE k = 'a'`); err != nil || v != "b" {
		t.Fatalf("read model row = %q, %v", v, err)
	}
	if _, err := s.DB().ExecContext(ctx, `INSERT INTO rm VALUES ('c', 'd')`); err == nil {
		t.Fatal("write through DB() succeeded; it must be read-only")
	}
}
