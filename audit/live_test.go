package audit_test

import (
	"context"
	"sync"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/payledger/payledger/audit"
	"github.com/payledger/payledger/eventstore"
	"github.com/payledger/payledger/projections"
	"github.com/payledger/payledger/projections/projectiontest"
	"github.com/payledger/payledger/projections/status"
)

// pausing wraps the status projection so that the replay of a Verify
// stops after its first batch until the test has done something.
type pausing struct {
	*status.Projection
	once   *sync.Once
	paused chan struct{}
	resume chan struct{}
}

func (p pausing) Clone() projections.Projection {
	return pausing{Projection: p.Projection.Clone().(*status.Projection), once: p.once, paused: p.paused, resume: p.resume}
}

func (p pausing) Apply(ctx context.Context, tx *sqlx.Tx, batch []eventstore.RecordedEvent) error {
	if err := p.Projection.Apply(ctx, tx, batch); err != nil {
		return err
	}
	p.once.Do(func() { close(p.paused); <-p.resume })
	return nil
}

// A serving process keeps committing read-model rows while an auditor
// verifies. Rows committed after the verification began are not part of
// what it compares: they must not show up as "missing from the read
// model".
func TestVerifyIgnoresRowsCommittedMeanwhile(t *testing.T) {
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
		t.Fatalf("verify ended without replaying: %v", r)
	}
	// What a live runner elsewhere would commit for a newer invoice.
	if _, err := b.DB().ExecContext(ctx, `INSERT INTO status_invoices (id, number, status, currency, provider, reference_id, customer_email, created_at, version, object)
VALUES ('inv_newer', 1, 'open', 'USD', 'sandbox', 'r', 'e', 0, 1, '{}')`); err != nil {
		t.Fatal(err)
	}
	close(p.resume)
	r := <-done
	if r == nil {
		t.FailNow()
	}
	if !r.OK() {
		t.Fatalf("rows committed during the verification reported:\n%s", report(r))
	}
}
