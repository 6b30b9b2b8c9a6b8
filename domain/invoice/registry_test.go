package invoice_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/payledger/payledger/domain/invoice"
)

// One fully populated sample per event type: a field that does not survive
// the round trip shows up as a difference.
func samples() []invoice.Event {
	ts := time.Date(2026, 11, 20, 10, 0, 0, 123456789, time.UTC)
	return []invoice.Event{
		invoice.Created{
			InvoiceID: "inv_1", Number: 1001, Amount: "100.55", Currency: "USD", ReferenceID: "order-7135",
			Description: "Account reset", Metadata: map[string]string{"account_id": "12345"}, Provider: "sandbox",
			Customer: invoice.Customer{Email: "john@example.com", Name: "John Smith", Phone: "+1234567890",
				Address: &invoice.Address{Line1: "1 Main St", Line2: "Apt 2", City: "Springfield", Postcode: "12345", Country: "US"}},
			LineItems:  []invoice.LineItem{{ProductID: 1, VariationID: 72238, Name: "1 Step", Quantity: 1, Total: "100.55"}},
			ReturnURLs: invoice.ReturnURLs{Success: "https://shop.example/ok", Fail: "https://shop.example/fail"},
			ExpiresAt:  ts.Add(24 * time.Hour), At: ts,
		},
		invoice.LinkIssued{LinkID: "lnk_2", TokenHash: strings.Repeat("ab", 32), ExpiresAt: ts.Add(10 * time.Minute), RevokedLinkID: "lnk_1", At: ts},
		invoice.LinkConsumed{LinkID: "lnk_2", At: ts},
		invoice.LinkExpired{LinkID: "lnk_2", At: ts},
		invoice.Expired{At: ts},
		invoice.Cancelled{Reason: "requested", At: ts},
		invoice.Paid{PaymentID: "pay_1", AmountPaid: "100.55", At: ts},
		invoice.Flagged{PaymentID: "pay_1", Flag: invoice.FlagLatePayment, Detail: "late", At: ts},
		invoice.PaymentInitiated{PaymentID: "pay_1", Provider: "wzrdpay", Attempt: 2, ProviderRef: "w-1", RedirectURL: "https://pay.example/w-1", At: ts},
		invoice.ActionRequired{PaymentID: "pay_1", Kind: "three_d_secure", URL: "https://3ds.example/x", At: ts},
		invoice.PaymentProcessed{PaymentID: "pay_1", Provider: "wzrdpay", ProviderRef: "w-1", Amount: "100.55", Currency: "USD", CardBrand: "visa", CardLast4: "4242", At: ts},
		invoice.PaymentFailed{PaymentID: "pay_1", Provider: "wzrdpay", ProviderRef: "w-1", Code: "card_declined", Message: "declined", At: ts},
		invoice.Refunded{RefundID: "re_1", Amount: "20.00", Currency: "USD", Reason: "requested_by_customer", At: ts},
		invoice.CallbackReceived{Provider: "wzrdpay", ProviderRef: "w-1", Status: "paid", Verified: true, Body: `{"status":"paid","x":"\u00e9"}`, At: ts},
	}
}

func TestRegistryRoundTrip(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, e := range samples() {
		t.Run(e.EventType(), func(t *testing.T) {
			typ, data, err := invoice.Encode(e)
			if err != nil {
				t.Fatal(err)
			}
			if typ != e.EventType() {
				t.Errorf("type %q, want %q", typ, e.EventType())
			}
			back, err := invoice.Decode(typ, data)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back, e) {
				t.Errorf("round trip of %s:\n got %#v\nwant %#v", data, back, e)
			}
		})
		seen[e.EventType()] = true
	}
	types := invoice.Types()
	if len(types) != len(seen) {
		t.Errorf("Types() has %d names, samples cover %d", len(types), len(seen))
	}
	for _, typ := range types {
		if !seen[typ] {
			t.Errorf("no round-trip sample for %s", typ)
		}
		if !strings.Contains(typ, ".") || strings.ToLower(typ) != typ {
			t.Errorf("event name %q is not a stable dotted lower-case name", typ)
		}
	}
}

func TestDecodeToleratesAddedFields(t *testing.T) {
	t.Parallel()
	e, err := invoice.Decode(invoice.TypeLinkConsumed, []byte(`{"link_id":"lnk_1","at":"2026-11-20T10:00:00Z","added_later":{"x":1}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := invoice.LinkConsumed{LinkID: "lnk_1", At: time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)}
	if !reflect.DeepEqual(e, want) {
		t.Errorf("got %#v", e)
	}
}

func TestRegistryRefusals(t *testing.T) {
	t.Parallel()
	if _, err := invoice.Decode("invoice.renamed", []byte(`{}`)); err == nil || !strings.Contains(err.Error(), "invoice.renamed") {
		t.Errorf("unknown type: err = %v, want one naming the type", err)
	}
	if _, err := invoice.Decode(invoice.TypePaid, []byte(`{"payment_id":`)); err == nil {
		t.Error("truncated JSON decoded")
	}
	if _, err := invoice.Decode(invoice.TypePaid, nil); err == nil {
		t.Error("empty body decoded")
	}
	if _, _, err := invoice.Encode(&invoice.Paid{}); err == nil {
		t.Error("a pointer event was encoded; Decode would return a value, so it must be refused")
	}
	if _, _, err := invoice.Encode(nil); err == nil {
		t.Error("nil event encoded")
	}
}
