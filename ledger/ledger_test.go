package ledger_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/payledger/payledger/domain/invoice"
	"github.com/payledger/payledger/domain/money"
	"github.com/payledger/payledger/eventstore"
	"github.com/payledger/payledger/eventstore/postgres"
	"github.com/payledger/payledger/eventstore/sqlite"
	"github.com/payledger/payledger/internal/pgtest"
	"github.com/payledger/payledger/ledger"
)

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

type clock struct{ ns atomic.Int64 }

func (c *clock) now() time.Time   { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) set(t time.Time)  { c.ns.Store(t.UnixNano()) }
func newClock(t time.Time) *clock { c := &clock{}; c.set(t); return c }
func usd(t *testing.T, s string) money.Money {
	t.Helper()
	m, err := money.Parse(s, "USD")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func backends(t *testing.T, fn func(t *testing.T, s eventstore.Store)) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "l.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		fn(t, s)
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		s, err := postgres.Open(context.Background(), pgtest.New(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		fn(t, s)
	})
}

func create(t *testing.T, svc *ledger.Service, id string) {
	t.Helper()
	_, err := svc.Execute(context.Background(), id, invoice.Create{
		InvoiceID: id, Number: 1001, Amount: usd(t, "100.00"), Provider: "sandbox",
		ExpiresAt: t0.Add(24 * time.Hour),
	})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
}

// Concurrent refunds race for the same invoice version; the ledger
// re-decides each loser on the new state, so exactly as many succeed as the
// paid amount allows and none is lost to a version conflict.
func TestConcurrentRefundsNeverExceedPayment(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, s eventstore.Store) {
		ctx := context.Background()
		svc := ledger.New(s, newClock(t0).now)
		create(t, svc, "inv_race")
		if _, err := svc.Execute(ctx, "inv_race", invoice.RecordProcessed{PaymentID: "pay_1", Provider: "sandbox", Amount: usd(t, "100.00")}); err != nil {
			t.Fatal(err)
		}
		var ok, exceeded, other atomic.Int64
		var wg sync.WaitGroup
		for i := 0; i < 6; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				_, err := svc.Execute(ctx, "inv_race", invoice.Refund{RefundID: ledger.NewID("re"), Amount: usd(t, "30.00")})
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, invoice.ErrRefundExceedsPayment):
					exceeded.Add(1)
				default:
					other.Add(1)
					t.Errorf("refund %d: %v", i, err)
				}
			}(i)
		}
		wg.Wait()
		if ok.Load() != 3 || exceeded.Load() != 3 || other.Load() != 0 {
			t.Fatalf("succeeded %d, refused %d, other %d; want 3, 3, 0", ok.Load(), exceeded.Load(), other.Load())
		}
		st, err := svc.Load(ctx, "inv_race")
		if err != nil {
			t.Fatal(err)
		}
		if st.AmountRefunded.String() != "90.00" || st.Status != invoice.StatusPartiallyRefunded {
			t.Fatalf("refunded %s status %s, want 90.00 partially_refunded", st.AmountRefunded, st.Status)
		}
	})
}

// A command retried under the same idempotency key after it committed
// returns the first result and writes nothing, even though deciding again
// would now be refused (the invoice already exists).
func TestIdempotentCommandReplaysFirstResult(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, s eventstore.Store) {
		ctx := context.Background()
		svc := ledger.New(s, newClock(t0).now)
		cmd := invoice.Create{InvoiceID: "inv_idem", Number: 7, Amount: usd(t, "5.00"), Provider: "sandbox", ExpiresAt: t0.Add(time.Hour)}
		first, err := svc.Execute(ctx, "inv_idem", cmd, ledger.Idempotent("key-1"))
		if err != nil || first.Replayed || len(first.Events) != 1 {
			t.Fatalf("first run: %+v, %v", first, err)
		}
		again, err := svc.Execute(ctx, "inv_idem", cmd, ledger.Idempotent("key-1"))
		if err != nil {
			t.Fatalf("replay: %v", err)
		}
		if !again.Replayed || again.State.Version != 1 || again.Recorded[0].ID != first.Recorded[0].ID {
			t.Fatalf("replay = %+v, want the first run's result", again)
		}
		if _, err := svc.Execute(ctx, "inv_idem", cmd, ledger.Idempotent("key-2")); !errors.Is(err, invoice.ErrAlreadyExists) {
			t.Fatalf("other key: err = %v, want ErrAlreadyExists", err)
		}
		recs, err := s.ReadStream(ctx, ledger.StreamName("inv_idem"), 1)
		if err != nil || len(recs) != 1 {
			t.Fatalf("stream has %d events (%v), want 1", len(recs), err)
		}
	})
}

func TestLoadAtReplaysToAnInstant(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, s eventstore.Store) {
		ctx := context.Background()
		c := newClock(t0)
		svc := ledger.New(s, c.now)
		create(t, svc, "inv_at")
		c.set(t0.Add(time.Minute))
		if _, err := svc.Execute(ctx, "inv_at", invoice.RecordProcessed{PaymentID: "pay_1", Provider: "sandbox", Amount: usd(t, "100.00")}); err != nil {
			t.Fatal(err)
		}
		before, err := svc.LoadAt(ctx, "inv_at", t0.Add(30*time.Second))
		if err != nil || before.Status != invoice.StatusOpen {
			t.Fatalf("before payment: %s, %v", before.Status, err)
		}
		after, err := svc.LoadAt(ctx, "inv_at", t0.Add(time.Minute))
		if err != nil || after.Status != invoice.StatusPaid {
			t.Fatalf("at payment: %s, %v", after.Status, err)
		}
		if _, err := svc.LoadAt(ctx, "inv_at", t0.Add(-time.Second)); !errors.Is(err, invoice.ErrNotFound) {
			t.Fatalf("before creation: err = %v, want ErrNotFound", err)
		}
		if _, err := svc.Load(ctx, "inv_missing"); !errors.Is(err, invoice.ErrNotFound) {
			t.Fatalf("missing: err = %v, want ErrNotFound", err)
		}
	})
}

func TestIDs(t *testing.T) {
	t.Parallel()
	a, b := ledger.NewID("inv"), ledger.NewID("inv")
	if len(a) != 36 || a[:4] != "inv_" || a == b {
		t.Fatalf("NewID = %q, %q", a, b)
	}
	x1, x2, y := ledger.DerivedID("inv", "x"), ledger.DerivedID("inv", "x"), ledger.DerivedID("inv", "y")
	if x1 != x2 || x1 == y {
		t.Fatalf("DerivedID must depend on the seed alone: %q %q %q", x1, x2, y)
	}
	if id, ok := ledger.InvoiceIDFromStream(ledger.StreamName(a)); !ok || id != a {
		t.Fatalf("InvoiceIDFromStream round trip = %q %v", id, ok)
	}
}

// TestFreshStreamAssumptionIsChecked: a command told its stream is new
// decides on the empty state without reading, but if the stream exists
// after all the append's version check catches it and the next attempt
// decides on what is stored, so nothing is appended on a wrong guess.
func TestFreshStreamAssumptionIsChecked(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, s eventstore.Store) {
		ctx := context.Background()
		svc := ledger.New(s, newClock(t0).now)
		cmd := invoice.Create{InvoiceID: "inv_fresh", Number: 7, Amount: usd(t, "5.00"), Provider: "sandbox", ExpiresAt: t0.Add(time.Hour)}
		first, err := svc.Execute(ctx, "inv_fresh", cmd, ledger.AssumeFresh())
		if err != nil || len(first.Events) != 1 || first.State.Version != 1 {
			t.Fatalf("fresh create: %+v, %v", first, err)
		}
		if _, err := svc.Execute(ctx, "inv_fresh", cmd, ledger.AssumeFresh()); !errors.Is(err, invoice.ErrAlreadyExists) {
			t.Fatalf("second fresh create: err = %v, want ErrAlreadyExists", err)
		}
		recs, err := s.ReadStream(ctx, ledger.StreamName("inv_fresh"), 1)
		if err != nil || len(recs) != 1 {
			t.Fatalf("stream has %d events (%v), want 1", len(recs), err)
		}
	})
}
