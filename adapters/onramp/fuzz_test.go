package onramp_test

import (
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/payledger/payledger/adapters/onramp"
	"github.com/payledger/payledger/adapters/provider"
)

// FuzzParseCallback: the webhook parser accepts only a known status for a
// named invoice, with an exact non-negative amount, and never claims the
// unsigned webhook is verified; everything else wraps ErrBadCallback. It
// never panics.
func FuzzParseCallback(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("..", "..", "testdata", "onramp", "webhook_*.json"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no webhook samples: %v", err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"payload":{"invoiceId":"i","status":"paid","amount":1E+2,"currency":"eth"}}`))
	f.Add([]byte(`{"payload":{"invoiceId":7,"paymentId":"p/q","status":"In Progress"}}`))

	c, err := onramp.New(onramp.Config{BaseURL: "https://onramp.example.com", APIKey: testKey})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		cb, err := c.ParseCallback(nil, body)
		if err != nil {
			if !errors.Is(err, provider.ErrBadCallback) {
				t.Fatalf("refusal %v does not wrap ErrBadCallback", err)
			}
			return
		}
		if cb.Verified {
			t.Fatal("unsigned webhook marked Verified")
		}
		switch cb.Status {
		case provider.StatusPending, provider.StatusActionRequired, provider.StatusProcessed, provider.StatusFailed:
		default:
			t.Fatalf("status %q", cb.Status)
		}
		if cb.Reference == "" || strings.Contains(cb.Reference, "/") {
			t.Fatalf("reference %q", cb.Reference)
		}
		if cb.Ref != "" {
			if inv, _, err := onramp.SplitRef(cb.Ref); err != nil || inv != cb.Reference {
				t.Fatalf("ref %q does not split back to %q: %v", cb.Ref, cb.Reference, err)
			}
		}
		if cb.HasAmount {
			if cb.Amount.Amount().IsNegative() {
				t.Fatalf("negative amount %s", cb.Amount)
			}
			back, err := onramp.Amount(onramp.AmountNumber(cb.Amount).String(), cb.Amount.Currency().Code)
			if err != nil || !back.Equal(cb.Amount) {
				t.Fatalf("amount %s does not round-trip: %v", cb.Amount, err)
			}
		}
		for _, s := range []string{cb.Ref, cb.Reference, cb.Code, cb.Message, cb.Raw} {
			if strings.ContainsAny(s, "\n\r\x00") {
				t.Fatalf("control characters reach the ledger: %q", s)
			}
		}
	})
}

// FuzzParseReturn: the cko-* redirect parser accepts only all three ids,
// each once and each a plain token. It never panics.
func FuzzParseReturn(f *testing.F) {
	for _, name := range []string{"return_success.query", "return_failed.query"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "onramp", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(strings.TrimSpace(string(b)))
	}
	f.Add("cko-payment-session-id=a&cko-session-id=b")
	f.Add("cko-payment-session-id=a&cko-session-id=b&cko-payment-id=c&cko-payment-id=d")
	f.Add("cko-payment-session-id=a%2Fb&cko-session-id=b&cko-payment-id=c")
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		r, err := onramp.ParseReturn(q)
		if err != nil {
			return
		}
		for _, v := range []string{r.PaymentSessionID, r.SessionID, r.PaymentID} {
			if v == "" || strings.ContainsAny(v, "/?#%&= \x00\r\n") || len(v) > 200 {
				t.Fatalf("accepted %q with value %q", raw, v)
			}
		}
	})
}
