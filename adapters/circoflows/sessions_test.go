package circoflows_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/payledger/payledger/adapters/circoflows"
	"github.com/payledger/payledger/adapters/provider"
	"github.com/payledger/payledger/domain/invoice"
	"github.com/payledger/payledger/domain/money"
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
		InvoiceID:   "inv_0190d7a1b2c34d5e8f9a0b1c2d3e4f50",
		PaymentID:   "pay_1",
		Reference:   "inv_0190d7a1b2c34d5e8f9a0b1c2d3e4f50",
		Amount:      usd(t, "250.00"),
		Description: "Premium Subscription - Annual Plan",
		Customer:    invoice.Customer{Name: "Jane Smith", Email: "jane@example.com", Phone: "+1234567890"},
		SuccessURL:  "https://ledger.example/pay/return/circoflows",
		FailURL:     "https://ledger.example/pay/fail/circoflows",
		CallbackURL: "https://ledger.example/callbacks/circoflows",
		ExpiresAt:   time.Date(2025, 8, 23, 23, 59, 59, 0, time.UTC),
	}
}

func TestNewNamesMissingSetting(t *testing.T) {
	t.Parallel()
	full := circoflows.Config{BaseURL: "https://api-test.example.com", APIKey: "k", WebhookSecret: "s"}
	for _, tc := range []struct {
		name string
		mod  func(*circoflows.Config)
		want string
		is   error
	}{
		{"base url", func(c *circoflows.Config) { c.BaseURL = "" }, "BaseURL", circoflows.ErrMissingSetting},
		{"api key", func(c *circoflows.Config) { c.APIKey = " " }, "APIKey", circoflows.ErrMissingSetting},
		{"webhook secret", func(c *circoflows.Config) { c.WebhookSecret = "" }, "WebhookSecret", circoflows.ErrMissingSetting},
		{"relative base url", func(c *circoflows.Config) { c.BaseURL = "api.example.com" }, "BaseURL", circoflows.ErrBadSetting},
		{"ftp base url", func(c *circoflows.Config) { c.BaseURL = "ftp://api.example.com" }, "BaseURL", circoflows.ErrBadSetting},
		{"negative timeout", func(c *circoflows.Config) { c.Timeout = -time.Second }, "Timeout", circoflows.ErrBadSetting},
		{"bad path", func(c *circoflows.Config) { c.Paths.Sessions = "api/session" }, "Paths", circoflows.ErrBadSetting},
		{"key with newline", func(c *circoflows.Config) { c.APIKey = "k\r\nX-Evil: 1" }, "APIKey", circoflows.ErrBadSetting},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := full
			tc.mod(&cfg)
			_, err := circoflows.New(cfg)
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want %v naming %s", err, tc.is, tc.want)
			}
		})
	}
	c, err := circoflows.New(full)
	if err != nil || c.Name() != "circoflows" {
		t.Fatalf("New(full) = %v, %v", c, err)
	}
}

func TestCreateSession(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.on("POST /api/payment-session", answer{status: 201, body: sample(t, "session_create_response.json")})
	created, err := f.client().Create(context.Background(), createRequest(t))
	if err != nil {
		t.Fatal(err)
	}
	want := provider.Created{Ref: "sess_ABC123DEF456", Status: provider.StatusPending, RedirectURL: "https://pay.example.com/sess_ABC123DEF456"}
	if created.Ref != want.Ref || created.Status != want.Status || created.RedirectURL != want.RedirectURL || created.Form != nil {
		t.Fatalf("Create = %+v, want %+v", created, want)
	}

	reqs := f.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.Auth != "Bearer "+testKey || r.ContentType != "application/json" {
		t.Fatalf("auth %q, content type %q", r.Auth, r.ContentType)
	}
	// The body has the documented request's fields, with the documented
	// example's values where the inputs are the example's.
	var got, doc map[string]any
	if err := json.Unmarshal(r.Body, &got); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(sample(t, "session_create_request.json"), &doc); err != nil {
		t.Fatal(err)
	}
	for k := range got {
		if _, ok := doc[k]; !ok {
			t.Errorf("request field %q is not in the documented request", k)
		}
	}
	for _, k := range []string{"amount", "currency", "description", "customer_info", "expires_at"} {
		if g, d := mustJSON(t, got[k]), mustJSON(t, doc[k]); g != d {
			t.Errorf("%s = %s, documented example %s", k, g, d)
		}
	}
	if !strings.Contains(string(r.Body), `"amount":25000,`) {
		t.Errorf("amount is not the integer 25000: %s", r.Body)
	}
	md, _ := got["metadata"].(map[string]any)
	if md["reference"] != "inv_0190d7a1b2c34d5e8f9a0b1c2d3e4f50" || md["payment_id"] != "pay_1" {
		t.Errorf("metadata = %v", md)
	}
	if got["webhook_url"] != "https://ledger.example/callbacks/circoflows" || got["return_url"] != "https://ledger.example/pay/return/circoflows" {
		t.Errorf("urls = %v, %v", got["webhook_url"], got["return_url"])
	}
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestCreateFailures: every failure is one of the sentinels the HTTP layer
// maps to a problem, and a create is sent exactly once.
func TestCreateFailures(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		answer  answer
		key     string
		is      error
		unknown bool // ErrOutcomeUnknown too
		code    string
		problem string
	}{
		{"invalid amount", answer{status: 400, body: sample(t, "error_invalid_amount.json")}, testKey, provider.ErrRejected, false, "invalid_amount", "provider_rejected"},
		{"invalid currency", answer{status: 400, body: []byte(`{"error":{"code":"invalid_currency","message":"Currency code is not supported"}}`)}, testKey, provider.ErrUnsupportedCurrency, false, "invalid_currency", "provider_rejected"},
		{"wrong api key", answer{status: 200, body: sample(t, "session_create_response.json")}, "wrong", provider.ErrRejected, false, "authentication_failed", "provider_rejected"},
		{"rate limited", answer{status: 429, body: sample(t, "error_rate_limit_exceeded.json")}, testKey, provider.ErrUnavailable, false, "rate_limit_exceeded", "provider_unavailable"},
		{"server error", answer{status: 500, body: sample(t, "error_server_error.json")}, testKey, provider.ErrUnavailable, true, "server_error", "provider_unavailable"},
		{"unavailable", answer{status: 503, body: []byte("<html>down</html>")}, testKey, provider.ErrUnavailable, false, "", "provider_unavailable"},
		{"timeout", answer{hang: true}, testKey, provider.ErrUnavailable, true, "", "provider_unavailable"},
		{"success false", ok([]byte(`{"success":false,"message":"Merchant disabled"}`)), testKey, provider.ErrRejected, false, "", "provider_rejected"},
		{"no session id", ok(withField(t, "session_create_response.json", map[string]any{"session_id": nil})), testKey, provider.ErrBadResponse, false, "", "provider_error"},
		{"payment_url not http", ok(withField(t, "session_create_response.json", map[string]any{"payment_url": "javascript:alert(1)"})), testKey, provider.ErrBadResponse, false, "", "provider_error"},
		{"other amount echoed", ok(withField(t, "session_create_response.json", map[string]any{"amount": 2500})), testKey, provider.ErrBadResponse, false, "", "provider_error"},
		{"not json", ok([]byte("OK")), testKey, provider.ErrBadResponse, false, "", "provider_error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			f.on("POST /api/payment-session", tc.answer)
			c := f.client(func(c *circoflows.Config) { c.APIKey = tc.key })
			_, err := c.Create(context.Background(), createRequest(t))
			if !errors.Is(err, tc.is) {
				t.Fatalf("Create: %v, want %v", err, tc.is)
			}
			if errors.Is(err, circoflows.ErrOutcomeUnknown) != tc.unknown {
				t.Errorf("Create: %v; outcome unknown = %v, want %v", err, !tc.unknown, tc.unknown)
			}
			var pe *provider.Error
			if !errors.As(err, &pe) || pe.Provider != "circoflows" || pe.Code != tc.code {
				t.Errorf("Create: %#v, want *provider.Error with code %q", err, tc.code)
			}
			if p := provider.Problem(err); p.Code != tc.problem {
				t.Errorf("Problem(%v).Code = %q, want %q", err, p.Code, tc.problem)
			}
			if n := len(f.requests()); n != 1 {
				t.Errorf("%d requests, want exactly 1 (creates are never retried)", n)
			}
		})
	}
}

func TestCreateRefusesUnsupportedCurrencyLocally(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	req := createRequest(t)
	m, err := money.Parse("1.5", "USDT")
	if err != nil {
		t.Fatal(err)
	}
	req.Amount = m
	_, err = f.client().Create(context.Background(), req)
	if !errors.Is(err, provider.ErrUnsupportedCurrency) {
		t.Fatalf("Create(USDT): %v, want ErrUnsupportedCurrency", err)
	}
	if n := len(f.requests()); n != 0 {
		t.Fatalf("%d requests sent for a currency CircoFlows cannot carry", n)
	}
}

// TestStatusMapping covers every status word of the document (and its
// spellings) through the session and transaction status endpoints.
func TestStatusMapping(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		word           string
		requiresAction bool
		want           provider.Status
		code           string
	}{
		{"completed", false, provider.StatusProcessed, ""},
		{"succeeded", false, provider.StatusProcessed, ""},
		{"success", false, provider.StatusProcessed, ""},
		{"pending", false, provider.StatusPending, ""},
		{"pending", true, provider.StatusActionRequired, ""},
		{"processing", false, provider.StatusPending, ""},
		{"requires_action", false, provider.StatusActionRequired, ""},
		{"failed", false, provider.StatusFailed, "failed"},
		{"declined", false, provider.StatusFailed, "card_declined"},
		{"cancelled", false, provider.StatusFailed, "cancelled"},
		{"canceled", false, provider.StatusFailed, "cancelled"},
		{"expired", false, provider.StatusFailed, "expired"},
		{"COMPLETED", false, provider.StatusProcessed, ""},
	} {
		for _, ep := range []struct{ ref, route, file string }{
			{"sess_ABC123DEF456", "GET /api/payment-session/sess_ABC123DEF456", "session_status.json"},
			{"txn_ABC123DEF456", "GET /api/transaction/txn_ABC123DEF456", "transaction_status.json"},
		} {
			t.Run(tc.word+"/"+ep.ref[:4], func(t *testing.T) {
				t.Parallel()
				f := newFake(t)
				set := map[string]any{"status": tc.word}
				if tc.requiresAction {
					set["requires_action"] = true
				}
				f.on(ep.route, ok(withField(t, ep.file, set)))
				p, err := f.client().Status(context.Background(), ep.ref)
				if err != nil {
					t.Fatal(err)
				}
				if p.Status != tc.want || p.Code != tc.code || p.Ref != ep.ref || p.Raw != tc.word {
					t.Fatalf("Status = %+v, want %s code %q", p, tc.want, tc.code)
				}
				st, code, err := circoflows.MapStatus(tc.word, tc.requiresAction)
				if err != nil || st != tc.want || code != tc.code {
					t.Fatalf("MapStatus(%q) = %s, %q, %v", tc.word, st, code, err)
				}
			})
		}
	}
	t.Run("unknown word", func(t *testing.T) {
		t.Parallel()
		f := newFake(t)
		f.on("GET /api/payment-session/sess_1", ok(withField(t, "session_status.json", map[string]any{"status": "refunded"})))
		if _, err := f.client().Status(context.Background(), "sess_1"); !errors.Is(err, provider.ErrBadResponse) {
			t.Fatalf("Status(refunded): %v, want ErrBadResponse", err)
		}
	})
}

func TestStatusOfSeedPayloads(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.on("GET /api/payment-session/sess_ABC123DEF456", ok(sample(t, "session_status.json")))
	f.on("GET /api/transaction/txn_ABC123DEF456", ok(sample(t, "transaction_status.json")))
	c := f.client()

	p, err := c.Status(context.Background(), "sess_ABC123DEF456")
	if err != nil {
		t.Fatal(err)
	}
	if p.Status != provider.StatusProcessed || !p.HasAmount || p.Amount.String() != "250.00" || p.Amount.Currency().Code != "USD" {
		t.Fatalf("session status = %+v", p)
	}

	p, err = c.Status(context.Background(), "txn_ABC123DEF456")
	if err != nil {
		t.Fatal(err)
	}
	if p.Status != provider.StatusProcessed || p.Amount.String() != "150.00" || p.Reference != "ORD-12345" || p.Ref != "txn_ABC123DEF456" {
		t.Fatalf("transaction status = %+v", p)
	}
}

func TestSessionGoneAndMissing(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.on("GET /api/payment-session/sess_old", answer{status: 410, body: sample(t, "error_session_expired.json")})
	f.on("GET /api/payment-session/sess_none", answer{status: 404, body: sample(t, "error_session_not_found.json")})
	f.on("GET /api/transaction/txn_none", answer{status: 404, body: sample(t, "error_transaction_not_found.json")})
	c := f.client()

	p, err := c.Status(context.Background(), "sess_old")
	if err != nil || p.Status != provider.StatusFailed || p.Code != "expired" || !p.Status.Final() {
		t.Fatalf("Status(expired session) = %+v, %v; want failed/expired", p, err)
	}
	for _, ref := range []string{"sess_none", "txn_none"} {
		if _, err := c.Status(context.Background(), ref); !errors.Is(err, provider.ErrNotFound) {
			t.Fatalf("Status(%s): %v, want ErrNotFound", ref, err)
		}
	}
	// An id that cannot be CircoFlows' never reaches a URL.
	if _, err := c.Status(context.Background(), "../admin?x=1"); !errors.Is(err, provider.ErrNotFound) {
		t.Fatalf("Status(path trick): %v", err)
	}
	if n := len(f.requests()); n != 3 {
		t.Fatalf("%d requests, want 3", n)
	}
}

func TestReadsRetryBounded(t *testing.T) {
	t.Parallel()
	route := "GET /api/payment-session/sess_ABC123DEF456"
	t.Run("recovers after 503", func(t *testing.T) {
		t.Parallel()
		f := newFake(t)
		f.on(route, answer{status: 503, body: sample(t, "error_server_error.json")}, ok(sample(t, "session_status.json")))
		p, err := f.client().Status(context.Background(), "sess_ABC123DEF456")
		if err != nil || p.Status != provider.StatusProcessed {
			t.Fatalf("Status = %+v, %v", p, err)
		}
		if n := len(f.requests()); n != 2 {
			t.Fatalf("%d requests, want 2", n)
		}
	})
	t.Run("gives up after MaxRetries", func(t *testing.T) {
		t.Parallel()
		f := newFake(t)
		f.on(route, answer{status: 500, body: sample(t, "error_server_error.json")})
		_, err := f.client().Status(context.Background(), "sess_ABC123DEF456")
		if !errors.Is(err, provider.ErrUnavailable) || errors.Is(err, circoflows.ErrOutcomeUnknown) {
			t.Fatalf("Status: %v, want ErrUnavailable only", err)
		}
		if n := len(f.requests()); n != 3 {
			t.Fatalf("%d requests, want 1 + 2 retries", n)
		}
	})
	t.Run("timeouts are retried", func(t *testing.T) {
		t.Parallel()
		f := newFake(t)
		f.on(route, answer{hang: true}, ok(sample(t, "session_status.json")))
		c := f.client(func(c *circoflows.Config) { c.Timeout = 50 * time.Millisecond })
		p, err := c.Status(context.Background(), "sess_ABC123DEF456")
		if err != nil || p.Status != provider.StatusProcessed {
			t.Fatalf("Status = %+v, %v", p, err)
		}
	})
	t.Run("rate limit reset too far away", func(t *testing.T) {
		t.Parallel()
		f := newFake(t)
		now := time.Unix(1640995000, 0)
		f.on(route, answer{status: 429, body: sample(t, "error_rate_limit_exceeded.json"),
			header: map[string]string{"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": strconv.FormatInt(now.Unix()+60, 10)}})
		c := f.client(func(c *circoflows.Config) { c.Now = func() time.Time { return now } })
		_, err := c.Status(context.Background(), "sess_ABC123DEF456")
		if !errors.Is(err, provider.ErrUnavailable) {
			t.Fatalf("Status: %v, want ErrUnavailable", err)
		}
		if n := len(f.requests()); n != 1 {
			t.Fatalf("%d requests, want 1 (reset is a minute away)", n)
		}
	})
	t.Run("rate limit reset now", func(t *testing.T) {
		t.Parallel()
		f := newFake(t)
		now := time.Unix(1640995200, 0)
		f.on(route, answer{status: 429, body: sample(t, "error_rate_limit_exceeded.json"), header: map[string]string{"X-RateLimit-Reset": "1640995200"}},
			ok(sample(t, "session_status.json")))
		c := f.client(func(c *circoflows.Config) { c.Now = func() time.Time { return now } })
		if _, err := c.Status(context.Background(), "sess_ABC123DEF456"); err != nil {
			t.Fatal(err)
		}
		if n := len(f.requests()); n != 2 {
			t.Fatalf("%d requests, want 2", n)
		}
	})
	t.Run("no retries", func(t *testing.T) {
		t.Parallel()
		f := newFake(t)
		f.on(route, answer{status: 502})
		_, err := f.client(func(c *circoflows.Config) { c.NoRetries = true }).Status(context.Background(), "sess_ABC123DEF456")
		if !errors.Is(err, provider.ErrUnavailable) || len(f.requests()) != 1 {
			t.Fatalf("Status: %v after %d requests", err, len(f.requests()))
		}
	})
}

func TestCancel(t *testing.T) {
	t.Parallel()
	route := "POST /api/payment-session/sess_ABC123DEF456/cancel"
	for _, tc := range []struct {
		name string
		a    answer
		is   error
	}{
		{"cancelled", ok(sample(t, "session_cancel_response.json")), nil},
		{"already expired", answer{status: 410, body: sample(t, "error_session_expired.json")}, nil},
		{"already completed", answer{status: 409, body: sample(t, "error_session_already_completed.json")}, provider.ErrConflict},
		{"not found", answer{status: 404, body: sample(t, "error_session_not_found.json")}, provider.ErrNotFound},
		{"still pending", ok(withField(t, "session_cancel_response.json", map[string]any{"status": "pending"})), provider.ErrConflict},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			f.on(route, tc.a)
			err := f.client().Cancel(context.Background(), "sess_ABC123DEF456")
			if tc.is == nil && err != nil || tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("Cancel: %v, want %v", err, tc.is)
			}
			if r := f.requests(); len(r) != 1 || r[0].Method != http.MethodPost {
				t.Fatalf("requests %+v", r)
			}
		})
	}
}

func TestHealth(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.on("GET /api/health", ok([]byte(`{"status":"ok"}`)))
	if err := f.client().Health(context.Background()); err != nil {
		t.Fatal(err)
	}
	bad := newFake(t)
	bad.on("GET /api/health", ok([]byte(`{"status":"ok"}`)))
	err := bad.client(func(c *circoflows.Config) { c.APIKey = "revoked" }).Health(context.Background())
	if !errors.Is(err, provider.ErrRejected) || !strings.Contains(err.Error(), "API key") {
		t.Fatalf("Health with a wrong key: %v", err)
	}
	if strings.Contains(err.Error(), "revoked") {
		t.Fatalf("error leaks the API key: %v", err)
	}
}
