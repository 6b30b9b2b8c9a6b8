package audit_test

import (
	"context"
	"sync"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/payledger/payledger/audit"
	"github.com/payledger/payledger/projections"
	"github.com/payledger/payledger/projections/projectiontest"
	"github.com/payledger/payledger/projections/status"
)

// pausing wraps the status projection so that a Verify stops right before
// it reads the live rows, until the test has done something.
type pausing struct {
	*status.Projection
	once   *sync.Once
	paused chan struct{}
	resume chan struct{}
}

func (p pausing) Dump(ctx context.Context, q sqlx.QueryerContext) (map[string]string, error) {
	p.once.Do(func() { close(p.paused); <-p.resume })
	return p.Projection.Dump(ctx, q)
}

// A serving process keeps committing read-model batches (rows and
// checkpoint together) while an auditor verifies. A batch committed after
// the verification read the checkpoint is not part of what it compares:
// its rows must not show up as "in the read model but not in a replay".
func TestVerifyIgnoresBatchesCommittedMeanwhile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := projectiontest.Postgres(t)
	newWorld(t, b, 60)
	p := pausing{Projection: status.New(b, b.DB()), once: new(sync.Once), paused: make(chan struct{}), resume: make(chan struct{})}
	done := make(chan *audit.Report, 1)
	go func() {
		r, err := audit.Verify(ctx, audit.Options{Backend: b, Projections: []projections.Projection{p}, Total: -1, BatchSize: 50})
		if err != nil {
			t.Error(err)
		}
		done <- r
	}()
	select {
	case <-p.paused:
	case r := <-done:
		t.Fatalf("verify ended without reading the live rows: %v", r)
	}
	// What a live runner elsewhere commits for a newer invoice: its row
	// and its checkpoint, in one transaction.
	tx, err := b.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO status_invoices (id, number, status, currency, provider, reference_id, customer_email, created_at, version, object)
VALUES ('inv_newer', 1, 'open', 'USD', 'sandbox', 'r', 'e', 0, 1, '{}')`); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE projection_checkpoints SET prepare_pos = prepare_pos + 1000000 WHERE name = 'status'`); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	close(p.resume)
	r := <-done
	if r == nil {
		t.FailNow()
	}
	if !r.OK() {
		t.Fatalf("a batch committed during the verification reported:\n%s", report(r))
	}
}
