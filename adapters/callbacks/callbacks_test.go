package callbacks_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payledger/payledger/adapters/callbacks"
	"github.com/payledger/payledger/adapters/callbacks/callbackstest"
	"github.com/payledger/payledger/adapters/provider"
	"github.com/payledger/payledger/domain/invoice"
	"github.com/payledger/payledger/domain/money"
	"github.com/payledger/payledger/internal/paytest"
	"github.com/payledger/payledger/projections"
	"github.com/payledger/payledger/projections/projectiontest"
)

// fakeAdapter is a provider in memory. Callback bodies are JSON
// {"ref","reference","status","amount","currency","sig"}; with signed set,
// a callback whose sig is "good" is Verified.
type fakeAdapter struct {
	name   string
	signed bool

	mu        sync.Mutex
	payments  map[string]provider.Payment
	createErr error
	formOnly  bool
	creates   int
	statuses  int
	statusErr error
}

func newFake(name string, signed bool) *fakeAdapter {
	return &fakeAdapter{name: name, signed: signed, payments: map[string]provider.Payment{}}
}

func (f *fakeAdapter) Name() string { return f.name }

func (f *fakeAdapter) Create(_ context.Context, req provider.CreateRequest) (provider.Created, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.creates++
	if f.createErr != nil {
		return provider.Created{}, f.createErr
	}
	for _, p := range f.payments {
		if p.Reference == req.Reference { // the provider deduplicates references
			return f.created(p), nil
		}
	}
	ref := fmt.Sprintf("fk_%d", len(f.payments)+1)
	p := provider.Payment{Ref: ref, Reference: req.Reference, Status: provider.StatusPending, Amount: req.Amount, HasAmount: true, Raw: "pending"}
	f.payments[ref] = p
	return f.created(p), nil
}

func (f *fakeAdapter) created(p provider.Payment) provider.Created {
	c := provider.Created{Ref: p.Ref, Status: p.Status}
	if f.formOnly {
		c.Form = &provider.Form{Action: "https://fake.example/hpp", Method: "POST", Params: [][2]string{{"sid", p.Ref}, {"token", `a"b<c`}}}
	} else {
		c.RedirectURL = "https://fake.example/hpp/" + p.Ref
	}
	return c
}

func (f *fakeAdapter) Status(_ context.Context, ref string) (provider.Payment, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.statuses++
	if f.statusErr != nil {
		return provider.Payment{}, f.statusErr
	}
	p, ok := f.payments[ref]
	if !ok {
		return provider.Payment{}, &provider.Error{Provider: f.name, Op: "status", HTTPStatus: 404, Kind: provider.ErrNotFound}
	}
	return p, nil
}

type fakeBody struct {
	Ref       string `json:"ref"`
	Reference string `json:"reference,omitempty"`
	Status    string `json:"status"`
	Amount    string `json:"amount,omitempty"`
	Currency  string `json:"currency,omitempty"`
	Sig       string `json:"sig,omitempty"`
}

func (f *fakeAdapter) ParseCallback(_ http.Header, body []byte) (provider.Callback, error) {
	var b fakeBody
	if err := json.Unmarshal(body, &b); err != nil || b.Ref == "" {
		return provider.Callback{}, provider.BadCallback("unreadable")
	}
	if f.signed && b.Sig != "good" {
		return provider.Callback{}, provider.BadCallback("bad signature")
	}
	cb := provider.Callback{Payment: provider.Payment{Ref: b.Ref, Reference: b.Reference, Status: provider.Status(b.Status), Raw: b.Status}, Verified: f.signed}
	if b.Amount != "" {
		m, err := provider.Amount(b.Amount, b.Currency)
		if err != nil {
			return provider.Callback{}, provider.BadCallback("amount: %v", err)
		}
		cb.Amount, cb.HasAmount = m, true
	}
	return cb, nil
}

// set changes the provider's truth about ref.
func (f *fakeAdapter) set(ref string, st provider.Status, code string, amount money.Money) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.payments[ref]
	p.Status, p.Code, p.Raw = st, code, string(st)
	if !amount.IsZero() {
		p.Amount = amount
	}
	f.payments[ref] = p
}

func (f *fakeAdapter) counts() (creates, statuses int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.creates, f.statuses
}

func body(b fakeBody) []byte {
	out, _ := json.Marshal(b)
	return out
}

func usd(t *testing.T, s string) money.Money {
	t.Helper()
	m, err := money.Parse(s, "USD")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func harness(t *testing.T, b projections.Backend, adapters ...provider.Adapter) *callbackstest.Harness {
	t.Helper()
	return callbackstest.New(t, b.(paytest.Store), callbacks.Options{StatusTimeout: time.Second, CreateTimeout: time.Second},
		callbacks.JanitorOptions{After: 15 * time.Minute, Interval: time.Minute}, adapters...)
}

// begin opens the link and returns the provider payment it started.
func begin(t *testing.T, h *callbackstest.Harness, f *fakeAdapter, token string) string {
	t.Helper()
	r := h.Visit(t, token)
	if r.Code != http.StatusFound || !strings.HasPrefix(r.Location, "https://fake.example/hpp/") {
		t.Fatalf("visit: %d %q %s", r.Code, r.Location, r.Body)
	}
	return strings.TrimPrefix(r.Location, "https://fake.example/hpp/")
}

func TestUnsignedCallbacksAreConfirmedBeforeMoney(t *testing.T) {
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		f := newFake("fake", false)
		h := harness(t, b, f)
		id, token := h.Invoice(t, "100.55", "fake")
		ref := begin(t, h, f, token)
		st := h.State(t, id)
		if len(st.Payments) != 1 || st.Payments[0].ID != provider.PaymentID(id, 1) || st.Payments[0].ProviderRef != ref {
			t.Fatalf("payments %+v", st.Payments)
		}

		// A callback claiming money while the provider says pending is a
		// forgery (or early): kept, but no money.
		claim := body(fakeBody{Ref: ref, Reference: id, Status: "processed", Amount: "100.55", Currency: "USD"})
		if r := h.Callback(t, "fake", claim, nil); r.Code != http.StatusOK {
			t.Fatalf("forged: %d %s", r.Code, r.Body)
		}
		if st := h.State(t, id); st.Status != invoice.StatusOpen || h.Count(t, id, invoice.TypePaymentProcessed) != 0 || st.Callbacks != 1 {
			t.Fatalf("forged callback moved money: %s, %d callbacks", st.Status, st.Callbacks)
		}

		// The provider really processes it; the next hint settles it, with
		// the provider's amount.
		f.set(ref, provider.StatusProcessed, "", usd(t, "100.55"))
		hint := body(fakeBody{Ref: ref, Reference: id, Status: "processed"})
		if r := h.Callback(t, "fake", hint, nil); r.Code != http.StatusOK || !strings.Contains(r.Body, `"duplicate":false`) {
			t.Fatalf("hint: %d %s", r.Code, r.Body)
		}
		st = h.State(t, id)
		if st.Status != invoice.StatusPaid || st.AmountPaid.String() != "100.55" {
			t.Fatalf("after the hint: %s, paid %s", st.Status, st.AmountPaid)
		}

		// The same body again: a no-op, answered 2xx.
		n := len(h.Events(t, id))
		if r := h.Callback(t, "fake", hint, nil); r.Code != http.StatusOK || !strings.Contains(r.Body, `"duplicate":true`) {
			t.Fatalf("duplicate: %d %s", r.Code, r.Body)
		}
		if len(h.Events(t, id)) != n {
			t.Fatal("a duplicate callback appended events")
		}
		// A stale pending hint after the payment settled changes nothing.
		if r := h.Callback(t, "fake", body(fakeBody{Ref: ref, Reference: id, Status: "pending"}), nil); r.Code != http.StatusOK {
			t.Fatalf("stale: %d", r.Code)
		}
		if st := h.State(t, id); st.Status != invoice.StatusPaid || h.Count(t, id, invoice.TypeFlagged) != 0 {
			t.Fatalf("stale pending: %s, flagged %d", st.Status, h.Count(t, id, invoice.TypeFlagged))
		}
	})
}

func TestSignedCallbacks(t *testing.T) {
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		f := newFake("signed", true)
		h := harness(t, b, f)
		id, token := h.Invoice(t, "20.00", "signed")
		ref := begin(t, h, f, token)

		// A bad signature is refused and nothing is kept.
		r := h.Callback(t, "signed", body(fakeBody{Ref: ref, Reference: id, Status: "processed", Amount: "20.00", Currency: "USD", Sig: "forged"}), nil)
		if r.Code != http.StatusBadRequest || !strings.Contains(r.Body, "bad_callback") || r.Header.Get("Content-Type") != "application/problem+json" {
			t.Fatalf("forged: %d %s", r.Code, r.Body)
		}
		if st := h.State(t, id); st.Callbacks != 0 || st.Status != invoice.StatusOpen {
			t.Fatalf("forged callback kept or acted on: %+v", st)
		}

		// Out of order: processed first, then the pending that was sent
		// before it. A verified callback is proof: no status query.
		_, before := f.counts()
		if r := h.Callback(t, "signed", body(fakeBody{Ref: ref, Reference: id, Status: "processed", Amount: "20.00", Currency: "USD", Sig: "good"}), nil); r.Code != http.StatusOK {
			t.Fatalf("processed: %d %s", r.Code, r.Body)
		}
		if r := h.Callback(t, "signed", body(fakeBody{Ref: ref, Reference: id, Status: "pending", Sig: "good"}), nil); r.Code != http.StatusOK {
			t.Fatalf("pending: %d %s", r.Code, r.Body)
		}
		st := h.State(t, id)
		if st.Status != invoice.StatusPaid || st.Callbacks != 2 || callbackstest.HasFlag(st, invoice.FlagProviderStatusMismatch) {
			t.Fatalf("out of order: %s, %d callbacks, payments %+v", st.Status, st.Callbacks, st.Payments)
		}
		if _, after := f.counts(); after != before {
			t.Errorf("%d status queries for verified callbacks", after-before)
		}
	})
}

func TestForeignPaymentCannotPayAnotherInvoice(t *testing.T) {
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		f := newFake("fake", false)
		h := harness(t, b, f)
		victim, vtoken := h.Invoice(t, "500.00", "fake")
		begin(t, h, f, vtoken)
		cheap, ctoken := h.Invoice(t, "500.00", "fake")
		cref := begin(t, h, f, ctoken)
		f.set(cref, provider.StatusProcessed, "", usd(t, "500.00"))

		// A real, processed provider payment of one invoice, named in a
		// callback that points at another.
		r := h.Callback(t, "fake", body(fakeBody{Ref: cref, Reference: victim, Status: "processed"}), nil)
		if r.Code != http.StatusOK {
			t.Fatalf("%d %s", r.Code, r.Body)
		}
		if st := h.State(t, victim); st.Status != invoice.StatusOpen || !st.AmountPaid.IsZero() || st.Callbacks != 1 {
			t.Fatalf("victim: %s paid %s", st.Status, st.AmountPaid)
		}
		if st := h.State(t, cheap); st.Status != invoice.StatusOpen {
			t.Fatalf("the other invoice changed: %s", st.Status)
		}
	})
}

func TestProviderFailureWritesNothingAndOffersRetry(t *testing.T) {
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		f := newFake("fake", false)
		h := harness(t, b, f)
		id, token := h.Invoice(t, "10.00", "fake")
		f.createErr = &provider.Error{Provider: "fake", Op: "create", HTTPStatus: 503, Kind: provider.ErrUnavailable}
		r := h.Visit(t, token)
		if r.Code != http.StatusServiceUnavailable || !strings.Contains(r.Body, "No payment was started") || !strings.Contains(r.Body, "Try again") {
			t.Fatalf("retry page: %d %s", r.Code, r.Body)
		}
		if r.Header.Get("Cache-Control") != "no-store" || r.Header.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("headers %v", r.Header)
		}
		retry := r.Action(t)
		if h.Count(t, id, invoice.TypePaymentInitiated) != 0 {
			t.Fatal("a payment was recorded although the provider failed")
		}
		// Still down: the same page again, still nothing.
		if r := h.Do(t, http.MethodPost, retry, nil, nil); r.Code != http.StatusServiceUnavailable || h.Count(t, id, invoice.TypePaymentInitiated) != 0 {
			t.Fatalf("second try: %d", r.Code)
		}
		// A tampered retry URL is refused.
		if r := h.Do(t, http.MethodPost, strings.Replace(retry, "sig=", "sig=x", 1), nil, nil); r.Code != http.StatusNotFound {
			t.Fatalf("tampered retry: %d", r.Code)
		}
		f.mu.Lock()
		f.createErr = nil
		f.mu.Unlock()
		r = h.Do(t, http.MethodPost, retry, nil, nil)
		if r.Code != http.StatusFound || r.Location != "https://fake.example/hpp/fk_1" {
			t.Fatalf("recovered: %d %q", r.Code, r.Location)
		}
		// Retrying again reuses the running attempt.
		r = h.Do(t, http.MethodPost, retry, nil, nil)
		if r.Code != http.StatusFound || r.Location != "https://fake.example/hpp/fk_1" || h.Count(t, id, invoice.TypePaymentInitiated) != 1 {
			t.Fatalf("reuse: %d %q, %d payments", r.Code, r.Location, h.Count(t, id, invoice.TypePaymentInitiated))
		}
		// A refusal is a different message, still nothing written.
		id2, token2 := h.Invoice(t, "10.00", "fake")
		f.mu.Lock()
		f.createErr = &provider.Error{Provider: "fake", Op: "create", HTTPStatus: 422, Kind: provider.ErrRejected}
		f.mu.Unlock()
		if r := h.Visit(t, token2); r.Code != http.StatusBadGateway || !strings.Contains(r.Body, "did not accept") || h.Count(t, id2, invoice.TypePaymentInitiated) != 0 {
			t.Fatalf("rejected: %d %s", r.Code, r.Body)
		}
	})
}

func TestFailedAttemptThenNewAttempt(t *testing.T) {
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		f := newFake("fake", false)
		h := harness(t, b, f)
		id, token := h.Invoice(t, "10.00", "fake")
		ref := begin(t, h, f, token)
		f.set(ref, provider.StatusFailed, "declined", money.Money{})
		if r := h.Callback(t, "fake", body(fakeBody{Ref: ref, Reference: id, Status: "failed"}), nil); r.Code != http.StatusOK {
			t.Fatal(r.Code)
		}
		st := h.State(t, id)
		if st.Status != invoice.StatusOpen || st.Payments[0].Status != invoice.PaymentStatusFailed || st.Payments[0].FailureCode != "declined" {
			t.Fatalf("declined: %+v", st.Payments)
		}
		// The payer's return page says so and offers another try, which
		// starts attempt 2 under reference id~2.
		ret := h.Do(t, http.MethodGet, returnURL(t, h, f, id, ref), nil, nil)
		if ret.Code != http.StatusOK || !strings.Contains(ret.Body, "Payment not completed") || !strings.Contains(ret.Body, "declined") {
			t.Fatalf("return page: %d %s", ret.Code, ret.Body)
		}
		r := h.Do(t, http.MethodPost, ret.Action(t), nil, nil)
		if r.Code != http.StatusFound {
			t.Fatalf("second attempt: %d %s", r.Code, r.Body)
		}
		st = h.State(t, id)
		if len(st.Payments) != 2 || st.Payments[1].ID != provider.PaymentID(id, 2) {
			t.Fatalf("payments %+v", st.Payments)
		}
		ref2 := strings.TrimPrefix(r.Location, "https://fake.example/hpp/")
		if p, _ := f.Status(context.Background(), ref2); p.Reference != provider.Reference(id, 2) {
			t.Fatalf("reference of attempt 2: %q", p.Reference)
		}
	})
}

// returnURL is the success/fail URL the service gave the provider for ref,
// rebuilt through a second Create of the same reference.
func returnURL(t *testing.T, h *callbackstest.Harness, f *fakeAdapter, invID, ref string) string {
	t.Helper()
	st := h.State(t, invID)
	for _, p := range st.Payments {
		if p.ProviderRef == ref {
			// The link id is the consumed one.
			for _, l := range st.Links {
				if l.State == invoice.LinkStateConsumed {
					return h.Service.ReturnURL(invID, l.ID, p.ID, "fail")
				}
			}
		}
	}
	t.Fatalf("no payment %s", ref)
	return ""
}

func TestCallbackRacingAheadOfTheRecord(t *testing.T) {
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		f := newFake("fake", false)
		h := harness(t, b, f)
		id, _ := h.Invoice(t, "42.00", "fake")
		// The provider has attempt 1 processed, but our InitiatePayment
		// never landed (a crash between its create and our append).
		c, err := f.Create(context.Background(), provider.CreateRequest{Reference: provider.Reference(id, 1), Amount: usd(t, "42.00")})
		if err != nil {
			t.Fatal(err)
		}
		f.set(c.Ref, provider.StatusProcessed, "", money.Money{})
		if r := h.Callback(t, "fake", body(fakeBody{Ref: c.Ref, Reference: id, Status: "processed"}), nil); r.Code != http.StatusOK {
			t.Fatalf("%d %s", r.Code, r.Body)
		}
		st := h.State(t, id)
		if st.Status != invoice.StatusPaid || len(st.Payments) != 1 || st.Payments[0].ID != provider.PaymentID(id, 1) || st.Payments[0].ProviderRef != c.Ref {
			t.Fatalf("%s %+v", st.Status, st.Payments)
		}
	})
}

func TestUnmatchedAndRefusedCallbacks(t *testing.T) {
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		f := newFake("fake", false)
		h := harness(t, b, f)
		cb := body(fakeBody{Ref: "fk_nobody", Reference: "inv_doesnotexist", Status: "processed"})
		for range 2 {
			if r := h.Callback(t, "fake", cb, nil); r.Code != http.StatusOK {
				t.Fatalf("%d %s", r.Code, r.Body)
			}
		}
		kept := h.Unmatched(t, "callback-fake-fk_nobody")
		if len(kept) != 1 || kept[0].Body != string(cb) || kept[0].Provider != "fake" || kept[0].Verified {
			t.Fatalf("unmatched: %+v", kept)
		}
		if r := h.Callback(t, "nosuch", cb, nil); r.Code != http.StatusNotFound || !strings.Contains(r.Body, "unknown_provider") {
			t.Fatalf("unknown provider: %d %s", r.Code, r.Body)
		}
		if r := h.Callback(t, "fake", []byte("{not json"), nil); r.Code != http.StatusBadRequest {
			t.Fatalf("garbage: %d", r.Code)
		}
		if r := h.Callback(t, "fake", []byte("{\"ref\":\"a\xff\"}"), nil); r.Code != http.StatusBadRequest {
			t.Fatalf("not UTF-8: %d", r.Code)
		}
		big := append([]byte(`{"ref":"x","status":"pending","pad":"`), make([]byte, callbacks.MaxCallback)...)
		if r := h.Callback(t, "fake", big, nil); r.Code != http.StatusRequestEntityTooLarge {
			t.Fatalf("too large: %d", r.Code)
		}
		// Confirmation impossible: 503 so that the provider delivers again.
		id, token := h.Invoice(t, "1.00", "fake")
		ref := begin(t, h, f, token)
		f.mu.Lock()
		f.statusErr = &provider.Error{Provider: "fake", Op: "status", Kind: provider.ErrUnavailable}
		f.mu.Unlock()
		if r := h.Callback(t, "fake", body(fakeBody{Ref: ref, Reference: id, Status: "processed"}), nil); r.Code != http.StatusServiceUnavailable {
			t.Fatalf("status down: %d %s", r.Code, r.Body)
		}
		if st := h.State(t, id); st.Callbacks != 1 || st.Status != invoice.StatusOpen {
			t.Fatalf("kept %d, status %s", st.Callbacks, st.Status)
		}
	})
}

func TestFormPage(t *testing.T) {
	t.Parallel()
	f := newFake("fake", false)
	f.formOnly = true
	h := harness(t, projectiontest.SQLite(t), f)
	_, token := h.Invoice(t, "10.00", "fake")
	r := h.Visit(t, token)
	if r.Code != http.StatusOK || r.Action(t) != "https://fake.example/hpp" || !strings.Contains(r.Body, `method="post"`) ||
		!strings.Contains(r.Body, `name="sid" value="fk_1"`) || !strings.Contains(r.Body, `value="a&#34;b&lt;c"`) || !strings.Contains(r.Body, ".submit()") {
		t.Fatalf("form page: %d %s", r.Code, r.Body)
	}
}

func TestJanitor(t *testing.T) {
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		f := newFake("fake", false)
		h := harness(t, b, f)
		start := func(amount string) (string, string) {
			id, token := h.Invoice(t, amount, "fake")
			return id, begin(t, h, f, token)
		}
		paidID, paidRef := start("10.00")
		expID, expRef := start("11.00")
		pendID, _ := start("12.00")
		contraID, contraRef := start("13.00")
		goneID, goneRef := start("14.00")

		// Too young: nothing is asked.
		if rep := h.Sweep(t); rep.Checked != 0 {
			t.Fatalf("young payments checked: %+v", rep)
		}
		// The callbacks were lost; the provider settled two of them.
		f.set(paidRef, provider.StatusProcessed, "", money.Money{})
		f.set(expRef, provider.StatusFailed, "expired", money.Money{})
		// One the ledger has processed (a verified message, say) that the
		// provider reports failed; one the provider no longer knows.
		f.set(contraRef, provider.StatusProcessed, "", money.Money{})
		if r := h.Callback(t, "fake", body(fakeBody{Ref: contraRef, Reference: contraID, Status: "processed"}), nil); r.Code != http.StatusOK {
			t.Fatal(r.Code)
		}
		f.set(contraRef, provider.StatusFailed, "reversed", money.Money{})
		f.mu.Lock()
		delete(f.payments, goneRef)
		f.mu.Unlock()

		h.Env.Clock.Advance(16 * time.Minute)
		rep := h.Sweep(t)
		if rep.Settled != 2 || rep.Flagged != 2 || rep.Pending != 1 || rep.Errors != 0 {
			t.Fatalf("sweep: %+v", rep)
		}
		if st := h.State(t, paidID); st.Status != invoice.StatusPaid || st.AmountPaid.String() != "10.00" {
			t.Errorf("paid: %s %s", st.Status, st.AmountPaid)
		}
		if st := h.State(t, expID); st.Payments[0].Status != invoice.PaymentStatusFailed || st.Payments[0].FailureCode != "expired" {
			t.Errorf("expired: %+v", st.Payments)
		}
		if st := h.State(t, pendID); st.Payments[0].Status != invoice.PaymentStatusInitiated {
			t.Errorf("pending: %+v", st.Payments)
		}
		for _, id := range []string{contraID, goneID} {
			st := h.State(t, id)
			if !callbackstest.HasFlag(st, invoice.FlagProviderStatusMismatch) {
				t.Errorf("%s not flagged: %+v", id, st.Payments)
			}
		}
		if st := h.State(t, contraID); st.Status != invoice.StatusPaid {
			t.Errorf("a mismatch must not undo the payment: %s", st.Status)
		}
		// Right away again: the pending one backs off, settled ones are
		// confirmed, flagged ones are not flagged twice.
		if rep := h.Sweep(t); rep.Checked != 0 {
			t.Fatalf("second sweep: %+v", rep)
		}
		h.Env.Clock.Advance(90 * time.Second)
		if rep := h.Sweep(t); rep.Checked != 1 || rep.Pending != 1 {
			t.Fatalf("after back-off: %+v", rep)
		}
		// Past MaxAge nobody asks any more.
		h.Env.Clock.Advance(73 * time.Hour)
		if rep := h.Sweep(t); rep.Checked != 0 {
			t.Fatalf("old: %+v", rep)
		}
	})
}
