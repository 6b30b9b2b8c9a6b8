package circoflows_test

import (
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/payledger/payledger/adapters/circoflows"
	"github.com/payledger/payledger/adapters/provider"
)

// FuzzParseCallback feeds the webhook parser hostile bodies, signed with
// our secret (as if the secret had leaked, or CircoFlows sent nonsense) or
// not. Whatever it accepts is signed, verified, has a known status and an
// amount in a currency CircoFlows carries; whatever it refuses wraps
// ErrBadCallback. It never panics.
func FuzzParseCallback(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("..", "..", "testdata", "circoflows", "webhook_*.json"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no webhook samples: %v", err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, true)
		f.Add(b, false)
	}
	f.Add([]byte(`{"event":"payment.succeeded","data":{"session_id":"s","amount":1e400,"currency":"USD"}}`), true)
	f.Add([]byte(`{"event":"payment.failed","data":{"transaction_id":"t","status":"FAILED","error":"boom"}}`), true)
	f.Add([]byte(`{"type":"payment.pending","data":{"metadata":{"reference":7},"requires_action":true}}`), true)

	c, err := circoflows.New(circoflows.Config{BaseURL: "https://api-test.example.com", APIKey: testKey, WebhookSecret: testSecret})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte, sign bool) {
		h := http.Header{}
		if sign {
			h.Set(circoflows.SignatureHeader, circoflows.Sign(testSecret, body))
		} else {
			h.Set(circoflows.SignatureHeader, circoflows.Sign("not-our-secret", body))
		}
		cb, err := c.ParseCallback(h, body)
		if err != nil {
			if !errors.Is(err, provider.ErrBadCallback) {
				t.Fatalf("refusal %v does not wrap ErrBadCallback", err)
			}
			return
		}
		if !sign {
			t.Fatalf("accepted a body signed with another secret: %+v", cb)
		}
		if !cb.Verified {
			t.Fatal("accepted but not verified")
		}
		switch cb.Status {
		case provider.StatusPending, provider.StatusActionRequired, provider.StatusProcessed, provider.StatusFailed:
		default:
			t.Fatalf("status %q", cb.Status)
		}
		if cb.Ref == "" && cb.Reference == "" {
			t.Fatal("accepted a callback that names nothing")
		}
		if cb.HasAmount {
			if cb.Amount.Amount().IsNegative() || cb.Amount.Currency().Exponent > 3 {
				t.Fatalf("amount %s %s", cb.Amount, cb.Amount.Currency().Code)
			}
			if _, err := circoflows.Cents(cb.Amount); err != nil {
				t.Fatalf("accepted amount does not convert back: %v", err)
			}
		}
		for _, s := range []string{cb.Ref, cb.Reference, cb.Code, cb.Message, cb.Raw, cb.ActionURL} {
			if strings.ContainsAny(s, "\n\r\x00") {
				t.Fatalf("control characters reach the ledger: %q", s)
			}
		}
	})
}

// FuzzParseReturn feeds the 3-D Secure and session return parser the
// query strings a payer's browser could bring. What it accepts names a
// transaction or a session, and every value it keeps is a plain id-like
// token, safe in a URL path and a ledger event. It never panics.
func FuzzParseReturn(f *testing.F) {
	for _, q := range []string{
		"transaction_id=txn_ABC123DEF456&status=success&gateway_id=gw_XYZ789",
		"session_id=sess_ABC123DEF456",
		"transaction_id=txn_1&transaction_id=txn_2",
		"transaction_id=../admin&status=success",
		"status=success",
		"transaction_id=%00&gateway_id=gw",
	} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		r, err := circoflows.ParseReturn(q)
		if err != nil {
			return
		}
		if r.TransactionID == "" && r.SessionID == "" {
			t.Fatalf("accepted %q without an id", raw)
		}
		for _, v := range []string{r.TransactionID, r.SessionID, r.Status, r.GatewayID} {
			if strings.ContainsAny(v, "/?#%&= \x00\r\n") || len(v) > 200 {
				t.Fatalf("accepted %q with value %q", raw, v)
			}
		}
	})
}
