package circoflowstest_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/payledger/payledger/adapters/circoflows"
	"github.com/payledger/payledger/adapters/circoflows/circoflowstest"
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

// TestSessionLifecycle drives the real client through the fake: create,
// pay, status, signed webhook; and expiry and cancellation.
func TestSessionLifecycle(t *testing.T) {
	t.Parallel()
	f := circoflowstest.New(t)
	c := f.Client(t)
	ctx := context.Background()
	req := provider.CreateRequest{InvoiceID: "inv_a", PaymentID: "pay_a_1", Reference: "inv_a", Amount: amount(t, "1000", "JPY"),
		SuccessURL: "https://ledger.example/return", CallbackURL: "https://ledger.example/callbacks/circoflows"}
	created, err := c.Create(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(created.Ref, "sess_") || created.RedirectURL != f.URL+"/pay/"+created.Ref {
		t.Fatalf("Create = %+v", created)
	}
	s, ok := f.ByReference("inv_a")
	if !ok || s.Amount != 1000 || s.Currency != "JPY" || s.Description != "Invoice inv_a" || s.WebhookURL != req.CallbackURL {
		t.Fatalf("fake has %+v", s)
	}

	if p, err := c.Status(ctx, created.Ref); err != nil || p.Status != provider.StatusPending {
		t.Fatalf("Status = %+v, %v", p, err)
	}
	f.Set(created.Ref, "completed")
	p, err := c.Status(ctx, created.Ref)
	if err != nil || p.Status != provider.StatusProcessed || p.Amount.String() != "1000" || p.Reference != "inv_a" {
		t.Fatalf("Status after payment = %+v, %v", p, err)
	}
	body, h := f.Webhook(created.Ref, "")
	cb, err := c.ParseCallback(h, body)
	if err != nil || !cb.Verified || cb.Status != provider.StatusProcessed || cb.Ref != created.Ref || cb.Reference != "inv_a" || cb.Amount.String() != "1000" {
		t.Fatalf("webhook = %+v, %v", cb, err)
	}
	if err := c.Cancel(ctx, created.Ref); !errors.Is(err, provider.ErrConflict) {
		t.Fatalf("Cancel(completed) = %v", err)
	}

	second, err := c.Create(ctx, provider.CreateRequest{InvoiceID: "inv_b", Reference: "inv_b", Amount: amount(t, "5.00", "USD")})
	if err != nil {
		t.Fatal(err)
	}
	f.Set(second.Ref, "failed")
	body, h = f.Webhook(second.Ref, "")
	if cb, err := c.ParseCallback(h, body); err != nil || cb.Status != provider.StatusFailed || cb.Code != "card_declined" {
		t.Fatalf("failed webhook = %+v, %v", cb, err)
	}
	f.Set(second.Ref, "expired")
	if p, err := c.Status(ctx, second.Ref); err != nil || p.Status != provider.StatusFailed || p.Code != "expired" {
		t.Fatalf("expired = %+v, %v", p, err)
	}

	third, err := c.Create(ctx, provider.CreateRequest{InvoiceID: "inv_c", Reference: "inv_c", Amount: amount(t, "1.250", "KWD")})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Cancel(ctx, third.Ref); err != nil {
		t.Fatal(err)
	}
	if p, _ := f.Get(third.Ref); p.Status != "cancelled" || p.Amount != 1250 {
		t.Fatalf("after cancel: %+v", p)
	}
	// A forged webhook: same body, signed with another secret.
	body, _ = f.Webhook(third.Ref, circoflows.EventSucceeded)
	forged := http.Header{circoflows.SignatureHeader: {circoflows.Sign("guess", body)}}
	if _, err := c.ParseCallback(forged, body); !errors.Is(err, provider.ErrBadCallback) {
		t.Fatalf("forged webhook: %v", err)
	}
}

func TestTestCards(t *testing.T) {
	t.Parallel()
	f := circoflowstest.New(t)
	c := f.Client(t)
	ctx := context.Background()
	charge := func(number string) (circoflows.Charge, error) {
		card, err := circoflows.CardFromForm(number, "12/30", "123")
		if err != nil {
			t.Fatal(err)
		}
		return c.ChargeCard(ctx, circoflows.ChargeRequest{InvoiceID: "inv_d", Reference: "inv_d", Amount: amount(t, "150.00", "USD"), Card: card,
			ReturnURL: "https://ledger.example/3ds-return"})
	}
	ok, err := charge(circoflowstest.CardSuccess)
	if err != nil || ok.Status != provider.StatusProcessed || ok.CardLast4 != "4242" || ok.Amount.String() != "150.00" {
		t.Fatalf("success card = %+v, %v", ok, err)
	}
	if p, err := c.Status(ctx, ok.Ref); err != nil || p.Status != provider.StatusProcessed || p.Reference != "inv_d" {
		t.Fatalf("transaction status = %+v, %v", p, err)
	}
	no, err := charge(circoflowstest.CardDeclined)
	if err != nil || no.Status != provider.StatusFailed || no.Code != "insufficient_funds" {
		t.Fatalf("declined card = %+v, %v", no, err)
	}
	tds, err := charge(circoflowstest.CardThreeDS)
	if err != nil || tds.Status != provider.StatusActionRequired || tds.ActionURL != f.URL+"/3ds/"+tds.Ref {
		t.Fatalf("3DS card = %+v, %v", tds, err)
	}
	body, h := f.Webhook(tds.Ref, "")
	if cb, err := c.ParseCallback(h, body); err != nil || cb.Status != provider.StatusActionRequired {
		t.Fatalf("pending webhook = %+v, %v", cb, err)
	}
	done, err := c.Confirm3DS(ctx, circoflows.ThreeDSConfirmation{TransactionID: tds.Ref, Status: "success", GatewayID: tds.GatewayID})
	if err != nil || done.Status != provider.StatusProcessed {
		t.Fatalf("Confirm3DS = %+v, %v", done, err)
	}
}

func TestFaults(t *testing.T) {
	t.Parallel()
	f := circoflowstest.New(t)
	cfg := f.Config()
	cfg.Timeout = 100 * time.Millisecond
	c, err := circoflows.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	req := provider.CreateRequest{InvoiceID: "inv_e", Reference: "inv_e", Amount: amount(t, "10.00", "EUR")}
	f.Fail(circoflowstest.RouteCreate, 1, http.StatusInternalServerError)
	if _, err := c.Create(ctx, req); !errors.Is(err, provider.ErrUnavailable) {
		t.Fatalf("Create after 500: %v", err)
	}
	f.Hang(circoflowstest.RouteCreate, 1)
	if _, err := c.Create(ctx, req); !errors.Is(err, provider.ErrUnavailable) || !errors.Is(err, circoflows.ErrOutcomeUnknown) {
		t.Fatalf("Create after timeout: %v", err)
	}
	created, err := c.Create(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	f.Fail(circoflowstest.RouteSession, 2, http.StatusServiceUnavailable)
	if p, err := c.Status(ctx, created.Ref); err != nil || p.Status != provider.StatusPending {
		t.Fatalf("Status through two 503s = %+v, %v", p, err)
	}
	if n := f.Calls(circoflowstest.RouteCreate); n != 3 {
		t.Fatalf("%d creates, want 3", n)
	}
	if err := c.Health(ctx); err != nil {
		t.Fatal(err)
	}
}
