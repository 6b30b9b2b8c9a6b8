package projections_test

import (
	"context"
	"testing"
	"time"

	"github.com/payledger/payledger/domain/invoice"
	"github.com/payledger/payledger/eventstore"
	"github.com/payledger/payledger/projections"
	"github.com/payledger/payledger/projections/deadlines"
	"github.com/payledger/payledger/projections/links"
	"github.com/payledger/payledger/projections/projectiontest"
	"github.com/payledger/payledger/projections/status"
)

func newSet(t *testing.T, b projections.Backend) (*projections.Set, *status.Projection, *links.Projection, *deadlines.Projection) {
	t.Helper()
	st := status.New(b, b.DB())
	ln := links.New(b, b.DB())
	dl := deadlines.New(b, b.DB())
	set, err := projections.NewSet(b, projections.Options{}, st, ln, dl)
	if err != nil {
		t.Fatal(err)
	}
	if err := set.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return set, st, ln, dl
}

func startSet(t *testing.T, set *projections.Set) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = set.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func waitFor(t *testing.T, set *projections.Set, pos eventstore.Position) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := set.WaitFor(ctx, pos); err != nil {
		t.Fatal(err)
	}
}

func TestLiveProjectionsAnswerQueries(t *testing.T) {
	t.Parallel()
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		ctx := context.Background()
		set, st, ln, dl := newSet(t, b)
		startSet(t, set)
		base := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
		ids, err := projectiontest.Generate(ctx, b, 40, base)
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, set, projectiontest.Settle(t, b, ids))

		inv, err := st.Get(ctx, ids[0])
		if err != nil {
			t.Fatal(err)
		}
		if inv.Status != invoice.StatusPaid || inv.AmountPaid != "100.55" || inv.Version != 6 {
			t.Fatalf("invoice 0 = %+v", inv)
		}
		if _, err := st.Get(ctx, "inv_missing"); err == nil {
			t.Fatal("missing invoice found")
		}

		page, more, err := st.List(ctx, status.Filter{Limit: 15})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) != 15 || !more || page[0].ID != ids[len(ids)-1] {
			t.Fatalf("first page: %d items, more=%v, first %s", len(page), more, page[0].ID)
		}
		next, _, err := st.List(ctx, status.Filter{Limit: 15, StartingAfter: page[14].ID})
		if err != nil || next[0].ID != ids[len(ids)-16] {
			t.Fatalf("second page starts at %v (err %v)", next[0].ID, err)
		}
		back, _, err := st.List(ctx, status.Filter{Limit: 5, EndingBefore: next[0].ID})
		if err != nil || len(back) != 5 || back[4].ID != page[14].ID {
			t.Fatalf("ending_before page wrong: %v", err)
		}

		for _, tc := range []struct {
			name string
			f    status.Filter
			want int
		}{
			{"cancelled", status.Filter{Status: "cancelled", Limit: 100}, 4},
			{"reference", status.Filter{ReferenceID: "ref-" + ids[3], Limit: 100}, 1},
			{"email, any case", status.Filter{CustomerEmail: "PAYER30@EXAMPLE.COM", Limit: 100}, 1},     // number 1000 % 97 = 30 → only one in 40
			{"metadata", status.Filter{Metadata: map[string]string{"account_id": "12"}, Limit: 100}, 4}, // 1000, 1013, 1026, 1039
			{"created window", status.Filter{CreatedGTE: base.Add(10 * time.Second), CreatedLT: base.Add(20 * time.Second), Limit: 100}, 10},
		} {
			got, _, err := st.List(ctx, tc.f)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tc.want {
				t.Errorf("%s: %d invoices, want %d", tc.name, len(got), tc.want)
			}
		}

		l, err := ln.Lookup(ctx, "0000000000000000000000000000000000000000000000000000000000000001")
		if err != nil || l.InvoiceID != ids[0] || l.State != invoice.LinkStateConsumed {
			t.Fatalf("link lookup: %+v %v", l, err)
		}
		if _, err := ln.Lookup(ctx, "nope"); err == nil {
			t.Fatal("unknown token found")
		}
		due, err := dl.Due(ctx, base.Add(24*time.Hour), 1000)
		if err != nil {
			t.Fatal(err)
		}
		// Open invoices: i%10==9 and i%20!=9 → 2 of 40, each with an invoice and a link deadline.
		if len(due) != 4 {
			t.Fatalf("due deadlines: %+v", due)
		}
		if d, _ := dl.Due(ctx, base, 10); len(d) != 0 {
			t.Fatalf("deadlines due before anything expires: %+v", d)
		}

		ms, err := set.Verify(ctx)
		if err != nil || len(ms) != 0 {
			t.Fatalf("verify: %v %v", ms, err)
		}
	})
}

func TestRebuildEqualsLiveAfterTenThousandInvoices(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("large history")
	}
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		ctx := context.Background()
		set, _, _, _ := newSet(t, b)
		startSet(t, set)
		waitFor(t, set, history(t, b, 10_000))
		live := dumpAll(t, b, set)
		if err := set.Rebuild(ctx, "", nil); err != nil {
			t.Fatal(err)
		}
		rebuilt := dumpAll(t, b, set)
		if len(live) < 10_000 {
			t.Fatalf("only %d rows", len(live))
		}
		for k, v := range live {
			if rebuilt[k] != v {
				t.Fatalf("row %s: live %s, rebuilt %s", k, v, rebuilt[k])
			}
		}
		if len(rebuilt) != len(live) {
			t.Fatalf("rebuilt %d rows, live %d", len(rebuilt), len(live))
		}
		ms, err := set.Verify(ctx)
		if err != nil || len(ms) != 0 {
			t.Fatalf("verify: %d mismatches %v", len(ms), err)
		}
	})
}

// history writes n generated invoices (payments, refunds, expiries)
// through b and returns a position by which all of them are in the log.
func history(t *testing.T, b projections.Backend, n int) eventstore.Position {
	t.Helper()
	ids, err := projectiontest.Generate(context.Background(), b, n, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	return projectiontest.Settle(t, b, ids)
}

func dumpAll(t *testing.T, b projections.Backend, set *projections.Set) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, n := range set.Names() {
		d, err := set.Runner(n).Projection().(projections.Dumper).Dump(context.Background(), b.DB())
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range d {
			out[n+" "+k] = v
		}
	}
	return out
}
