package circoflows_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/payledger/payledger/adapters/callbacks"
	"github.com/payledger/payledger/adapters/callbacks/callbackstest"
	"github.com/payledger/payledger/adapters/circoflows"
	"github.com/payledger/payledger/adapters/circoflows/circoflowstest"
	"github.com/payledger/payledger/domain/invoice"
	"github.com/payledger/payledger/internal/paytest"
	"github.com/payledger/payledger/projections"
	"github.com/payledger/payledger/projections/projectiontest"
)

// The hosted-session journey through the provider bridge, against the
// fake CircoFlows on the seed's samples, on both stores.

type flow struct {
	*callbackstest.Harness
	fake *circoflowstest.Fake
}

func newFlow(t *testing.T, b projections.Backend, mod ...func(*circoflows.Config)) flow {
	t.Helper()
	f := circoflowstest.New(t)
	cfg := f.Config()
	for _, m := range mod {
		m(&cfg)
	}
	c, err := circoflows.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := callbackstest.New(t, b.(paytest.Store), callbacks.Options{CreateTimeout: 2 * time.Second, StatusTimeout: 2 * time.Second},
		callbacks.JanitorOptions{After: 15 * time.Minute}, c)
	return flow{h, f}
}

// open visits the link and returns the session it created at CircoFlows.
func (f flow) open(t *testing.T, token string) circoflowstest.Payment {
	t.Helper()
	r := f.Visit(t, token)
	ps := f.fake.Payments()
	if r.Code != http.StatusFound || len(ps) == 0 {
		t.Fatalf("visit: %d %q %s", r.Code, r.Location, r.Body)
	}
	p := ps[len(ps)-1]
	if r.Location != f.fake.URL+"/pay/"+p.ID {
		t.Fatalf("redirected to %q, want the payment_url of %s", r.Location, p.ID)
	}
	return p
}

// webhook posts the signed notification CircoFlows would send for the
// session's current status to the webhook_url it was given.
func (f flow) webhook(t *testing.T, p circoflowstest.Payment, event string) callbackstest.Response {
	t.Helper()
	body, h := f.fake.Webhook(p.ID, event)
	return f.post(t, p, body, h)
}

func (f flow) post(t *testing.T, p circoflowstest.Payment, body []byte, h http.Header) callbackstest.Response {
	t.Helper()
	r := f.Do(t, http.MethodPost, p.WebhookURL, body, h)
	if r.Code != http.StatusOK {
		t.Fatalf("webhook: %d %s", r.Code, r.Body)
	}
	return r
}

func TestFlowPaid(t *testing.T) {
	t.Parallel()
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		f := newFlow(t, b)
		id, token := f.Invoice(t, "123.45", circoflows.Name)
		s := f.open(t, token)
		if s.Amount != 12345 || s.Currency != "USD" || s.Metadata["reference"] != id || s.Metadata["invoice_id"] != id ||
			s.WebhookURL != f.Server.URL+"/callbacks/circoflows?ref="+id || !strings.HasPrefix(s.ReturnURL, f.Server.URL+"/pay/return/"+id+"/") {
			t.Fatalf("session %+v", s)
		}
		st := f.State(t, id)
		if len(st.Payments) != 1 || st.Payments[0].ProviderRef != s.ID || st.Payments[0].Status != invoice.PaymentStatusInitiated {
			t.Fatalf("payments %+v", st.Payments)
		}
		f.webhook(t, s, "")
		if st := f.State(t, id); st.Status != invoice.StatusOpen || st.Callbacks != 1 {
			t.Fatalf("after pending: %s, %d callbacks", st.Status, st.Callbacks)
		}
		f.fake.Set(s.ID, "completed")
		f.webhook(t, s, "")
		st = f.State(t, id)
		if st.Status != invoice.StatusPaid || st.AmountPaid.String() != "123.45" || st.Payments[0].Amount != "123.45" || st.Payments[0].ProviderRef != s.ID {
			t.Fatalf("paid: %s %s %+v", st.Status, st.AmountPaid, st.Payments)
		}
		// The signed bodies were proof on their own: no status query.
		if n := f.fake.Calls(circoflowstest.RouteSession); n != 0 {
			t.Errorf("%d session status queries for signed webhooks", n)
		}
		var kept int
		for _, e := range f.Events(t, id) {
			if c, ok := e.(invoice.CallbackReceived); ok {
				kept++
				if !c.Verified || c.Provider != circoflows.Name || c.ProviderRef != s.ID {
					t.Errorf("kept callback %+v", c)
				}
			}
		}
		if kept != 2 {
			t.Fatalf("kept %d callbacks", kept)
		}
		r := f.Do(t, http.MethodGet, s.ReturnURL, nil, nil)
		if r.Code != http.StatusOK || !strings.Contains(r.Body, "Payment received") || !strings.Contains(r.Body, "123.45 USD") {
			t.Fatalf("return page: %d %s", r.Code, r.Body)
		}
	})
}

func TestFlowReturnConfirmsWithoutCallback(t *testing.T) {
	t.Parallel()
	f := newFlow(t, projectiontest.SQLite(t))
	id, token := f.Invoice(t, "10.00", circoflows.Name)
	s := f.open(t, token)
	// Back before paying: the page waits, writes nothing.
	if r := f.Do(t, http.MethodGet, s.ReturnURL, nil, nil); r.Code != http.StatusOK || !strings.Contains(r.Body, "Confirming your payment") {
		t.Fatalf("early return: %d %s", r.Code, r.Body)
	}
	f.fake.Set(s.ID, "completed")
	// CircoFlows appends its ids; the page asks the session's status.
	r := f.Do(t, http.MethodGet, s.ReturnURL+"&session_id="+s.ID, nil, nil)
	if r.Code != http.StatusOK || !strings.Contains(r.Body, "Payment received") {
		t.Fatalf("return: %d %s", r.Code, r.Body)
	}
	if st := f.State(t, id); st.Status != invoice.StatusPaid || st.AmountPaid.String() != "10.00" {
		t.Fatalf("%s %s", st.Status, st.AmountPaid)
	}
}

func TestFlowDeclinedThenRetried(t *testing.T) {
	t.Parallel()
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		f := newFlow(t, b)
		id, token := f.Invoice(t, "50.00", circoflows.Name)
		s := f.open(t, token)
		f.fake.Set(s.ID, "failed")
		f.webhook(t, s, "")
		st := f.State(t, id)
		if st.Status != invoice.StatusOpen || st.Payments[0].Status != invoice.PaymentStatusFailed || st.Payments[0].FailureCode != "card_declined" ||
			f.Count(t, id, invoice.TypePaymentFailed) != 1 {
			t.Fatalf("declined: %s %+v", st.Status, st.Payments)
		}
		// The payer comes back, is told, and tries again: a new session
		// under the second attempt's reference.
		r := f.Do(t, http.MethodGet, s.ReturnURL, nil, nil)
		if r.Code != http.StatusOK || !strings.Contains(r.Body, "Payment not completed") {
			t.Fatalf("return page: %d %s", r.Code, r.Body)
		}
		r = f.Do(t, http.MethodPost, r.Action(t), nil, nil)
		ps := f.fake.Payments()
		if r.Code != http.StatusFound || len(ps) != 2 || r.Location != f.fake.URL+"/pay/"+ps[1].ID || ps[1].Metadata["reference"] != id+"~2" {
			t.Fatalf("retry: %d %q, %d sessions", r.Code, r.Location, len(ps))
		}
		f.fake.Set(ps[1].ID, "completed")
		f.webhook(t, ps[1], "")
		if st := f.State(t, id); st.Status != invoice.StatusPaid || len(st.Payments) != 2 || st.Payments[1].ProviderRef != ps[1].ID {
			t.Fatalf("second attempt: %s %+v", st.Status, st.Payments)
		}
	})
}

func TestFlowExpired(t *testing.T) {
	t.Parallel()
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		f := newFlow(t, b)
		// Notified: a payment.failed for the expired session.
		id, token := f.Invoice(t, "15.00", circoflows.Name)
		s := f.open(t, token)
		f.fake.Set(s.ID, "expired")
		f.webhook(t, s, circoflows.EventFailed)
		st := f.State(t, id)
		if st.Status != invoice.StatusOpen || st.Payments[0].Status != invoice.PaymentStatusFailed || st.Payments[0].FailureCode != "expired" {
			t.Fatalf("expired by webhook: %+v", st.Payments)
		}
		r := f.Do(t, http.MethodGet, s.ReturnURL, nil, nil)
		if r.Code != http.StatusOK || !strings.Contains(r.Body, "expired") {
			t.Fatalf("return page: %d %s", r.Code, r.Body)
		}
		// Not notified: the payer comes back to a session CircoFlows now
		// answers 410 session_expired for.
		id2, token2 := f.Invoice(t, "16.00", circoflows.Name)
		s2 := f.open(t, token2)
		f.fake.Set(s2.ID, "expired")
		r = f.Do(t, http.MethodGet, s2.ReturnURL, nil, nil)
		st = f.State(t, id2)
		if r.Code != http.StatusOK || !strings.Contains(r.Body, "expired") || st.Payments[0].FailureCode != "expired" || f.Count(t, id2, invoice.TypePaymentFailed) != 1 {
			t.Fatalf("expired by status: %d %+v", r.Code, st.Payments)
		}
	})
}

func TestFlowLatePaymentAfterOurExpiry(t *testing.T) {
	t.Parallel()
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		f := newFlow(t, b)
		id, token := f.InvoiceIn(t, "75.00", "EUR", circoflows.Name, 20*time.Minute)
		s := f.open(t, token)
		f.Env.Clock.Advance(21 * time.Minute)
		if _, err := f.Env.Service.Execute(context.Background(), id, invoice.Expire{}); err != nil {
			t.Fatal(err)
		}
		f.fake.Set(s.ID, "completed")
		f.webhook(t, s, "")
		st := f.State(t, id)
		if st.Status != invoice.StatusExpired || st.AmountPaid.String() != "75.00" || st.AmountPaid.Currency().Code != "EUR" || !callbackstest.HasFlag(st, invoice.FlagLatePayment) {
			t.Fatalf("late: %s paid %s %+v", st.Status, st.AmountPaid, st.Payments)
		}
	})
}

func TestFlowDuplicateAndOutOfOrder(t *testing.T) {
	t.Parallel()
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		f := newFlow(t, b)
		id, token := f.Invoice(t, "99.99", circoflows.Name)
		s := f.open(t, token)
		pending, ph := f.fake.Webhook(s.ID, "")
		f.fake.Set(s.ID, "completed")
		f.webhook(t, s, "")
		if r := f.webhook(t, s, ""); !strings.Contains(r.Body, `"duplicate":true`) {
			t.Fatalf("duplicate not recognised: %s", r.Body)
		}
		f.post(t, s, pending, ph) // the pending notice, delivered last
		st := f.State(t, id)
		if st.Status != invoice.StatusPaid || st.AmountPaid.String() != "99.99" || st.Callbacks != 2 ||
			f.Count(t, id, invoice.TypePaymentProcessed) != 1 || f.Count(t, id, invoice.TypeFlagged) != 0 || st.Payments[0].Status != invoice.PaymentStatusProcessed {
			t.Fatalf("%s paid %s, %d callbacks, %d processed, %d flags", st.Status, st.AmountPaid, st.Callbacks,
				f.Count(t, id, invoice.TypePaymentProcessed), f.Count(t, id, invoice.TypeFlagged))
		}
	})
}

func TestFlowForgedCallbacksCannotPay(t *testing.T) {
	t.Parallel()
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		f := newFlow(t, b)
		id, token := f.Invoice(t, "300.00", circoflows.Name)
		s := f.open(t, token)
		// What CircoFlows would send once paid, while the session is in
		// fact still pending.
		f.fake.Set(s.ID, "completed")
		body, good := f.fake.Webhook(s.ID, "")
		f.fake.Set(s.ID, "pending")
		tampered := []byte(strings.Replace(string(body), `"amount":30000`, `"amount":1`, 1))
		if string(tampered) == string(body) {
			t.Fatal("amount not found in the webhook body")
		}
		for name, c := range map[string]struct {
			body []byte
			sig  []string
		}{
			"unsigned":        {body, nil},
			"wrong secret":    {body, []string{circoflows.Sign("not the secret", body)}},
			"tampered body":   {tampered, good.Values(circoflows.SignatureHeader)},
			"two signatures":  {body, []string{good.Get(circoflows.SignatureHeader), good.Get(circoflows.SignatureHeader)}},
			"not hex":         {body, []string{"sha256=" + good.Get(circoflows.SignatureHeader)}},
			"truncated hmac":  {body, []string{good.Get(circoflows.SignatureHeader)[:32]}},
			"empty signature": {body, []string{""}},
		} {
			h := http.Header{"Content-Type": {"application/json"}}
			for _, v := range c.sig {
				h.Add(circoflows.SignatureHeader, v)
			}
			if r := f.Do(t, http.MethodPost, s.WebhookURL, c.body, h); r.Code != http.StatusBadRequest || !strings.Contains(r.Body, "bad_callback") {
				t.Errorf("%s: %d %s", name, r.Code, r.Body)
			}
		}
		st := f.State(t, id)
		if st.Status != invoice.StatusOpen || !st.AmountPaid.IsZero() || st.Callbacks != 0 || f.Count(t, id, invoice.TypePaymentProcessed) != 0 {
			t.Fatalf("forged: %s paid %s, %d callbacks kept", st.Status, st.AmountPaid, st.Callbacks)
		}
		// A genuine notice about another invoice's session, carrying this
		// invoice's reference, cannot settle this invoice's payment.
		_, token2 := f.Invoice(t, "1.00", circoflows.Name)
		other := f.open(t, token2)
		f.fake.Set(other.ID, "completed")
		ob, _ := f.fake.Webhook(other.ID, "")
		ob = []byte(strings.ReplaceAll(string(ob), other.Metadata["reference"], id))
		oh := http.Header{"Content-Type": {"application/json"}, circoflows.SignatureHeader: {circoflows.Sign(circoflowstest.WebhookSecret, ob)}}
		f.post(t, s, ob, oh)
		if st := f.State(t, id); st.Status != invoice.StatusOpen || f.Count(t, id, invoice.TypePaymentProcessed) != 0 || st.Callbacks != 1 {
			t.Fatalf("cross-invoice notice: %s, %d callbacks", st.Status, st.Callbacks)
		}
	})
}

func TestFlowUnknownSessionIsUnmatched(t *testing.T) {
	t.Parallel()
	f := newFlow(t, projectiontest.SQLite(t))
	body := f.fake.Sample("webhook_payment_succeeded.json") // a session nobody here created
	h := http.Header{"Content-Type": {"application/json"}, circoflows.SignatureHeader: {circoflows.Sign(circoflowstest.WebhookSecret, body)}}
	for range 2 {
		if r := f.Callback(t, circoflows.Name, body, h); r.Code != http.StatusOK {
			t.Fatalf("%d %s", r.Code, r.Body)
		}
	}
	kept := f.Unmatched(t, "callback-circoflows-sess_ABC123DEF456")
	if len(kept) != 1 || kept[0].Body != string(body) || !kept[0].Verified {
		t.Fatalf("unmatched: %+v", kept)
	}
}

func TestFlowCreateFailuresWriteNothing(t *testing.T) {
	t.Parallel()
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		f := newFlow(t, b, func(c *circoflows.Config) { c.Timeout = 150 * time.Millisecond })
		id, token := f.Invoice(t, "10.00", circoflows.Name)
		f.fake.Fail(circoflowstest.RouteCreate, 1, http.StatusInternalServerError)
		r := f.Visit(t, token)
		if r.Code != http.StatusServiceUnavailable || !strings.Contains(r.Body, "Try again") || f.Count(t, id, invoice.TypePaymentInitiated) != 0 || len(f.fake.Payments()) != 0 {
			t.Fatalf("5xx: %d, %d payments, %d sessions", r.Code, f.Count(t, id, invoice.TypePaymentInitiated), len(f.fake.Payments()))
		}
		retry := r.Action(t)
		// A create is never retried by the client: one call per visit.
		if n := f.fake.Calls(circoflowstest.RouteCreate); n != 1 {
			t.Fatalf("%d creates for one visit", n)
		}
		f.fake.Hang(circoflowstest.RouteCreate, 1)
		if r := f.Do(t, http.MethodPost, retry, nil, nil); r.Code != http.StatusServiceUnavailable || f.Count(t, id, invoice.TypePaymentInitiated) != 0 {
			t.Fatalf("timeout: %d", r.Code)
		}
		r = f.Do(t, http.MethodPost, retry, nil, nil)
		ps := f.fake.Payments()
		if r.Code != http.StatusFound || len(ps) != 1 || r.Location != f.fake.URL+"/pay/"+ps[0].ID || f.Count(t, id, invoice.TypePaymentInitiated) != 1 {
			t.Fatalf("recovered: %d %q, %d sessions", r.Code, r.Location, len(ps))
		}
		if ps[0].Metadata["reference"] != id {
			t.Fatalf("reference %q: failed attempts must not use up attempt numbers", ps[0].Metadata["reference"])
		}
	})
}

func TestFlowJanitor(t *testing.T) {
	t.Parallel()
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		f := newFlow(t, b)
		paid, t1 := f.Invoice(t, "10.00", circoflows.Name)
		expired, t2 := f.Invoice(t, "20.00", circoflows.Name)
		waiting, t3 := f.Invoice(t, "30.00", circoflows.Name)
		reversed, t4 := f.Invoice(t, "40.00", circoflows.Name)
		s1, s2 := f.open(t, t1), f.open(t, t2)
		f.open(t, t3) // nothing happens to it
		s4 := f.open(t, t4)
		f.fake.Set(s1.ID, "completed") // its webhook was lost
		f.fake.Set(s2.ID, "expired")   // 410 session_expired
		f.fake.Set(s4.ID, "completed")
		f.webhook(t, s4, "")
		f.fake.Set(s4.ID, "cancelled") // CircoFlows now contradicts what it told us
		f.Env.Clock.Advance(16 * time.Minute)
		rep := f.Sweep(t)
		if rep.Checked != 4 || rep.Settled != 2 || rep.Flagged != 1 || rep.Pending != 1 || rep.Errors != 0 {
			t.Fatalf("sweep %+v", rep)
		}
		if st := f.State(t, paid); st.Status != invoice.StatusPaid || st.AmountPaid.String() != "10.00" {
			t.Errorf("paid: %s %s", st.Status, st.AmountPaid)
		}
		if st := f.State(t, expired); st.Payments[0].Status != invoice.PaymentStatusFailed || st.Payments[0].FailureCode != "expired" {
			t.Errorf("expired: %+v", st.Payments)
		}
		if st := f.State(t, waiting); st.Payments[0].Status != invoice.PaymentStatusInitiated {
			t.Errorf("waiting: %+v", st.Payments)
		}
		if st := f.State(t, reversed); st.Status != invoice.StatusPaid || !callbackstest.HasFlag(st, invoice.FlagProviderStatusMismatch) {
			t.Errorf("reversed: %s %+v", st.Status, st.Payments)
		}
		// A second sweep right away asks nobody: the settled ones are
		// confirmed, the waiting one backs off.
		if rep := f.Sweep(t); rep.Checked != 0 {
			t.Fatalf("second sweep %+v", rep)
		}
	})
}
