package circoflows_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/payledger/payledger/adapters/circoflows"
	"github.com/payledger/payledger/adapters/provider"
	"github.com/payledger/payledger/domain/invoice"
)

const route = "POST /api/direct-payment"

// chargeRequest is the document's request example as our inputs.
func chargeRequest(t testing.TB) circoflows.ChargeRequest {
	return circoflows.ChargeRequest{
		InvoiceID: "inv_1",
		PaymentID: "pay_1",
		Reference: "inv_1",
		Amount:    usd(t, "150.00"),
		Card:      circoflows.Card{Number: "4242424242424242", ExpiryMonth: "12", ExpiryYear: "2025", CVV: "123"},
		Customer: invoice.Customer{Name: "John Doe", Email: "john@example.com", Phone: "+1234567890",
			Address: &invoice.Address{Line1: "123 Main St", City: "New York", Postcode: "10001", Country: "US"}},
		WebhookURL: "https://your-site.com/webhooks/payment",
		ReturnURL:  "https://your-site.com/payment/3ds-return",
	}
}

func TestChargeCardSendsTheDocumentedRequest(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.on(route, ok(sample(t, "direct_payment_success.json")))
	ch, err := f.client().ChargeCard(context.Background(), chargeRequest(t))
	if err != nil {
		t.Fatal(err)
	}
	if ch.Status != provider.StatusProcessed || ch.Ref != "txn_ABC123DEF456" || ch.GatewayID != "gw_XYZ789" ||
		ch.Amount.String() != "150.00" || ch.Reference != "inv_1" || ch.CardLast4 != "4242" || ch.CardBrand != "" {
		t.Fatalf("ChargeCard = %+v", ch)
	}

	r := f.requests()[0]
	var got, doc map[string]any
	if err := json.Unmarshal(r.Body, &got); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(sample(t, "direct_payment_request.json"), &doc); err != nil {
		t.Fatal(err)
	}
	// Same inputs as the example: the same request, except our metadata
	// and the state field the invoice's address does not have.
	delete(doc["customer_info"].(map[string]any)["address"].(map[string]any), "state")
	for k, want := range doc {
		if k == "metadata" {
			continue
		}
		if g, d := mustJSON(t, got[k]), mustJSON(t, want); g != d {
			t.Errorf("%s = %s, documented %s", k, g, d)
		}
	}
	for k := range got {
		if _, ok := doc[k]; !ok {
			t.Errorf("field %q is not in the documented request", k)
		}
	}
	if md := got["metadata"].(map[string]any); md["reference"] != "inv_1" {
		t.Errorf("metadata = %v", md)
	}
}

func TestChargeCardThreeDSecure(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.on(route, answer{status: 202, body: sample(t, "direct_payment_3ds.json")})
	f.on("POST /api/direct-payment/confirm-3ds", ok(sample(t, "threeds_confirm_response.json")))
	c := f.client()
	req := chargeRequest(t)
	req.Card.Number = "4000000000003220"
	ch, err := c.ChargeCard(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if ch.Status != provider.StatusActionRequired || ch.ActionURL != "https://pay.example.com/3ds/txn_ABC123DEF456" || ch.GatewayID != "gw_XYZ789" {
		t.Fatalf("ChargeCard(3DS card) = %+v", ch)
	}

	// The bank sends the payer back to ReturnURL with the documented
	// confirmation parameters.
	back, err := url.Parse(req.ReturnURL + "?transaction_id=txn_ABC123DEF456&status=success&gateway_id=gw_XYZ789")
	if err != nil {
		t.Fatal(err)
	}
	ret, err := circoflows.ParseReturn(back.Query())
	if err != nil {
		t.Fatal(err)
	}
	if ret.TransactionID != ch.Ref {
		t.Fatalf("return names %s, charged %s", ret.TransactionID, ch.Ref)
	}
	done, err := c.Confirm3DS(context.Background(), ret.ThreeDS())
	if err != nil {
		t.Fatal(err)
	}
	if done.Status != provider.StatusProcessed || done.Ref != "txn_ABC123DEF456" || done.HasAmount {
		t.Fatalf("Confirm3DS = %+v", done)
	}
	var body map[string]string
	if err := json.Unmarshal(f.requests()[1].Body, &body); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(body) != "map[gateway_id:gw_XYZ789 status:success transaction_id:txn_ABC123DEF456]" {
		t.Fatalf("confirm body = %v", body)
	}

	if _, err := c.Confirm3DS(context.Background(), circoflows.ThreeDSConfirmation{TransactionID: "txn_1", Status: "maybe", GatewayID: "gw_1"}); !errors.Is(err, provider.ErrRejected) {
		t.Fatalf("Confirm3DS(bad status): %v", err)
	}
}

// TestChargeCardDeclines: the documented card errors are a declined
// charge with the reason, not a failed call.
func TestChargeCardDeclines(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ file, code, raw string }{
		{"error_card_declined.json", "insufficient_funds", "card_declined"},
		{"error_invalid_card.json", "invalid_card", "invalid_card"},
		{"error_insufficient_funds.json", "insufficient_funds", "insufficient_funds"},
		{"error_expired_card.json", "expired_card", "expired_card"},
		{"error_invalid_cvv.json", "invalid_cvv", "invalid_cvv"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			f.on(route, answer{status: 400, body: sample(t, tc.file)})
			ch, err := f.client().ChargeCard(context.Background(), chargeRequest(t))
			if err != nil {
				t.Fatal(err)
			}
			if ch.Status != provider.StatusFailed || ch.Code != tc.code || ch.Raw != tc.raw || ch.Message == "" || ch.CardLast4 != "4242" {
				t.Fatalf("ChargeCard = %+v, want failed %s", ch, tc.code)
			}
		})
	}
}

func TestChargeCardFailures(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		a       answer
		is      error
		unknown bool
	}{
		{"invalid request", answer{status: 400, body: []byte(`{"error":{"code":"invalid_request","message":"The request was invalid","type":"invalid_request_error"}}`)}, provider.ErrRejected, false},
		{"rate limited", answer{status: 429, body: sample(t, "error_rate_limit_exceeded.json")}, provider.ErrUnavailable, false},
		{"server error", answer{status: 500, body: sample(t, "error_server_error.json")}, provider.ErrUnavailable, true},
		{"timeout", answer{hang: true}, provider.ErrUnavailable, true},
		{"unreadable success", ok([]byte(`{"success":true,"data":{"transaction_id":"txn_1","status":"weird"}}`)), provider.ErrBadResponse, true},
		{"other amount charged", ok(withField(t, "direct_payment_success.json", map[string]any{"amount": 15001})), provider.ErrBadResponse, true},
		{"3ds without url", answer{status: 202, body: withField(t, "direct_payment_3ds.json", map[string]any{"action_data": nil})}, provider.ErrBadResponse, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			f.on(route, tc.a)
			req := chargeRequest(t)
			_, err := f.client().ChargeCard(context.Background(), req)
			if !errors.Is(err, tc.is) || errors.Is(err, circoflows.ErrOutcomeUnknown) != tc.unknown {
				t.Fatalf("ChargeCard: %v, want %v (outcome unknown %v)", err, tc.is, tc.unknown)
			}
			if n := len(f.requests()); n != 1 {
				t.Fatalf("%d requests: a charge must never be repeated", n)
			}
			for _, secret := range []string{req.Card.Number, testKey} {
				if strings.Contains(err.Error(), secret) {
					t.Fatalf("error leaks a secret: %v", err)
				}
			}
		})
	}
}

func TestCardNeverPrinted(t *testing.T) {
	t.Parallel()
	req := chargeRequest(t)
	for _, s := range []string{fmt.Sprint(req), fmt.Sprintf("%+v", req), fmt.Sprintf("%#v", req.Card), fmt.Sprintf("%v", req.Card)} {
		if strings.Contains(s, "4242424242424242") || strings.Contains(s, "CVV:123") {
			t.Fatalf("card printed: %s", s)
		}
	}
	f := newFake(t)
	for _, bad := range []circoflows.Card{
		{Number: "4242", ExpiryMonth: "12", ExpiryYear: "2025", CVV: "123"},
		{Number: "4242424242424242", ExpiryMonth: "13", ExpiryYear: "2025", CVV: "123"},
		{Number: "4242424242424242", ExpiryMonth: "12", ExpiryYear: "25x", CVV: "123"},
		{Number: "4242424242424242", ExpiryMonth: "12", ExpiryYear: "2025", CVV: "12"},
	} {
		r := chargeRequest(t)
		r.Card = bad
		if _, err := f.client().ChargeCard(context.Background(), r); !errors.Is(err, provider.ErrRejected) || strings.Contains(err.Error(), bad.Number) && len(bad.Number) > 4 {
			t.Fatalf("ChargeCard(%v): %v", bad, err)
		}
	}
	if n := len(f.requests()); n != 0 {
		t.Fatalf("malformed cards reached the provider (%d requests)", n)
	}
}

func TestParseReturn(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		query string
		want  circoflows.Return
		ok    bool
	}{
		{"transaction_id=txn_A&status=success&gateway_id=gw_B", circoflows.Return{TransactionID: "txn_A", Status: "success", GatewayID: "gw_B"}, true},
		{"session_id=sess_ABC123DEF456&utm=x", circoflows.Return{SessionID: "sess_ABC123DEF456"}, true},
		{"status=success", circoflows.Return{}, false},
		{"", circoflows.Return{}, false},
		{"transaction_id=txn_A&transaction_id=txn_B", circoflows.Return{}, false},
		{"transaction_id=%3Cscript%3E", circoflows.Return{}, false},
		{"transaction_id=txn_A&status=" + strings.Repeat("a", 300), circoflows.Return{}, false},
	} {
		q, err := url.ParseQuery(tc.query)
		if err != nil {
			t.Fatal(err)
		}
		got, err := circoflows.ParseReturn(q)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseReturn(%q) = %+v, %v; want %+v ok=%v", tc.query, got, err, tc.want, tc.ok)
		}
	}
}

func TestCardFromForm(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		number, expiry, cvv string
		want                circoflows.Card
		ok                  bool
	}{
		{"4242 4242 4242 4242", "12/25", "123", circoflows.Card{Number: "4242424242424242", ExpiryMonth: "12", ExpiryYear: "2025", CVV: "123"}, true},
		{"4000-0000-0000-3220", "1 / 2030", "1234", circoflows.Card{Number: "4000000000003220", ExpiryMonth: "01", ExpiryYear: "2030", CVV: "1234"}, true},
		{"4242424242424242", "1225", "123", circoflows.Card{}, false},
		{"4242424242424242", "00/25", "123", circoflows.Card{}, false},
		{"4242x4242", "12/25", "123", circoflows.Card{}, false},
	} {
		got, err := circoflows.CardFromForm(tc.number, tc.expiry, tc.cvv)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("CardFromForm(%q, %q) = %v, %v", tc.expiry, tc.cvv, got, err)
		}
		if err != nil && strings.Contains(err.Error(), "4242") {
			t.Errorf("error echoes the card: %v", err)
		}
	}
}
