package onramp_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/payledger/payledger/adapters/onramp"
	"github.com/payledger/payledger/adapters/provider"
	"github.com/payledger/payledger/domain/money"
)

const (
	invoiceRef = "inv_0190d7a1b2c34d5e8f9a0b1c2d3e4f50"
	paymentID  = "pmt_7f3c2a9e41b84d0c"
	route      = "POST /invoice-payments"
)

func usd(t testing.TB, s string) money.Money {
	t.Helper()
	m, err := money.Parse(s, "USD")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func createRequest(t testing.TB) provider.CreateRequest {
	return provider.CreateRequest{
		InvoiceID:   invoiceRef,
		PaymentID:   "pay_1",
		Reference:   invoiceRef,
		Amount:      usd(t, "250.00"),
		Description: "Order 7135",
		SuccessURL:  "https://ledger.example/pay/return/onramp/success",
		FailURL:     "https://ledger.example/pay/return/onramp/fail",
		CallbackURL: "https://ledger.example/callbacks/onramp",
	}
}

// ourKeys are the create fields the document lacks (see the package doc).
var ourKeys = map[string]bool{"amount": true, "currency": true, "description": true, "successUrl": true, "failureUrl": true, "webhookUrl": true}

func TestNewNamesMissingSetting(t *testing.T) {
	t.Parallel()
	full := onramp.Config{BaseURL: "https://onramp.example.com/api", APIKey: "k"}
	for _, tc := range []struct {
		name string
		mod  func(*onramp.Config)
		want string
		is   error
	}{
		{"base url", func(c *onramp.Config) { c.BaseURL = "" }, "BaseURL", onramp.ErrMissingSetting},
		{"api key", func(c *onramp.Config) { c.APIKey = "" }, "APIKey", onramp.ErrMissingSetting},
		{"relative url", func(c *onramp.Config) { c.BaseURL = "/api" }, "BaseURL", onramp.ErrBadSetting},
		{"platform type", func(c *onramp.Config) { c.Type = "PLATFORM" }, "Type", onramp.ErrBadSetting},
		{"unknown type", func(c *onramp.Config) { c.Type = "CARD" }, "Type", onramp.ErrBadSetting},
		{"external data without EXTERNAL", func(c *onramp.Config) { c.ExternalData = "x" }, "ExternalData", onramp.ErrBadSetting},
		{"negative timeout", func(c *onramp.Config) { c.Timeout = -1 }, "Timeout", onramp.ErrBadSetting},
		{"path", func(c *onramp.Config) { c.Paths.Confirm = "confirm" }, "Paths", onramp.ErrBadSetting},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := full
			tc.mod(&cfg)
			_, err := onramp.New(cfg)
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want %v naming %s", err, tc.is, tc.want)
			}
		})
	}
	for _, typ := range []string{"", "checkout", "EXTERNAL"} {
		cfg := full
		cfg.Type = typ
		c, err := onramp.New(cfg)
		if err != nil || c.Name() != "onramp" {
			t.Fatalf("New(type %q): %v", typ, err)
		}
	}
}

func TestCreateCheckout(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.on(route, ok(sample(t, "create_checkout_response.json")))
	created, err := f.client().Create(context.Background(), createRequest(t))
	if err != nil {
		t.Fatal(err)
	}
	if created.Ref != invoiceRef+"/"+paymentID || created.Status != provider.StatusPending ||
		created.RedirectURL != "https://checkout.example.com/pay/ps_2Un4Fw1dPyqKcU7hJtLp0Xq" || created.Form != nil {
		t.Fatalf("Create = %+v", created)
	}
	reqs := f.requests()
	if len(reqs) != 1 || reqs[0].Auth != "Bearer "+testKey {
		t.Fatalf("requests %+v", reqs)
	}
	body := reqs[0].Body
	doc := documentedKeys(t, "create_or_retrieve_request.jsonc")
	for k := range body {
		if !doc[k] && !ourKeys[k] {
			t.Errorf("field %q is neither documented nor one of ours", k)
		}
	}
	for _, k := range []string{"paymentId", "discountCode", "accountId"} {
		if _, ok := body[k]; ok {
			t.Errorf("create sends %s", k)
		}
	}
	if body["invoiceId"] != invoiceRef || body["type"] != "CHECKOUT" || body["currency"] != "USD" ||
		body["successUrl"] != "https://ledger.example/pay/return/onramp/success" || body["webhookUrl"] != "https://ledger.example/callbacks/onramp" {
		t.Errorf("body = %v", body)
	}
	// The amount is the exact decimal, as a JSON number.
	if !strings.Contains(string(reqs[0].Raw), `"amount":250.00,`) {
		t.Errorf("amount not sent as 250.00: %s", reqs[0].Raw)
	}
}

func TestCreateExternalUpdatesSomeData(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.on(route, ok(withField(t, "create_external_response.json", map[string]any{"redirectUrl": nil})))
	f.on("POST /invoice-payments/update", ok(sample(t, "create_external_response.json")))
	c := f.client(func(c *onramp.Config) { c.Type = "EXTERNAL"; c.ExternalData = "partner-profile-17" })
	created, err := c.Create(context.Background(), createRequest(t))
	if err != nil {
		t.Fatal(err)
	}
	if created.Ref != invoiceRef+"/pmt_9a1d55c0e2f64b7a" || created.RedirectURL != "https://partner.example.net/onramp/session/9a1d55c0e2f64b7a" {
		t.Fatalf("Create = %+v", created)
	}
	reqs := f.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want create then update", len(reqs))
	}
	up := reqs[1].Body
	doc := documentedKeys(t, "update_request.jsonc")
	for k := range up {
		if !doc[k] {
			t.Errorf("update field %q is not documented", k)
		}
	}
	if fmt.Sprint(up) != "map[invoiceId:"+invoiceRef+" paymentId:pmt_9a1d55c0e2f64b7a someData:partner-profile-17 type:EXTERNAL]" {
		t.Errorf("update body = %v", up)
	}
	if reqs[0].Body["type"] != "EXTERNAL" {
		t.Errorf("create type = %v", reqs[0].Body["type"])
	}
}

func TestCreateFailures(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		a       answer
		key     string
		is      error
		unknown bool
		problem string
	}{
		{"invalid request", answer{status: 400, body: sample(t, "error_invalid_request.json")}, testKey, provider.ErrRejected, false, "provider_rejected"},
		{"unauthorized", ok(sample(t, "create_checkout_response.json")), "wrong", provider.ErrRejected, false, "provider_rejected"},
		{"conflict", answer{status: 409, body: []byte(`{"message":"invoice already has a payment"}`)}, testKey, provider.ErrConflict, false, "provider_rejected"},
		{"server error", answer{status: 500, body: []byte(`{"error":"internal"}`)}, testKey, provider.ErrUnavailable, true, "provider_unavailable"},
		{"unavailable", answer{status: 503, body: []byte("down")}, testKey, provider.ErrUnavailable, false, "provider_unavailable"},
		{"timeout", answer{hang: true}, testKey, provider.ErrUnavailable, true, "provider_unavailable"},
		{"other amount", ok(withField(t, "create_checkout_response.json", map[string]any{"amount": 25})), testKey, provider.ErrBadResponse, true, "provider_error"},
		{"other currency", ok(withField(t, "create_checkout_response.json", map[string]any{"currency": "EUR"})), testKey, provider.ErrBadResponse, true, "provider_error"},
		{"other invoice", ok(withField(t, "create_checkout_response.json", map[string]any{"invoiceId": "inv_other"})), testKey, provider.ErrBadResponse, true, "provider_error"},
		{"no payment id", ok(withField(t, "create_checkout_response.json", map[string]any{"paymentId": nil})), testKey, provider.ErrBadResponse, true, "provider_error"},
		{"no url", ok(withField(t, "create_checkout_response.json", map[string]any{"checkoutUrl": nil})), testKey, provider.ErrBadResponse, false, "provider_error"},
		{"script url", ok(withField(t, "create_checkout_response.json", map[string]any{"checkoutUrl": "javascript:alert(1)"})), testKey, provider.ErrBadResponse, true, "provider_error"},
		{"unknown status", ok(withField(t, "create_checkout_response.json", map[string]any{"status": "ON_HOLD"})), testKey, provider.ErrBadResponse, true, "provider_error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			f.on(route, tc.a)
			_, err := f.client(func(c *onramp.Config) { c.APIKey = tc.key }).Create(context.Background(), createRequest(t))
			if !errors.Is(err, tc.is) || errors.Is(err, onramp.ErrOutcomeUnknown) != tc.unknown {
				t.Fatalf("Create: %v, want %v (outcome unknown %v)", err, tc.is, tc.unknown)
			}
			var pe *provider.Error
			if !errors.As(err, &pe) || pe.Provider != "onramp" {
				t.Fatalf("Create: %#v is no *provider.Error", err)
			}
			if p := provider.Problem(err); p.Code != tc.problem {
				t.Errorf("Problem code %q, want %q", p.Code, tc.problem)
			}
			if n := len(f.requests()); n != 1 {
				t.Errorf("%d requests, want 1 (creates are never retried)", n)
			}
			if strings.Contains(err.Error(), tc.key) && tc.key != "" {
				t.Errorf("error leaks the key: %v", err)
			}
		})
	}
}

// TestCreateFindsFinishedPayment: create-or-retrieve may return an
// existing payment that is already paid; there is nowhere to redirect.
func TestCreateFindsFinishedPayment(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.on(route, ok(sample(t, "retrieve_paid_response.json")))
	created, err := f.client().Create(context.Background(), createRequest(t))
	if err != nil {
		t.Fatal(err)
	}
	if created.Status != provider.StatusProcessed || created.RedirectURL != "" || created.Ref != invoiceRef+"/"+paymentID {
		t.Fatalf("Create = %+v", created)
	}
}

// TestStatusMapping covers every word of the vocabulary, through the
// retrieve call, and its spellings.
func TestStatusMapping(t *testing.T) {
	t.Parallel()
	words := onramp.Statuses()
	if len(words) < 30 {
		t.Fatalf("vocabulary has %d words", len(words))
	}
	type row struct {
		word string
		want provider.Status
		code string
	}
	var rows []row
	for w, st := range words {
		code := ""
		if st == provider.StatusFailed {
			code = strings.Replace(w, "canceled", "cancelled", 1)
		}
		rows = append(rows, row{strings.ToUpper(w), st, code})
	}
	rows = append(rows,
		row{"canceled", provider.StatusFailed, "cancelled"},
		row{"CANCELED", provider.StatusFailed, "cancelled"},
		row{"In Progress", provider.StatusPending, ""},
		row{"in-progress", provider.StatusPending, ""},
		row{" Paid ", provider.StatusProcessed, ""},
		row{"EXPIRED", provider.StatusFailed, "expired"},
	)
	for _, tc := range rows {
		t.Run(tc.word, func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			f.on(route, ok(withField(t, "retrieve_paid_response.json", map[string]any{"status": tc.word})))
			p, err := f.client().Status(context.Background(), onramp.Ref(invoiceRef, paymentID))
			if err != nil {
				t.Fatal(err)
			}
			if p.Status != tc.want || p.Code != tc.code || p.Ref != invoiceRef+"/"+paymentID || p.Reference != invoiceRef {
				t.Fatalf("Status = %+v, want %s code %q", p, tc.want, tc.code)
			}
		})
	}
	for _, w := range []string{"refunded", "partially_refunded", "chargeback", "", "string"} {
		t.Run("refused "+w, func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			f.on(route, ok(withField(t, "retrieve_paid_response.json", map[string]any{"status": w})))
			if _, err := f.client().Status(context.Background(), onramp.Ref(invoiceRef, paymentID)); !errors.Is(err, provider.ErrBadResponse) {
				t.Fatalf("Status(%q): %v, want ErrBadResponse", w, err)
			}
		})
	}
}

func TestStatusRetrieves(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.on(route, ok(sample(t, "retrieve_paid_response.json")))
	p, err := f.client().Status(context.Background(), onramp.Ref(invoiceRef, paymentID))
	if err != nil {
		t.Fatal(err)
	}
	if p.Status != provider.StatusProcessed || !p.HasAmount || p.Amount.String() != "250.00" || p.Amount.Currency().Code != "USD" {
		t.Fatalf("Status = %+v", p)
	}
	body := f.requests()[0].Body
	if fmt.Sprint(keysOf(body)) != "[invoiceId paymentId type]" || body["paymentId"] != paymentID || body["invoiceId"] != invoiceRef {
		t.Fatalf("retrieve body = %v", body)
	}
}

func TestStatusRetriesBounded(t *testing.T) {
	t.Parallel()
	ref := onramp.Ref(invoiceRef, paymentID)
	for _, tc := range []struct {
		name     string
		answers  []answer
		is       error
		requests int
	}{
		{"recovers after 502", []answer{{status: 502}, ok(sample(t, "retrieve_paid_response.json"))}, nil, 2},
		{"recovers after a timeout", []answer{{hang: true}, ok(sample(t, "retrieve_paid_response.json"))}, nil, 2},
		{"gives up", []answer{{status: 500}}, provider.ErrUnavailable, 3},
		{"rate limited", []answer{{status: 429}}, provider.ErrUnavailable, 3},
		{"not found is final", []answer{{status: 404, body: sample(t, "error_not_found.json")}}, provider.ErrNotFound, 1},
		{"other payment answered", []answer{ok(withField(t, "retrieve_paid_response.json", map[string]any{"paymentId": "pmt_other"}))}, provider.ErrBadResponse, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			f.on(route, tc.answers...)
			c := f.client(func(c *onramp.Config) { c.Timeout = 50 * time.Millisecond })
			_, err := c.Status(context.Background(), ref)
			if tc.is == nil && err != nil || tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("Status: %v, want %v", err, tc.is)
			}
			if errors.Is(err, onramp.ErrOutcomeUnknown) {
				t.Fatalf("a retrieve changes nothing: %v", err)
			}
			if n := len(f.requests()); n != tc.requests {
				t.Fatalf("%d requests, want %d", n, tc.requests)
			}
		})
	}
	f := newFake(t)
	for _, bad := range []string{"", "inv_1", "inv_1/", "/pmt", "inv_1/pmt/../x", "inv 1/pmt"} {
		if _, err := f.client().Status(context.Background(), bad); !errors.Is(err, provider.ErrNotFound) {
			t.Errorf("Status(%q): %v, want ErrNotFound", bad, err)
		}
	}
	if n := len(f.requests()); n != 0 {
		t.Fatalf("malformed refs reached the platform (%d requests)", n)
	}
}

func TestConfirmAndUpdate(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.on("POST /invoice-payments/confirm", ok(sample(t, "retrieve_paid_response.json")))
	f.on("POST /invoice-payments/update", answer{status: 500})
	c := f.client()
	ref := onramp.Ref(invoiceRef, paymentID)
	p, err := c.Confirm(context.Background(), ref)
	if err != nil || p.Status != provider.StatusProcessed {
		t.Fatalf("Confirm = %+v, %v", p, err)
	}
	body := f.requests()[0].Body
	doc := documentedKeys(t, "confirm_request.jsonc")
	for k := range body {
		if !doc[k] {
			t.Errorf("confirm field %q is not documented", k)
		}
	}
	if body["paymentId"] != paymentID || body["invoiceId"] != invoiceRef || body["type"] != "CHECKOUT" {
		t.Errorf("confirm body %v", body)
	}
	if _, err := c.Update(context.Background(), ref, "x"); !errors.Is(err, provider.ErrUnavailable) || !errors.Is(err, onramp.ErrOutcomeUnknown) {
		t.Fatalf("Update after 500: %v", err)
	}
	if n := len(f.requests()); n != 2 {
		t.Fatalf("%d requests: update must not be retried", n)
	}
}
