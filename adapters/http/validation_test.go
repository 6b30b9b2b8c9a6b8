package httpapi_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/payledger/payledger/projections"
	"github.com/payledger/payledger/projections/projectiontest"
)

// TestCreateValidation: every kind of bad input to POST /v1/invoices is a
// 4xx problem+json naming the field, never a 500, and writes nothing (the
// store's head does not move, no invoice is listed).
func TestCreateValidation(t *testing.T) {
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		e := newEnv(t, b)
		now := e.clock.Now()
		at := func(d time.Duration) string { return now.Add(d).Format(time.RFC3339) }
		manyKeys := func(n int) string {
			parts := make([]string, n)
			for i := range parts {
				parts[i] = fmt.Sprintf(`"k%d":"v"`, i)
			}
			return "{" + strings.Join(parts, ",") + "}"
		}
		cases := []struct {
			name   string
			body   string
			ctype  string
			status int
			code   string
			fields []string // every one must be named in errors
		}{
			{"malformed JSON", `{"amount":"1.00","currency":`, "", 400, "invalid_json", nil},
			{"trailing comma", `{"amount":"1.00","currency":"USD",}`, "", 400, "invalid_json", nil},
			{"not an object", `[1,2,3]`, "", 400, "invalid_json", nil},
			{"a bare string", `"invoice"`, "", 400, "invalid_json", nil},
			{"empty body", ``, "", 400, "invalid_json", nil},
			{"trailing data", `{"amount":"1.00","currency":"USD"} {"amount":"2.00"}`, "", 400, "invalid_json", nil},
			{"unknown field", `{"amount":"1.00","currency":"USD","colour":"red"}`, "", 400, "validation_failed", []string{"colour"}},
			{"unknown nested field", `{"amount":"1.00","currency":"USD","customer":{"email":"a@example.com","age":3}}`, "", 400, "validation_failed", []string{"customer.age"}},
			{"amount as a number", `{"amount":100.55,"currency":"USD"}`, "", 400, "validation_failed", []string{"amount"}},
			{"customer as a string", `{"amount":"1.00","currency":"USD","customer":"john"}`, "", 400, "validation_failed", []string{"customer"}},
			{"metadata value a number", `{"amount":"1.00","currency":"USD","metadata":{"account_id":12345}}`, "", 400, "validation_failed", []string{"metadata"}},
			{"email as a number", `{"amount":"1.00","currency":"USD","customer":{"email":5}}`, "", 400, "validation_failed", []string{"customer.email"}},
			{"missing amount", `{"currency":"USD"}`, "", 400, "validation_failed", []string{"amount"}},
			{"negative amount", `{"amount":"-1.00","currency":"USD"}`, "", 400, "validation_failed", []string{"amount"}},
			{"zero amount", `{"amount":"0.00","currency":"USD"}`, "", 400, "validation_failed", []string{"amount"}},
			{"over-precise USD", `{"amount":"100.555","currency":"USD"}`, "", 400, "validation_failed", []string{"amount"}},
			{"over-precise JPY", `{"amount":"100.5","currency":"JPY"}`, "", 400, "validation_failed", []string{"amount"}},
			{"exponent", `{"amount":"1e3","currency":"USD"}`, "", 400, "validation_failed", []string{"amount"}},
			{"not a number", `{"amount":"ten","currency":"USD"}`, "", 400, "validation_failed", []string{"amount"}},
			{"too large", `{"amount":"1000000000000000000000","currency":"USD"}`, "", 400, "validation_failed", []string{"amount"}},
			{"missing currency", `{"amount":"1.00"}`, "", 400, "validation_failed", []string{"currency"}},
			{"unknown currency", `{"amount":"1.00","currency":"XYZ"}`, "", 400, "validation_failed", []string{"currency"}},
			{"currency with spaces", `{"amount":"1.00","currency":" USD"}`, "", 400, "validation_failed", []string{"currency"}},
			{"bad email", `{"amount":"1.00","currency":"USD","customer":{"email":"john@"}}`, "", 400, "validation_failed", []string{"customer.email"}},
			{"email without domain dot", `{"amount":"1.00","currency":"USD","customer":{"email":"john@localhost"}}`, "", 400, "validation_failed", []string{"customer.email"}},
			{"email with a name", `{"amount":"1.00","currency":"USD","customer":{"email":"John <john@example.com>"}}`, "", 400, "validation_failed", []string{"customer.email"}},
			{"bad phone", `{"amount":"1.00","currency":"USD","customer":{"phone":"call me"}}`, "", 400, "validation_failed", []string{"customer.phone"}},
			{"bad country", `{"amount":"1.00","currency":"USD","customer":{"address":{"country":"USA"}}}`, "", 400, "validation_failed", []string{"customer.address.country"}},
			{"unknown provider", `{"amount":"1.00","currency":"USD","provider":"paypal"}`, "", 400, "validation_failed", []string{"provider"}},
			{"script return url", `{"amount":"1.00","currency":"USD","return_urls":{"success":"javascript:alert(1)"}}`, "", 400, "validation_failed", []string{"return_urls.success"}},
			{"long reference", `{"amount":"1.00","currency":"USD","reference_id":"` + strings.Repeat("r", 201) + `"}`, "", 400, "validation_failed", []string{"reference_id"}},
			{"too many metadata keys", `{"amount":"1.00","currency":"USD","metadata":` + manyKeys(51) + `}`, "", 400, "validation_failed", []string{"metadata"}},
			{"expires_at not a time", `{"amount":"1.00","currency":"USD","expires_at":"tomorrow"}`, "", 400, "validation_failed", []string{"expires_at"}},
			{"expires_at a number", `{"amount":"1.00","currency":"USD","expires_at":1893456000}`, "", 400, "validation_failed", []string{"expires_at"}},
			{"expires_at year 1", `{"amount":"1.00","currency":"USD","expires_at":"0001-01-01T00:00:00Z"}`, "", 400, "validation_failed", []string{"expires_at"}},
			{"expires_at year 9999", `{"amount":"1.00","currency":"USD","expires_at":"9999-12-31T23:59:59Z"}`, "", 400, "validation_failed", []string{"expires_at"}},
			{"expires_at in the past", `{"amount":"1.00","currency":"USD","expires_at":"` + at(-time.Hour) + `"}`, "", 400, "validation_failed", []string{"expires_at"}},
			{"expires_at too soon", `{"amount":"1.00","currency":"USD","expires_at":"` + at(5*time.Minute) + `"}`, "", 400, "validation_failed", []string{"expires_at"}},
			{"expires_at too late", `{"amount":"1.00","currency":"USD","expires_at":"` + at(31*24*time.Hour) + `"}`, "", 400, "validation_failed", []string{"expires_at"}},
			{"several mistakes at once", `{"amount":"-5","currency":"USD","customer":{"email":"nope"},"provider":"x"}`, "", 400, "validation_failed", []string{"amount", "customer.email", "provider"}},
			{"not JSON content", `amount=1.00&currency=USD`, "application/x-www-form-urlencoded", 415, "unsupported_media_type", nil},
		}
		before := e.head()
		for _, c := range cases {
			for _, key := range []string{"", "val-" + c.name} { // with and without Idempotency-Key
				hdr := []string{"Idempotency-Key", key}
				if c.ctype != "" {
					hdr = append(hdr, "Content-Type", c.ctype)
				}
				r := e.do("POST", "/v1/invoices", c.body, hdr...)
				if r.code != c.status {
					t.Errorf("%s: %s, want %d", c.name, r, c.status)
					continue
				}
				p := r.problem(t)
				if p.Code != c.code {
					t.Errorf("%s: code %q, want %q", c.name, p.Code, c.code)
				}
				if p.Detail == "" {
					t.Errorf("%s: no detail", c.name)
				}
				for _, f := range c.fields {
					found := false
					for _, fe := range p.Errors {
						if fe.Field == f && fe.Message != "" {
							found = true
						}
					}
					if !found {
						t.Errorf("%s: no message for field %q in %+v", c.name, f, p.Errors)
					}
				}
				if r.hdr.Get("X-RateLimit-Limit") == "" {
					t.Errorf("%s: no X-RateLimit-Limit on a refusal", c.name)
				}
			}
		}

		// Bodies over 1 MB: 413, with and without an Idempotency-Key (the
		// key's middleware reads the body first).
		for _, key := range []string{"", "big"} {
			r := e.doBytes("POST", "/v1/invoices", bigBody(1<<20), "Idempotency-Key", key)
			if r.code != http.StatusRequestEntityTooLarge || r.problem(t).Code != "request_too_large" {
				t.Errorf("1 MB body (key %q): %s", key, r)
			}
		}
		if r := e.doBytes("POST", "/v1/refunds", bigBody(2<<20)); r.code != http.StatusRequestEntityTooLarge {
			t.Errorf("2 MB refund body: %s", r)
		}

		if after := e.head(); after != before {
			t.Fatalf("refused requests moved the store head from %v to %v", before, after)
		}
		var l listJSON[invoiceJSON]
		e.do("GET", "/v1/invoices", "").decode(t, &l)
		if len(l.Data) != 0 {
			t.Fatalf("refused requests left %d invoices", len(l.Data))
		}

		// Just under the limit is fine: the limit is on the body, not on
		// anything smaller.
		okBody := fmt.Sprintf(`{"amount":"1.00","currency":"usd","description":%q}`, strings.Repeat("d", 900))
		inv := e.create(okBody)
		if inv.Currency != "USD" {
			t.Fatalf("currency %q, want upper-case USD", inv.Currency)
		}
	})
}

// TestOtherEndpointsValidation: the same guarantees on the other inputs
// (queries, links, refunds, cancel) — 4xx with the field named, nothing
// written.
func TestOtherEndpointsValidation(t *testing.T) {
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		e := newEnv(t, b)
		open := e.create(simple("50.00"))
		paid := e.create(simple("80.00"))
		e.pay(paid.ID, "80.00", "USD")
		before := e.head()
		cases := []struct {
			name, method, path, body string
			status                   int
			code, field              string
		}{
			{"limit 0", "GET", "/v1/invoices?limit=0", "", 400, "validation_failed", "limit"},
			{"limit 101", "GET", "/v1/invoices?limit=101", "", 400, "validation_failed", "limit"},
			{"limit word", "GET", "/v1/invoices?limit=ten", "", 400, "validation_failed", "limit"},
			{"bad status", "GET", "/v1/invoices?status=unpaid", "", 400, "validation_failed", "status"},
			{"bad created_gte", "GET", "/v1/invoices?created_gte=yesterday", "", 400, "validation_failed", "created_gte"},
			{"both cursors", "GET", "/v1/invoices?starting_after=inv_a&ending_before=inv_b", "", 400, "validation_failed", "ending_before"},
			{"bad as_of", "GET", "/v1/invoices/" + open.ID + "?as_of=now", "", 400, "validation_failed", "as_of"},
			{"unknown invoice", "GET", "/v1/invoices/inv_00000000000000000000000000000000", "", 404, "invoice_not_found", ""},
			{"events limit", "GET", "/v1/events?limit=1000", "", 400, "validation_failed", "limit"},
			{"events after garbage", "GET", "/v1/events?after=evt_zz", "", 400, "validation_failed", "after"},
			{"events after unknown", "GET", "/v1/events?after=evt_0190f5a3c2d47b6e9a1f0c3b5d7e9f11", "", 400, "validation_failed", "after"},
			{"ttl zero", "POST", "/v1/invoices/" + open.ID + "/payment_links", `{"ttl_seconds":0}`, 400, "validation_failed", "ttl_seconds"},
			{"ttl below min", "POST", "/v1/invoices/" + open.ID + "/payment_links", `{"ttl_seconds":60}`, 400, "validation_failed", "ttl_seconds"},
			{"ttl above max", "POST", "/v1/invoices/" + open.ID + "/payment_links", `{"ttl_seconds":86400}`, 400, "validation_failed", "ttl_seconds"},
			{"ttl a string", "POST", "/v1/invoices/" + open.ID + "/payment_links", `{"ttl_seconds":"300"}`, 400, "validation_failed", "ttl_seconds"},
			{"ttl fractional", "POST", "/v1/invoices/" + open.ID + "/payment_links", `{"ttl_seconds":300.5}`, 400, "validation_failed", "ttl_seconds"},
			{"ttl huge", "POST", "/v1/invoices/" + open.ID + "/payment_links", `{"ttl_seconds":1e300}`, 400, "validation_failed", "ttl_seconds"},
			{"link unknown field", "POST", "/v1/invoices/" + open.ID + "/payment_links", `{"ttl":300}`, 400, "validation_failed", "ttl"},
			{"link unknown invoice", "POST", "/v1/invoices/inv_nope/payment_links", ``, 404, "invoice_not_found", ""},
			{"refund no invoice", "POST", "/v1/refunds", `{"amount":"1.00"}`, 400, "validation_failed", "invoice_id"},
			{"refund negative", "POST", "/v1/refunds", `{"invoice_id":"` + paid.ID + `","amount":"-1.00"}`, 400, "validation_failed", "amount"},
			{"refund over-precise", "POST", "/v1/refunds", `{"invoice_id":"` + paid.ID + `","amount":"1.001"}`, 400, "validation_failed", "amount"},
			{"refund zero", "POST", "/v1/refunds", `{"invoice_id":"` + paid.ID + `","amount":"0"}`, 400, "validation_failed", "amount"},
			{"refund amount number", "POST", "/v1/refunds", `{"invoice_id":"` + paid.ID + `","amount":1}`, 400, "validation_failed", "amount"},
			{"refund unknown field", "POST", "/v1/refunds", `{"invoice_id":"` + paid.ID + `","amount":"1.00","currency":"USD"}`, 400, "validation_failed", "currency"},
			{"refund unknown invoice", "POST", "/v1/refunds", `{"invoice_id":"inv_nope","amount":"1.00"}`, 404, "invoice_not_found", ""},
			{"refund unpaid", "POST", "/v1/refunds", `{"invoice_id":"` + open.ID + `","amount":"1.00"}`, 409, "invoice_not_paid", ""},
			{"refund too much", "POST", "/v1/refunds", `{"invoice_id":"` + paid.ID + `","amount":"80.01"}`, 409, "refund_exceeds_payment", "amount"},
			{"cancel long reason", "POST", "/v1/invoices/" + open.ID + "/cancel", `{"reason":"` + strings.Repeat("r", 501) + `"}`, 400, "validation_failed", "reason"},
			{"cancel bad JSON", "POST", "/v1/invoices/" + open.ID + "/cancel", `{"reason":`, 400, "invalid_json", ""},
			{"cancel paid", "POST", "/v1/invoices/" + paid.ID + "/cancel", ``, 409, "invoice_not_open", ""},
			{"cancel unknown", "POST", "/v1/invoices/inv_nope/cancel", ``, 404, "invoice_not_found", ""},
			{"link on paid", "POST", "/v1/invoices/" + paid.ID + "/payment_links", ``, 409, "invoice_not_open", ""},
			{"bad idempotency key", "POST", "/v1/invoices/" + open.ID + "/cancel", ``, 400, "invalid_idempotency_key", "Idempotency-Key"},
		}
		for _, c := range cases {
			hdr := []string{}
			if c.name == "bad idempotency key" {
				hdr = []string{"Idempotency-Key", strings.Repeat("k", 256)}
			}
			r := e.do(c.method, c.path, c.body, hdr...)
			if r.code != c.status {
				t.Errorf("%s: %s, want %d", c.name, r, c.status)
				continue
			}
			p := r.problem(t)
			if p.Code != c.code {
				t.Errorf("%s: code %q, want %q (%s)", c.name, p.Code, c.code, r)
			}
			if c.field != "" {
				found := false
				for _, fe := range p.Errors {
					found = found || (fe.Field == c.field && fe.Message != "")
				}
				if !found {
					t.Errorf("%s: field %q not named in %+v", c.name, c.field, p.Errors)
				}
			}
		}
		if after := e.head(); after != before {
			t.Fatalf("refused requests moved the store head from %v to %v", before, after)
		}
	})
}
