package main

import (
	"bytes"
	"context"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/payledger/payledger/adapters/circoflows"
	"github.com/payledger/payledger/adapters/circoflows/circoflowstest"
	"github.com/payledger/payledger/domain/invoice"
	"github.com/payledger/payledger/ledger"
)

// The whole server with CircoFlows configured through the environment:
// invoices may name circoflows_direct, the link opens the ledger's card
// page, the card is charged and the invoice paid; a 3-D Secure card goes
// to the bank; the direct payments' webhooks have their endpoint.
func TestServeWithCircoFlowsDirect(t *testing.T) {
	fake := circoflowstest.New(t)
	t.Setenv("PAYLEDGER_CIRCOFLOWS_API_KEY", circoflowstest.APIKey)
	t.Setenv("PAYLEDGER_CIRCOFLOWS_BASE_URL", fake.URL)
	t.Setenv("PAYLEDGER_CIRCOFLOWS_WEBHOOK_SECRET", circoflowstest.WebhookSecret)

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

	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(req *http.Request) (int, string, string) {
		t.Helper()
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Location"), string(b)
	}
	get := func(u string) (int, string, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		return do(req)
	}
	action := regexp.MustCompile(`<form method="post" action="([^"]+)"`)
	pay := func(amount, card string) (string, int, string) {
		t.Helper()
		res, err := a.invoices.Create(ctx, ledger.InvoiceRequest{Amount: amount, Currency: "USD", Provider: circoflows.DirectName, Description: "reset"}, "")
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
		code, _, body := get(public + "/pay/" + l.Token)
		m := action.FindStringSubmatch(body)
		if code != http.StatusOK || m == nil {
			t.Fatalf("card page: %d %s", code, body)
		}
		form := url.Values{"card_number": {card}, "expiry": {"12/35"}, "cvc": {"123"}, "cardholder": {"Jane Smith"}}
		req, _ := http.NewRequest(http.MethodPost, html.UnescapeString(m[1]), strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		code, loc, _ := do(req)
		return res.State.ID, code, loc
	}

	id, code, loc := pay("42.00", circoflowstest.CardSuccess)
	if code != http.StatusSeeOther || !strings.HasPrefix(loc, public+"/pay/card/"+id+"/") {
		t.Fatalf("charge: %d %q", code, loc)
	}
	if code, _, body := get(loc); code != http.StatusOK || !strings.Contains(body, "visa •••• 4242") {
		t.Fatalf("result: %d %s", code, body)
	}
	st, err := a.svc.Load(ctx, id)
	if err != nil || st.Status != invoice.StatusPaid || st.AmountPaid.String() != "42.00" || st.Payments[0].Provider != circoflows.DirectName {
		t.Fatalf("invoice %s paid %s %+v: %v", st.Status, st.AmountPaid, st.Payments, err)
	}
	txn := fake.Payments()[0]
	if txn.WebhookURL != public+"/callbacks/circoflows_direct?ref="+id {
		t.Fatalf("webhook_url %q", txn.WebhookURL)
	}
	body, hdr := fake.Webhook(txn.ID, "")
	req, _ := http.NewRequest(http.MethodPost, txn.WebhookURL, bytes.NewReader(body))
	req.Header = hdr
	if code, _, b := do(req); code != http.StatusOK {
		t.Fatalf("webhook: %d %s", code, b)
	}

	_, code, loc = pay("43.00", circoflowstest.CardThreeDS)
	if ps := fake.Payments(); code != http.StatusSeeOther || loc != fake.URL+"/3ds/"+ps[len(ps)-1].ID {
		t.Fatalf("3-D Secure: %d %q", code, loc)
	}
}
