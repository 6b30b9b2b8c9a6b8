package circoflows_test

import (
	"bytes"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/payledger/payledger/adapters/circoflows"
	"github.com/payledger/payledger/adapters/provider"
)

func signed(body []byte, secret string) http.Header {
	h := http.Header{}
	h.Set(circoflows.SignatureHeader, circoflows.Sign(secret, body))
	return h
}

func callbackClient(t *testing.T) *circoflows.Client {
	t.Helper()
	c, err := circoflows.New(circoflows.Config{BaseURL: "https://api-test.example.com", APIKey: testKey, WebhookSecret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestParseCallbackEvents(t *testing.T) {
	t.Parallel()
	c := callbackClient(t)
	for _, tc := range []struct {
		file   string
		status provider.Status
		ref    string
		amount string
		code   string
		action string
	}{
		{"webhook_payment_succeeded.json", provider.StatusProcessed, "sess_ABC123DEF456", "250.00", "", ""},
		{"webhook_payment_failed.json", provider.StatusFailed, "sess_ABC123DEF456", "250.00", "insufficient_funds", ""},
		{"webhook_payment_pending.json", provider.StatusActionRequired, "txn_ABC123DEF456", "150.00", "", "https://pay.example.com/3ds/txn_ABC123DEF456"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			body := sample(t, tc.file)
			cb, err := c.ParseCallback(signed(body, testSecret), body)
			if err != nil {
				t.Fatal(err)
			}
			if !cb.Verified || cb.Status != tc.status || cb.Ref != tc.ref || cb.Code != tc.code || cb.ActionURL != tc.action ||
				cb.Reference != "inv_0190d7a1b2c34d5e8f9a0b1c2d3e4f50" || !cb.HasAmount || cb.Amount.String() != tc.amount ||
				cb.Amount.Currency().Code != "USD" || !strings.HasPrefix(cb.Raw, "payment.") {
				t.Fatalf("ParseCallback = %+v", cb)
			}
		})
	}
	t.Run("plain pending", func(t *testing.T) {
		body := withField(t, "webhook_payment_pending.json", map[string]any{"requires_action": nil, "action_data": nil, "action_type": nil})
		cb, err := c.ParseCallback(signed(body, testSecret), body)
		if err != nil || cb.Status != provider.StatusPending {
			t.Fatalf("ParseCallback = %+v, %v", cb, err)
		}
	})
}

// TestParseCallbackSignature: nothing but a body signed with our secret
// gets through, and it is checked before the JSON is read.
func TestParseCallbackSignature(t *testing.T) {
	t.Parallel()
	c := callbackClient(t)
	body := sample(t, "webhook_payment_succeeded.json")
	good := circoflows.Sign(testSecret, body)
	tampered := bytes.Replace(body, []byte(`"amount": 25000`), []byte(`"amount": 2500000`), 1)
	if bytes.Equal(tampered, body) {
		t.Fatal("test body did not change")
	}
	for _, tc := range []struct {
		name   string
		header http.Header
		body   []byte
		ok     bool
	}{
		{"valid", http.Header{"X-Webhook-Signature": {good}}, body, true},
		{"valid, upper-case hex", http.Header{"X-Webhook-Signature": {strings.ToUpper(good)}}, body, true},
		{"forged body", http.Header{"X-Webhook-Signature": {good}}, tampered, false},
		{"missing", http.Header{}, body, false},
		{"empty", http.Header{"X-Webhook-Signature": {""}}, body, false},
		{"wrong secret", signed(body, "whsec_someone_else"), body, false},
		{"truncated", http.Header{"X-Webhook-Signature": {good[:32]}}, body, false},
		{"not hex", http.Header{"X-Webhook-Signature": {strings.Repeat("zz", 32)}}, body, false},
		{"prefixed", http.Header{"X-Webhook-Signature": {"sha256=" + good}}, body, false},
		{"two headers", http.Header{"X-Webhook-Signature": {good, good}}, body, false},
		{"signed garbage", signed([]byte("not json"), testSecret), []byte("not json"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cb, err := c.ParseCallback(tc.header, tc.body)
			if tc.ok {
				if err != nil || !cb.Verified {
					t.Fatalf("ParseCallback: %+v, %v", cb, err)
				}
				return
			}
			if !errors.Is(err, provider.ErrBadCallback) || cb.Verified || cb.Status != "" {
				t.Fatalf("ParseCallback = %+v, %v; want ErrBadCallback", cb, err)
			}
			if p := provider.Problem(err); p.Status != http.StatusBadRequest {
				t.Fatalf("problem status %d", p.Status)
			}
		})
	}
}

func TestParseCallbackRefusesInconsistentBodies(t *testing.T) {
	t.Parallel()
	c := callbackClient(t)
	for _, tc := range []struct {
		name string
		body []byte
	}{
		{"succeeded with failed status", withField(t, "webhook_payment_succeeded.json", map[string]any{"status": "failed"})},
		{"unknown event", bytes.Replace(sample(t, "webhook_payment_succeeded.json"), []byte("payment.succeeded"), []byte("payment.refunded"), 1)},
		{"fraction of a cent", withField(t, "webhook_payment_succeeded.json", map[string]any{"amount": 250.5})},
		{"negative amount", withField(t, "webhook_payment_succeeded.json", map[string]any{"amount": -1})},
		{"amount without currency", withField(t, "webhook_payment_succeeded.json", map[string]any{"currency": nil})},
		{"crypto currency", withField(t, "webhook_payment_succeeded.json", map[string]any{"currency": "ETH"})},
		{"no ids", withField(t, "webhook_payment_succeeded.json", map[string]any{"session_id": nil, "transaction_id": nil, "metadata": nil})},
		{"no data", []byte(`{"event":"payment.succeeded"}`)},
		{"trailing data", append(sample(t, "webhook_payment_succeeded.json"), []byte(`{"event":"payment.failed"}`)...)},
		{"3ds url not http", withField(t, "webhook_payment_pending.json", map[string]any{"action_data": map[string]any{"3ds_url": "data:text/html,hi"}})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := c.ParseCallback(signed(tc.body, testSecret), tc.body); !errors.Is(err, provider.ErrBadCallback) {
				t.Fatalf("ParseCallback: %v, want ErrBadCallback", err)
			}
		})
	}
	// "type" is read when "event" is absent.
	body := bytes.Replace(sample(t, "webhook_payment_failed.json"), []byte(`"event"`), []byte(`"type"`), 1)
	if cb, err := c.ParseCallback(signed(body, testSecret), body); err != nil || cb.Status != provider.StatusFailed {
		t.Fatalf("ParseCallback(type) = %+v, %v", cb, err)
	}
}
