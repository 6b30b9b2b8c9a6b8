package woocommerce_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/payledger/payledger/adapters/pay"
	"github.com/payledger/payledger/adapters/sandbox"
	"github.com/payledger/payledger/adapters/woocommerce"
	"github.com/payledger/payledger/domain/invoice"
	"github.com/payledger/payledger/eventstore"
	"github.com/payledger/payledger/internal/paytest"
	"github.com/payledger/payledger/ledger"
)

const seedBody = `{
"billing_details": {
"first_name": "John",
"last_name": "Smith",
"address_1": "123 Main Street",
"address_2": "Apt 4B",
"city": "New York",
"postcode": "10001",
"country": "US",
"email": "john@example.com",
"phone": "+1234567890"
},
"product_id": 72238,
"secret_key": "new-secret",
"account_id": "12345"
}`

func catalog(t testing.TB) *woocommerce.Catalog {
	t.Helper()
	c, err := woocommerce.LoadCatalog("../../testdata/catalog.json")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func setup(t *testing.T, env *paytest.Env) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	h, err := woocommerce.New(woocommerce.Options{
		Invoices: env.Invoices, Catalog: catalog(t), PublicURL: srv.URL,
		Secrets: woocommerce.ParseSecrets(" old-secret , new-secret,"),
	})
	if err != nil {
		t.Fatal(err)
	}
	h.Routes(mux)
	sb := sandbox.New(sandbox.Options{Ledger: env.Service, PublicURL: srv.URL})
	sb.Routes(mux)
	pay.New(pay.Options{Ledger: env.Service, Links: pay.FromLinks(env.Links), Sync: pay.SyncFunc(env.Sync),
		Providers: map[string]pay.Provider{"sandbox": sb}}).Routes(mux)
	return srv
}

type answer struct {
	Success    bool   `json:"success"`
	OrderID    int64  `json:"order_id"`
	PaymentURL string `json:"payment_url"`
	Message    string `json:"message"`
}

func post(t *testing.T, srv *httptest.Server, body string) (int, answer, map[string]any) {
	t.Helper()
	resp, err := http.Post(srv.URL+woocommerce.Path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var a answer
	var m map[string]any
	if err := json.Unmarshal(raw, &a); err != nil {
		t.Fatalf("not JSON: %s", raw)
	}
	_ = json.Unmarshal(raw, &m)
	return resp.StatusCode, a, m
}

func edit(t *testing.T, fn func(m map[string]any)) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(seedBody), &m); err != nil {
		t.Fatal(err)
	}
	fn(m)
	b, _ := json.Marshal(m)
	return string(b)
}

func TestResetFeeSuccess(t *testing.T) {
	t.Parallel()
	for _, kind := range paytest.Backends {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			env := paytest.New(t, kind)
			srv := setup(t, env)
			code, a, m := post(t, srv, seedBody)
			if code != 200 || !a.Success || a.OrderID == 0 || !strings.HasPrefix(a.PaymentURL, srv.URL+"/pay/") {
				t.Fatalf("%d %+v", code, a)
			}
			if len(m) != 3 {
				t.Fatalf("success body has fields beyond the seed's: %v", m)
			}
			token := strings.TrimPrefix(a.PaymentURL, srv.URL+"/pay/")
			st := invoiceOf(t, env, token)
			if st.Number != a.OrderID || st.Amount.String() != "99.00" || st.Amount.Currency().Code != "USD" ||
				st.Metadata["account_id"] != "12345" || st.Metadata["product_id"] != "72238" ||
				len(st.LineItems) != 1 || st.LineItems[0].VariationID != 72238 || st.LineItems[0].Name != "Account Reset Fee - 1 Step $100,000" ||
				st.Customer.Email != "john@example.com" || st.Customer.Name != "John Smith" || st.Customer.Address.Line2 != "Apt 4B" {
				t.Fatalf("invoice %+v", st)
			}
			if ttl := st.Links[0].ExpiresAt.Sub(env.Clock.Now()); ttl < 5*time.Minute || ttl > 10*time.Minute {
				t.Fatalf("link TTL %s outside 5–10 min", ttl)
			}
			// The link is one-time.
			resp, err := http.Get(a.PaymentURL)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			resp2, err := http.Get(a.PaymentURL)
			if err != nil {
				t.Fatal(err)
			}
			resp2.Body.Close()
			if resp.StatusCode != 200 || resp2.StatusCode != 410 {
				t.Fatalf("link visits: %d then %d", resp.StatusCode, resp2.StatusCode)
			}
			// The old secret still works during rotation.
			if code, a, _ := post(t, srv, strings.Replace(seedBody, "new-secret", "old-secret", 1)); code != 200 || !a.Success {
				t.Fatalf("rotated secret: %d %+v", code, a)
			}
		})
	}
}

func invoiceOf(t *testing.T, env *paytest.Env, token string) invoice.State {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		l, err := env.Links.Lookup(ctx, ledger.TokenHash(token))
		if err == nil {
			st, err := env.Service.Load(ctx, l.InvoiceID)
			if err != nil {
				t.Fatal(err)
			}
			return st
		}
		select {
		case <-ctx.Done():
			t.Fatalf("link never projected: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func TestResetFeeErrors(t *testing.T) {
	t.Parallel()
	env := paytest.New(t, "sqlite")
	srv := setup(t, env)
	tests := []struct {
		name string
		body string
		code int
		msg  string
	}{
		{"empty body", "", 400, "empty"},
		{"not JSON", "{billing", 400, "malformed"},
		{"array", "[]", 400, "Invalid request body"},
		{"trailing data", seedBody + "{}", 400, "trailing"},
		{"product_id as string", edit(t, func(m map[string]any) { m["product_id"] = "72238" }), 400, "product_id must be an integer"},
		{"product_id fractional", edit(t, func(m map[string]any) { m["product_id"] = 72238.5 }), 400, "product_id must be an integer"},
		{"product_id missing", edit(t, func(m map[string]any) { delete(m, "product_id") }), 400, "product_id is required"},
		{"unknown product", edit(t, func(m map[string]any) { m["product_id"] = 1 }), 400, "Unknown product_id 1"},
		{"billing missing", edit(t, func(m map[string]any) { delete(m, "billing_details") }), 400, "billing_details is required"},
		{"billing not an object", edit(t, func(m map[string]any) { m["billing_details"] = "x" }), 400, "billing_details must be an object"},
		{"email missing", edit(t, func(m map[string]any) { delete(m["billing_details"].(map[string]any), "email") }), 400, "email is required"},
		{"email invalid", edit(t, func(m map[string]any) { m["billing_details"].(map[string]any)["email"] = "john.example.com" }), 400, "not a valid email"},
		{"email invalid for the ledger", edit(t, func(m map[string]any) { m["billing_details"].(map[string]any)["email"] = "John <j@example.com>" }), 400, "email"},
		{"account_id missing", edit(t, func(m map[string]any) { delete(m, "account_id") }), 400, "account_id is required"},
		{"secret missing", edit(t, func(m map[string]any) { delete(m, "secret_key") }), 401, "Missing secret key"},
		{"secret empty", edit(t, func(m map[string]any) { m["secret_key"] = "" }), 401, "Missing secret key"},
		{"secret wrong", edit(t, func(m map[string]any) { m["secret_key"] = "new-secreT" }), 401, "Invalid secret key provided"},
		{"secret prefix", edit(t, func(m map[string]any) { m["secret_key"] = "new-secret," }), 401, "Invalid secret key provided"},
		{"wrong secret and bad product", edit(t, func(m map[string]any) { m["secret_key"] = "x"; m["product_id"] = 1 }), 401, "Invalid secret key"},
		{"wrong secret and bad type", edit(t, func(m map[string]any) { m["secret_key"] = "x"; m["product_id"] = "1" }), 401, "Invalid secret key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, a, m := post(t, srv, tc.body)
			if code != tc.code || a.Success || !strings.Contains(a.Message, tc.msg) {
				t.Fatalf("%d %+v, want %d %q", code, a, tc.code, tc.msg)
			}
			if len(m) != 2 || m["success"] != false {
				t.Fatalf("error body is not the seed's shape: %v", m)
			}
		})
	}
	// No error wrote anything.
	recs, err := env.Store.ReadAll(context.Background(), eventstore.Start, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 0 {
		t.Fatalf("%d events written by refused requests", len(recs))
	}
}

func TestResetFeeServerError(t *testing.T) {
	t.Parallel()
	store := paytest.OpenStore(t, "sqlite", t.TempDir())
	env := paytest.Open(t, store, paytest.NewClock(time.Now()))
	srv := setup(t, env)
	_ = store.Close() // the store goes away under the handler
	code, a, _ := post(t, srv, seedBody)
	if code != 500 || a.Success || a.Message == "" {
		t.Fatalf("%d %+v", code, a)
	}
}

func TestCatalog(t *testing.T) {
	t.Parallel()
	c := catalog(t)
	if c.Len() != 12 {
		t.Fatalf("%d products", c.Len())
	}
	for _, id := range []int64{72238, 72250, 72254} { // the seed's mapping
		if _, ok := c.Lookup(id); !ok {
			t.Errorf("variation %d missing", id)
		}
	}
	for name, bad := range map[string]string{
		"empty":          `[]`,
		"duplicate":      `[{"variation_id":1,"challenge_type":"a","account_size":"1","price":"1.00","currency":"USD"},{"variation_id":1,"challenge_type":"a","account_size":"1","price":"1.00","currency":"USD"}]`,
		"bad price":      `[{"variation_id":1,"challenge_type":"a","account_size":"1","price":"1.001","currency":"USD"}]`,
		"zero price":     `[{"variation_id":1,"challenge_type":"a","account_size":"1","price":"0","currency":"USD"}]`,
		"bad currency":   `[{"variation_id":1,"challenge_type":"a","account_size":"1","price":"1","currency":"XXX"}]`,
		"unknown field":  `[{"variation_id":1,"challenge_type":"a","account_size":"1","price":"1","currency":"USD","x":1}]`,
		"no id":          `[{"challenge_type":"a","account_size":"1","price":"1","currency":"USD"}]`,
		"float as price": `[{"variation_id":1,"challenge_type":"a","account_size":"1","price":1.5,"currency":"USD"}]`,
	} {
		if _, err := woocommerce.ParseCatalog(bytes.NewReader([]byte(bad))); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzResetFeeBody(f *testing.F) {
	f.Add(seedBody)
	f.Add(`{"product_id": 1e400}`)
	f.Add(`{"billing_details": null, "product_id": null}`)
	env := paytest.New(f, "sqlite")
	h, err := woocommerce.New(woocommerce.Options{Invoices: env.Invoices, Catalog: catalog(f), Secrets: []string{"s"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", woocommerce.Path, strings.NewReader(body)))
		var a answer
		if err := json.Unmarshal(rec.Body.Bytes(), &a); err != nil {
			t.Fatalf("non-JSON answer %q", rec.Body)
		}
		if rec.Code == 500 {
			t.Fatalf("500 for input %q", body)
		}
	})
}
