package outbox_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/payledger/payledger/domain/invoice"
	"github.com/payledger/payledger/projections/outbox"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func stringsReader(s string) *strings.Reader { return strings.NewReader(s) }

// resetFeeOrder is an invoice made by the reset-fee endpoint (a catalog
// line item), paid, then partly refunded.
func resetFeeOrder() invoice.State {
	t0 := time.Date(2026, 5, 4, 8, 30, 0, 0, time.UTC)
	return invoice.Fold(
		invoice.Created{InvoiceID: "inv_0196a0c0de0000000000000000000001", Number: 1001, Amount: "99.00", Currency: "USD",
			ReferenceID: "reset-12345-72238", Description: "Account reset 1 Step $100,000",
			Customer: invoice.Customer{Email: "john@example.com", Name: "John Smith", Phone: "+1234567890",
				Address: &invoice.Address{Line1: "Street 1", Line2: "Apt 2", City: "Berlin", Postcode: "10115", Country: "DE"}},
			Metadata:  map[string]string{"account_id": "12345", "product_id": "72238"},
			Provider:  "sandbox",
			LineItems: []invoice.LineItem{{ProductID: 72230, VariationID: 72238, Name: "Account reset 1 Step $100,000", Quantity: 1, Total: "99.00"}},
			ExpiresAt: t0.Add(24 * time.Hour), At: t0},
		invoice.PaymentInitiated{PaymentID: "pay_1", Provider: "sandbox", Attempt: 1, At: t0.Add(time.Minute)},
		invoice.PaymentProcessed{PaymentID: "pay_1", Provider: "sandbox", ProviderRef: "sb_ch_1", Amount: "99.00", Currency: "USD", At: t0.Add(2 * time.Minute)},
		invoice.Paid{PaymentID: "pay_1", AmountPaid: "99.00", At: t0.Add(2 * time.Minute)},
		invoice.Refunded{RefundID: "re_1", Amount: "9.00", Currency: "USD", Reason: "goodwill", At: t0.Add(time.Hour)},
	)
}

// TestOrderGolden pins the WooCommerce order body byte for byte: it is a
// wire format integrations parse.
func TestOrderGolden(t *testing.T) {
	t.Parallel()
	got, err := json.MarshalIndent(outbox.OrderFromState(resetFeeOrder()), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", "order_partially_refunded.json")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update once)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("order body differs from %s:\n%s", path, got)
	}
}

func TestWooStatus(t *testing.T) {
	t.Parallel()
	paid := resetFeeOrder()
	cases := map[string]struct {
		s    invoice.State
		want string
	}{
		"open":               {invoice.State{Status: invoice.StatusOpen}, "pending"},
		"open after decline": {invoice.State{Status: invoice.StatusOpen, Payments: []invoice.Payment{{Status: invoice.PaymentStatusFailed}}}, "failed"},
		"open, retrying":     {invoice.State{Status: invoice.StatusOpen, Payments: []invoice.Payment{{Status: invoice.PaymentStatusFailed}, {Status: invoice.PaymentStatusInitiated}}}, "pending"},
		"paid":               {invoice.State{Status: invoice.StatusPaid}, "processing"},
		"partially refunded": {paid, "processing"},
		"refunded":           {invoice.State{Status: invoice.StatusRefunded}, "refunded"},
		"expired":            {invoice.State{Status: invoice.StatusExpired}, "cancelled"},
		"cancelled":          {invoice.State{Status: invoice.StatusCancelled}, "cancelled"},
	}
	for name, c := range cases {
		if got := outbox.WooStatus(c.s); got != c.want {
			t.Errorf("%s: %s, want %s", name, got, c.want)
		}
	}
}

func TestSubscriberWants(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := outbox.Subscriber{Format: outbox.FormatStandard, Events: []string{outbox.InvoicePaid}, From: t0, Until: t0.Add(time.Hour)}
	for _, c := range []struct {
		typ  string
		at   time.Time
		want bool
	}{
		{outbox.InvoicePaid, t0, true},
		{outbox.InvoicePaid, t0.Add(-time.Microsecond), false},
		{outbox.InvoicePaid, t0.Add(time.Hour), false},
		{outbox.InvoiceCreated, t0.Add(time.Minute), false},
	} {
		if got := s.Wants(c.typ, c.at); got != c.want {
			t.Errorf("Wants(%s, %s) = %v", c.typ, c.at, got)
		}
	}
	woo := outbox.Subscriber{Format: outbox.FormatWooCommerce, Events: []string{"*"}, From: t0}
	if woo.Wants(outbox.InvoiceCreated, t0) || !woo.Wants(outbox.InvoiceRefunded, t0) {
		t.Error("a WooCommerce endpoint hears exactly the order-changing types")
	}
}
