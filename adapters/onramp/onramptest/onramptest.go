// Package onramptest is a fake on-ramp/off-ramp platform for tests: an
// httptest server that keeps invoice payments and answers the
// create-or-retrieve, update and confirm calls with the sample payloads of
// testdata/onramp/, the payment at hand substituted. Knobs inject 5xx
// answers and timeouts; Webhook builds the (unsigned) notifications the
// platform would post, and Return the cko-* query of its redirects.
package onramptest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payledger/payledger/adapters/onramp"
)

// APIKey is the Bearer token the fake accepts.
const APIKey = "onramp_test_fake"

// Routes for Fail and Hang.
const (
	RoutePayments = "payments" // create or retrieve
	RouteUpdate   = "update"
	RouteConfirm  = "confirm"
)

// Payment is the fake's record of one invoice payment.
type Payment struct {
	PaymentID  string
	InvoiceID  string
	Type       string
	Status     string // PENDING, PAID, FAILED, EXPIRED, … as the platform words it
	Amount     string // the JSON number text as sent
	Currency   string
	SomeData   string
	SuccessURL string
	FailureURL string
	WebhookURL string
	Confirmed  bool
	// Gateway ids of the checkout, for Return.
	PaymentSessionID, SessionID, GatewayPaymentID string
}

// Fake is the server; use its methods, which lock.
type Fake struct {
	*httptest.Server
	dir string

	mu       sync.Mutex
	payments map[string]*Payment
	order    []string
	fail     map[string][]int
	hang     map[string]int
	calls    map[string]int
	release  chan struct{}
}

// Dir is the testdata directory of the on-ramp samples.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "testdata", "onramp")
}

// New starts a fake, closed at cleanup.
func New(t testing.TB) *Fake {
	t.Helper()
	f := &Fake{dir: Dir(), payments: map[string]*Payment{}, fail: map[string][]int{}, hang: map[string]int{}, calls: map[string]int{}, release: make(chan struct{})}
	p := onramp.DefaultPaths()
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+p.Payments, f.route(RoutePayments, f.createOrRetrieve))
	mux.HandleFunc("POST "+p.Update, f.route(RouteUpdate, f.update))
	mux.HandleFunc("POST "+p.Confirm, f.route(RouteConfirm, f.confirm))
	f.Server = httptest.NewServer(mux)
	t.Cleanup(func() { close(f.release); f.Close() })
	return f
}

// Config is a client configuration for the fake (type CHECKOUT).
func (f *Fake) Config() onramp.Config {
	return onramp.Config{BaseURL: f.URL, APIKey: APIKey, Timeout: 2 * time.Second, RetryBackoff: 5 * time.Millisecond}
}

// Client is a CHECKOUT client on the fake.
func (f *Fake) Client(t testing.TB) *onramp.Client {
	t.Helper()
	c, err := onramp.New(f.Config())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Sample is a payload of testdata/onramp.
func (f *Fake) Sample(name string) []byte {
	b, err := os.ReadFile(filepath.Join(f.dir, name))
	if err != nil {
		panic(err)
	}
	return b
}

// Fail answers the next n requests on route with status, before acting.
func (f *Fake) Fail(route string, n, status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for range n {
		f.fail[route] = append(f.fail[route], status)
	}
}

// Hang makes the next n requests on route wait until the client gives up.
func (f *Fake) Hang(route string, n int) { f.mu.Lock(); f.hang[route] += n; f.mu.Unlock() }

// Calls is how many requests route has had.
func (f *Fake) Calls(route string) int { f.mu.Lock(); defer f.mu.Unlock(); return f.calls[route] }

// Payments in creation order.
func (f *Fake) Payments() []Payment {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Payment, 0, len(f.order))
	for _, id := range f.order {
		out = append(out, *f.payments[id])
	}
	return out
}

// ByInvoice is the payment of the invoiceId (our reference).
func (f *Fake) ByInvoice(invoiceID string) (Payment, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range f.order {
		if p := f.payments[id]; p.InvoiceID == invoiceID {
			return *p, true
		}
	}
	return Payment{}, false
}

// Set changes a payment's status word, as if the payer had finished (or
// abandoned) the checkout.
func (f *Fake) Set(paymentID, status string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.payments[paymentID]
	if !ok {
		panic("onramptest: no payment " + paymentID)
	}
	p.Status = status
}

// Webhook is the external (or, for type PLATFORM, platform) payment
// webhook for the payment's current state. The platform does not sign.
func (f *Fake) Webhook(paymentID string) ([]byte, http.Header) {
	f.mu.Lock()
	p := *f.payments[paymentID]
	f.mu.Unlock()
	file := "webhook_external_paid.json"
	if p.Type == "PLATFORM" {
		file = "webhook_platform_paid.json"
	}
	doc := decode(f.Sample(file))
	pl := doc["payload"].(map[string]any)
	pl["paymentId"], pl["invoiceId"], pl["status"], pl["currency"] = p.PaymentID, p.InvoiceID, p.Status, p.Currency
	pl["amount"] = json.Number(p.Amount)
	pl["paymentDate"] = time.Now().UnixMilli()
	if _, ok := pl["externalData"]; ok {
		pl["externalData"] = p.SomeData
	}
	return encode(doc), http.Header{"Content-Type": {"application/json"}}
}

// Return is the query the platform's redirect appends to the success or
// failure URL.
func (f *Fake) Return(paymentID string) url.Values {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.payments[paymentID]
	return url.Values{
		onramp.ParamPaymentSessionID: {p.PaymentSessionID},
		onramp.ParamSessionID:        {p.SessionID},
		onramp.ParamPaymentID:        {p.GatewayPaymentID},
	}
}

func (f *Fake) route(name string, next func(w http.ResponseWriter, body request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.calls[name]++
		status := 0
		if q := f.fail[name]; len(q) > 0 {
			status, f.fail[name] = q[0], q[1:]
		}
		hang := f.hang[name] > 0
		if hang {
			f.hang[name]--
		}
		f.mu.Unlock()
		if hang {
			select {
			case <-r.Context().Done():
			case <-f.release:
			}
			return
		}
		if r.Header.Get("Authorization") != "Bearer "+APIKey {
			answer(w, http.StatusUnauthorized, []byte(`{"error":{"code":"unauthorized","message":"invalid credentials"}}`))
			return
		}
		if status != 0 {
			answer(w, status, []byte(fmt.Sprintf(`{"error":{"code":"http_%d","message":"%s"}}`, status, http.StatusText(status))))
			return
		}
		var body request
		dec := json.NewDecoder(r.Body)
		dec.UseNumber()
		if err := dec.Decode(&body); err != nil || body.InvoiceID == "" || body.Type == "" {
			answer(w, http.StatusBadRequest, f.Sample("error_invalid_request.json"))
			return
		}
		next(w, body)
	}
}

type request struct {
	PaymentID  string      `json:"paymentId"`
	InvoiceID  string      `json:"invoiceId"`
	Type       string      `json:"type"`
	SomeData   string      `json:"someData"`
	Amount     json.Number `json:"amount"`
	Currency   string      `json:"currency"`
	SuccessURL string      `json:"successUrl"`
	FailureURL string      `json:"failureUrl"`
	WebhookURL string      `json:"webhookUrl"`
}

func (f *Fake) createOrRetrieve(w http.ResponseWriter, b request) {
	if b.PaymentID != "" {
		f.mu.Lock()
		p, ok := f.payments[b.PaymentID]
		f.mu.Unlock()
		if !ok || p.InvoiceID != b.InvoiceID {
			answer(w, http.StatusNotFound, f.Sample("error_not_found.json"))
			return
		}
		f.send(w, b.PaymentID)
		return
	}
	if p, ok := f.ByInvoice(b.InvoiceID); ok {
		f.send(w, p.PaymentID) // create or retrieve: one payment per invoice
		return
	}
	if b.Amount == "" || b.Currency == "" {
		answer(w, http.StatusBadRequest, f.Sample("error_invalid_request.json"))
		return
	}
	p := &Payment{
		PaymentID: newID("pmt_"), InvoiceID: b.InvoiceID, Type: b.Type, Status: "PENDING",
		Amount: b.Amount.String(), Currency: b.Currency,
		SuccessURL: b.SuccessURL, FailureURL: b.FailureURL, WebhookURL: b.WebhookURL,
		PaymentSessionID: newID("ps_"), SessionID: newID("cks_"), GatewayPaymentID: newID("pay_"),
	}
	f.mu.Lock()
	f.payments[p.PaymentID] = p
	f.order = append(f.order, p.PaymentID)
	f.mu.Unlock()
	f.send(w, p.PaymentID)
}

func (f *Fake) update(w http.ResponseWriter, b request) {
	if !f.edit(w, b, func(p *Payment) { p.SomeData = b.SomeData }) {
		return
	}
	f.send(w, b.PaymentID)
}

func (f *Fake) confirm(w http.ResponseWriter, b request) {
	if !f.edit(w, b, func(p *Payment) { p.Confirmed = true }) {
		return
	}
	f.send(w, b.PaymentID)
}

func (f *Fake) edit(w http.ResponseWriter, b request, change func(*Payment)) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.payments[b.PaymentID]
	if !ok || p.InvoiceID != b.InvoiceID {
		answer(w, http.StatusNotFound, f.Sample("error_not_found.json"))
		return false
	}
	change(p)
	return true
}

// send answers with the payment, from the create sample of its type while
// it is open and the retrieve sample once it is not.
func (f *Fake) send(w http.ResponseWriter, paymentID string) {
	f.mu.Lock()
	p := *f.payments[paymentID]
	f.mu.Unlock()
	open := strings.EqualFold(p.Status, "PENDING")
	file := "retrieve_paid_response.json"
	switch {
	case open && p.Type == onramp.TypeExternal:
		file = "create_external_response.json"
	case open:
		file = "create_checkout_response.json"
	}
	doc := decode(f.Sample(file))
	doc["paymentId"], doc["invoiceId"], doc["type"], doc["status"], doc["currency"] = p.PaymentID, p.InvoiceID, p.Type, p.Status, p.Currency
	doc["amount"] = json.Number(p.Amount)
	for _, k := range []string{"checkoutUrl", "redirectUrl"} {
		if _, ok := doc[k]; ok {
			doc[k] = f.URL + "/checkout/" + p.PaymentID
		}
	}
	answer(w, http.StatusOK, encode(doc))
}

func answer(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func newID(prefix string) string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

func decode(b []byte) map[string]any {
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		panic(fmt.Sprintf("onramptest: sample: %v", err))
	}
	return m
}

func encode(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
