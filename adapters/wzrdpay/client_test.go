package wzrdpay_test

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

	"github.com/payledger/payledger/adapters/provider"
	"github.com/payledger/payledger/adapters/wzrdpay"
	"github.com/payledger/payledger/adapters/wzrdpay/wzrdpaytest"
	"github.com/payledger/payledger/domain/invoice"
	"github.com/payledger/payledger/domain/money"
)

func client(t *testing.T, f *wzrdpaytest.Fake, mod ...func(*wzrdpay.Config)) *wzrdpay.Client {
	t.Helper()
	cfg := wzrdpay.Config{PublicKey: wzrdpaytest.PublicKey, PrivateKey: wzrdpaytest.PrivateKey, BaseURL: f.URL, TestMode: true, Timeout: 2 * time.Second}
	for _, m := range mod {
		m(&cfg)
	}
	c, err := wzrdpay.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustMoney(t *testing.T, amount, cur string) money.Money {
	t.Helper()
	m, err := money.Parse(amount, cur)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func request(t *testing.T, ref, amount string) provider.CreateRequest {
	return provider.CreateRequest{
		InvoiceID: provider.InvoiceID(ref), PaymentID: provider.PaymentIDForReference(ref), Reference: ref,
		Amount: mustMoney(t, amount, "USD"), Description: "Invoice Example",
		Customer:   invoice.Customer{Email: "somename@domain.com", Name: "John Wick"},
		SuccessURL: "https://ledger.example/return/ok", FailURL: "https://ledger.example/return/fail",
		CallbackURL: "https://ledger.example/callbacks/wzrdpay",
		ExpiresAt:   time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC),
	}
}

func TestNewNeedsConfiguration(t *testing.T) {
	t.Parallel()
	for _, cfg := range []wzrdpay.Config{
		{},
		{PublicKey: "pk", PrivateKey: "sk"},
		{PublicKey: "pk", BaseURL: "https://x"},
		{PublicKey: "pk", PrivateKey: "sk", BaseURL: "ftp://x"},
	} {
		if _, err := wzrdpay.New(cfg); !errors.Is(err, provider.ErrDisabled) {
			t.Errorf("%+v: %v, want ErrDisabled", cfg, err)
		}
	}
}

func TestCreateSendsTheSeedsRequest(t *testing.T) {
	t.Parallel()
	f := wzrdpaytest.New(t)
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	c := client(t, f, func(c *wzrdpay.Config) { c.Now = func() time.Time { return now } })
	got, err := c.Create(context.Background(), request(t, "inv_a", "123.45"))
	if err != nil {
		t.Fatal(err)
	}
	invs := f.Invoices()
	if len(invs) != 1 {
		t.Fatalf("%d invoices at the provider", len(invs))
	}
	inv := invs[0]
	if got.Ref != inv.ID || got.Status != provider.StatusPending {
		t.Errorf("created %+v, provider has %s", got, inv.ID)
	}
	if got.RedirectURL != f.URL+"/redirect/hpp/?cpi="+inv.ID {
		t.Errorf("redirect %q", got.RedirectURL)
	}
	if got.Form == nil || got.Form.Action != f.URL+"/hpp/"+inv.ID || got.Form.Method != "GET" {
		t.Errorf("form %+v", got.Form)
	}
	// The amount travels as the JSON number 123.45, written from the
	// decimal text (never through float64).
	if inv.Amount != "123.45" || inv.Currency != "USD" || inv.ReferenceID != "inv_a" {
		t.Errorf("provider got amount %q %q ref %q", inv.Amount, inv.Currency, inv.ReferenceID)
	}
	b := inv.Body
	if b["service"] != "payment_card_usd_hpp" || b["flow"] != "charge" || b["test_mode"] != true || b["callback_url"] != "https://ledger.example/callbacks/wzrdpay" {
		t.Errorf("attributes %v", b)
	}
	ru, _ := b["return_urls"].(map[string]any)
	if ru["success"] != "https://ledger.example/return/ok" || ru["fail"] != "https://ledger.example/return/fail" || ru["pending"] == "" {
		t.Errorf("return_urls %v", ru)
	}
	// The invoice expires in 2 days at most (seed: 14 minutes to 2 days).
	exp, err := time.Parse("2006-01-02T15:04:05-07:00", inv.Expires)
	if err != nil || exp.After(now.Add(48*time.Hour)) || !strings.HasSuffix(inv.Expires, "+00:00") {
		t.Errorf("expires %q: %v", inv.Expires, err)
	}
	if inv.Metadata["invoice_id"] != "inv_a" || inv.Metadata["payment_id"] != provider.PaymentID("inv_a", 1) {
		t.Errorf("metadata %v", inv.Metadata)
	}
}

func TestCreateAmountsAreExact(t *testing.T) {
	t.Parallel()
	f := wzrdpaytest.New(t)
	c := client(t, f)
	for i, tc := range []struct{ amt, wire string }{{"0.10", "0.1"}, {"100.55", "100.55"}, {"5000", "5000"}, {"999999.99", "999999.99"}, {"0.29", "0.29"}} {
		amt, want := tc.amt, tc.wire
		ref := provider.Reference("inv_amt", i+1)
		if _, err := c.Create(context.Background(), request(t, ref, amt)); err != nil {
			t.Fatal(err)
		}
		inv, _ := f.ByReference(ref)
		if inv.Amount != want {
			t.Errorf("%s sent as %q, want %q", amt, inv.Amount, want)
		}
		f.Set(inv.ID, "processed", "ok", "")
		p, err := c.Status(context.Background(), inv.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !p.HasAmount || p.Amount.String() != mustMoney(t, amt, "USD").String() {
			t.Errorf("%s came back as %s", amt, p.Amount)
		}
	}
}

func TestCreateRetriesOnlyWhatTheSeedAllows(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("5xx with nothing created is created again", func(t *testing.T) {
		t.Parallel()
		f := wzrdpaytest.New(t)
		f.FailCreates(2, http.StatusServiceUnavailable, false)
		got, err := client(t, f).Create(ctx, request(t, "inv_r1", "10.00"))
		if err != nil {
			t.Fatal(err)
		}
		if f.Creates() != 3 || len(f.Invoices()) != 1 || got.Ref != f.Invoices()[0].ID {
			t.Fatalf("creates %d, invoices %d", f.Creates(), len(f.Invoices()))
		}
	})
	t.Run("5xx after the platform created it returns that transaction", func(t *testing.T) {
		t.Parallel()
		f := wzrdpaytest.New(t)
		f.FailCreates(1, http.StatusBadGateway, true)
		got, err := client(t, f).Create(ctx, request(t, "inv_r2", "10.00"))
		if err != nil {
			t.Fatal(err)
		}
		if f.Creates() != 1 || len(f.Invoices()) != 1 || got.Ref != f.Invoices()[0].ID {
			t.Fatalf("creates %d, invoices %d", f.Creates(), len(f.Invoices()))
		}
	})
	t.Run("5xx and the status check fails: stop, do not risk a second transaction", func(t *testing.T) {
		t.Parallel()
		f := wzrdpaytest.New(t)
		f.FailCreates(1, http.StatusInternalServerError, false)
		f.FailGets(1)
		_, err := client(t, f).Create(ctx, request(t, "inv_r3", "10.00"))
		if !errors.Is(err, provider.ErrUnavailable) || f.Creates() != 1 {
			t.Fatalf("err %v after %d creates", err, f.Creates())
		}
		if p := provider.Problem(err); p.Status != http.StatusBadGateway || p.Code != "provider_unavailable" {
			t.Errorf("problem %+v", p)
		}
	})
	t.Run("persistent 5xx is bounded", func(t *testing.T) {
		t.Parallel()
		f := wzrdpaytest.New(t)
		f.FailCreates(100, http.StatusInternalServerError, false)
		_, err := client(t, f).Create(ctx, request(t, "inv_r4", "10.00"))
		var pe *provider.Error
		if !errors.As(err, &pe) || !errors.Is(err, provider.ErrUnavailable) || pe.HTTPStatus != 500 || pe.Message != "Internal server error." {
			t.Fatalf("err %v", err)
		}
		if f.Creates() != 3 {
			t.Fatalf("%d creates, want 3", f.Creates())
		}
	})
	t.Run("timeout after the platform committed finds the transaction", func(t *testing.T) {
		t.Parallel()
		f := wzrdpaytest.New(t)
		f.Delay(time.Second, true)
		got, err := client(t, f, func(c *wzrdpay.Config) { c.Timeout = 50 * time.Millisecond }).Create(ctx, request(t, "inv_r9", "10.00"))
		if err != nil || f.Creates() != 1 || len(f.Invoices()) != 1 || got.Ref != f.Invoices()[0].ID {
			t.Fatalf("%+v %v after %d creates", got, err, f.Creates())
		}
	})
	t.Run("timeout", func(t *testing.T) {
		t.Parallel()
		f := wzrdpaytest.New(t)
		f.Delay(time.Second, false)
		start := time.Now()
		_, err := client(t, f, func(c *wzrdpay.Config) { c.Timeout = 50 * time.Millisecond }).Create(ctx, request(t, "inv_r5", "10.00"))
		if !errors.Is(err, provider.ErrUnavailable) {
			t.Fatalf("err %v", err)
		}
		if f.Creates() > 3 || time.Since(start) > 900*time.Millisecond {
			t.Fatalf("%d creates in %s", f.Creates(), time.Since(start))
		}
	})
	t.Run("409 hands back the earlier transaction", func(t *testing.T) {
		t.Parallel()
		f := wzrdpaytest.New(t)
		c := client(t, f)
		first, err := c.Create(ctx, request(t, "inv_r6", "10.00"))
		if err != nil {
			t.Fatal(err)
		}
		again, err := c.Create(ctx, request(t, "inv_r6", "10.00"))
		if err != nil || again.Ref != first.Ref || len(f.Invoices()) != 1 {
			t.Fatalf("again %+v %v; %d invoices", again, err, len(f.Invoices()))
		}
	})
	t.Run("401 and 422 are refusals, not retried", func(t *testing.T) {
		t.Parallel()
		f := wzrdpaytest.New(t)
		_, err := client(t, f, func(c *wzrdpay.Config) { c.PrivateKey = "wrong" }).Create(ctx, request(t, "inv_r7", "10.00"))
		var pe *provider.Error
		if !errors.As(err, &pe) || !errors.Is(err, provider.ErrRejected) || pe.HTTPStatus != 401 || pe.Code != "Unauthorized" {
			t.Fatalf("401: %v", err)
		}
		req := request(t, "inv_r8", "10.00")
		req.Amount = money.Zero(req.Amount.Currency())
		_, err = client(t, f).Create(ctx, req)
		if !errors.As(err, &pe) || !errors.Is(err, provider.ErrRejected) || pe.HTTPStatus != 422 || !strings.Contains(pe.Message, "amount: This value should be greater than 0.") {
			t.Fatalf("422: %v", err)
		}
		if f.Creates() != 1 {
			t.Fatalf("%d creates reached the provider", f.Creates())
		}
	})
}

func TestStatus(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := wzrdpaytest.New(t)
	c := client(t, f)
	cr, err := c.Create(ctx, request(t, "inv_s", "100.00"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		status, resolution, processed string
		want                          provider.Status
		code, amount                  string
	}{
		{"process_pending", "ok", "", provider.StatusPending, "", "100.00"},
		{"processed", "ok", "", provider.StatusProcessed, "", "100.00"},
		{"processed", "ok", "99.99", provider.StatusProcessed, "", "99.99"},
		{"process_failed", "expired", "", provider.StatusFailed, "expired", "100.00"},
		{"process_failed", "declined", "", provider.StatusFailed, "declined", "100.00"},
	} {
		f.Set(cr.Ref, tc.status, tc.resolution, tc.processed)
		p, err := c.Status(ctx, cr.Ref)
		if err != nil {
			t.Fatal(err)
		}
		if p.Status != tc.want || p.Code != tc.code || p.Amount.String() != tc.amount || p.Reference != "inv_s" || p.Raw != tc.status {
			t.Errorf("%s/%s: %+v", tc.status, tc.resolution, p)
		}
	}
	if _, err := c.Status(ctx, "cpi_unknown"); !errors.Is(err, provider.ErrNotFound) {
		t.Errorf("unknown: %v", err)
	}
	f.FailGets(2)
	if _, err := c.Status(ctx, cr.Ref); err != nil {
		t.Errorf("GET is retried on 5xx: %v", err)
	}
	f.FailGets(5)
	if _, err := c.Status(ctx, cr.Ref); !errors.Is(err, provider.ErrUnavailable) {
		t.Errorf("persistent 5xx: %v", err)
	}
}

func TestNoRefundAPI(t *testing.T) {
	t.Parallel()
	var a provider.Adapter = client(t, wzrdpaytest.New(t))
	if _, ok := a.(provider.Refunder); ok {
		t.Fatal("the seed documents no refund endpoint; the adapter must not claim one")
	}
}

// The seed's documents, verbatim, parse to what they say.
func TestSeedDocuments(t *testing.T) {
	t.Parallel()
	f := wzrdpaytest.New(t)
	c := client(t, f)
	for _, tc := range []struct {
		file, ref, reference string
		status               provider.Status
		amount, brand, last4 string
	}{
		{"private_create_response.json", "cpi_HeSWMM9LvQonCcQc", "70d42236-2cc4-4e26-8f2f-987fd8fbc276", provider.StatusPending, "100.00", "", ""},
		{"private_status_processed.json", "cpi_HeSWMM9LvQonCcQc", "70d42236-2cc4-4e26-8f2f-987fd8fbc276", provider.StatusProcessed, "100.00", "mastercard", "0000"},
		{"public_create_response.json", "cpi_QGcJxoBxnYStkuvN", "7135b08b-701b-4fbc-a7d2-b2763d96d415", provider.StatusPending, "123.45", "", ""},
		{"public_status_processed.json", "cpi_HeSWMM9LvQonCcQc", "70d42236-2cc4-4e26-8f2f-987fd8fbc276", provider.StatusProcessed, "100.00", "", ""},
	} {
		cb, err := c.ParseCallback(http.Header{}, f.Sample(tc.file))
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		if cb.Verified || cb.Ref != tc.ref || cb.Reference != tc.reference || cb.Status != tc.status ||
			cb.Amount.String() != tc.amount || cb.Amount.Currency().Code != "USD" || cb.CardBrand != tc.brand || cb.CardLast4 != tc.last4 {
			t.Errorf("%s: %+v", tc.file, cb)
		}
	}
	var list struct {
		Data []json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(f.Sample("invoice_list.json"), &list); err != nil || len(list.Data) != 2 {
		t.Fatalf("list: %v", err)
	}
	want := []struct {
		status provider.Status
		code   string
	}{{provider.StatusProcessed, ""}, {provider.StatusFailed, "expired"}}
	for i, raw := range list.Data {
		cb, err := c.ParseCallback(nil, raw)
		if err != nil || cb.Status != want[i].status || cb.Code != want[i].code {
			t.Errorf("list entry %d: %+v %v", i, cb, err)
		}
	}
}

func TestParseCallbackRefusals(t *testing.T) {
	t.Parallel()
	c := client(t, wzrdpaytest.New(t))
	for _, body := range []string{
		``, `null`, `[]`, `{}`, `{"data":null}`, `{"data":{"id":""}}`,
		`{"data":{"id":"cpi_1","attributes":{"status":"processed","amount":"x","currency":"USD"}}}`,
		`{"data":{"id":"cpi_1","attributes":{"status":"processed","amount":100.555,"currency":"USD"}}}`,
		`{"data":{"id":"cpi_1","attributes":{"status":"processed","amount":1,"currency":"NOPE"}}}`,
		`{"data":{"id":"cpi_1","type":"customers","attributes":{"status":"processed"}}}`,
		`{"data":{"id":"<script>","attributes":{"status":"processed"}}}`,
		`{"data":{"id":"cpi_1"}} trailing`,
	} {
		if _, err := c.ParseCallback(nil, []byte(body)); !errors.Is(err, provider.ErrBadCallback) {
			t.Errorf("%q: %v, want ErrBadCallback", body, err)
		}
	}
	// A status word the seed does not list is only a hint.
	cb, err := c.ParseCallback(nil, []byte(`{"data":{"id":"cpi_1","attributes":{"status":"refunded","reference_id":"inv_x"}}}`))
	if err != nil || cb.Status != provider.StatusPending || cb.Raw != "refunded" || cb.Verified {
		t.Errorf("unknown status: %+v %v", cb, err)
	}
}

func FuzzParseCallback(f *testing.F) {
	for _, name := range []string{"private_status_processed.json", "public_create_response.json"} {
		b, err := os.ReadFile(filepath.Join(wzrdpaytest.Dir(), name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"data":{"id":"cpi_1","attributes":{"status":"processed","amount":1e2,"currency":"USD"}}}`))
	f.Add([]byte(`{"id":"cpi_1","status":"process_failed","resolution":"expired","amount":"0.1","currency":"usd"}`))
	c, err := wzrdpay.New(wzrdpay.Config{PublicKey: "pk", PrivateKey: "sk", BaseURL: "http://127.0.0.1:1"})
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
		if cb.Verified {
			t.Fatal("an unsigned callback must never be Verified")
		}
		if cb.Ref == "" {
			t.Fatal("accepted a callback without an id")
		}
		if cb.HasAmount {
			if _, err := money.Parse(cb.Amount.String(), cb.Amount.Currency().Code); err != nil {
				t.Fatalf("amount %s does not round-trip: %v", cb.Amount, err)
			}
		}
	})
}
