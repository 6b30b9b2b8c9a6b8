package payfect_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/payledger/payledger/adapters/payfect"
	"github.com/payledger/payledger/adapters/payfect/payfecttest"
	"github.com/payledger/payledger/adapters/provider"
	"github.com/payledger/payledger/domain/money"
)

func client(t *testing.T, f *payfecttest.Fake, mod ...func(*payfect.Config)) *payfect.Client {
	t.Helper()
	cfg := payfect.Config{APIKey: payfecttest.APIKey, BaseURL: f.BaseURL(), Timeout: 2 * time.Second}
	for _, m := range mod {
		m(&cfg)
	}
	c, err := payfect.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func request(t *testing.T, ref, amount, cur string) provider.CreateRequest {
	t.Helper()
	m, err := money.Parse(amount, cur)
	if err != nil {
		t.Fatal(err)
	}
	return provider.CreateRequest{
		InvoiceID: provider.InvoiceID(ref), PaymentID: provider.PaymentIDForReference(ref), Reference: ref,
		Amount: m, Description: "Standard Plan",
		SuccessURL: "https://ledger.example/ok", FailURL: "https://ledger.example/fail", CallbackURL: "https://ledger.example/callbacks/payfect",
	}
}

func TestNewNeedsAKey(t *testing.T) {
	t.Parallel()
	if _, err := payfect.New(payfect.Config{}); !errors.Is(err, provider.ErrDisabled) {
		t.Fatalf("no key: %v", err)
	}
	if _, err := payfect.New(payfect.Config{APIKey: "k", BaseURL: "mailto:x"}); !errors.Is(err, provider.ErrDisabled) {
		t.Fatalf("bad URL: %v", err)
	}
	if _, err := payfect.New(payfect.Config{APIKey: "k"}); err != nil {
		t.Fatalf("the base URL defaults: %v", err)
	}
}

func TestCreateSendsTheSeedsRequest(t *testing.T) {
	t.Parallel()
	f := payfecttest.New(t)
	c := client(t, f, func(c *payfect.Config) { c.Network = "tron" })
	got, err := c.Create(context.Background(), request(t, "inv_a", "20.5", "USDT"))
	if err != nil {
		t.Fatal(err)
	}
	cos := f.Checkouts()
	if len(cos) != 1 || got.Ref != cos[0].ID || got.Status != provider.StatusPending || got.RedirectURL != f.URL+"/checkouts/"+cos[0].ID {
		t.Fatalf("created %+v, provider has %+v", got, cos)
	}
	b := cos[0].Body
	items := b["invoice_items"].([]any)
	item := items[0].(map[string]any)
	pd := item["price_data"].(map[string]any)
	if b["client_reference_id"] != "inv_a" || b["currency"] != "usdt" || pd["unit_amount"] != "20.5" || pd["currency"] != "usdt" ||
		item["quantity"] != json.Number("1") || pd["product_data"].(map[string]any)["name"] != "Standard Plan" {
		t.Errorf("request %v", b)
	}
	if b["success_url"] != "https://ledger.example/ok" || b["cancel_url"] != "https://ledger.example/fail" || b["callback_url"] != "https://ledger.example/callbacks/payfect" {
		t.Errorf("urls %v", b)
	}
	pm := b["payment_method_data"].(map[string]any)
	if pm["type"] != "cryptopaymentmethoddetail" || pm["paymentMethodDetail"].(map[string]any)["network"] != "tron" {
		t.Errorf("payment_method_data %v", pm)
	}
	// The total comes back exact, in USDT's six decimals.
	f.Set(got.Ref, "complete")
	p, err := c.Status(context.Background(), got.Ref)
	if err != nil || p.Status != provider.StatusProcessed || p.Amount.String() != "20.500000" || p.Amount.Currency().Code != "USDT" {
		t.Fatalf("status %+v %v", p, err)
	}
}

func TestStatusMapping(t *testing.T) {
	t.Parallel()
	f := payfecttest.New(t)
	c := client(t, f)
	got, err := c.Create(context.Background(), request(t, "inv_s", "100.55", "USD"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		status string
		want   provider.Status
		code   string
	}{{"open", provider.StatusPending, ""}, {"complete", provider.StatusProcessed, ""}, {"expired", provider.StatusFailed, "expired"}} {
		f.Set(got.Ref, tc.status)
		p, err := c.Status(context.Background(), got.Ref)
		if err != nil || p.Status != tc.want || p.Code != tc.code || p.Amount.String() != "100.55" || p.Raw != tc.status {
			t.Errorf("%s: %+v %v", tc.status, p, err)
		}
	}
	if _, err := c.Status(context.Background(), "00000000-0000-0000-0000-000000000000"); !errors.Is(err, provider.ErrNotFound) {
		t.Errorf("unknown: %v", err)
	}
	if _, err := c.Status(context.Background(), "../admin"); !errors.Is(err, provider.ErrNotFound) {
		t.Errorf("malformed id: %v", err)
	}
	f.FailGets(2)
	if _, err := c.Status(context.Background(), got.Ref); err != nil {
		t.Errorf("GET is retried: %v", err)
	}
	f.FailGets(3)
	if _, err := c.Status(context.Background(), got.Ref); !errors.Is(err, provider.ErrUnavailable) {
		t.Errorf("persistent 5xx: %v", err)
	}
}

func TestCreateErrorsAreNotRetried(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := payfecttest.New(t)
	f.FailCreates(1, http.StatusServiceUnavailable, false)
	_, err := client(t, f).Create(ctx, request(t, "inv_e1", "10.00", "USD"))
	var pe *provider.Error
	if !errors.As(err, &pe) || !errors.Is(err, provider.ErrUnavailable) || pe.HTTPStatus != 503 || pe.Message != "A server error occurred." || f.Creates() != 1 {
		t.Fatalf("5xx: %v after %d creates", err, f.Creates())
	}
	f.Delay(time.Second)
	_, err = client(t, f, func(c *payfect.Config) { c.Timeout = 50 * time.Millisecond }).Create(ctx, request(t, "inv_e2", "10.00", "USD"))
	if !errors.Is(err, provider.ErrUnavailable) || f.Creates() != 2 || len(f.Checkouts()) != 0 {
		t.Fatalf("timeout: %v after %d creates", err, f.Creates())
	}
	f.Delay(0)
	_, err = client(t, f, func(c *payfect.Config) { c.APIKey = "wrong" }).Create(ctx, request(t, "inv_e3", "10.00", "USD"))
	if !errors.As(err, &pe) || !errors.Is(err, provider.ErrRejected) || pe.HTTPStatus != 401 || !strings.Contains(pe.Message, "credentials") || strings.Contains(err.Error(), "wrong") {
		t.Fatalf("401: %v", err)
	}
	if p := provider.Problem(err); p.Code != "provider_rejected" || p.Status != http.StatusBadGateway {
		t.Errorf("problem %+v", p)
	}
}

func TestNoRefundAPI(t *testing.T) {
	t.Parallel()
	var a provider.Adapter = client(t, payfecttest.New(t))
	if _, ok := a.(provider.Refunder); ok {
		t.Fatal("the seed documents no refund endpoint")
	}
}

func TestSeedResponseParses(t *testing.T) {
	t.Parallel()
	f := payfecttest.New(t)
	cb, err := client(t, f).ParseCallback(nil, f.Sample("create_response.json"))
	if err != nil {
		t.Fatal(err)
	}
	if cb.Verified || cb.Ref != "ed8d24aa-a860-426b-8e56-87cb9f55a081" || cb.Status != provider.StatusPending || cb.Reference != "" ||
		cb.Amount.String() != "20.000000" || cb.Amount.Currency().Code != "USDT" || cb.ActionURL != "https://buy-dev.payfect.finance/checkouts/ed8d24aa-a860-426b-8e56-87cb9f55a081" {
		t.Fatalf("%+v", cb)
	}
}

func TestParseCallbackRefusals(t *testing.T) {
	t.Parallel()
	c := client(t, payfecttest.New(t))
	for _, body := range []string{
		``, `[]`, `{}`, `{"id":"not a uuid","status":"complete"}`,
		`{"id":"ed8d24aa-a860-426b-8e56-87cb9f55a081","status":"complete","amountTotal":"20.0000001","currency":"usdt"}`,
		`{"id":"ed8d24aa-a860-426b-8e56-87cb9f55a081","status":"complete","amountTotal":"-1","currency":"usdt"}`,
		`{"id":"ed8d24aa-a860-426b-8e56-87cb9f55a081","status":"complete","amountTotal":"1","currency":"doge"}`,
		`{"id":"ed8d24aa-a860-426b-8e56-87cb9f55a081"} {}`,
	} {
		if _, err := c.ParseCallback(nil, []byte(body)); !errors.Is(err, provider.ErrBadCallback) {
			t.Errorf("%q: %v", body, err)
		}
	}
	cb, err := c.ParseCallback(nil, []byte(`{"data":{"id":"ed8d24aa-a860-426b-8e56-87cb9f55a081","status":"refunded","client_reference_id":"inv_x"}}`))
	if err != nil || cb.Status != provider.StatusPending || cb.Raw != "refunded" || cb.Reference != "inv_x" {
		t.Errorf("unknown status hint: %+v %v", cb, err)
	}
}

func FuzzParseCallback(f *testing.F) {
	b, err := os.ReadFile(filepath.Join(payfecttest.Dir(), "create_response.json"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"id":"ed8d24aa-a860-426b-8e56-87cb9f55a081","status":"complete","amountTotal":"1e2","currency":"usd"}`))
	f.Add([]byte(`{"data":{"id":"ed8d24aa","status":"expired","amount_total":20.5,"currency":"usdt"}}`))
	c, err := payfect.New(payfect.Config{APIKey: "k", BaseURL: "http://127.0.0.1:1"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		cb, err := c.ParseCallback(nil, body)
		if err != nil {
			if !errors.Is(err, provider.ErrBadCallback) {
				t.Fatalf("refusal not wrapped: %v", err)
			}
			return
		}
		if cb.Verified || cb.Ref == "" {
			t.Fatalf("accepted %+v", cb)
		}
		if cb.HasAmount {
			if _, err := money.Parse(cb.Amount.String(), cb.Amount.Currency().Code); err != nil {
				t.Fatalf("amount %s does not round-trip: %v", cb.Amount, err)
			}
		}
	})
}
