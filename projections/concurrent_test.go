package projections_test

import (
	"context"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/payledger/payledger/eventstore"
	"github.com/payledger/payledger/projections"
	"github.com/payledger/payledger/projections/projectiontest"
)

// applyLog records every application of every event, with no unique key,
// so that an event applied twice shows up as two rows.
type applyLog struct{ set string }

func (applyLog) Name() string { return "apply_log" }
func (applyLog) Migrate(ctx context.Context, tx *sqlx.Tx, _ projections.Dialect) error {
	_, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS apply_log (event_id TEXT NOT NULL, applied_by TEXT NOT NULL)`)
	return err
}
func (l applyLog) Apply(ctx context.Context, tx *sqlx.Tx, batch []eventstore.RecordedEvent) error {
	for _, e := range batch {
		if _, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO apply_log (event_id, applied_by) VALUES (?, ?)`), e.ID, l.set); err != nil {
			return err
		}
	}
	return nil
}
func (applyLog) Reset(ctx context.Context, tx *sqlx.Tx) error {
	_, err := tx.ExecContext(ctx, `DELETE FROM apply_log`)
	return err
}
func (l applyLog) Clone() projections.Projection { return l }

// TestTwoProcessesApplyEachEventOnce runs the same projection in two sets
// at once over one database, as two servers (or a server and `payledger
// projections rebuild`) do: every event is applied exactly once in total,
// and both sets see the projection complete.
func TestTwoProcessesApplyEachEventOnce(t *testing.T) {
	t.Parallel()
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		ctx := context.Background()
		var sets []*projections.Set
		for _, name := range []string{"a", "b"} {
			set, err := projections.NewSet(b, projections.Options{BatchSize: 7}, applyLog{set: name})
			if err != nil {
				t.Fatal(err)
			}
			if err := set.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			startSet(t, set)
			sets = append(sets, set)
		}
		last := history(t, b, 150)
		for _, set := range sets {
			waitFor(t, set, last)
		}
		var rows, distinct, events int
		if err := b.DB().QueryRowxContext(ctx, `SELECT count(*), count(DISTINCT event_id) FROM apply_log`).Scan(&rows, &distinct); err != nil {
			t.Fatal(err)
		}
		for after := eventstore.Start; ; {
			evs, err := b.ReadAll(ctx, after, 1000)
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) == 0 {
				break
			}
			events += len(evs)
			after = evs[len(evs)-1].Position
		}
		if distinct != events || rows != events {
			t.Fatalf("%d events applied %d times (%d distinct)", events, rows, distinct)
		}
	})
}

// TestRebuildBesideLiveRunner rebuilds a projection (reading ahead, in
// small batches) while another set runs it live and events keep arriving:
// the live runner moves the checkpoint under the rebuild, which must then
// continue from the stored checkpoint, so that in the end every event is
// applied exactly once.
func TestRebuildBesideLiveRunner(t *testing.T) {
	t.Parallel()
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		rebuildBesideLiveRunner(t, b, b)
	})
}

// rebuildBesideLiveRunner rebuilds through rb (b itself, or b with more
// ways to read) while a live runner over b applies a growing history.
func rebuildBesideLiveRunner(t *testing.T, b, rb projections.Backend) {
	ctx := context.Background()
	live, err := projections.NewSet(b, projections.Options{BatchSize: 5}, applyLog{set: "live"})
	if err != nil {
		t.Fatal(err)
	}
	if err := live.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	startSet(t, live)
	rebuilder, err := projections.NewSet(rb, projections.Options{RebuildBatchSize: 7}, applyLog{set: "rebuild"})
	if err != nil {
		t.Fatal(err)
	}
	type generated struct {
		ids []string
		err error
	}
	gen := make(chan generated, 1)
	go func() {
		ids, err := projectiontest.Generate(ctx, b, 120, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
		gen <- generated{ids, err}
	}()
	rebuilds := 0
	var g generated
loop:
	for {
		select {
		case g = <-gen:
			break loop
		default:
		}
		if err := rebuilder.Rebuild(ctx, "apply_log", nil); err != nil {
			t.Fatal(err)
		}
		rebuilds++
	}
	if g.err != nil {
		t.Fatal(g.err)
	}
	last := projectiontest.Settle(t, b, g.ids)
	if err := rebuilder.Rebuild(ctx, "apply_log", nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, live, last)
	var rows, distinct, events int
	if err := b.DB().QueryRowxContext(ctx, `SELECT count(*), count(DISTINCT event_id) FROM apply_log`).Scan(&rows, &distinct); err != nil {
		t.Fatal(err)
	}
	for after := eventstore.Start; ; {
		evs, err := b.ReadAll(ctx, after, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 {
			break
		}
		events += len(evs)
		after = evs[len(evs)-1].Position
	}
	if rebuilds == 0 || events == 0 || distinct != events || rows != events {
		t.Fatalf("after %d rebuilds during the load: %d events applied %d times (%d distinct)", rebuilds, events, rows, distinct)
	}
	t.Logf("%d rebuilds during the load, %d events", rebuilds, events)
}

// TestMissingCheckpointRowCountsAsStart deletes a projection's checkpoint
// row (as in a database migrated before rows were seeded): the runner
// applies every event once from the start and writes the row again,
// instead of taking the missing row for a checkpoint that moved.
func TestMissingCheckpointRowCountsAsStart(t *testing.T) {
	t.Parallel()
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		ctx := context.Background()
		set, err := projections.NewSet(b, projections.Options{BatchSize: 5}, applyLog{set: "a"})
		if err != nil {
			t.Fatal(err)
		}
		if err := set.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		if err := b.WriteTx(ctx, func(tx *sqlx.Tx) error {
			_, err := tx.ExecContext(ctx, `DELETE FROM projection_checkpoints`)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		last := history(t, b, 12)
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := set.CatchUp(cctx); err != nil {
			t.Fatal(err)
		}
		cp, err := projections.LoadCheckpoint(ctx, b.DB(), "apply_log")
		if err != nil {
			t.Fatal(err)
		}
		if cp != last {
			t.Fatalf("stored checkpoint %s, want %s", cp, last)
		}
		var rows, distinct int
		if err := b.DB().QueryRowxContext(ctx, `SELECT count(*), count(DISTINCT event_id) FROM apply_log`).Scan(&rows, &distinct); err != nil {
			t.Fatal(err)
		}
		if rows == 0 || rows != distinct {
			t.Fatalf("%d applications of %d distinct events", rows, distinct)
		}
	})
}
