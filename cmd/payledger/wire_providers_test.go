package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/payledger/payledger/adapters/wzrdpay/wzrdpaytest"
	"github.com/payledger/payledger/domain/invoice"
	"github.com/payledger/payledger/ledger"
)

func TestProviderSettings(t *testing.T) {
	t.Parallel()
	wz := map[string]string{
		"PAYLEDGER_WZRDPAY_PUBLIC_KEY":  "pk_test",
		"PAYLEDGER_WZRDPAY_PRIVATE_KEY": "sk_test",
		"PAYLEDGER_WZRDPAY_BASE_URL":    "https://wzrdpay.example",
	}
	with := func(base map[string]string, kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	for _, tc := range []struct {
		name    string
		env     map[string]string
		want    []string // adapter names
		badVar  string   // the setting the error must name
		janitor time.Duration
	}{
		{name: "none", env: map[string]string{}},
		{name: "wzrdpay", env: wz, want: []string{"wzrdpay"}},
		{name: "wzrdpay missing private key", env: map[string]string{"PAYLEDGER_WZRDPAY_PUBLIC_KEY": "pk"}, badVar: "PAYLEDGER_WZRDPAY_PRIVATE_KEY"},
		{name: "wzrdpay bad URL", env: with(wz, "PAYLEDGER_WZRDPAY_BASE_URL", "wzrdpay.example"), badVar: "PAYLEDGER_WZRDPAY_BASE_URL"},
		{name: "wzrdpay bad test mode", env: with(wz, "PAYLEDGER_WZRDPAY_TEST_MODE", "sometimes"), badVar: "PAYLEDGER_WZRDPAY_TEST_MODE"},
		{name: "payfect needs only a key", env: map[string]string{"PAYLEDGER_PAYFECT_API_KEY": "k"}, want: []string{"payfect"}},
		{name: "payfect network alone", env: map[string]string{"PAYLEDGER_PAYFECT_NETWORK": "tron"}, badVar: "PAYLEDGER_PAYFECT_API_KEY"},
		{name: "circoflows without secret", env: map[string]string{"PAYLEDGER_CIRCOFLOWS_API_KEY": "k", "PAYLEDGER_CIRCOFLOWS_BASE_URL": "https://c.example"}, badVar: "PAYLEDGER_CIRCOFLOWS_WEBHOOK_SECRET"},
		{name: "onramp bad type", env: map[string]string{"PAYLEDGER_ONRAMP_API_KEY": "k", "PAYLEDGER_ONRAMP_BASE_URL": "https://o.example", "PAYLEDGER_ONRAMP_TYPE": "PLATFORM"}, badVar: "PAYLEDGER_ONRAMP_TYPE"},
		{name: "all four", env: with(wz,
			"PAYLEDGER_PAYFECT_API_KEY", "k",
			"PAYLEDGER_CIRCOFLOWS_API_KEY", "k", "PAYLEDGER_CIRCOFLOWS_BASE_URL", "https://c.example", "PAYLEDGER_CIRCOFLOWS_WEBHOOK_SECRET", "s",
			"PAYLEDGER_ONRAMP_API_KEY", "k", "PAYLEDGER_ONRAMP_BASE_URL", "https://o.example", "PAYLEDGER_ONRAMP_TYPE", "external",
		), want: []string{"wzrdpay", "payfect", "circoflows", "circoflows_direct", "onramp"}},
		{name: "bad janitor age", env: map[string]string{"PAYLEDGER_RECONCILE_AFTER": "soon"}, badVar: "PAYLEDGER_RECONCILE_AFTER"},
		{name: "janitor age", env: map[string]string{"PAYLEDGER_RECONCILE_AFTER": "2m"}, janitor: 2 * time.Minute},
	} {
		ps, err := loadProviders(func(k string) string { return tc.env[k] })
		if tc.badVar != "" {
			var ce *configError
			if !errors.As(err, &ce) || ce.name != tc.badVar || strings.Contains(ce.Error(), "\n") {
				t.Errorf("%s: %v, want one line naming %s", tc.name, err, tc.badVar)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		var names []string
		for _, a := range ps.adapters {
			names = append(names, a.Name())
		}
		if strings.Join(names, ",") != strings.Join(tc.want, ",") {
			t.Errorf("%s: adapters %v, want %v", tc.name, names, tc.want)
		}
		if tc.janitor != 0 && ps.janitor.After != tc.janitor {
			t.Errorf("%s: janitor after %s", tc.name, ps.janitor.After)
		}
	}
}

// The whole server with WZRDPAY configured through the environment: the
// link redirects to the provider, the callback pays the invoice, and a
// provider left unconfigured keeps the payer's link unspent.
func TestServeWithWZRDPAY(t *testing.T) {
	fake := wzrdpaytest.New(t)
	t.Setenv("PAYLEDGER_WZRDPAY_PUBLIC_KEY", wzrdpaytest.PublicKey)
	t.Setenv("PAYLEDGER_WZRDPAY_PRIVATE_KEY", wzrdpaytest.PrivateKey)
	t.Setenv("PAYLEDGER_WZRDPAY_BASE_URL", fake.URL)
	t.Setenv("PAYLEDGER_WZRDPAY_TEST_MODE", "true")
	for _, k := range []string{"PAYLEDGER_PAYFECT_API_KEY", "PAYLEDGER_PAYFECT_BASE_URL", "PAYLEDGER_PAYFECT_NETWORK"} {
		t.Setenv(k, "")
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	public := "http://" + ln.Addr().String()
	vars := map[string]string{"PAYLEDGER_DATA_DIR": t.TempDir(), "PAYLEDGER_PUBLIC_URL": public}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, err := open(ctx, &environment{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}, getenv: func(k string) string { return vars[k] }})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	h, jobs, err := a.handler(ctx)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{}, len(jobs))
	for _, job := range jobs {
		go func() { _ = job(ctx); done <- struct{}{} }()
	}
	defer func() {
		cancel()
		for range jobs {
			<-done
		}
	}()
	srv := httptest.NewUnstartedServer(h)
	_ = srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	defer srv.Close()
	if a.providerParts.janitor == nil {
		t.Fatal("the janitor is not running with a configured provider")
	}

	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	newInvoice := func(provider string) (string, string) {
		res, err := a.invoices.Create(ctx, ledger.InvoiceRequest{Amount: "123.45", Currency: "USD", Provider: provider, Description: "reset"}, "")
		if err != nil {
			t.Fatal(err)
		}
		l, err := a.invoices.IssueLink(ctx, res.State.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		wait, stop := context.WithTimeout(ctx, 10*time.Second)
		defer stop()
		if err := a.set.WaitFor(wait, l.Result.Position); err != nil {
			t.Fatal(err)
		}
		return res.State.ID, l.Token
	}

	id, token := newInvoice("wzrdpay")
	resp, err := noFollow.Get(public + "/pay/" + token)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	invs := fake.Invoices()
	if resp.StatusCode != http.StatusFound || len(invs) != 1 || resp.Header.Get("Location") != fake.URL+"/redirect/hpp/?cpi="+invs[0].ID {
		t.Fatalf("pay link: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if invs[0].CallbackURL != public+"/callbacks/wzrdpay?ref="+id {
		t.Fatalf("callback URL %q", invs[0].CallbackURL)
	}
	fake.Set(invs[0].ID, "processed", "ok", "")
	resp, err = http.Post(invs[0].CallbackURL, "application/json", bytes.NewReader(fake.Document(invs[0].ID)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("callback: %d", resp.StatusCode)
	}
	st, err := a.svc.Load(ctx, id)
	if err != nil || st.Status != invoice.StatusPaid || st.AmountPaid.String() != "123.45" {
		t.Fatalf("invoice %s paid %s: %v", st.Status, st.AmountPaid, err)
	}

	// Payfect is not configured: an invoice naming it is refused at
	// creation, naming the providers this server can take payments with.
	_, err = a.invoices.Create(ctx, ledger.InvoiceRequest{Amount: "1.00", Currency: "USD", Provider: "payfect"}, "")
	if err == nil || !strings.Contains(err.Error(), "provider") || !strings.Contains(err.Error(), "sandbox, wzrdpay") {
		t.Fatalf("invoice for an unconfigured provider: %v", err)
	}
	resp, err = http.Post(public+"/callbacks/payfect", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("callback of an unconfigured provider: %d", resp.StatusCode)
	}
}
