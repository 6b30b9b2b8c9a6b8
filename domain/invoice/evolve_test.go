package invoice_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/payledger/payledger/domain/invoice"
)

func TestFoldLifecycle(t *testing.T) {
	t.Parallel()
	evs := given(created, link1, link2,
		invoice.LinkConsumed{LinkID: "lnk_2", At: at(4 * time.Minute)},
		pay1, pay1TDS, pay1Done, paid1,
		invoice.Refunded{RefundID: "re_1", Amount: "40.00", Currency: "USD", At: at(time.Hour)},
		invoice.Refunded{RefundID: "re_2", Amount: "60.00", Currency: "USD", At: at(2 * time.Hour)},
		invoice.CallbackReceived{Provider: "sandbox", At: at(3 * time.Hour)},
	)
	cases := []struct {
		upto    int
		status  invoice.Status
		paid    string
		refund  string
		updated time.Time
	}{
		{1, invoice.StatusOpen, "0.00", "0.00", t0},
		{8, invoice.StatusPaid, "100.00", "0.00", at(6 * time.Minute)},
		{9, invoice.StatusPartiallyRefunded, "100.00", "40.00", at(time.Hour)},
		{10, invoice.StatusRefunded, "100.00", "100.00", at(2 * time.Hour)},
		{11, invoice.StatusRefunded, "100.00", "100.00", at(3 * time.Hour)},
	}
	for _, c := range cases {
		s := invoice.Fold(evs[:c.upto]...)
		if s.Version != uint64(c.upto) || s.Status != c.status || s.AmountPaid.String() != c.paid ||
			s.AmountRefunded.String() != c.refund || !s.UpdatedAt.Equal(c.updated) {
			t.Errorf("after %d events: version %d status %s paid %s refunded %s updated %s",
				c.upto, s.Version, s.Status, s.AmountPaid, s.AmountRefunded, s.UpdatedAt)
		}
	}
	s := invoice.Fold(evs...)
	if got := []invoice.LinkState{s.Links[0].State, s.Links[1].State}; got[0] != invoice.LinkStateRevoked || got[1] != invoice.LinkStateConsumed {
		t.Errorf("links %v", got)
	}
	if !s.PaidAt.Equal(at(6*time.Minute)) || !s.CreatedAt.Equal(t0) || s.Callbacks != 1 || len(s.Refunds) != 2 {
		t.Errorf("state %+v", s)
	}
}

// Evolve step by step must equal Fold (Fold skips the per-event copies).
func TestEvolveEqualsFold(t *testing.T) {
	t.Parallel()
	evs := given(created, link1, link1Used, pay1, pay1Fail,
		invoice.PaymentInitiated{PaymentID: "pay_2", Provider: "sandbox", Attempt: 2, At: at(7 * time.Minute)},
		processed("pay_2", "100.00", "USD", 8*time.Minute),
		invoice.Paid{PaymentID: "pay_2", AmountPaid: "100.00", At: at(8 * time.Minute)},
		processed("pay_3", "10.00", "EUR", 9*time.Minute),
		invoice.Flagged{PaymentID: "pay_3", Flag: invoice.FlagCurrencyMismatch, At: at(9 * time.Minute)},
	)
	var s invoice.State
	for _, e := range evs {
		s = invoice.Evolve(s, e)
	}
	if f := invoice.Fold(evs...); !reflect.DeepEqual(s, f) {
		t.Fatalf("Evolve chain:\n%+v\nFold:\n%+v", s, f)
	}
}

// A State handed out earlier never changes when a later one is evolved or
// edited: read models and point-in-time reads keep their snapshots.
func TestEvolveDoesNotAlias(t *testing.T) {
	t.Parallel()
	c := created
	c.Customer = invoice.Customer{Email: "a@example.com", Address: &invoice.Address{City: "Berlin"}}
	c.LineItems = []invoice.LineItem{{Name: "reset", Quantity: 1, Total: "100.00"}}
	base := invoice.Fold(c, link1, pay1, processed("pay_1", "50.00", "USD", 6*time.Minute),
		invoice.Flagged{PaymentID: "pay_1", Flag: invoice.FlagAmountMismatch, At: at(6 * time.Minute)})
	snapshot := invoice.Fold(c, link1, pay1, processed("pay_1", "50.00", "USD", 6*time.Minute),
		invoice.Flagged{PaymentID: "pay_1", Flag: invoice.FlagAmountMismatch, At: at(6 * time.Minute)})

	next := invoice.Evolve(base, invoice.LinkConsumed{LinkID: "lnk_1", At: at(7 * time.Minute)})
	next = invoice.Evolve(next, invoice.Flagged{PaymentID: "pay_1", Flag: invoice.FlagLatePayment, At: at(7 * time.Minute)})
	next = invoice.Evolve(next, invoice.CallbackReceived{At: at(7 * time.Minute)})
	next.Metadata["account_id"] = "changed"
	next.LineItems[0].Name = "changed"
	next.Customer.Address.City = "changed"
	next.Payments[0].Flags[0] = "changed"
	next.Links[0].TokenHash = "changed"

	if !reflect.DeepEqual(base, snapshot) {
		t.Fatalf("evolving a copy changed the original:\n got %+v\nwant %+v", base, snapshot)
	}
	// The event's own map must not be shared with the state either.
	if created.Metadata["account_id"] != "12345" {
		t.Fatalf("fixture event was changed through a state")
	}
}

func TestEvolveIgnoresEventsThatDoNotFit(t *testing.T) {
	t.Parallel()
	// Decide never produces these, but history is replayed as written:
	// each still counts as a version and changes nothing else.
	s := invoice.Fold(created, expired,
		invoice.Paid{PaymentID: "pay_x", AmountPaid: "100.00", At: invExp.Add(time.Minute)},
		invoice.Cancelled{At: invExp.Add(2 * time.Minute)},
		invoice.LinkConsumed{LinkID: "lnk_x", At: invExp.Add(3 * time.Minute)},
		invoice.Flagged{PaymentID: "pay_x", Flag: invoice.FlagLatePayment, At: invExp.Add(4 * time.Minute)},
		invoice.ActionRequired{PaymentID: "pay_x", At: invExp.Add(5 * time.Minute)},
	)
	if s.Status != invoice.StatusExpired || s.Version != 7 || !s.PaidAt.IsZero() || !s.ClosedAt.Equal(invExp) || len(s.Payments) != 0 {
		t.Errorf("state %+v", s)
	}
}
