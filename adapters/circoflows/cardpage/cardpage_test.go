package cardpage_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/payledger/payledger/adapters/callbacks"
	"github.com/payledger/payledger/adapters/callbacks/callbackstest"
	"github.com/payledger/payledger/adapters/circoflows"
	"github.com/payledger/payledger/adapters/circoflows/cardpage"
	"github.com/payledger/payledger/adapters/circoflows/circoflowstest"
	"github.com/payledger/payledger/adapters/pay"
	"github.com/payledger/payledger/domain/invoice"
	"github.com/payledger/payledger/internal/paytest"
	"github.com/payledger/payledger/ledger"
	"github.com/payledger/payledger/projections"
	"github.com/payledger/payledger/projections/projectiontest"
)

type flow struct {
	*callbackstest.Harness
	fake *circoflowstest.Fake
}

func newFlow(t *testing.T, b projections.Backend, mod ...func(*circoflows.Config)) flow {
	t.Helper()
	return newFlowWith(t, b, nil, mod...)
}

// newFlowWith lets wrap stand between the page and the client.
func newFlowWith(t *testing.T, b projections.Backend, wrap func(cardpage.Charger) cardpage.Charger, mod ...func(*circoflows.Config)) flow {
	t.Helper()
	fake := circoflowstest.New(t)
	cfg := fake.Config()
	for _, m := range mod {
		m(&cfg)
	}
	c, err := circoflows.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	direct := c.Direct()
	var charger cardpage.Charger = direct
	if wrap != nil {
		charger = wrap(direct)
	}
	setup := func(h *callbackstest.Harness, mux *http.ServeMux, providers map[string]pay.Provider) {
		page := cardpage.New(cardpage.Options{
			Ledger: h.Env.Service, Charger: charger, PublicURL: h.Server.URL, Secret: []byte("card page test secret"),
			CallbackURL:   func(ref string) string { return h.Service.CallbackURL(circoflows.DirectName, ref) },
			StatusTimeout: 2 * time.Second, MerchantName: "Acme",
		})
		page.Routes(mux)
		providers[cardpage.Name] = page
	}
	h := callbackstest.NewWith(t, b.(paytest.Store), callbacks.Options{StatusTimeout: 2 * time.Second},
		callbacks.JanitorOptions{After: 15 * time.Minute}, setup, direct)
	return flow{h, fake}
}

// open visits the link and returns the card form's action.
func (f flow) open(t *testing.T, token string) string {
	t.Helper()
	r := f.Visit(t, token)
	if r.Code != http.StatusOK || !strings.Contains(r.Body, `name="card_number"`) || r.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("card page: %d %s", r.Code, r.Body)
	}
	return r.Action(t)
}

// pay posts the card form.
func (f flow) pay(t *testing.T, action, number string) callbackstest.Response {
	t.Helper()
	form := url.Values{"card_number": {number}, "expiry": {"12/35"}, "cvc": {"737"}, "cardholder": {"Jane Smith"}}
	return f.Do(t, http.MethodPost, action, []byte(form.Encode()), http.Header{"Content-Type": {"application/x-www-form-urlencoded"}})
}

// follow GETs a 303's target on the ledger.
func (f flow) follow(t *testing.T, r callbackstest.Response) callbackstest.Response {
	t.Helper()
	if r.Code != http.StatusSeeOther || !strings.HasPrefix(r.Location, f.Server.URL+"/") {
		t.Fatalf("want a 303 onto the ledger, got %d %q %s", r.Code, r.Location, r.Body)
	}
	return f.Do(t, http.MethodGet, r.Location, nil, nil)
}

// noCard checks that no event of the invoice holds the card number or
// the CVC field.
func (f flow) noCard(t *testing.T, id string, numbers ...string) {
	t.Helper()
	recs, err := f.Env.Store.ReadStream(context.Background(), ledger.StreamName(id), 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		data := string(r.Data) + string(r.Metadata)
		for _, n := range numbers {
			if strings.Contains(data, n) || strings.Contains(data, n[:12]) {
				t.Fatalf("%s of %s holds the card number: %s", r.Type, id, data)
			}
		}
		if strings.Contains(strings.ToLower(data), "cvc") || strings.Contains(strings.ToLower(data), "cvv") {
			t.Fatalf("%s of %s mentions the CVC: %s", r.Type, id, data)
		}
	}
}

func TestCardPaid(t *testing.T) {
	t.Parallel()
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		f := newFlow(t, b)
		id, token := f.Invoice(t, "25.00", cardpage.Name)
		action := f.open(t, token)
		if !strings.HasPrefix(action, f.Server.URL+"/pay/card/"+id+"/") {
			t.Fatalf("form action %q", action)
		}
		r := f.follow(t, f.pay(t, action, "4242 4242 4242 4242"))
		if r.Code != http.StatusOK || !strings.Contains(r.Body, "Payment successful") || !strings.Contains(r.Body, "visa •••• 4242") {
			t.Fatalf("result: %d %s", r.Code, r.Body)
		}
		ps := f.fake.Payments()
		if len(ps) != 1 || ps[0].Amount != 2500 || ps[0].Currency != "USD" || ps[0].Metadata["reference"] != id || ps[0].Last4 != "4242" ||
			ps[0].WebhookURL != f.Server.URL+"/callbacks/circoflows_direct?ref="+id {
			t.Fatalf("charges %+v", ps)
		}
		st := f.State(t, id)
		p := st.Payments[0]
		if st.Status != invoice.StatusPaid || st.AmountPaid.String() != "25.00" || len(st.Payments) != 1 || p.Provider != cardpage.Name ||
			p.ProviderRef != ps[0].ID || p.CardBrand != "visa" || p.CardLast4 != "4242" {
			t.Fatalf("paid: %s %s %+v", st.Status, st.AmountPaid, st.Payments)
		}
		// CircoFlows' webhook about the same charge changes nothing.
		body, h := f.fake.Webhook(ps[0].ID, "")
		if r := f.Callback(t, circoflows.DirectName, body, h); r.Code != http.StatusOK {
			t.Fatalf("webhook: %d %s", r.Code, r.Body)
		}
		if st := f.State(t, id); st.Callbacks != 1 || f.Count(t, id, invoice.TypePaymentProcessed) != 1 || f.Count(t, id, invoice.TypeFlagged) != 0 {
			t.Fatalf("after the webhook: %d callbacks, %d processed", st.Callbacks, f.Count(t, id, invoice.TypePaymentProcessed))
		}
		// A second post after paying charges nothing.
		if r := f.pay(t, action, "4242424242424242"); r.Code != http.StatusOK || !strings.Contains(r.Body, "Payment successful") || len(f.fake.Payments()) != 1 {
			t.Fatalf("post after paid: %d, %d charges", r.Code, len(f.fake.Payments()))
		}
		f.noCard(t, id, "4242424242424242")
	})
}

func TestCardDeclinedThenRetried(t *testing.T) {
	t.Parallel()
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		f := newFlow(t, b)
		id, token := f.Invoice(t, "40.00", cardpage.Name)
		action := f.open(t, token)
		// Refused on the page: nothing charged, nothing written.
		for _, number := range []string{"4242424242424241", "", "42"} {
			if r := f.pay(t, action, number); r.Code != http.StatusUnprocessableEntity || !strings.Contains(r.Body, `class="field-error"`) {
				t.Fatalf("%q: %d %s", number, r.Code, r.Body)
			}
		}
		if n := f.fake.Calls(circoflowstest.RouteCharge); n != 0 || len(f.State(t, id).Payments) != 0 {
			t.Fatalf("%d charges for invalid cards", n)
		}
		r := f.follow(t, f.pay(t, action, circoflowstest.CardDeclined))
		if r.Code != http.StatusOK || !strings.Contains(r.Body, "Your card has insufficient funds") || !strings.Contains(r.Body, `name="card_number"`) {
			t.Fatalf("declined page: %d %s", r.Code, r.Body)
		}
		st := f.State(t, id)
		if st.Status != invoice.StatusOpen || len(st.Payments) != 1 || st.Payments[0].Status != invoice.PaymentStatusFailed || st.Payments[0].FailureCode != "insufficient_funds" ||
			st.Payments[0].ProviderRef != "" {
			t.Fatalf("declined: %s %+v", st.Status, st.Payments)
		}
		r = f.follow(t, f.pay(t, r.Action(t), circoflowstest.CardSuccess))
		if r.Code != http.StatusOK || !strings.Contains(r.Body, "Payment successful") {
			t.Fatalf("retry: %d %s", r.Code, r.Body)
		}
		st = f.State(t, id)
		ps := f.fake.Payments()
		if st.Status != invoice.StatusPaid || len(st.Payments) != 2 || st.Payments[1].ID != st.Payments[0].ID[:len(st.Payments[0].ID)-1]+"2" ||
			len(ps) != 1 || ps[0].Metadata["reference"] != id+"~2" || st.Payments[1].ProviderRef != ps[0].ID {
			t.Fatalf("retried: %s %+v, charges %+v", st.Status, st.Payments, ps)
		}
		f.noCard(t, id, circoflowstest.CardDeclined, circoflowstest.CardSuccess)
	})
}

func TestCardThreeDSecure(t *testing.T) {
	t.Parallel()
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		f := newFlow(t, b)
		id, token := f.Invoice(t, "60.00", cardpage.Name)
		action := f.open(t, token)
		r := f.pay(t, action, circoflowstest.CardThreeDS)
		ps := f.fake.Payments()
		if r.Code != http.StatusSeeOther || len(ps) != 1 || r.Location != f.fake.URL+"/3ds/"+ps[0].ID {
			t.Fatalf("3-D Secure: %d %q", r.Code, r.Location)
		}
		txn := ps[0]
		st := f.State(t, id)
		if len(st.Payments) != 1 || st.Payments[0].Status != invoice.PaymentStatusActionRequired || st.Payments[0].ProviderRef != txn.ID {
			t.Fatalf("action required: %+v", st.Payments)
		}
		if !strings.HasPrefix(txn.ReturnURL, f.Server.URL+"/pay/card/"+id+"/") {
			t.Fatalf("return_url %q", txn.ReturnURL)
		}
		bank := func(ret string, q url.Values) callbackstest.Response {
			return f.Do(t, http.MethodGet, ret+"&"+q.Encode(), nil, nil)
		}
		// Forgeries first: another transaction's id, and a tampered
		// signature. Neither asks CircoFlows nor writes anything.
		if r := bank(txn.ReturnURL, url.Values{"transaction_id": {"txn_OTHER"}, "status": {"success"}, "gateway_id": {txn.GatewayID}}); r.Code != http.StatusBadRequest {
			t.Fatalf("other transaction: %d %s", r.Code, r.Body)
		}
		tampered := strings.Replace(txn.ReturnURL, "last4=3220", "last4=0000", 1)
		if r := bank(tampered, url.Values{"transaction_id": {txn.ID}, "status": {"success"}, "gateway_id": {txn.GatewayID}}); r.Code != http.StatusNotFound {
			t.Fatalf("tampered: %d", r.Code)
		}
		if n := f.fake.Calls(circoflowstest.RouteConfirm); n != 0 || f.State(t, id).Payments[0].Status != invoice.PaymentStatusActionRequired {
			t.Fatalf("forged returns confirmed %d times", n)
		}
		// The bank sends the payer back with its parameters.
		r = f.follow(t, bank(txn.ReturnURL, url.Values{"transaction_id": {txn.ID}, "status": {"success"}, "gateway_id": {txn.GatewayID}}))
		if r.Code != http.StatusOK || !strings.Contains(r.Body, "Payment successful") || !strings.Contains(r.Body, "visa •••• 3220") {
			t.Fatalf("after 3-D Secure: %d %s", r.Code, r.Body)
		}
		st = f.State(t, id)
		if st.Status != invoice.StatusPaid || st.AmountPaid.String() != "60.00" || st.Payments[0].CardLast4 != "3220" || f.fake.Calls(circoflowstest.RouteConfirm) != 1 {
			t.Fatalf("paid: %s %+v", st.Status, st.Payments)
		}
		// The return opened again (back button) changes nothing.
		if r := bank(txn.ReturnURL, url.Values{"transaction_id": {txn.ID}, "status": {"success"}, "gateway_id": {txn.GatewayID}}); r.Code != http.StatusSeeOther || f.fake.Calls(circoflowstest.RouteConfirm) != 1 {
			t.Fatalf("second return: %d", r.Code)
		}

		// Failed verification, then another card.
		id2, token2 := f.Invoice(t, "61.00", cardpage.Name)
		action = f.open(t, token2)
		f.pay(t, action, circoflowstest.CardThreeDS)
		ps = f.fake.Payments()
		txn = ps[len(ps)-1]
		r = f.follow(t, bank(txn.ReturnURL, url.Values{"transaction_id": {txn.ID}, "status": {"failed"}, "gateway_id": {txn.GatewayID}}))
		if r.Code != http.StatusOK || !strings.Contains(r.Body, "did not go through") {
			t.Fatalf("failed 3-D Secure: %d %s", r.Code, r.Body)
		}
		if st := f.State(t, id2); st.Payments[0].Status != invoice.PaymentStatusFailed || st.Status != invoice.StatusOpen {
			t.Fatalf("failed 3-D Secure: %+v", st.Payments)
		}
		f.follow(t, f.pay(t, r.Action(t), circoflowstest.CardSuccess))
		if st := f.State(t, id2); st.Status != invoice.StatusPaid || len(st.Payments) != 2 {
			t.Fatalf("after the retry: %s %+v", st.Status, st.Payments)
		}
		f.noCard(t, id, circoflowstest.CardThreeDS)
	})
}

// The payer leaves the bank's page; CircoFlows completes the charge and
// says so by webhook, or says nothing and the reconciler asks.
func TestCardThreeDSecureSettledWithoutThePayer(t *testing.T) {
	t.Parallel()
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		f := newFlow(t, b)
		byWebhook, t1 := f.Invoice(t, "70.00", cardpage.Name)
		byJanitor, t2 := f.Invoice(t, "80.00", cardpage.Name)
		f.pay(t, f.open(t, t1), circoflowstest.CardThreeDS)
		f.pay(t, f.open(t, t2), circoflowstest.CardThreeDS)
		ps := f.fake.Payments()
		pending, ph := f.fake.Webhook(ps[0].ID, "")
		if r := f.Callback(t, circoflows.DirectName, pending, ph); r.Code != http.StatusOK {
			t.Fatalf("pending webhook: %d %s", r.Code, r.Body)
		}
		f.fake.Set(ps[0].ID, "completed")
		f.fake.Set(ps[1].ID, "completed")
		body, h := f.fake.Webhook(ps[0].ID, "")
		if r := f.Callback(t, circoflows.DirectName, body, h); r.Code != http.StatusOK {
			t.Fatalf("webhook: %d %s", r.Code, r.Body)
		}
		if st := f.State(t, byWebhook); st.Status != invoice.StatusPaid || st.AmountPaid.String() != "70.00" || st.Callbacks != 2 {
			t.Fatalf("by webhook: %s %+v", st.Status, st.Payments)
		}
		f.Env.Clock.Advance(16 * time.Minute)
		if rep := f.Sweep(t); rep.Settled != 1 || rep.Errors != 0 {
			t.Fatalf("sweep %+v", rep)
		}
		if st := f.State(t, byJanitor); st.Status != invoice.StatusPaid || st.AmountPaid.String() != "80.00" || st.Payments[0].ProviderRef != ps[1].ID {
			t.Fatalf("by the reconciler: %s %+v", st.Status, st.Payments)
		}
	})
}

// A payer back on the card page after leaving the bank's page sees the
// payment that went through instead of being charged again.
func TestCardEarlierAttemptAskedBeforeCharging(t *testing.T) {
	t.Parallel()
	f := newFlow(t, projectiontest.SQLite(t))
	id, token := f.Invoice(t, "90.00", cardpage.Name)
	action := f.open(t, token)
	f.pay(t, action, circoflowstest.CardThreeDS)
	txn := f.fake.Payments()[0]
	r := f.Do(t, http.MethodGet, action, nil, nil)
	if r.Code != http.StatusOK || !strings.Contains(r.Body, "still waiting for your bank") {
		t.Fatalf("page while waiting: %d %s", r.Code, r.Body)
	}
	f.fake.Set(txn.ID, "completed")
	r = f.pay(t, action, circoflowstest.CardSuccess)
	if r.Code != http.StatusOK || !strings.Contains(r.Body, "Payment successful") || len(f.fake.Payments()) != 1 {
		t.Fatalf("paid again: %d, %d charges", r.Code, len(f.fake.Payments()))
	}
	if st := f.State(t, id); st.Status != invoice.StatusPaid || len(st.Payments) != 1 {
		t.Fatalf("%s %+v", st.Status, st.Payments)
	}
}

func TestCardChargeFailures(t *testing.T) {
	t.Parallel()
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		f := newFlow(t, b, func(c *circoflows.Config) { c.Timeout = 150 * time.Millisecond })
		id, token := f.Invoice(t, "10.00", cardpage.Name)
		action := f.open(t, token)
		// 503 before CircoFlows acted: nothing written, the payer may
		// simply try again.
		f.fake.Fail(circoflowstest.RouteCharge, 1, http.StatusServiceUnavailable)
		r := f.pay(t, action, circoflowstest.CardSuccess)
		if r.Code != http.StatusServiceUnavailable || !strings.Contains(r.Body, "No money was taken") || len(f.State(t, id).Payments) != 0 {
			t.Fatalf("503: %d %s", r.Code, r.Body)
		}
		// No answer at all: the card may be charged. The attempt is kept
		// without a transaction id and the payer is warned.
		f.fake.Hang(circoflowstest.RouteCharge, 1)
		r = f.pay(t, action, circoflowstest.CardSuccess)
		st := f.State(t, id)
		if r.Code != http.StatusServiceUnavailable || !strings.Contains(r.Body, "do not know whether your card was charged") ||
			len(st.Payments) != 1 || st.Payments[0].Status != invoice.PaymentStatusInitiated || st.Payments[0].ProviderRef != "" {
			t.Fatalf("timeout: %d %+v", r.Code, st.Payments)
		}
		// A charge is never repeated by the client.
		if n := f.fake.Calls(circoflowstest.RouteCharge); n != 2 {
			t.Fatalf("%d charge requests for two posts", n)
		}
		// The next try is the next attempt: its webhook cannot be mistaken
		// for the unknown one's.
		f.follow(t, f.pay(t, action, circoflowstest.CardSuccess))
		st = f.State(t, id)
		ps := f.fake.Payments()
		if st.Status != invoice.StatusPaid || len(st.Payments) != 2 || len(ps) != 1 || ps[0].Metadata["reference"] != id+"~2" {
			t.Fatalf("recovered: %s %+v", st.Status, st.Payments)
		}
	})
}

// A charge that went through but whose answer was lost (the 500 came
// after CircoFlows acted) is booked when its webhook arrives, on the
// attempt kept without a transaction id.
func TestCardLostAnswerSettledByWebhook(t *testing.T) {
	t.Parallel()
	f := newFlow(t, projectiontest.SQLite(t))
	id, token := f.Invoice(t, "12.00", cardpage.Name)
	action := f.open(t, token)
	f.fake.Fail(circoflowstest.RouteCharge, 1, http.StatusInternalServerError)
	if r := f.pay(t, action, circoflowstest.CardSuccess); r.Code != http.StatusServiceUnavailable {
		t.Fatalf("500: %d", r.Code)
	}
	st := f.State(t, id)
	if len(st.Payments) != 1 || st.Payments[0].ProviderRef != "" {
		t.Fatalf("payments %+v", st.Payments)
	}
	// What CircoFlows would post had it charged the card: the signed
	// success webhook for a transaction with this attempt's reference.
	body := []byte(`{"event":"payment.succeeded","data":{"transaction_id":"txn_LOST0001","amount":1200,"currency":"USD","status":"completed",` +
		`"metadata":{"reference":"` + id + `","invoice_id":"` + id + `"}}}`)
	h := http.Header{"Content-Type": {"application/json"}, circoflows.SignatureHeader: {circoflows.Sign(circoflowstest.WebhookSecret, body)}}
	if r := f.Callback(t, circoflows.DirectName, body, h); r.Code != http.StatusOK {
		t.Fatalf("webhook: %d %s", r.Code, r.Body)
	}
	st = f.State(t, id)
	if st.Status != invoice.StatusPaid || len(st.Payments) != 1 || st.Payments[0].ProviderRef != "txn_LOST0001" {
		t.Fatalf("%s %+v", st.Status, st.Payments)
	}
	if r := f.Do(t, http.MethodGet, action, nil, nil); r.Code != http.StatusOK || !strings.Contains(r.Body, "Payment successful") {
		t.Fatalf("page: %d", r.Code)
	}
}

func TestCardSessionNeedsSignature(t *testing.T) {
	t.Parallel()
	f := newFlow(t, projectiontest.SQLite(t))
	id, token := f.Invoice(t, "5.00", cardpage.Name)
	action := f.open(t, token)
	u, _ := url.Parse(action)
	for _, target := range []string{
		u.Path, // no signature
		u.Path + "?sig=" + strings.Repeat("A", 43), // a wrong one
		strings.Replace(action, id, id[:len(id)-1]+"0", 1),
	} {
		if r := f.Do(t, http.MethodGet, target, nil, nil); r.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d", target, r.Code)
		}
		if r := f.pay(t, target, circoflowstest.CardSuccess); r.Code != http.StatusNotFound {
			t.Errorf("POST %s: %d", target, r.Code)
		}
	}
	if n := f.fake.Calls(circoflowstest.RouteCharge); n != 0 {
		t.Fatalf("%d charges", n)
	}
}

// barrier holds charges until n of them are in flight, so that they race.
type barrier struct {
	cardpage.Charger
	arrived chan struct{}
	n       int
}

func (b barrier) ChargeCard(ctx context.Context, req circoflows.ChargeRequest) (circoflows.Charge, error) {
	b.arrived <- struct{}{}
	for len(b.arrived) < b.n {
		select {
		case <-ctx.Done():
			return circoflows.Charge{}, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	return b.Charger.ChargeCard(ctx, req)
}

// Two posts of the form at once (a double click) are two charges at
// CircoFlows for the same attempt number: both are booked, on payments of
// their own, and the second is flagged as a duplicate to refund.
func TestCardDoubleSubmitBooksBoth(t *testing.T) {
	t.Parallel()
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		f := newFlowWith(t, b, func(c cardpage.Charger) cardpage.Charger {
			return barrier{Charger: c, arrived: make(chan struct{}, 2), n: 2}
		})
		id, token := f.Invoice(t, "33.00", cardpage.Name)
		action := f.open(t, token)
		codes := make(chan int, 2)
		for range 2 {
			go func() { codes <- f.pay(t, action, circoflowstest.CardSuccess).Code }()
		}
		for range 2 {
			if c := <-codes; c != http.StatusSeeOther {
				t.Fatalf("post: %d", c)
			}
		}
		st := f.State(t, id)
		ps := f.fake.Payments()
		if len(ps) != 2 || len(st.Payments) != 2 || f.Count(t, id, invoice.TypePaymentProcessed) != 2 || !callbackstest.HasFlag(st, invoice.FlagDuplicatePayment) ||
			st.Status != invoice.StatusPaid || st.AmountPaid.String() != "66.00" { // amount_paid is the money held
			t.Fatalf("%s paid %s, %d charges, payments %+v", st.Status, st.AmountPaid, len(ps), st.Payments)
		}
		refs := map[string]bool{st.Payments[0].ProviderRef: true, st.Payments[1].ProviderRef: true}
		if !refs[ps[0].ID] || !refs[ps[1].ID] {
			t.Fatalf("payments %+v do not name the charges %s, %s", st.Payments, ps[0].ID, ps[1].ID)
		}
	})
}

// CircoFlows charges three-letter ISO currencies in minor units only: a
// USDT invoice is refused on the page before anything is sent.
func TestCardUnsupportedCurrency(t *testing.T) {
	t.Parallel()
	f := newFlow(t, projectiontest.SQLite(t))
	id, token := f.InvoiceIn(t, "10", "USDT", cardpage.Name, 0)
	r := f.pay(t, f.open(t, token), circoflowstest.CardSuccess)
	if r.Code != http.StatusBadGateway || !strings.Contains(r.Body, "not available in this currency") {
		t.Fatalf("USDT: %d %s", r.Code, r.Body)
	}
	if n := f.fake.Calls(circoflowstest.RouteCharge); n != 0 || len(f.State(t, id).Payments) != 0 {
		t.Fatalf("%d charges, payments %+v", n, f.State(t, id).Payments)
	}
}
