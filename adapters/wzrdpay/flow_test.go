package wzrdpay_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/payledger/payledger/adapters/callbacks"
	"github.com/payledger/payledger/adapters/callbacks/callbackstest"
	"github.com/payledger/payledger/adapters/wzrdpay"
	"github.com/payledger/payledger/adapters/wzrdpay/wzrdpaytest"
	"github.com/payledger/payledger/domain/invoice"
	"github.com/payledger/payledger/internal/paytest"
	"github.com/payledger/payledger/projections"
	"github.com/payledger/payledger/projections/projectiontest"
)

type flow struct {
	*callbackstest.Harness
	fake *wzrdpaytest.Fake
}

func newFlow(t *testing.T, b projections.Backend, mod ...func(*wzrdpay.Config)) flow {
	t.Helper()
	f := wzrdpaytest.New(t)
	c := client(t, f, mod...)
	h := callbackstest.New(t, b.(paytest.Store), callbacks.Options{CreateTimeout: 2 * time.Second, StatusTimeout: 2 * time.Second},
		callbacks.JanitorOptions{After: 15 * time.Minute}, c)
	return flow{h, f}
}

// open visits the link and returns the provider's invoice it created.
func (f flow) open(t *testing.T, token string) wzrdpaytest.Invoice {
	t.Helper()
	r := f.Visit(t, token)
	invs := f.fake.Invoices()
	if r.Code != http.StatusFound || len(invs) == 0 {
		t.Fatalf("visit: %d %q %s", r.Code, r.Location, r.Body)
	}
	inv := invs[len(invs)-1]
	if r.Location != f.fake.URL+"/redirect/hpp/?cpi="+inv.ID {
		t.Fatalf("redirected to %q, want the hpp_url of %s", r.Location, inv.ID)
	}
	return inv
}

func (f flow) callback(t *testing.T, body []byte) callbackstest.Response {
	t.Helper()
	r := f.Callback(t, wzrdpay.Name, body, nil)
	if r.Code != http.StatusOK {
		t.Fatalf("callback: %d %s", r.Code, r.Body)
	}
	return r
}

func TestFlowPaid(t *testing.T) {
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		f := newFlow(t, b)
		id, token := f.Invoice(t, "123.45", wzrdpay.Name)
		inv := f.open(t, token)
		if inv.ReferenceID != id || inv.Amount != "123.45" || inv.Currency != "USD" || inv.CallbackURL != f.Server.URL+"/callbacks/wzrdpay?ref="+id {
			t.Fatalf("provider invoice %+v", inv)
		}
		st := f.State(t, id)
		if len(st.Payments) != 1 || st.Payments[0].ProviderRef != inv.ID || st.Payments[0].Status != invoice.PaymentStatusInitiated {
			t.Fatalf("payments %+v", st.Payments)
		}
		// "Sends a Callback to the merchant notifying them about successful
		// invoice creation": pending, changes nothing.
		f.callback(t, f.fake.Document(inv.ID))
		if st := f.State(t, id); st.Status != invoice.StatusOpen || st.Callbacks != 1 {
			t.Fatalf("after pending: %s", st.Status)
		}
		f.fake.Set(inv.ID, "processed", "ok", "")
		f.callback(t, f.fake.Document(inv.ID))
		st = f.State(t, id)
		p := st.Payments[0]
		if st.Status != invoice.StatusPaid || st.AmountPaid.String() != "123.45" || p.Amount != "123.45" || p.CardBrand != "mastercard" || p.CardLast4 != "0000" {
			t.Fatalf("paid: %s %s %+v", st.Status, st.AmountPaid, p)
		}
		// Every body is kept verbatim.
		var kept []string
		for _, e := range f.Events(t, id) {
			if c, ok := e.(invoice.CallbackReceived); ok {
				kept = append(kept, c.Body)
				if c.Verified || c.Provider != wzrdpay.Name || c.ProviderRef != inv.ID {
					t.Errorf("kept callback %+v", c)
				}
			}
		}
		if len(kept) != 2 || kept[1] != string(f.fake.Document(inv.ID)) {
			t.Fatalf("kept %d bodies", len(kept))
		}
		// The payer comes back through return_urls.success.
		ru := inv.Body["return_urls"].(map[string]any)
		r := f.Do(t, http.MethodGet, ru["success"].(string), nil, nil)
		if r.Code != http.StatusOK || !strings.Contains(r.Body, "Payment received") || !strings.Contains(r.Body, "123.45 USD") {
			t.Fatalf("return page: %d %s", r.Code, r.Body)
		}
	})
}

func TestFlowReturnConfirmsWithoutCallback(t *testing.T) {
	t.Parallel()
	f := newFlow(t, projectiontest.SQLite(t))
	id, token := f.Invoice(t, "10.00", wzrdpay.Name)
	inv := f.open(t, token)
	ru := inv.Body["return_urls"].(map[string]any)
	if r := f.Do(t, http.MethodGet, ru["pending"].(string), nil, nil); r.Code != http.StatusOK || !strings.Contains(r.Body, "Confirming your payment") {
		t.Fatalf("pending return: %d %s", r.Code, r.Body)
	}
	f.fake.Set(inv.ID, "processed", "ok", "")
	if r := f.Do(t, http.MethodGet, ru["success"].(string), nil, nil); r.Code != http.StatusOK || !strings.Contains(r.Body, "Payment received") {
		t.Fatalf("success return: %d %s", r.Code, r.Body)
	}
	if st := f.State(t, id); st.Status != invoice.StatusPaid {
		t.Fatalf("status %s", st.Status)
	}
}

func TestFlowDeclinedAndExpired(t *testing.T) {
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		f := newFlow(t, b)
		for _, resolution := range []string{"declined", "expired"} {
			id, token := f.Invoice(t, "50.00", wzrdpay.Name)
			inv := f.open(t, token)
			f.fake.Set(inv.ID, "process_failed", resolution, "")
			f.callback(t, f.fake.Document(inv.ID))
			st := f.State(t, id)
			if st.Status != invoice.StatusOpen || st.Payments[0].Status != invoice.PaymentStatusFailed || st.Payments[0].FailureCode != resolution ||
				f.Count(t, id, invoice.TypePaymentFailed) != 1 {
				t.Fatalf("%s: %s %+v", resolution, st.Status, st.Payments)
			}
		}
	})
}

func TestFlowLatePaymentAfterOurExpiry(t *testing.T) {
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		f := newFlow(t, b)
		id, token := f.InvoiceIn(t, "75.00", "USD", wzrdpay.Name, 20*time.Minute)
		inv := f.open(t, token)
		f.Env.Clock.Advance(21 * time.Minute)
		if _, err := f.Env.Service.Execute(context.Background(), id, invoice.Expire{}); err != nil {
			t.Fatal(err)
		}
		// WZRDPAY's invoice lived on (it expires 15 minutes at the
		// earliest) and the payer paid it: money moved, so it is recorded
		// and flagged for a refund.
		f.fake.Set(inv.ID, "processed", "ok", "")
		f.callback(t, f.fake.Document(inv.ID))
		st := f.State(t, id)
		if st.Status != invoice.StatusExpired || st.AmountPaid.String() != "75.00" || !callbackstest.HasFlag(st, invoice.FlagLatePayment) {
			t.Fatalf("late: %s paid %s %+v", st.Status, st.AmountPaid, st.Payments)
		}
	})
}

func TestFlowDuplicateAndOutOfOrder(t *testing.T) {
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		f := newFlow(t, b)
		id, token := f.Invoice(t, "99.99", wzrdpay.Name)
		inv := f.open(t, token)
		f.fake.Set(inv.ID, "processed", "ok", "")
		processed := f.fake.Document(inv.ID)
		pending := f.fake.DocumentAs(inv.ID, "process_pending", "ok")
		f.callback(t, processed)
		if r := f.callback(t, processed); !strings.Contains(r.Body, `"duplicate":true`) {
			t.Fatalf("duplicate not recognised: %s", r.Body)
		}
		f.callback(t, pending) // the creation callback, delivered last
		st := f.State(t, id)
		if st.Status != invoice.StatusPaid || st.AmountPaid.String() != "99.99" || st.Callbacks != 2 ||
			f.Count(t, id, invoice.TypePaymentProcessed) != 1 || f.Count(t, id, invoice.TypeFlagged) != 0 {
			t.Fatalf("%s paid %s, %d callbacks, %d processed, %d flags", st.Status, st.AmountPaid, st.Callbacks,
				f.Count(t, id, invoice.TypePaymentProcessed), f.Count(t, id, invoice.TypeFlagged))
		}
	})
}

func TestFlowForgedCallbacksCannotPay(t *testing.T) {
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		f := newFlow(t, b)
		id, token := f.Invoice(t, "300.00", wzrdpay.Name)
		inv := f.open(t, token)
		// A well-formed "processed" document while WZRDPAY says pending.
		f.callback(t, f.fake.DocumentAs(inv.ID, "processed", "ok"))
		// One naming a WZRDPAY invoice that does not exist.
		forged := strings.ReplaceAll(string(f.fake.DocumentAs(inv.ID, "processed", "ok")), inv.ID, "cpi_ForgedForgedForged")
		f.callback(t, []byte(forged))
		st := f.State(t, id)
		if st.Status != invoice.StatusOpen || !st.AmountPaid.IsZero() || f.Count(t, id, invoice.TypePaymentProcessed) != 0 || st.Callbacks != 2 {
			t.Fatalf("forged: %s paid %s, %d callbacks", st.Status, st.AmountPaid, st.Callbacks)
		}
		// Garbage is refused without being kept.
		if r := f.Callback(t, wzrdpay.Name, []byte(`{"data":{"id":"cpi_x","attributes":{"status":"processed","amount":"lots","currency":"USD"}}}`), nil); r.Code != http.StatusBadRequest {
			t.Fatalf("garbage: %d", r.Code)
		}
	})
}

func TestFlowCreateFailuresWriteNothing(t *testing.T) {
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		f := newFlow(t, b, func(c *wzrdpay.Config) { c.Timeout = 100 * time.Millisecond })
		// 5xx on every create, and no transaction behind them.
		f.fake.FailCreates(100, http.StatusBadGateway, false)
		id, token := f.Invoice(t, "10.00", wzrdpay.Name)
		r := f.Visit(t, token)
		if r.Code != http.StatusServiceUnavailable || !strings.Contains(r.Body, "Try again") || f.Count(t, id, invoice.TypePaymentInitiated) != 0 || len(f.fake.Invoices()) != 0 {
			t.Fatalf("5xx: %d, %d payments, %d provider invoices", r.Code, f.Count(t, id, invoice.TypePaymentInitiated), len(f.fake.Invoices()))
		}
		retry := r.Action(t)
		// A timeout: the provider never answers in time.
		f.fake.FailCreates(0, 0, false)
		f.fake.Delay(time.Second, false)
		if r := f.Do(t, http.MethodPost, retry, nil, nil); r.Code != http.StatusServiceUnavailable || f.Count(t, id, invoice.TypePaymentInitiated) != 0 {
			t.Fatalf("timeout: %d", r.Code)
		}
		// The provider recovers: the same retry button works.
		f.fake.Delay(0, false)
		r = f.Do(t, http.MethodPost, retry, nil, nil)
		invs := f.fake.Invoices()
		if r.Code != http.StatusFound || len(invs) != 1 || r.Location != f.fake.URL+"/redirect/hpp/?cpi="+invs[0].ID || f.Count(t, id, invoice.TypePaymentInitiated) != 1 {
			t.Fatalf("recovered: %d %q, %d provider invoices", r.Code, r.Location, len(invs))
		}
	})
}

func TestFlowFormOnly(t *testing.T) {
	t.Parallel()
	f := newFlow(t, projectiontest.SQLite(t))
	f.fake.FormOnly(true)
	id, token := f.Invoice(t, "10.00", wzrdpay.Name)
	r := f.Visit(t, token)
	invs := f.fake.Invoices()
	// flow_data is a GET form without params: the payer is redirected to
	// its action.
	if r.Code != http.StatusFound || len(invs) != 1 || r.Location != f.fake.URL+"/hpp/"+invs[0].ID {
		t.Fatalf("form only: %d %q", r.Code, r.Location)
	}
	if st := f.State(t, id); st.Payments[0].ProviderRef != invs[0].ID {
		t.Fatalf("payments %+v", st.Payments)
	}
}

func TestFlowJanitorSettlesLostCallbacks(t *testing.T) {
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		f := newFlow(t, b)
		paid, t1 := f.Invoice(t, "10.00", wzrdpay.Name)
		expired, t2 := f.Invoice(t, "20.00", wzrdpay.Name)
		i1, i2 := f.open(t, t1), f.open(t, t2)
		f.fake.Set(i1.ID, "processed", "ok", "")
		f.fake.Set(i2.ID, "process_failed", "expired", "")
		f.Env.Clock.Advance(16 * time.Minute)
		rep := f.Sweep(t)
		if rep.Checked != 2 || rep.Settled != 2 || rep.Errors != 0 {
			t.Fatalf("sweep %+v", rep)
		}
		if st := f.State(t, paid); st.Status != invoice.StatusPaid {
			t.Errorf("paid: %s", st.Status)
		}
		if st := f.State(t, expired); st.Payments[0].FailureCode != "expired" {
			t.Errorf("expired: %+v", st.Payments)
		}
		// WZRDPAY later contradicts the ledger (a reversal): flagged.
		f.fake.Set(i1.ID, "process_failed", "reversed", "")
		f.Env.Clock.Advance(16 * time.Minute)
		// The settled payment is confirmed once; that already happened in
		// the sweep that settled it, so the change goes unnoticed by the
		// janitor but not by the next callback's status query.
		f.callback(t, f.fake.Document(i1.ID))
		if st := f.State(t, paid); !callbackstest.HasFlag(st, invoice.FlagProviderStatusMismatch) || st.Status != invoice.StatusPaid {
			t.Fatalf("contradiction: %s %+v", st.Status, st.Payments)
		}
	})
}
