package postgres_test

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/payledger/payledger/eventstore"
	"github.com/payledger/payledger/eventstore/postgres"
	"github.com/payledger/payledger/eventstore/storetest"
	"github.com/payledger/payledger/internal/pgtest"
)

func open(t *testing.T) *postgres.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := postgres.Open(ctx, pgtest.New(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) eventstore.Store { return open(t) })
}

func TestMigrateIsIdempotent(t *testing.T) {
	t.Parallel()
	s := open(t)
	ctx := context.Background()
	if _, err := s.Append(ctx, "m", eventstore.NoStream, storetest.Event("x", `{}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	if evs, err := s.ReadStream(ctx, "m", 0); err != nil || len(evs) != 1 {
		t.Fatalf("after Migrate: %d events, %v", len(evs), err)
	}
}

// TestReadAllWaitsForHeldTransaction holds an append's transaction open
// while later appends commit: $all must not return the later events (they
// would be passed over when the held one commits), and after the commit it
// returns all of them, the held one first.
func TestReadAllWaitsForHeldTransaction(t *testing.T) {
	t.Parallel()
	s := open(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	if _, err := s.Append(ctx, "before", eventstore.NoStream, storetest.Event("x", `{}`)); err != nil {
		t.Fatal(err)
	}
	// Other databases' transactions on the same server also hold $all back
	// for a moment (xids are server-wide): wait until "before" is visible.
	waitFor(t, s, eventstore.Start, 1)
	tx, err := postgres.AppendPool(s).BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	held := storetest.Event("held", `{}`)
	if _, err := postgres.AppendInTx(ctx, s, tx, "held", eventstore.NoStream, held); err != nil {
		t.Fatal(err)
	}
	var later []string
	for i := 0; i < 3; i++ {
		e := storetest.Event("later", `{}`)
		if _, err := s.Append(ctx, "later", eventstore.Any, e); err != nil {
			t.Fatal(err)
		}
		later = append(later, e.ID)
	}
	evs, err := s.ReadAll(ctx, eventstore.Start, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Stream != "before" {
		t.Fatalf("ReadAll with a transaction held open returned %d events (%v); want only the one committed before it", len(evs), streams(evs))
	}
	head, err := s.Head(ctx)
	if err != nil || head != evs[0].Position {
		t.Fatalf("Head = %v, %v; want %v", head, err, evs[0].Position)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	evs = waitFor(t, s, evs[0].Position, 4)
	want := append([]string{held.ID}, later...)
	if len(evs) != len(want) {
		t.Fatalf("after commit ReadAll returned %d events, want %d", len(evs), len(want))
	}
	for i, e := range evs {
		if e.ID != want[i] {
			t.Fatalf("event %d is %s (%s), want %s", i, e.ID, e.Stream, want[i])
		}
	}
}

func streams(evs []eventstore.RecordedEvent) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Stream)
	}
	return out
}

// waitFor polls ReadAll after pos until it returns at least n events.
func waitFor(t *testing.T, s *postgres.Store, pos eventstore.Position, n int) []eventstore.RecordedEvent {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		evs, err := s.ReadAll(context.Background(), pos, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) >= n || time.Now().After(deadline) {
			return evs
		}
		select {
		case <-s.Changed():
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// TestReadAllPassesReadModelTransactions holds a WriteTx transaction open
// after it has written (so it has an xid older than the next append's):
// read models never append events, so $all must not wait for it, or every
// projection's commit would stall every reader.
func TestReadAllPassesReadModelTransactions(t *testing.T) {
	t.Parallel()
	s := open(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.DB().ExecContext(ctx, `CREATE TABLE read_model (n int)`); err != nil {
		t.Fatal(err)
	}
	held, release, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		done <- s.WriteTx(ctx, func(tx *sqlx.Tx) error {
			if _, err := tx.ExecContext(ctx, `INSERT INTO read_model VALUES (1)`); err != nil {
				return err
			}
			close(held)
			<-release
			return nil
		})
	}()
	select {
	case <-held:
	case err := <-done:
		t.Fatalf("WriteTx: %v", err)
	}
	e := storetest.Event("after", `{}`)
	if _, err := s.Append(ctx, "after", eventstore.NoStream, e); err != nil {
		t.Fatal(err)
	}
	// The read-model transaction stays open all along.
	evs := waitFor(t, s, eventstore.Start, 1)
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("WriteTx: %v", err)
	}
	if len(evs) != 1 || evs[0].ID != e.ID {
		t.Fatalf("with a read-model transaction open, $all returned %v; want the event appended after it began", streams(evs))
	}
}

// TestReadAllPassesOtherDatabases holds a transaction with an xid open in
// another database of the same server: transaction ids are the cluster's,
// but only this database's sessions can append its events, so $all must
// not wait for it (it did, and one long transaction anywhere on a shared
// server stalled every projection).
func TestReadAllPassesOtherDatabases(t *testing.T) {
	t.Parallel()
	s := open(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	other, err := sql.Open("postgres", pgtest.New(t))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	tx, err := other.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE elsewhere (n int)`); err != nil { // assigns an xid
		t.Fatal(err)
	}
	e := storetest.Event("after", `{}`)
	if _, err := s.Append(ctx, "after", eventstore.NoStream, e); err != nil {
		t.Fatal(err)
	}
	evs := waitFor(t, s, eventstore.Start, 1)
	if len(evs) != 1 || evs[0].ID != e.ID {
		t.Fatalf("with another database's transaction open, $all returned %v; want the event appended after it began", streams(evs))
	}
}

// TestReplayAllAcrossQueries runs ReplayAll with a query size that does
// not divide the batch size, so batches span query boundaries and some
// queries return exactly a full chunk: the replay must still pass every
// event once, in order, and stop at the end.
func TestReplayAllAcrossQueries(t *testing.T) {
	t.Parallel()
	s := open(t)
	ctx := context.Background()
	for i := 0; i < 6; i++ {
		if _, err := s.Append(ctx, fmt.Sprintf("rq-%d", i%4), eventstore.Any, storetest.Event("x", `{"i":1}`), storetest.Event("y", `{}`)); err != nil {
			t.Fatal(err)
		}
	}
	// Other packages' transactions on the server hold $all back for a
	// while (xids are server-wide): wait until all twelve are readable.
	var whole []eventstore.RecordedEvent
	for deadline := time.Now().Add(20 * time.Second); len(whole) < 12; time.Sleep(20 * time.Millisecond) {
		var err error
		if whole, err = s.ReadAll(ctx, eventstore.Start, 100); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("ReadAll = %d events after 20 s, want 12", len(whole))
		}
	}
	for _, chunk := range []int{1, 4, 5, 12, 13} {
		postgres.SetReplayChunk(s, chunk)
		var got []eventstore.RecordedEvent
		last, err := s.ReplayAll(ctx, eventstore.Start, 3, func(evs []eventstore.RecordedEvent) error {
			got = append(got, evs...)
			return nil
		})
		if err != nil {
			t.Fatalf("chunk %d: %v", chunk, err)
		}
		if len(got) != len(whole) || last != whole[len(whole)-1].Position {
			t.Fatalf("chunk %d: replayed %d events ending at %v; want %d ending at %v", chunk, len(got), last, len(whole), whole[len(whole)-1].Position)
		}
		for i := range got {
			if got[i].ID != whole[i].ID {
				t.Fatalf("chunk %d: event %d differs", chunk, i)
			}
		}
	}
}

// TestAppendPoolPlansOnce: the append statements' sessions pin the generic
// plan (see genericPlans); the main pool keeps PostgreSQL's default, which
// ReadAll relies on.
func TestAppendPoolPlansOnce(t *testing.T) {
	t.Parallel()
	s := open(t)
	ctx := context.Background()
	for _, c := range []struct {
		name string
		db   interface {
			QueryRowContext(context.Context, string, ...any) *sql.Row
		}
		want string
	}{
		{"append pool", postgres.AppendPool(s), "force_generic_plan"},
		{"main pool", s.DB(), "auto"},
	} {
		var got string
		if err := c.db.QueryRowContext(ctx, `SHOW plan_cache_mode`).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != c.want {
			t.Errorf("%s: plan_cache_mode %s, want %s", c.name, got, c.want)
		}
	}
}
