package recon_test

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/payledger/payledger/eventstore"
	"github.com/payledger/payledger/projections"
	"github.com/payledger/payledger/projections/projectiontest"
	"github.com/payledger/payledger/projections/recon"
	"github.com/payledger/payledger/projections/recon/recontest"
)

func newSet(t *testing.T, b projections.Backend, opts projections.Options) (*projections.Set, *recon.Projection) {
	t.Helper()
	p := recon.New(b, b.DB())
	set, err := projections.NewSet(b, opts, p)
	if err != nil {
		t.Fatal(err)
	}
	if err := set.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return set, p
}

func run(t *testing.T, set *projections.Set) {
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

// fig renders a row's figures in one comparable line:
// invoiced paid refunded net | invoices open paid part refunded expired cancelled | payments failed refunds flagged
func fig(f recon.Figures) string {
	c := f.Counts
	return fmt.Sprintf("%s %s %s %s | %d %d %d %d %d %d %d | %d %d %d %d", f.Invoiced, f.Paid, f.Refunded, f.Net,
		f.InvoiceCount, c.Open, c.Paid, c.PartiallyRefunded, c.Refunded, c.Expired, c.Cancelled,
		f.PaymentCount, f.FailedPaymentCount, f.RefundCount, f.FlaggedCount)
}

func cur(p *string) string {
	if p == nil {
		return "-"
	}
	return *p
}

// wantSummary is every row the scripted history produces, newest day
// first, then by currency ("-" is the unmatched callbacks' null currency)
// and provider. Worked out by hand from recontest.Write's comment.
var wantSummary = []string{
	"2026-03-03 EUR acme: 0.00 0.00 0.00 0.00 | 0 0 0 0 0 0 0 | 0 0 0 1",
	"2026-03-02 - acme: 0 0 0 0 | 0 0 0 0 0 0 0 | 0 0 0 1",
	"2026-03-02 EUR acme: 10.00 10.00 0.00 10.00 | 1 0 1 0 0 0 0 | 1 0 0 0",
	"2026-03-02 JPY sandbox: 1200 5000 5000 0 | 1 0 0 0 0 0 1 | 1 0 1 1",
	"2026-03-02 KWD sandbox: 0.000 0.000 1.005 -1.005 | 0 0 0 0 0 0 0 | 0 0 1 0",
	"2026-03-02 USD sandbox: 105.00 35.00 70.00 -35.00 | 2 1 1 0 0 0 0 | 1 0 2 1",
	"2026-03-01 EUR sandbox: 49.99 0.00 0.00 0.00 | 1 0 0 0 0 0 1 | 0 0 0 0",
	"2026-03-01 JPY sandbox: 5000 0 0 0 | 1 0 0 0 0 1 0 | 0 0 0 0",
	"2026-03-01 KWD sandbox: 12.345 12.345 0.000 12.345 | 1 0 0 1 0 0 0 | 2 0 0 1",
	"2026-03-01 USD sandbox: 150.55 250.54 0.00 250.54 | 2 0 0 2 0 0 0 | 4 1 0 2",
}

var wantTotals = []string{
	"-: 0 0 0 0 | 0 0 0 0 0 0 0 | 0 0 0 1",
	"EUR: 59.99 10.00 0.00 10.00 | 2 0 1 0 0 0 1 | 1 0 0 1",
	"JPY: 6200 5000 5000 0 | 2 0 0 0 0 1 1 | 1 0 1 1",
	"KWD: 12.345 12.345 1.005 11.340 | 1 0 0 1 0 0 0 | 2 0 1 1",
	"USD: 255.55 285.54 70.00 215.54 | 4 1 1 2 0 0 0 | 5 1 2 3",
}

// wantItems is every item, newest first:
// id type invoice provider provider_ref gross currency status occurred_at flags
func wantItems(h recontest.History) []string {
	inv := h.Invoices
	return []string{
		"pay_I1 payment " + inv["I"] + " sandbox ref_pay_I1 35.00 USD processed 2026-03-02T15:01 amount_mismatch",
		"pay_G1 payment " + inv["G"] + " sandbox - 75.00 USD initiated 2026-03-02T13:00 -",
		h.CallbackEventID + " callback - acme ref_zzz - - paid 2026-03-02T12:00 unmatched_callback",
		"pay_F1 payment " + inv["F"] + " acme ref_pay_F1 10.00 EUR processed 2026-03-02T11:00 provider_status_mismatch",
		"re_D1 refund " + inv["D"] + " sandbox - 1.005 KWD succeeded 2026-03-02T10:30 -",
		"re_B1 refund " + inv["B"] + " sandbox - 50.00 USD succeeded 2026-03-02T10:00 -",
		"re_C1 refund " + inv["C"] + " sandbox - 5000 JPY succeeded 2026-03-02T09:30 -",
		"re_A1 refund " + inv["A"] + " sandbox - 20.00 USD succeeded 2026-03-02T09:00 -",
		"pay_C1 payment " + inv["C"] + " sandbox ref_pay_C1 5000 JPY processed 2026-03-02T08:00 late_payment",
		"pay_E1 payment " + inv["E"] + " sandbox ref_pay_E1 49.99 USD processed 2026-03-01T14:05 currency_mismatch",
		"pay_D2 payment " + inv["D"] + " sandbox ref_pay_D2 0.045 KWD processed 2026-03-01T13:10 -",
		"pay_D1 payment " + inv["D"] + " sandbox ref_pay_D1 12.300 KWD processed 2026-03-01T13:05 amount_mismatch",
		"pay_B3 payment " + inv["B"] + " sandbox ref_pay_B3 50.00 USD processed 2026-03-01T12:00 duplicate_payment",
		"pay_B2 payment " + inv["B"] + " sandbox ref_pay_B2 50.00 USD processed 2026-03-01T11:02 -",
		"pay_B1 payment " + inv["B"] + " sandbox - 50.00 USD failed 2026-03-01T11:01 -",
		"pay_A1 payment " + inv["A"] + " sandbox ref_pay_A1 100.55 USD processed 2026-03-01T10:01 -",
	}
}

func itemLine(it recon.Item) string {
	flags := strings.Join(it.Flags, ",")
	if flags == "" {
		flags = "-"
	}
	if it.Flag != "" && it.Flag != it.Flags[0] {
		flags += " (flag " + it.Flag + ")"
	}
	return strings.Join([]string{it.ID, it.Type, cur(it.InvoiceID), it.Provider, cur(it.ProviderReference), cur(it.Gross), cur(it.Currency),
		it.Status, it.OccurredAt.Format("2006-01-02T15:04"), flags}, " ")
}

func checkSummary(t *testing.T, p *recon.Projection) {
	t.Helper()
	rows, totals, err := p.Summary(context.Background(), recon.SummaryFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rows {
		got = append(got, fmt.Sprintf("%s %s %s: %s", r.Date, cur(r.Currency), r.Provider, fig(r.Figures)))
	}
	compare(t, "summary", got, wantSummary)
	got = nil
	for _, r := range totals {
		got = append(got, fmt.Sprintf("%s: %s", cur(r.Currency), fig(r.Figures)))
	}
	compare(t, "totals", got, wantTotals)
}

func checkItems(t *testing.T, p *recon.Projection, h recontest.History) {
	t.Helper()
	items, more, err := p.Items(context.Background(), recon.ItemFilter{})
	if err != nil || more {
		t.Fatalf("items: more=%v err=%v", more, err)
	}
	var got []string
	for _, it := range items {
		got = append(got, itemLine(it))
	}
	compare(t, "items", got, wantItems(h))
}

func compare(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") == strings.Join(want, "\n") {
		return
	}
	t.Errorf("%s:\n got:\n  %s\nwant:\n  %s", what, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
}

// TestScriptedHistory checks every total and every flag of the scripted
// history, live (in batches of 3 events, so that a payment and its flags
// land in different transactions) and after a rebuild, and that Verify
// finds the live tables equal to a fresh replay.
func TestScriptedHistory(t *testing.T) {
	t.Parallel()
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		ctx := context.Background()
		set, p := newSet(t, b, projections.Options{BatchSize: 3})
		run(t, set)
		h, err := recontest.Write(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, set, h.Last)
		checkSummary(t, p)
		checkItems(t, p, h)

		ms, err := set.Verify(ctx)
		if err != nil || len(ms) != 0 {
			t.Fatalf("verify: %v %v", ms, err)
		}
		live, err := p.Dump(ctx, b.DB())
		if err != nil {
			t.Fatal(err)
		}
		if err := set.Rebuild(ctx, recon.Name, nil); err != nil {
			t.Fatal(err)
		}
		rebuilt, err := p.Dump(ctx, b.DB())
		if err != nil {
			t.Fatal(err)
		}
		if len(live) != 16+10 || len(rebuilt) != len(live) {
			t.Fatalf("dump: %d live rows, %d rebuilt", len(live), len(rebuilt))
		}
		for k, v := range live {
			if rebuilt[k] != v {
				t.Errorf("row %s: live %s, rebuilt %s", k, v, rebuilt[k])
			}
		}
		checkSummary(t, p)
		checkItems(t, p, h)

		// Verify is not vacuous: a tampered row is reported.
		if err := b.WriteTx(ctx, func(tx *sqlx.Tx) error {
			_, err := tx.ExecContext(ctx, tx.Rebind(`UPDATE recon_summary SET paid = ? WHERE day = ? AND currency = ?`), "999.99", "2026-03-01", "USD")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		ms, err = set.Verify(ctx)
		if err != nil || len(ms) != 1 || ms[0].Key != "summary 2026-03-01/USD/sandbox" {
			t.Fatalf("verify after tampering: %v %v", ms, err)
		}
	})
}

func TestItemFiltersAndPages(t *testing.T) {
	t.Parallel()
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		ctx := context.Background()
		set, p := newSet(t, b, projections.Options{})
		run(t, set)
		h, err := recontest.Write(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, set, h.Last)
		all := wantItems(h)
		ids := func(lines []string) []string {
			out := make([]string, len(lines))
			for i, l := range lines {
				out[i] = strings.Fields(l)[0]
			}
			return out
		}
		allIDs := ids(all)
		for _, tc := range []struct {
			name string
			f    recon.ItemFilter
			want []string
		}{
			{"late", recon.ItemFilter{Flag: "late_payment"}, []string{"pay_C1"}},
			{"duplicate", recon.ItemFilter{Flag: "duplicate_payment"}, []string{"pay_B3"}},
			{"amount", recon.ItemFilter{Flag: "amount_mismatch"}, []string{"pay_I1", "pay_D1"}},
			{"currency", recon.ItemFilter{Flag: "currency_mismatch"}, []string{"pay_E1"}},
			{"unmatched", recon.ItemFilter{Flag: "unmatched_callback"}, []string{h.CallbackEventID}},
			{"provider status", recon.ItemFilter{Flag: "provider_status_mismatch"}, []string{"pay_F1"}},
			{"day 1", recon.ItemFilter{From: recontest.Day1, To: recontest.Day2}, allIDs[9:]},
			{"day 2 refunds", recon.ItemFilter{From: recontest.Day2, To: recontest.Day3, Type: "refund"}, []string{"re_D1", "re_B1", "re_C1", "re_A1"}},
			{"KWD", recon.ItemFilter{Currency: "kwd"}, []string{"re_D1", "pay_D2", "pay_D1"}},
			{"acme", recon.ItemFilter{Provider: "acme"}, []string{h.CallbackEventID, "pay_F1"}},
			{"page 1", recon.ItemFilter{Limit: 5}, allIDs[:5]},
			{"page 2", recon.ItemFilter{Limit: 5, StartingAfter: allIDs[4]}, allIDs[5:10]},
			{"last page", recon.ItemFilter{Limit: 5, StartingAfter: allIDs[14]}, allIDs[15:]},
			{"page back", recon.ItemFilter{Limit: 3, EndingBefore: allIDs[5]}, allIDs[2:5]},
			{"flag and page", recon.ItemFilter{Flag: "amount_mismatch", Limit: 1, StartingAfter: "pay_I1"}, []string{"pay_D1"}},
		} {
			got, more, err := p.Items(ctx, tc.f)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			var gotIDs []string
			for _, it := range got {
				gotIDs = append(gotIDs, it.ID)
			}
			if strings.Join(gotIDs, " ") != strings.Join(tc.want, " ") {
				t.Errorf("%s: got %v, want %v", tc.name, gotIDs, tc.want)
			}
			wantMore := map[string]bool{"page 1": true, "page 2": true, "page back": true}[tc.name]
			if more != wantMore {
				t.Errorf("%s: has_more %v, want %v", tc.name, more, wantMore)
			}
		}
		if _, _, err := p.Items(ctx, recon.ItemFilter{StartingAfter: "pay_nope"}); !errors.Is(err, recon.ErrUnknownCursor) {
			t.Fatalf("unknown cursor: %v", err)
		}

		rows, totals, err := p.Summary(ctx, recon.SummaryFilter{From: "2026-03-02", To: "2026-03-02", Currency: "usd"})
		if err != nil || len(rows) != 1 || len(totals) != 1 || fig(rows[0].Figures) != strings.SplitN(wantSummary[5], ": ", 2)[1] {
			t.Fatalf("summary of one day and currency: %+v %+v %v", rows, totals, err)
		}
		rows, _, err = p.Summary(ctx, recon.SummaryFilter{Provider: "acme"})
		if err != nil || len(rows) != 3 {
			t.Fatalf("acme rows: %+v %v", rows, err)
		}
	})
}

// TestRebuildEqualsLiveOnGeneratedHistory replays a generated history of
// every outcome (partial and full refunds, expiries, late and duplicate
// payments, four currencies) and compares the rebuilt tables row for row.
func TestRebuildEqualsLiveOnGeneratedHistory(t *testing.T) {
	t.Parallel()
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		ctx := context.Background()
		set, p := newSet(t, b, projections.Options{})
		run(t, set)
		n := 2000
		if testing.Short() {
			n = 200
		}
		if _, err := projectiontest.Generate(ctx, b, n, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)); err != nil {
			t.Fatal(err)
		}
		waitFor(t, set, marker(t, b))
		live, err := p.Dump(ctx, b.DB())
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := set.Rebuild(ctx, recon.Name, nil); err != nil {
			t.Fatal(err)
		}
		t.Logf("rebuilt %d rows in %v", len(live), time.Since(start))
		rebuilt, err := p.Dump(ctx, b.DB())
		if err != nil {
			t.Fatal(err)
		}
		if len(live) < n || len(rebuilt) != len(live) {
			t.Fatalf("%d live rows, %d rebuilt", len(live), len(rebuilt))
		}
		for k, v := range live {
			if rebuilt[k] != v {
				t.Fatalf("row %s: live %s, rebuilt %s", k, v, rebuilt[k])
			}
		}
		if ms, err := set.Verify(ctx); err != nil || len(ms) != 0 {
			t.Fatalf("verify: %v %v", ms, err)
		}
		// Every generated invoice is counted once, in exactly one status.
		_, totals, err := p.Summary(ctx, recon.SummaryFilter{})
		if err != nil {
			t.Fatal(err)
		}
		var invoices, byStatus int64
		for _, tot := range totals {
			c := tot.Counts
			invoices += tot.InvoiceCount
			byStatus += c.Open + c.Paid + c.PartiallyRefunded + c.Refunded + c.Expired + c.Cancelled
		}
		if invoices != int64(n) || byStatus != int64(n) {
			t.Fatalf("%d invoices, %d by status, want %d", invoices, byStatus, n)
		}
	})
}

// marker appends an event no read model here cares about and returns its
// position: waiting for it means everything before it is projected. (The
// PostgreSQL head lags while any transaction of the cluster is open, and
// tests run in parallel.)
func marker(t *testing.T, b projections.Backend) eventstore.Position {
	t.Helper()
	res, err := b.Append(context.Background(), "test-marker", eventstore.Any,
		eventstore.EventData{ID: uuid.Must(uuid.NewV7()).String(), Type: "test.marker", Data: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	return res.Position
}

// BenchmarkRebuild measures replay speed into the reconciliation tables
// (events/s) over a generated history of 10,000 invoices, with the GC
// setting of the rebuild command, so that the figure is the command's.
func BenchmarkRebuild(b *testing.B) {
	defer debug.SetGCPercent(debug.SetGCPercent(200)) // as payledger projections rebuild does
	for name, open := range map[string]func(testing.TB) projections.Backend{"postgres": projectiontest.Postgres, "sqlite": projectiontest.SQLite} {
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			be := open(b)
			p := recon.New(be, be.DB())
			set, err := projections.NewSet(be, projections.Options{}, p)
			if err != nil {
				b.Fatal(err)
			}
			if err := set.Migrate(ctx); err != nil {
				b.Fatal(err)
			}
			ids, err := projectiontest.Generate(ctx, be, 10_000, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
			if err != nil {
				b.Fatal(err)
			}
			projectiontest.Settle(b, be, ids)
			b.ResetTimer()
			events := 0
			for range b.N {
				if err := set.Rebuild(ctx, recon.Name, func(done, _ int) { events = done }); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(events*b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// TestUnreadableCallbackIsListed: a callback whose body the domain cannot
// decode is still an unmatched item (named from its stream), and does not
// stall the read model for the events after it.
func TestUnreadableCallbackIsListed(t *testing.T) {
	t.Parallel()
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		ctx := context.Background()
		set, p := newSet(t, b, projections.Options{})
		run(t, set)
		if _, err := b.Append(ctx, "callback-zpay-ref_bad", eventstore.Any, eventstore.EventData{
			ID: uuid.Must(uuid.NewV7()).String(), Type: "provider.callback_received", Data: []byte(`{"at":"not a time","verified":"yes"}`),
		}); err != nil {
			t.Fatal(err)
		}
		h, err := recontest.Write(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, set, h.Last)
		items, _, err := p.Items(ctx, recon.ItemFilter{Flag: "unmatched_callback", Provider: "zpay"})
		if err != nil || len(items) != 1 {
			t.Fatalf("%+v %v", items, err)
		}
		it := items[0]
		if cur(it.ProviderReference) != "ref_bad" || it.Status != "received" || it.OccurredAt.IsZero() || it.Gross != nil {
			t.Fatalf("%+v", it)
		}
		// The history after it was projected in full.
		rest, _, err := p.Items(ctx, recon.ItemFilter{To: recontest.Day3.AddDate(0, 0, 1)})
		if err != nil || len(rest) != 16 {
			t.Fatalf("%d items of the history after the unreadable callback (%v)", len(rest), err)
		}
		rows, _, err := p.Summary(ctx, recon.SummaryFilter{To: "2026-03-03"})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range rows {
			got = append(got, fmt.Sprintf("%s %s %s: %s", r.Date, cur(r.Currency), r.Provider, fig(r.Figures)))
		}
		compare(t, "summary of the history's days", got, wantSummary)
		if rows, _, err := p.Summary(ctx, recon.SummaryFilter{Provider: "zpay"}); err != nil || len(rows) != 1 || rows[0].FlaggedCount != 1 || rows[0].Currency != nil {
			t.Fatalf("zpay summary: %+v %v", rows, err)
		}
		if ms, err := set.Verify(ctx); err != nil || len(ms) != 0 {
			t.Fatalf("verify: %v %v", ms, err)
		}
	})
}
