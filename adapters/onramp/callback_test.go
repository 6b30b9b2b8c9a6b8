package onramp_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/payledger/payledger/adapters/onramp"
	"github.com/payledger/payledger/adapters/provider"
	"github.com/payledger/payledger/domain/money"
)

func callbackClient(t *testing.T) *onramp.Client {
	t.Helper()
	c, err := onramp.New(onramp.Config{BaseURL: "https://onramp.example.com", APIKey: testKey})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestWebhookSamplesFollowTheDocument: our concrete webhooks use only the
// documented fields of their kind.
func TestWebhookSamplesFollowTheDocument(t *testing.T) {
	t.Parallel()
	platform := documentedKeys(t, "platform_webhook.jsonc")
	external := documentedKeys(t, "external_webhook.jsonc")
	for _, tc := range []struct {
		file string
		doc  map[string]bool
	}{
		{"webhook_platform_paid.json", platform},
		{"webhook_external_paid.json", external},
		{"webhook_external_pending.json", external},
		{"webhook_external_failed.json", external},
		{"webhook_external_expired.json", external},
	} {
		var doc struct{ Payload map[string]any }
		if err := json.Unmarshal(sample(t, tc.file), &doc); err != nil {
			t.Fatal(err)
		}
		for k := range doc.Payload {
			if !tc.doc[k] {
				t.Errorf("%s: field %q is not documented", tc.file, k)
			}
		}
	}
}

func TestParseCallback(t *testing.T) {
	t.Parallel()
	c := callbackClient(t)
	for _, tc := range []struct {
		file   string
		status provider.Status
		code   string
	}{
		{"webhook_platform_paid.json", provider.StatusProcessed, ""},
		{"webhook_external_paid.json", provider.StatusProcessed, ""},
		{"webhook_external_pending.json", provider.StatusPending, ""},
		{"webhook_external_failed.json", provider.StatusFailed, "failed"},
		{"webhook_external_expired.json", provider.StatusFailed, "expired"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			cb, err := c.ParseCallback(http.Header{}, sample(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if cb.Verified {
				t.Fatal("an unsigned webhook must never be Verified")
			}
			if cb.Status != tc.status || cb.Code != tc.code || cb.Reference != invoiceRef || cb.Ref != invoiceRef+"/"+paymentID ||
				!cb.HasAmount || cb.Amount.String() != "250.00" || cb.Amount.Currency().Code != "USD" {
				t.Fatalf("ParseCallback = %+v", cb)
			}
			// The hint is confirmed with Status(cb.Ref): the ref must split.
			if inv, pay, err := onramp.SplitRef(cb.Ref); err != nil || inv != invoiceRef || pay != paymentID {
				t.Fatalf("SplitRef(%q) = %q, %q, %v", cb.Ref, inv, pay, err)
			}
		})
	}
	// A signature-looking header changes nothing: the platform signs nothing.
	cb, err := c.ParseCallback(http.Header{"X-Webhook-Signature": {"deadbeef"}}, sample(t, "webhook_external_paid.json"))
	if err != nil || cb.Verified {
		t.Fatalf("ParseCallback with a header = %+v, %v", cb, err)
	}
	// No paymentId: still parsed (stored, flagged), but cannot be confirmed.
	cb, err = c.ParseCallback(nil, withField(t, "webhook_external_paid.json", map[string]any{"paymentId": nil}))
	if err != nil || cb.Ref != "" || cb.Reference != invoiceRef {
		t.Fatalf("ParseCallback without paymentId = %+v, %v", cb, err)
	}
	// Numeric ids are read as their digits.
	cb, err = c.ParseCallback(nil, withField(t, "webhook_external_paid.json", map[string]any{"paymentId": 12345}))
	if err != nil || cb.Ref != invoiceRef+"/12345" {
		t.Fatalf("ParseCallback with a numeric id = %+v, %v", cb, err)
	}
	// Crypto amounts keep their decimals.
	cb, err = c.ParseCallback(nil, []byte(`{"payload":{"paymentId":"p1","invoiceId":"inv_1","status":"PAID","amount":12.345678,"currency":"USDT","paymentDate":1721718945}}`))
	if err != nil || cb.Amount.String() != "12.345678" || cb.Amount.Currency().Code != "USDT" {
		t.Fatalf("USDT callback = %+v, %v", cb, err)
	}
}

func TestParseCallbackRefusals(t *testing.T) {
	t.Parallel()
	c := callbackClient(t)
	for _, tc := range []struct {
		name string
		body []byte
	}{
		{"empty", nil},
		{"not json", []byte("status=PAID")},
		{"no payload", []byte(`{"paymentId":"p","invoiceId":"i","status":"PAID"}`)},
		{"payload array", []byte(`{"payload":[]}`)},
		{"payload null", []byte(`{"payload":null}`)},
		{"the document's template", []byte(`{"payload":{"paymentId":"string","invoiceId":"string","status":"string","amount":"number","currency":"string","paymentDate":"number"}}`)},
		{"unknown status", withField(t, "webhook_external_paid.json", map[string]any{"status": "REFUNDED"})},
		{"no status", withField(t, "webhook_external_paid.json", map[string]any{"status": nil})},
		{"no invoice", withField(t, "webhook_external_paid.json", map[string]any{"invoiceId": nil})},
		{"invoice with a slash", withField(t, "webhook_external_paid.json", map[string]any{"invoiceId": "inv_1/x"})},
		{"object id", withField(t, "webhook_external_paid.json", map[string]any{"paymentId": map[string]any{"$oid": "x"}})},
		{"over-precise", withField(t, "webhook_external_paid.json", map[string]any{"amount": 250.001})},
		{"negative", withField(t, "webhook_external_paid.json", map[string]any{"amount": -250})},
		{"amount text", withField(t, "webhook_external_paid.json", map[string]any{"amount": "250,00"})},
		{"no currency", withField(t, "webhook_external_paid.json", map[string]any{"currency": nil})},
		{"unknown currency", withField(t, "webhook_external_paid.json", map[string]any{"currency": "DOGE"})},
		{"huge exponent", []byte(`{"payload":{"paymentId":"p","invoiceId":"i","status":"PAID","amount":1e999999999,"currency":"USD"}}`)},
		{"trailing data", append(sample(t, "webhook_external_paid.json"), '{', '}')},
		{"date not a number", withField(t, "webhook_external_paid.json", map[string]any{"paymentDate": "yesterday"})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if cb, err := c.ParseCallback(nil, tc.body); !errors.Is(err, provider.ErrBadCallback) {
				t.Fatalf("ParseCallback = %+v, %v; want ErrBadCallback", cb, err)
			}
		})
	}
}

func TestAmount(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		text, currency, want string
		is                   error
	}{
		{"250.00", "USD", "250.00", nil},
		{"250", "USD", "250.00", nil},
		{"250.5", "USD", "250.50", nil},
		{"2.5e2", "USD", "250.00", nil},
		{"25000E-2", "USD", "250.00", nil},
		{"0", "EUR", "0.00", nil},
		{"0.1", "USD", "0.10", nil},
		{"1000", "JPY", "1000", nil},
		{"1000.0", "JPY", "1000", nil},
		{"1.5", "JPY", "", money.ErrTooPrecise},
		{"1.234", "KWD", "1.234", nil},
		{"1.2345", "KWD", "", money.ErrTooPrecise},
		{"12.345678", "USDT", "12.345678", nil},
		{"0.00000001", "BTC", "0.00000001", nil},
		{"0.000000000000000001", "ETH", "0.000000000000000001", nil},
		{"10.005", "USD", "", money.ErrTooPrecise},
		{"1e-999", "USD", "", money.ErrTooPrecise},
		{"1e999999999", "USD", "", money.ErrTooLarge},
		{"1e20", "USD", "", money.ErrTooLarge},
		{"-1", "USD", "", money.ErrNegative},
		{"", "USD", "", money.ErrInvalidAmount},
		{"NaN", "USD", "", money.ErrInvalidAmount},
		{"Infinity", "USD", "", money.ErrInvalidAmount},
		{"0x10", "USD", "", money.ErrInvalidAmount},
		{"01", "USD", "", money.ErrInvalidAmount},
		{".5", "USD", "", money.ErrInvalidAmount},
		{"1.", "USD", "", money.ErrInvalidAmount},
		{" 1", "USD", "", money.ErrInvalidAmount},
		{"+1", "USD", "", money.ErrInvalidAmount},
		{"1", "XYZ", "", money.ErrUnknownCurrency},
	} {
		m, err := onramp.Amount(tc.text, tc.currency)
		if tc.is != nil {
			if !errors.Is(err, tc.is) {
				t.Errorf("Amount(%q, %s) = %v, %v; want %v", tc.text, tc.currency, m, err, tc.is)
			}
			continue
		}
		if err != nil || m.String() != tc.want {
			t.Errorf("Amount(%q, %s) = %v, %v; want %s", tc.text, tc.currency, m, err, tc.want)
			continue
		}
		// What we send is the exact decimal and reads back to itself.
		n := onramp.AmountNumber(m)
		back, err := onramp.Amount(n.String(), tc.currency)
		if err != nil || !back.Equal(m) || n.String() != tc.want {
			t.Errorf("AmountNumber(%s) = %s → %v, %v", m, n, back, err)
		}
		if _, err := decimal.NewFromString(n.String()); err != nil {
			t.Errorf("AmountNumber(%s) = %q is not a number", m, n)
		}
	}
}

func TestParseReturn(t *testing.T) {
	t.Parallel()
	for _, file := range []string{"return_success.query", "return_failed.query"} {
		q, err := url.ParseQuery(strings.TrimSpace(string(sample(t, file))))
		if err != nil {
			t.Fatal(err)
		}
		r, err := onramp.ParseReturn(q)
		if err != nil || r.PaymentSessionID != "ps_2Un4Fw1dPyqKcU7hJtLp0Xq" || r.SessionID != "cks_8Jz3KqvXn2Lw" || !strings.HasPrefix(r.PaymentID, "pay_") {
			t.Fatalf("ParseReturn(%s) = %+v, %v", file, r, err)
		}
	}
	// Every parameter the document lists is required.
	for key := range documentedKeys(t, "success_redirect.jsonc") {
		q, _ := url.ParseQuery(strings.TrimSpace(string(sample(t, "return_success.query"))))
		q.Del(key)
		if _, err := onramp.ParseReturn(q); err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("ParseReturn without %s: %v", key, err)
		}
	}
	for _, bad := range []string{
		"",
		"cko-payment-session-id=ps_1&cko-session-id=cks_1&cko-payment-id=pay_1&cko-payment-id=pay_2",
		"cko-payment-session-id=ps_1&cko-session-id=cks_1&cko-payment-id=%3Cscript%3E",
		"cko-payment-session-id=ps_1&cko-session-id=&cko-payment-id=pay_1",
		"cko-payment-session-id=" + strings.Repeat("a", 201) + "&cko-session-id=cks_1&cko-payment-id=pay_1",
	} {
		q, err := url.ParseQuery(bad)
		if err != nil {
			t.Fatal(err)
		}
		if r, err := onramp.ParseReturn(q); err == nil {
			t.Errorf("ParseReturn(%q) = %+v", bad, r)
		}
	}
}
