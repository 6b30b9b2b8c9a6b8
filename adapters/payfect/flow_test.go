package payfect_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/payledger/payledger/adapters/callbacks"
	"github.com/payledger/payledger/adapters/callbacks/callbackstest"
	"github.com/payledger/payledger/adapters/payfect"
	"github.com/payledger/payledger/adapters/payfect/payfecttest"
	"github.com/payledger/payledger/domain/invoice"
	"github.com/payledger/payledger/internal/paytest"
	"github.com/payledger/payledger/projections"
	"github.com/payledger/payledger/projections/projectiontest"
)

type flow struct {
	*callbackstest.Harness
	fake *payfecttest.Fake
}

func newFlow(t *testing.T, b projections.Backend, mod ...func(*payfect.Config)) flow {
	t.Helper()
	f := payfecttest.New(t)
	h := callbackstest.New(t, b.(paytest.Store), callbacks.Options{CreateTimeout: 2 * time.Second, StatusTimeout: 2 * time.Second},
		callbacks.JanitorOptions{After: 15 * time.Minute}, client(t, f, mod...))
	return flow{h, f}
}

func (f flow) open(t *testing.T, token string) payfecttest.Checkout {
	t.Helper()
	r := f.Visit(t, token)
	cos := f.fake.Checkouts()
	if r.Code != http.StatusFound || len(cos) == 0 || r.Location != f.fake.URL+"/checkouts/"+cos[len(cos)-1].ID {
		t.Fatalf("visit: %d %q %s", r.Code, r.Location, r.Body)
	}
	return cos[len(cos)-1]
}

// callback posts the checkout to the callback_url Payfect was given.
func (f flow) callback(t *testing.T, co payfecttest.Checkout, body []byte) callbackstest.Response {
	t.Helper()
	r := f.Do(t, http.MethodPost, co.CallbackURL, body, http.Header{"Content-Type": {"application/json"}})
	if r.Code != http.StatusOK {
		t.Fatalf("callback: %d %s", r.Code, r.Body)
	}
	return r
}

func TestFlowPaidInUSDT(t *testing.T) {
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		f := newFlow(t, b)
		id, token := f.InvoiceIn(t, "20.5", "USDT", payfect.Name, 0)
		co := f.open(t, token)
		if co.Reference != id || co.Total != "20.50" || co.Currency != "usdt" || !strings.HasPrefix(co.CallbackURL, f.Server.URL+"/callbacks/payfect?ref=") {
			t.Fatalf("checkout %+v", co)
		}
		// The seed's sample echoes clientReferenceId as null; the
		// callback URL carries our reference instead.
		f.callback(t, co, f.fake.Document(co.ID))
		if st := f.State(t, id); st.Status != invoice.StatusOpen || st.Callbacks != 1 {
			t.Fatalf("open: %s, %d callbacks", st.Status, st.Callbacks)
		}
		f.fake.Set(co.ID, "complete")
		f.callback(t, co, f.fake.Document(co.ID))
		st := f.State(t, id)
		if st.Status != invoice.StatusPaid || st.AmountPaid.String() != "20.500000" || st.Payments[0].ProviderRef != co.ID {
			t.Fatalf("paid: %s %s %+v", st.Status, st.AmountPaid, st.Payments)
		}
		r := f.Do(t, http.MethodGet, co.SuccessURL, nil, nil)
		if r.Code != http.StatusOK || !strings.Contains(r.Body, "Payment received") {
			t.Fatalf("success page: %d %s", r.Code, r.Body)
		}
	})
}

func TestFlowExpired(t *testing.T) {
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		f := newFlow(t, b)
		id, token := f.Invoice(t, "15.00", payfect.Name)
		co := f.open(t, token)
		f.fake.Set(co.ID, "expired")
		f.callback(t, co, f.fake.Document(co.ID))
		st := f.State(t, id)
		if st.Status != invoice.StatusOpen || st.Payments[0].Status != invoice.PaymentStatusFailed || st.Payments[0].FailureCode != "expired" || f.Count(t, id, invoice.TypePaymentFailed) != 1 {
			t.Fatalf("expired: %+v", st.Payments)
		}
		// The payer came back through cancel_url: told so, offered a new
		// checkout, which is a second attempt.
		r := f.Do(t, http.MethodGet, co.CancelURL, nil, nil)
		if r.Code != http.StatusOK || !strings.Contains(r.Body, "expired") {
			t.Fatalf("cancel page: %d %s", r.Code, r.Body)
		}
		if r := f.Do(t, http.MethodPost, r.Action(t), nil, nil); r.Code != http.StatusFound || len(f.fake.Checkouts()) != 2 {
			t.Fatalf("new checkout: %d, %d checkouts", r.Code, len(f.fake.Checkouts()))
		}
		if cos := f.fake.Checkouts(); cos[1].Reference != id+"~2" {
			t.Fatalf("second reference %q", cos[1].Reference)
		}
	})
}

func TestFlowDuplicateOutOfOrderAndForged(t *testing.T) {
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		f := newFlow(t, b)
		f.fake.EchoReference(true)
		id, token := f.Invoice(t, "49.99", payfect.Name)
		co := f.open(t, token)
		// Forged: "complete" while Payfect says open.
		f.callback(t, co, f.fake.DocumentAs(co.ID, "complete"))
		if st := f.State(t, id); st.Status != invoice.StatusOpen || f.Count(t, id, invoice.TypePaymentProcessed) != 0 {
			t.Fatalf("forged callback paid: %s", st.Status)
		}
		// Posted to the bare endpoint with no ?ref, the echoed reference
		// finds the invoice.
		f.fake.Set(co.ID, "complete")
		complete := f.fake.Document(co.ID)
		if r := f.Callback(t, payfect.Name, complete, nil); r.Code != http.StatusOK {
			t.Fatal(r.Code)
		}
		if r := f.Callback(t, payfect.Name, complete, nil); !strings.Contains(r.Body, `"duplicate":true`) {
			t.Fatalf("duplicate: %s", r.Body)
		}
		f.callback(t, co, f.fake.DocumentAs(co.ID, "open")) // late "open"
		st := f.State(t, id)
		if st.Status != invoice.StatusPaid || st.AmountPaid.String() != "49.99" || f.Count(t, id, invoice.TypePaymentProcessed) != 1 || f.Count(t, id, invoice.TypeFlagged) != 0 {
			t.Fatalf("%s %s, %d processed, %d flags", st.Status, st.AmountPaid, f.Count(t, id, invoice.TypePaymentProcessed), f.Count(t, id, invoice.TypeFlagged))
		}
	})
}

func TestFlowUnknownCheckoutIsUnmatched(t *testing.T) {
	t.Parallel()
	f := newFlow(t, projectiontest.SQLite(t))
	body := f.fake.Sample("create_response.json") // a checkout nobody here created
	if r := f.Callback(t, payfect.Name, body, nil); r.Code != http.StatusOK {
		t.Fatalf("%d %s", r.Code, r.Body)
	}
	kept := f.Unmatched(t, "callback-payfect-ed8d24aa-a860-426b-8e56-87cb9f55a081")
	if len(kept) != 1 || kept[0].Body != string(body) {
		t.Fatalf("unmatched: %+v", kept)
	}
}

func TestFlowCreateFailuresWriteNothing(t *testing.T) {
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		f := newFlow(t, b, func(c *payfect.Config) { c.Timeout = 100 * time.Millisecond })
		id, token := f.Invoice(t, "10.00", payfect.Name)
		f.fake.FailCreates(1, http.StatusInternalServerError, false)
		r := f.Visit(t, token)
		if r.Code != http.StatusServiceUnavailable || f.Count(t, id, invoice.TypePaymentInitiated) != 0 {
			t.Fatalf("5xx: %d, %d payments", r.Code, f.Count(t, id, invoice.TypePaymentInitiated))
		}
		retry := r.Action(t)
		f.fake.Delay(time.Second)
		if r := f.Do(t, http.MethodPost, retry, nil, nil); r.Code != http.StatusServiceUnavailable || f.Count(t, id, invoice.TypePaymentInitiated) != 0 || len(f.fake.Checkouts()) != 0 {
			t.Fatalf("timeout: %d", r.Code)
		}
		f.fake.Delay(0)
		if r := f.Do(t, http.MethodPost, retry, nil, nil); r.Code != http.StatusFound || f.Count(t, id, invoice.TypePaymentInitiated) != 1 || len(f.fake.Checkouts()) != 1 {
			t.Fatalf("recovered: %d", r.Code)
		}
	})
}

func TestFlowJanitor(t *testing.T) {
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		f := newFlow(t, b)
		id, token := f.Invoice(t, "30.00", payfect.Name)
		co := f.open(t, token)
		f.fake.Set(co.ID, "complete")
		f.Env.Clock.Advance(16 * time.Minute)
		if rep := f.Sweep(t); rep.Settled != 1 || rep.Checked != 1 {
			t.Fatalf("sweep %+v", rep)
		}
		if st := f.State(t, id); st.Status != invoice.StatusPaid || st.AmountPaid.String() != "30.00" {
			t.Fatalf("%s %s", st.Status, st.AmountPaid)
		}
	})
}
