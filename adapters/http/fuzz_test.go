package httpapi_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/payledger/payledger/projections/projectiontest"
)

// FuzzCreateInvoice: no body makes POST /v1/invoices answer 5xx; a
// refusal is always a problem+json naming a code, and a 2xx is always a
// complete invoice.
func FuzzCreateInvoice(f *testing.F) {
	e := newEnv(f, projectiontest.SQLite(f))
	for _, seed := range []string{
		simple("1.00"),
		fullBody,
		`{"amount":"1e3","currency":"USD"}`,
		`{"amount":"-0","currency":"usd","customer":{"email":"a@b.co","address":{"country":"de"}}}`,
		`{"amount":"0.001","currency":"KWD","expires_at":"2026-13-01T00:00:00Z"}`,
		`{"amount":"9999999999999999","currency":"JPY","metadata":{"":""}}`,
		`{"customer":{"name":"\ud800"},"amount":"1","currency":"EUR"}`,
		`[{"amount":"1.00"}]`,
		`{"amount":"1.00","currency":"USD","return_urls":{"success":"http://[::1"}}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest("POST", "/v1/invoices", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+e.full)
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		e.api.ServeHTTP(w, req)
		switch {
		case w.Code >= 500:
			t.Fatalf("%q → %d %s", body, w.Code, w.Body)
		case w.Code >= 400:
			var p problemBody
			if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || p.Code == "" || p.Status != w.Code ||
				w.Header().Get("Content-Type") != "application/problem+json" {
				t.Fatalf("%q → %d without a problem body: %s", body, w.Code, w.Body)
			}
		case w.Code == http.StatusCreated || w.Code == http.StatusOK:
			var inv invoiceJSON
			if err := json.Unmarshal(w.Body.Bytes(), &inv); err != nil || !strings.HasPrefix(inv.ID, "inv_") || inv.Number < 1001 || inv.Amount == "" {
				t.Fatalf("%q → %d with an incomplete invoice: %s", body, w.Code, w.Body)
			}
		default:
			t.Fatalf("%q → unexpected %d", body, w.Code)
		}
	})
}
