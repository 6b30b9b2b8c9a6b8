package onramptest_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/payledger/payledger/adapters/onramp"
	"github.com/payledger/payledger/adapters/onramp/onramptest"
	"github.com/payledger/payledger/adapters/provider"
	"github.com/payledger/payledger/domain/money"
)

func amount(t *testing.T, s, cur string) money.Money {
	t.Helper()
	m, err := money.Parse(s, cur)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestCheckoutLifecycle drives the real client through the fake: create,
// the webhook hint, Status confirming it, the cko-* return, expiry.
func TestCheckoutLifecycle(t *testing.T) {
	t.Parallel()
	f := onramptest.New(t)
	c := f.Client(t)
	ctx := context.Background()
	req := provider.CreateRequest{InvoiceID: "inv_a", Reference: "inv_a", Amount: amount(t, "12.345678", "USDT"),
		SuccessURL: "https://ledger.example/ok", FailURL: "https://ledger.example/fail", CallbackURL: "https://ledger.example/callbacks/onramp"}
	created, err := c.Create(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	p, ok := f.ByInvoice("inv_a")
	if !ok || created.Ref != onramp.Ref("inv_a", p.PaymentID) || created.RedirectURL != f.URL+"/checkout/"+p.PaymentID || p.Amount != "12.345678" || p.Currency != "USDT" {
		t.Fatalf("Create = %+v; fake has %+v", created, p)
	}
	// Create or retrieve: the same invoice gets the same payment.
	again, err := c.Create(ctx, req)
	if err != nil || again.Ref != created.Ref || len(f.Payments()) != 1 {
		t.Fatalf("second Create = %+v, %v (%d payments)", again, err, len(f.Payments()))
	}

	f.Set(p.PaymentID, "PAID")
	body, h := f.Webhook(p.PaymentID)
	cb, err := c.ParseCallback(h, body)
	if err != nil || cb.Verified || cb.Status != provider.StatusProcessed || cb.Ref != created.Ref || cb.Amount.String() != "12.345678" {
		t.Fatalf("webhook = %+v, %v", cb, err)
	}
	st, err := c.Status(ctx, cb.Ref)
	if err != nil || st.Status != provider.StatusProcessed || st.Amount.String() != "12.345678" || st.Reference != "inv_a" {
		t.Fatalf("Status = %+v, %v", st, err)
	}
	ret, err := onramp.ParseReturn(f.Return(p.PaymentID))
	if err != nil || ret.PaymentID != p.GatewayPaymentID {
		t.Fatalf("ParseReturn = %+v, %v", ret, err)
	}
	if st, err := c.Confirm(ctx, created.Ref); err != nil || st.Status != provider.StatusProcessed {
		t.Fatalf("Confirm = %+v, %v", st, err)
	}

	other, err := c.Create(ctx, provider.CreateRequest{InvoiceID: "inv_b", Reference: "inv_b~2", Amount: amount(t, "1000", "JPY")})
	if err != nil {
		t.Fatal(err)
	}
	_, pid, _ := onramp.SplitRef(other.Ref)
	f.Set(pid, "EXPIRED")
	if st, err := c.Status(ctx, other.Ref); err != nil || st.Status != provider.StatusFailed || st.Code != "expired" {
		t.Fatalf("expired = %+v, %v", st, err)
	}
}

func TestExternal(t *testing.T) {
	t.Parallel()
	f := onramptest.New(t)
	cfg := f.Config()
	cfg.Type, cfg.ExternalData = onramp.TypeExternal, "merchant-17"
	c, err := onramp.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	created, err := c.Create(context.Background(), provider.CreateRequest{InvoiceID: "inv_x", Reference: "inv_x", Amount: amount(t, "1.234", "KWD")})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := f.ByInvoice("inv_x")
	if p.Type != "EXTERNAL" || p.SomeData != "merchant-17" || created.RedirectURL == "" || f.Calls(onramptest.RouteUpdate) != 1 {
		t.Fatalf("external payment %+v, created %+v", p, created)
	}
	body, _ := f.Webhook(p.PaymentID)
	if cb, err := c.ParseCallback(nil, body); err != nil || cb.Status != provider.StatusPending || cb.Amount.String() != "1.234" {
		t.Fatalf("webhook = %+v, %v", cb, err)
	}
}

func TestFaults(t *testing.T) {
	t.Parallel()
	f := onramptest.New(t)
	cfg := f.Config()
	cfg.Timeout = 100 * time.Millisecond
	c, err := onramp.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	req := provider.CreateRequest{InvoiceID: "inv_f", Reference: "inv_f", Amount: amount(t, "10.00", "EUR")}
	f.Fail(onramptest.RoutePayments, 1, http.StatusBadGateway)
	if _, err := c.Create(ctx, req); !errors.Is(err, provider.ErrUnavailable) {
		t.Fatalf("Create after 502: %v", err)
	}
	f.Hang(onramptest.RoutePayments, 1)
	if _, err := c.Create(ctx, req); !errors.Is(err, onramp.ErrOutcomeUnknown) {
		t.Fatalf("Create after timeout: %v", err)
	}
	created, err := c.Create(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	f.Fail(onramptest.RoutePayments, 2, http.StatusServiceUnavailable)
	if st, err := c.Status(ctx, created.Ref); err != nil || st.Status != provider.StatusPending {
		t.Fatalf("Status through two 503s = %+v, %v", st, err)
	}
	if _, err := c.Status(ctx, onramp.Ref("inv_f", "pmt_unknown")); !errors.Is(err, provider.ErrNotFound) {
		t.Fatalf("Status(unknown): %v", err)
	}
}
