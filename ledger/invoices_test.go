package ledger_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/payledger/payledger/adapters/numbers"
	"github.com/payledger/payledger/domain/invoice"
	"github.com/payledger/payledger/eventstore"
	"github.com/payledger/payledger/ledger"
)

type counter struct{ n atomic.Int64 }

func (c *counter) Next(context.Context) (int64, error) { return 1000 + c.n.Add(1), nil }

// TestIssueLinkReportsClampedExpiry: a link never outlives its invoice; the
// domain clamps the expiry and IssueLink must report the clamped instant,
// the one the pay page will enforce.
func TestIssueLinkReportsClampedExpiry(t *testing.T) {
	backends(t, func(t *testing.T, s eventstore.Store) {
		ctx := context.Background()
		clk := newClock(t0)
		iv := ledger.NewInvoices(ledger.New(s, clk.now), &counter{}, nil, ledger.Policy{})
		res, err := iv.Create(ctx, ledger.InvoiceRequest{Amount: "10.00", Currency: "USD", ExpiresAt: t0.Add(15 * time.Minute)}, "")
		if err != nil {
			t.Fatal(err)
		}
		id := res.State.ID

		// Far from the invoice's expiry: the requested TTL stands.
		link, err := iv.IssueLink(ctx, id, 6*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if want := t0.Add(6 * time.Minute); !link.ExpiresAt.Equal(want) {
			t.Fatalf("unclamped link expires %s, want %s", link.ExpiresAt, want)
		}

		// 3 minutes before the invoice expires, a 10 minute link is clamped.
		clk.set(t0.Add(12 * time.Minute))
		link, err = iv.IssueLink(ctx, id, 10*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		want := t0.Add(15 * time.Minute)
		if !link.ExpiresAt.Equal(want) {
			t.Fatalf("clamped link expires %s, want the invoice's expiry %s", link.ExpiresAt, want)
		}
		st, err := iv.Service().Load(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		var stored time.Time
		for _, l := range st.Links {
			if l.ID == link.ID {
				stored = l.ExpiresAt
			}
		}
		if !stored.Equal(link.ExpiresAt) {
			t.Fatalf("stored link expiry %s differs from the reported %s", stored, link.ExpiresAt)
		}
		if li, ok := link.Result.Events[0].(invoice.LinkIssued); !ok || !li.ExpiresAt.Equal(want) {
			t.Fatalf("event %#v", link.Result.Events[0])
		}
	})
}

// TestRefundOfFullyRefundedInvoice: once everything paid is refunded, a
// further refund is a refund above the amount paid (API.md's
// refund_exceeds_payment), while an invoice never paid stays "not paid".
func TestRefundOfFullyRefundedInvoice(t *testing.T) {
	backends(t, func(t *testing.T, s eventstore.Store) {
		ctx := context.Background()
		clk := newClock(t0)
		iv := ledger.NewInvoices(ledger.New(s, clk.now), &counter{}, nil, ledger.Policy{})
		res, err := iv.Create(ctx, ledger.InvoiceRequest{Amount: "10.00", Currency: "USD"}, "")
		if err != nil {
			t.Fatal(err)
		}
		id := res.State.ID
		if _, err := iv.Refund(ctx, ledger.RefundRequest{InvoiceID: id, Amount: "1.00"}, ""); !errors.Is(err, invoice.ErrNotPaid) {
			t.Fatalf("refund of an unpaid invoice: %v", err)
		}
		svc := iv.Service()
		if _, err := svc.Execute(ctx, id, invoice.InitiatePayment{PaymentID: "pay_1", Provider: "sandbox"}); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Execute(ctx, id, invoice.RecordProcessed{PaymentID: "pay_1", Provider: "sandbox", ProviderRef: "x", Amount: usd(t, "10.00")}); err != nil {
			t.Fatal(err)
		}
		if _, err := iv.Refund(ctx, ledger.RefundRequest{InvoiceID: id}, ""); err != nil {
			t.Fatal(err)
		}
		for _, amount := range []string{"0.01", ""} {
			_, err := iv.Refund(ctx, ledger.RefundRequest{InvoiceID: id, Amount: amount}, "")
			if !errors.Is(err, invoice.ErrRefundExceedsPayment) || errors.Is(err, invoice.ErrNotPaid) {
				t.Fatalf("refund %q of a refunded invoice: %v", amount, err)
			}
		}
	})
}

// TestCreateByReferenceNumbersEachInvoiceOnce: with the numbers adapter
// (which on PostgreSQL draws the number in the reservation's statement),
// creates by reference get consecutive numbers, and a repeated create
// returns the first invoice with its number and draws none.
func TestCreateByReferenceNumbersEachInvoiceOnce(t *testing.T) {
	backends(t, func(t *testing.T, s eventstore.Store) {
		ctx := context.Background()
		db, ok := s.(numbers.Database)
		if !ok {
			t.Fatalf("%T has no SQL database", s)
		}
		seq, err := numbers.New(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		refs, err := numbers.NewReferences(ctx, db, seq)
		if err != nil {
			t.Fatal(err)
		}
		iv := ledger.NewInvoices(ledger.New(s, newClock(t0).now), seq, refs, ledger.Policy{})
		create := func(ref string) ledger.CreateResult {
			t.Helper()
			res, err := iv.Create(ctx, ledger.InvoiceRequest{Amount: "10.00", Currency: "USD", ReferenceID: ref, ExpiresAt: t0.Add(time.Hour)}, "")
			if err != nil {
				t.Fatal(err)
			}
			return res
		}
		a, b := create("order-a"), create("order-b")
		again := create("order-a")
		c := create("order-c")
		if a.State.Number != numbers.First || b.State.Number != numbers.First+1 || c.State.Number != numbers.First+2 {
			t.Fatalf("numbers %d, %d, %d; want %d onwards with no gap", a.State.Number, b.State.Number, c.State.Number, numbers.First)
		}
		if !again.Existing || again.State.ID != a.State.ID || again.State.Number != a.State.Number {
			t.Fatalf("repeat: existing %v, %s #%d; want %s #%d", again.Existing, again.State.ID, again.State.Number, a.State.ID, a.State.Number)
		}
		if n, err := seq.Next(ctx); err != nil || n != numbers.First+3 {
			t.Fatalf("next number %d, %v; want %d", n, err, numbers.First+3)
		}
	})
}
