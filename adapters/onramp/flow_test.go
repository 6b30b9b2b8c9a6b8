package onramp_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/payledger/payledger/adapters/callbacks"
	"github.com/payledger/payledger/adapters/callbacks/callbackstest"
	"github.com/payledger/payledger/adapters/onramp"
	"github.com/payledger/payledger/adapters/onramp/onramptest"
	"github.com/payledger/payledger/adapters/provider"
	"github.com/payledger/payledger/domain/invoice"
	"github.com/payledger/payledger/internal/paytest"
	"github.com/payledger/payledger/projections"
	"github.com/payledger/payledger/projections/projectiontest"
)

// The payer and webhook journeys through the provider bridge, against the
// fake platform on the seed's samples, for both payment types and on both
// stores. The platform does not sign its webhooks, so every one is a hint
// the bridge confirms with a retrieve before it books anything.

const externalData = "partner-tx-5521"

// types are the payment types the adapter drives, each with its client
// configuration on a fake.
var types = []struct {
	name string
	cfg  func(*onramptest.Fake) onramp.Config
}{
	{onramp.TypeCheckout, func(f *onramptest.Fake) onramp.Config { return f.Config() }},
	{onramp.TypeExternal, func(f *onramptest.Fake) onramp.Config {
		c := f.Config()
		c.Type, c.ExternalData = onramp.TypeExternal, externalData
		return c
	}},
}

// eachType runs fn for both payment types on both stores.
func eachType(t *testing.T, fn func(t *testing.T, typ string, b projections.Backend)) {
	t.Parallel()
	for _, ty := range types {
		t.Run(ty.name, func(t *testing.T) {
			t.Parallel()
			projectiontest.Backends(t, func(t *testing.T, b projections.Backend) { fn(t, ty.name, b) })
		})
	}
}

type flow struct {
	*callbackstest.Harness
	fake *onramptest.Fake
	typ  string
}

func newFlow(t *testing.T, typ string, b projections.Backend, mod ...func(*onramp.Config)) flow {
	t.Helper()
	f := onramptest.New(t)
	cfg := f.Config()
	for _, ty := range types {
		if ty.name == typ {
			cfg = ty.cfg(f)
		}
	}
	for _, m := range mod {
		m(&cfg)
	}
	c, err := onramp.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := callbackstest.New(t, b.(paytest.Store), callbacks.Options{CreateTimeout: 2 * time.Second, StatusTimeout: 2 * time.Second},
		callbacks.JanitorOptions{After: 15 * time.Minute}, c)
	return flow{h, f, typ}
}

// open visits the link and returns the platform payment it created.
func (f flow) open(t *testing.T, token string) onramptest.Payment {
	t.Helper()
	r := f.Visit(t, token)
	ps := f.fake.Payments()
	if r.Code != http.StatusFound || len(ps) == 0 {
		t.Fatalf("visit: %d %q %s", r.Code, r.Location, r.Body)
	}
	p := ps[len(ps)-1]
	if r.Location != f.fake.URL+"/checkout/"+p.PaymentID {
		t.Fatalf("redirected to %q, want the payer URL of %s", r.Location, p.PaymentID)
	}
	if p.Type != f.typ {
		t.Fatalf("payment type %q, want %q", p.Type, f.typ)
	}
	return p
}

// webhook posts the platform's notification for the payment's current
// state to the webhookUrl it was given.
func (f flow) webhook(t *testing.T, p onramptest.Payment) callbackstest.Response {
	t.Helper()
	body, h := f.fake.Webhook(p.PaymentID)
	return f.post(t, p, body, h)
}

func (f flow) post(t *testing.T, p onramptest.Payment, body []byte, h http.Header) callbackstest.Response {
	t.Helper()
	r := f.Do(t, http.MethodPost, p.WebhookURL, body, h)
	if r.Code != http.StatusOK {
		t.Fatalf("webhook: %d %s", r.Code, r.Body)
	}
	return r
}

// back is the platform's redirect to the success or failure URL, with
// the cko-* ids it appends.
func (f flow) back(t *testing.T, p onramptest.Payment, success bool) callbackstest.Response {
	t.Helper()
	u := p.FailureURL
	if success {
		u = p.SuccessURL
	}
	return f.Do(t, http.MethodGet, u+"&"+f.fake.Return(p.PaymentID).Encode(), nil, nil)
}

func TestFlowPaid(t *testing.T) {
	eachType(t, func(t *testing.T, typ string, b projections.Backend) {
		f := newFlow(t, typ, b)
		id, token := f.Invoice(t, "123.45", onramp.Name)
		p := f.open(t, token)
		if p.InvoiceID != id || p.Amount != "123.45" || p.Currency != "USD" || p.WebhookURL != f.Server.URL+"/callbacks/onramp?ref="+id ||
			!strings.HasPrefix(p.SuccessURL, f.Server.URL+"/pay/return/"+id+"/") || !strings.HasPrefix(p.FailureURL, f.Server.URL+"/pay/return/"+id+"/") {
			t.Fatalf("platform payment %+v", p)
		}
		if want := map[string]string{onramp.TypeCheckout: "", onramp.TypeExternal: externalData}[typ]; p.SomeData != want {
			t.Fatalf("someData %q, want %q", p.SomeData, want)
		}
		st := f.State(t, id)
		if len(st.Payments) != 1 || st.Payments[0].ProviderRef != onramp.Ref(id, p.PaymentID) || st.Payments[0].Status != invoice.PaymentStatusInitiated {
			t.Fatalf("payments %+v", st.Payments)
		}
		f.webhook(t, p) // PENDING
		if st := f.State(t, id); st.Status != invoice.StatusOpen || st.Callbacks != 1 {
			t.Fatalf("after pending: %s, %d callbacks", st.Status, st.Callbacks)
		}
		f.fake.Set(p.PaymentID, "PAID")
		before := f.fake.Calls(onramptest.RoutePayments)
		f.webhook(t, p)
		if f.fake.Calls(onramptest.RoutePayments) != before+1 {
			t.Fatal("the unsigned webhook was booked without a retrieve")
		}
		st = f.State(t, id)
		if st.Status != invoice.StatusPaid || st.AmountPaid.String() != "123.45" || st.Payments[0].Amount != "123.45" {
			t.Fatalf("paid: %s %s %+v", st.Status, st.AmountPaid, st.Payments)
		}
		for _, e := range f.Events(t, id) {
			if c, ok := e.(invoice.CallbackReceived); ok && (c.Verified || c.Provider != onramp.Name || c.ProviderRef != onramp.Ref(id, p.PaymentID)) {
				t.Errorf("kept callback %+v", c)
			}
		}
		r := f.back(t, p, true)
		if r.Code != http.StatusOK || !strings.Contains(r.Body, "Payment received") || !strings.Contains(r.Body, "123.45 USD") {
			t.Fatalf("success page: %d %s", r.Code, r.Body)
		}
	})
}

func TestFlowReturnConfirmsWithoutWebhook(t *testing.T) {
	t.Parallel()
	for _, ty := range types {
		t.Run(ty.name, func(t *testing.T) {
			t.Parallel()
			f := newFlow(t, ty.name, projectiontest.SQLite(t))
			id, token := f.Invoice(t, "10.00", onramp.Name)
			p := f.open(t, token)
			// Landing on the success URL proves nothing: the platform still
			// says PENDING, so the page waits.
			if r := f.back(t, p, true); r.Code != http.StatusOK || !strings.Contains(r.Body, "Confirming your payment") {
				t.Fatalf("early success return: %d %s", r.Code, r.Body)
			}
			if st := f.State(t, id); st.Status != invoice.StatusOpen {
				t.Fatalf("paid on the redirect alone: %s", st.Status)
			}
			f.fake.Set(p.PaymentID, "PAID")
			if r := f.back(t, p, true); r.Code != http.StatusOK || !strings.Contains(r.Body, "Payment received") {
				t.Fatalf("success return: %d %s", r.Code, r.Body)
			}
			if st := f.State(t, id); st.Status != invoice.StatusPaid {
				t.Fatalf("status %s", st.Status)
			}
		})
	}
}

func TestFlowDeclinedExpiredAndRetried(t *testing.T) {
	eachType(t, func(t *testing.T, typ string, b projections.Backend) {
		f := newFlow(t, typ, b)
		for _, c := range []struct{ word, code string }{{"FAILED", "failed"}, {"EXPIRED", "expired"}, {"Cancelled", "cancelled"}} {
			id, token := f.Invoice(t, "50.00", onramp.Name)
			p := f.open(t, token)
			f.fake.Set(p.PaymentID, c.word)
			f.webhook(t, p)
			st := f.State(t, id)
			if st.Status != invoice.StatusOpen || st.Payments[0].Status != invoice.PaymentStatusFailed || st.Payments[0].FailureCode != c.code ||
				f.Count(t, id, invoice.TypePaymentFailed) != 1 {
				t.Fatalf("%s: %s %+v", c.word, st.Status, st.Payments)
			}
			r := f.back(t, p, false)
			if r.Code != http.StatusOK || !strings.Contains(r.Body, "Payment not completed") {
				t.Fatalf("%s: failure page %d %s", c.word, r.Code, r.Body)
			}
			if c.word != "FAILED" {
				continue
			}
			// Try again: a second platform payment under the second
			// attempt's invoiceId, paid this time.
			r = f.Do(t, http.MethodPost, r.Action(t), nil, nil)
			p2, ok := f.fake.ByInvoice(id + "~2")
			if r.Code != http.StatusFound || !ok || r.Location != f.fake.URL+"/checkout/"+p2.PaymentID {
				t.Fatalf("retry: %d %q", r.Code, r.Location)
			}
			f.fake.Set(p2.PaymentID, "PAID")
			f.webhook(t, p2)
			if st := f.State(t, id); st.Status != invoice.StatusPaid || len(st.Payments) != 2 || st.Payments[1].ProviderRef != onramp.Ref(id+"~2", p2.PaymentID) {
				t.Fatalf("second attempt: %s %+v", st.Status, st.Payments)
			}
		}
	})
}

func TestFlowLatePaymentAfterOurExpiry(t *testing.T) {
	eachType(t, func(t *testing.T, typ string, b projections.Backend) {
		f := newFlow(t, typ, b)
		id, token := f.InvoiceIn(t, "0.015", "BTC", onramp.Name, 20*time.Minute)
		p := f.open(t, token)
		if p.Amount != "0.01500000" || p.Currency != "BTC" {
			t.Fatalf("amount sent %s %s", p.Amount, p.Currency)
		}
		f.Env.Clock.Advance(21 * time.Minute)
		if _, err := f.Env.Service.Execute(context.Background(), id, invoice.Expire{}); err != nil {
			t.Fatal(err)
		}
		f.fake.Set(p.PaymentID, "PAID")
		f.webhook(t, p)
		st := f.State(t, id)
		if st.Status != invoice.StatusExpired || st.AmountPaid.String() != "0.01500000" || !callbackstest.HasFlag(st, invoice.FlagLatePayment) {
			t.Fatalf("late: %s paid %s %+v", st.Status, st.AmountPaid, st.Payments)
		}
	})
}

func TestFlowDuplicateAndOutOfOrder(t *testing.T) {
	eachType(t, func(t *testing.T, typ string, b projections.Backend) {
		f := newFlow(t, typ, b)
		id, token := f.Invoice(t, "99.99", onramp.Name)
		p := f.open(t, token)
		pending, ph := f.fake.Webhook(p.PaymentID)
		f.fake.Set(p.PaymentID, "PAID")
		paid, h := f.fake.Webhook(p.PaymentID)
		f.post(t, p, paid, h)
		if r := f.post(t, p, paid, h); !strings.Contains(r.Body, `"duplicate":true`) {
			t.Fatalf("duplicate not recognised: %s", r.Body)
		}
		f.post(t, p, pending, ph) // the PENDING notice, delivered last
		st := f.State(t, id)
		if st.Status != invoice.StatusPaid || st.AmountPaid.String() != "99.99" || st.Callbacks != 2 ||
			f.Count(t, id, invoice.TypePaymentProcessed) != 1 || f.Count(t, id, invoice.TypeFlagged) != 0 {
			t.Fatalf("%s paid %s, %d callbacks, %d processed, %d flags", st.Status, st.AmountPaid, st.Callbacks,
				f.Count(t, id, invoice.TypePaymentProcessed), f.Count(t, id, invoice.TypeFlagged))
		}
	})
}

func TestFlowUnsignedHintsAreConfirmed(t *testing.T) {
	eachType(t, func(t *testing.T, typ string, b projections.Backend) {
		f := newFlow(t, typ, b)
		id, token := f.Invoice(t, "300.00", onramp.Name)
		p := f.open(t, token)
		other, token2 := f.Invoice(t, "5.00", onramp.Name)
		q := f.open(t, token2)
		hint := func(invoiceID, paymentID, status, amount string) []byte {
			return []byte(`{"payload":{"paymentId":"` + paymentID + `","invoiceId":"` + invoiceID + `","status":"` + status +
				`","amount":` + amount + `,"currency":"USD","paymentDate":1721718945000}}`)
		}
		hdr := http.Header{"Content-Type": {"application/json"}}
		// PAID while the platform says PENDING; a payment the platform
		// does not know; the other invoice's payment under this invoice.
		for _, body := range [][]byte{
			hint(id, p.PaymentID, "PAID", "300.00"),
			hint(id, "pmt_forged", "PAID", "300.00"),
			hint(id, q.PaymentID, "PAID", "5.00"),
		} {
			f.post(t, p, body, hdr)
		}
		st := f.State(t, id)
		if st.Status != invoice.StatusOpen || !st.AmountPaid.IsZero() || st.Callbacks != 3 || f.Count(t, id, invoice.TypePaymentProcessed) != 0 {
			t.Fatalf("forged hints: %s paid %s, %d callbacks", st.Status, st.AmountPaid, st.Callbacks)
		}
		// Paid for real, announced with a wrong amount: the platform's own
		// answer is what is booked.
		f.fake.Set(p.PaymentID, "PAID")
		f.post(t, p, hint(id, p.PaymentID, "PAID", "1.00"), hdr)
		st = f.State(t, id)
		if st.Status != invoice.StatusPaid || st.AmountPaid.String() != "300.00" || callbackstest.HasFlag(st, invoice.FlagAmountMismatch) {
			t.Fatalf("paid: %s %s %+v", st.Status, st.AmountPaid, st.Payments)
		}
		if st := f.State(t, other); st.Status != invoice.StatusOpen || st.Callbacks != 0 {
			t.Fatalf("the other invoice: %s, %d callbacks", st.Status, st.Callbacks)
		}
		// Garbage is refused without being kept.
		for _, body := range []string{`{"payload":{"paymentId":"x","invoiceId":"` + id + `","status":"PAID","amount":"lots","currency":"USD"}}`, `not json`, `{"payload":{"status":"SHIPPED","invoiceId":"` + id + `"}}`} {
			if r := f.Callback(t, onramp.Name, []byte(body), nil); r.Code != http.StatusBadRequest {
				t.Errorf("garbage %s: %d", body, r.Code)
			}
		}
		if st := f.State(t, id); st.Callbacks != 4 {
			t.Fatalf("%d callbacks kept", st.Callbacks)
		}
	})
}

func TestFlowUnknownInvoiceIsUnmatched(t *testing.T) {
	t.Parallel()
	f := newFlow(t, onramp.TypeCheckout, projectiontest.SQLite(t))
	body := f.fake.Sample("webhook_external_paid.json") // an invoice nobody here created
	for range 2 {
		if r := f.Callback(t, onramp.Name, body, nil); r.Code != http.StatusOK {
			t.Fatalf("%d %s", r.Code, r.Body)
		}
	}
	// The reference has a slash, so the stream is named after its digest.
	sum := sha256.Sum256([]byte(onramp.Ref("inv_0190d7a1b2c34d5e8f9a0b1c2d3e4f50", "pmt_7f3c2a9e41b84d0c")))
	kept := f.Unmatched(t, "callback-onramp-h"+hex.EncodeToString(sum[:12]))
	if len(kept) != 1 || kept[0].Body != string(body) || kept[0].Verified {
		t.Fatalf("unmatched: %+v", kept)
	}
	if n := f.fake.Calls(onramptest.RoutePayments); n != 0 {
		t.Fatalf("%d platform calls for a callback naming no invoice of ours", n)
	}
}

func TestFlowCreateFailuresWriteNothing(t *testing.T) {
	eachType(t, func(t *testing.T, typ string, b projections.Backend) {
		f := newFlow(t, typ, b, func(c *onramp.Config) { c.Timeout = 150 * time.Millisecond })
		id, token := f.Invoice(t, "10.00", onramp.Name)
		f.fake.Fail(onramptest.RoutePayments, 1, http.StatusInternalServerError)
		r := f.Visit(t, token)
		if r.Code != http.StatusServiceUnavailable || !strings.Contains(r.Body, "Try again") || f.Count(t, id, invoice.TypePaymentInitiated) != 0 || len(f.fake.Payments()) != 0 {
			t.Fatalf("5xx: %d, %d payments, %d platform payments", r.Code, f.Count(t, id, invoice.TypePaymentInitiated), len(f.fake.Payments()))
		}
		retry := r.Action(t)
		f.fake.Hang(onramptest.RoutePayments, 1)
		if r := f.Do(t, http.MethodPost, retry, nil, nil); r.Code != http.StatusServiceUnavailable || f.Count(t, id, invoice.TypePaymentInitiated) != 0 {
			t.Fatalf("timeout: %d", r.Code)
		}
		if n := f.fake.Calls(onramptest.RoutePayments); n != 2 {
			t.Fatalf("%d creates for two visits: a create is sent once", n)
		}
		if typ == onramp.TypeExternal {
			// The payment is created but its update fails: still nothing
			// booked, and the next try finds the same platform payment.
			f.fake.Fail(onramptest.RouteUpdate, 1, http.StatusBadGateway)
			if r := f.Do(t, http.MethodPost, retry, nil, nil); r.Code != http.StatusServiceUnavailable || f.Count(t, id, invoice.TypePaymentInitiated) != 0 || len(f.fake.Payments()) != 1 {
				t.Fatalf("update failed: %d", r.Code)
			}
		}
		r = f.Do(t, http.MethodPost, retry, nil, nil)
		ps := f.fake.Payments()
		if r.Code != http.StatusFound || len(ps) != 1 || r.Location != f.fake.URL+"/checkout/"+ps[0].PaymentID || f.Count(t, id, invoice.TypePaymentInitiated) != 1 || ps[0].InvoiceID != id {
			t.Fatalf("recovered: %d %q, %d platform payments", r.Code, r.Location, len(ps))
		}
		if st := f.State(t, id); st.Payments[0].ProviderRef != onramp.Ref(id, ps[0].PaymentID) {
			t.Fatalf("payments %+v", st.Payments)
		}
	})
}

// A create whose answer was lost leaves a platform payment under the
// attempt's invoiceId; create-or-retrieve hands it back on the next try,
// finished by then. The bridge books what the platform says and, for a
// failed one, goes on with a new attempt instead of a retry page for ever.
func TestFlowCreateFindsAnEarlierFinishedPayment(t *testing.T) {
	eachType(t, func(t *testing.T, typ string, b projections.Backend) {
		f := newFlow(t, typ, b)
		cfg := f.fake.Config()
		if typ == onramp.TypeExternal {
			cfg.Type, cfg.ExternalData = onramp.TypeExternal, externalData
		}
		direct, err := onramp.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		lost := func(id string) onramptest.Payment {
			t.Helper()
			req := provider.CreateRequest{InvoiceID: id, Reference: id, Amount: f.State(t, id).Amount, Description: "lost"}
			if _, err := direct.Create(context.Background(), req); err != nil {
				t.Fatal(err)
			}
			p, _ := f.fake.ByInvoice(id)
			return p
		}

		expired, token := f.Invoice(t, "20.00", onramp.Name)
		f.fake.Set(lost(expired).PaymentID, "EXPIRED")
		r := f.Visit(t, token)
		p2, ok := f.fake.ByInvoice(expired + "~2")
		if r.Code != http.StatusFound || !ok || r.Location != f.fake.URL+"/checkout/"+p2.PaymentID {
			t.Fatalf("after an expired earlier payment: %d %q %s", r.Code, r.Location, r.Body)
		}
		st := f.State(t, expired)
		if len(st.Payments) != 2 || st.Payments[0].Status != invoice.PaymentStatusFailed || st.Payments[0].FailureCode != "expired" ||
			st.Payments[1].Status != invoice.PaymentStatusInitiated {
			t.Fatalf("payments %+v", st.Payments)
		}

		paid, token := f.Invoice(t, "30.00", onramp.Name)
		f.fake.Set(lost(paid).PaymentID, "PAID")
		r = f.Visit(t, token)
		if r.Code != http.StatusOK || !strings.Contains(r.Body, "Payment received") {
			t.Fatalf("after a paid earlier payment: %d %s", r.Code, r.Body)
		}
		if st := f.State(t, paid); st.Status != invoice.StatusPaid || st.AmountPaid.String() != "30.00" || len(st.Payments) != 1 {
			t.Fatalf("paid: %s %+v", st.Status, st.Payments)
		}
	})
}

func TestFlowJanitor(t *testing.T) {
	eachType(t, func(t *testing.T, typ string, b projections.Backend) {
		f := newFlow(t, typ, b)
		paid, t1 := f.Invoice(t, "10.00", onramp.Name)
		expired, t2 := f.Invoice(t, "20.00", onramp.Name)
		waiting, t3 := f.Invoice(t, "30.00", onramp.Name)
		reversed, t4 := f.Invoice(t, "40.00", onramp.Name)
		p1, p2 := f.open(t, t1), f.open(t, t2)
		f.open(t, t3) // nothing happens to it
		p4 := f.open(t, t4)
		f.fake.Set(p1.PaymentID, "PAID") // its webhook was lost
		f.fake.Set(p2.PaymentID, "EXPIRED")
		f.fake.Set(p4.PaymentID, "PAID")
		f.webhook(t, p4)
		f.fake.Set(p4.PaymentID, "FAILED") // the platform now contradicts what it told us
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
		if rep := f.Sweep(t); rep.Checked != 0 {
			t.Fatalf("second sweep %+v", rep)
		}
	})
}
