// Package circoflowstest is a fake CircoFlows API for tests: an httptest
// server that keeps hosted sessions and direct-payment transactions and
// answers with the document's sample payloads from testdata/circoflows/,
// with the fields of the payment at hand substituted. Direct payments
// behave like the document's test cards (4242… succeeds, …0002 is
// declined, …3220 needs 3-D Secure). Knobs inject 5xx answers and
// timeouts, and Webhook builds the signed notifications CircoFlows would
// post.
package circoflowstest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payledger/payledger/adapters/circoflows"
)

// Credentials the fake accepts and signs with.
const (
	APIKey        = "sk_test_circoflows_fake"
	WebhookSecret = "whsec_circoflows_fake"
)

// The document's test cards.
const (
	CardSuccess  = "4242424242424242"
	CardDeclined = "4000000000000002"
	CardThreeDS  = "4000000000003220"
)

// Routes for Fail and Hang.
const (
	RouteCreate  = "create"
	RouteSession = "session"
	RouteCancel  = "cancel"
	RouteCharge  = "charge"
	RouteConfirm = "confirm"
	RouteTxn     = "transaction"
)

// Payment is the fake's record of a session or a transaction.
type Payment struct {
	ID            string // sess_… or txn_…
	TransactionID string // the session's transaction once paid
	GatewayID     string
	Status        string // pending, completed, failed, cancelled, expired
	Amount        int64
	Currency      string
	Description   string
	Metadata      map[string]string
	WebhookURL    string
	ReturnURL     string
	ExpiresAt     string
	Last4         string // direct payments
	DeclineCode   string
}

// Fake is the server; use its methods, which lock.
type Fake struct {
	*httptest.Server
	dir string

	mu       sync.Mutex
	payments map[string]*Payment
	order    []string
	fail     map[string][]int // route → statuses for the next requests
	hang     map[string]int
	calls    map[string]int
	release  chan struct{}
}

// Dir is the testdata directory of the CircoFlows samples.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "testdata", "circoflows")
}

// New starts a fake, closed at cleanup.
func New(t testing.TB) *Fake {
	t.Helper()
	f := &Fake{dir: Dir(), payments: map[string]*Payment{}, fail: map[string][]int{}, hang: map[string]int{}, calls: map[string]int{}, release: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/payment-session", f.route(RouteCreate, f.create))
	mux.HandleFunc("GET /api/payment-session/{id}", f.route(RouteSession, f.session))
	mux.HandleFunc("POST /api/payment-session/{id}/cancel", f.route(RouteCancel, f.cancel))
	mux.HandleFunc("POST /api/direct-payment", f.route(RouteCharge, f.charge))
	mux.HandleFunc("POST /api/direct-payment/confirm-3ds", f.route(RouteConfirm, f.confirm))
	mux.HandleFunc("GET /api/transaction/{id}", f.route(RouteTxn, f.transaction))
	mux.HandleFunc("GET /api/health", f.route("health", func(w http.ResponseWriter, r *http.Request) {
		f.answer(w, http.StatusOK, []byte(`{"status":"ok"}`))
	}))
	f.Server = httptest.NewServer(mux)
	t.Cleanup(func() { close(f.release); f.Close() })
	return f
}

// Config is a client configuration for the fake, with short timeouts.
func (f *Fake) Config() circoflows.Config {
	return circoflows.Config{
		BaseURL: f.URL, APIKey: APIKey, WebhookSecret: WebhookSecret,
		Timeout: 2 * time.Second, RetryBackoff: 5 * time.Millisecond,
	}
}

// Client is a client on the fake.
func (f *Fake) Client(t testing.TB) *circoflows.Client {
	t.Helper()
	c, err := circoflows.New(f.Config())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Sample is a payload of testdata/circoflows.
func (f *Fake) Sample(name string) []byte {
	b, err := os.ReadFile(filepath.Join(f.dir, name))
	if err != nil {
		panic(err)
	}
	return b
}

// Fail answers the next n requests on route with status and the
// documented error body for it (before acting on them).
func (f *Fake) Fail(route string, n, status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for range n {
		f.fail[route] = append(f.fail[route], status)
	}
}

// Hang makes the next n requests on route wait until the client gives up.
func (f *Fake) Hang(route string, n int) { f.mu.Lock(); f.hang[route] += n; f.mu.Unlock() }

// Calls is how many requests route has had (failed ones included).
func (f *Fake) Calls(route string) int { f.mu.Lock(); defer f.mu.Unlock(); return f.calls[route] }

// Payments are the sessions and transactions in creation order.
func (f *Fake) Payments() []Payment {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Payment, 0, len(f.order))
	for _, id := range f.order {
		out = append(out, *f.payments[id])
	}
	return out
}

// Get is one payment.
func (f *Fake) Get(id string) (Payment, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.payments[id]
	if !ok {
		return Payment{}, false
	}
	return *p, true
}

// ByReference is the latest payment created with metadata.reference ref.
func (f *Fake) ByReference(ref string) (Payment, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.order) - 1; i >= 0; i-- {
		if p := f.payments[f.order[i]]; p.Metadata["reference"] == ref {
			return *p, true
		}
	}
	return Payment{}, false
}

// Set changes a payment's status (completed, failed, pending, cancelled,
// expired), as if the payer had acted on the hosted page. A session that
// completes or fails gets a transaction id.
func (f *Fake) Set(id, status string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.payments[id]
	if !ok {
		panic("circoflowstest: no payment " + id)
	}
	p.Status = status
	if strings.HasPrefix(p.ID, "sess_") && p.TransactionID == "" && (status == "completed" || status == "failed") {
		p.TransactionID = newID("txn_")
	}
	if status == "failed" && p.DeclineCode == "" {
		p.DeclineCode = "card_declined"
	}
}

// Webhook is the notification CircoFlows would post for the payment's
// current status, from the webhook samples, and its signed headers. event
// overrides the event name when not empty.
func (f *Fake) Webhook(id, event string) ([]byte, http.Header) {
	f.mu.Lock()
	p := *f.payments[id]
	f.mu.Unlock()
	file := map[string]string{"completed": "webhook_payment_succeeded.json", "failed": "webhook_payment_failed.json"}[p.Status]
	if file == "" {
		file = "webhook_payment_pending.json"
	}
	doc := decode(f.Sample(file))
	data := doc["data"].(map[string]any)
	if event != "" {
		doc["event"] = event
	}
	data["amount"], data["currency"], data["status"] = p.Amount, p.Currency, p.Status
	data["metadata"] = p.Metadata
	delete(data, "requires_action")
	delete(data, "action_type")
	delete(data, "action_data")
	if strings.HasPrefix(p.ID, "sess_") {
		data["session_id"] = p.ID
		data["transaction_id"] = p.TransactionID
		if p.TransactionID == "" {
			delete(data, "transaction_id")
		}
	} else {
		delete(data, "session_id")
		data["transaction_id"] = p.ID
		if p.Status == "pending" {
			data["requires_action"] = true
			data["action_type"] = "3ds_authentication"
			data["action_data"] = map[string]string{"3ds_url": f.URL + "/3ds/" + p.ID}
		}
	}
	if e, ok := data["error"].(map[string]any); ok {
		e["decline_code"] = p.DeclineCode
	}
	body := encode(doc)
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set(circoflows.SignatureHeader, circoflows.Sign(WebhookSecret, body))
	return body, h
}

// route counts, injects failures and hangs, and checks the API key.
func (f *Fake) route(name string, next http.HandlerFunc) http.HandlerFunc {
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
			f.answer(w, http.StatusUnauthorized, f.Sample("error_authentication_failed.json"))
			return
		}
		if status != 0 {
			f.answer(w, status, f.errorFor(status))
			return
		}
		next(w, r)
	}
}

func (f *Fake) errorFor(status int) []byte {
	switch {
	case status == http.StatusTooManyRequests:
		return f.Sample("error_rate_limit_exceeded.json")
	case status >= 500:
		return f.Sample("error_server_error.json")
	case status == http.StatusNotFound:
		return f.Sample("error_session_not_found.json")
	default:
		return f.Sample("error_invalid_amount.json")
	}
}

func (f *Fake) answer(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-RateLimit-Limit", "100")
	w.Header().Set("X-RateLimit-Remaining", "99")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

type createBody struct {
	Amount        json.Number       `json:"amount"`
	Currency      string            `json:"currency"`
	Description   string            `json:"description"`
	Metadata      map[string]string `json:"metadata"`
	WebhookURL    string            `json:"webhook_url"`
	ReturnURL     string            `json:"return_url"`
	ExpiresAt     string            `json:"expires_at"`
	PaymentMethod string            `json:"payment_method"`
	CardNumber    string            `json:"card_number"`
	CVV           string            `json:"cvv"`
}

func (f *Fake) read(w http.ResponseWriter, r *http.Request) (createBody, int64, bool) {
	var b createBody
	dec := json.NewDecoder(r.Body)
	dec.UseNumber()
	if err := dec.Decode(&b); err != nil {
		f.answer(w, http.StatusBadRequest, []byte(`{"error":{"code":"invalid_request","message":"The request was invalid","type":"invalid_request_error"}}`))
		return b, 0, false
	}
	n, err := b.Amount.Int64()
	if err != nil || n <= 0 || strings.ContainsAny(b.Amount.String(), ".eE") {
		f.answer(w, http.StatusBadRequest, f.Sample("error_invalid_amount.json"))
		return b, 0, false
	}
	if len(b.Currency) != 3 {
		f.answer(w, http.StatusBadRequest, []byte(`{"error":{"code":"invalid_currency","message":"Currency code is not supported","type":"invalid_request_error"}}`))
		return b, 0, false
	}
	return b, n, true
}

func (f *Fake) create(w http.ResponseWriter, r *http.Request) {
	b, n, ok := f.read(w, r)
	if !ok {
		return
	}
	if strings.TrimSpace(b.Description) == "" {
		f.answer(w, http.StatusBadRequest, []byte(`{"error":{"code":"invalid_request","message":"description is required","type":"invalid_request_error"}}`))
		return
	}
	p := &Payment{ID: newID("sess_"), Status: "pending", Amount: n, Currency: b.Currency, Description: b.Description,
		Metadata: b.Metadata, WebhookURL: b.WebhookURL, ReturnURL: b.ReturnURL, ExpiresAt: b.ExpiresAt}
	f.add(p)
	doc := decode(f.Sample("session_create_response.json"))
	f.fill(doc["data"].(map[string]any), *p)
	f.answer(w, http.StatusOK, encode(doc))
}

func (f *Fake) session(w http.ResponseWriter, r *http.Request) {
	p, ok := f.Get(r.PathValue("id"))
	switch {
	case !ok || !strings.HasPrefix(p.ID, "sess_"):
		f.answer(w, http.StatusNotFound, f.Sample("error_session_not_found.json"))
	case p.Status == "expired":
		f.answer(w, http.StatusGone, f.Sample("error_session_expired.json"))
	default:
		doc := decode(f.Sample("session_status.json"))
		f.fill(doc["data"].(map[string]any), p)
		f.answer(w, http.StatusOK, encode(doc))
	}
}

func (f *Fake) cancel(w http.ResponseWriter, r *http.Request) {
	p, ok := f.Get(r.PathValue("id"))
	switch {
	case !ok || !strings.HasPrefix(p.ID, "sess_"):
		f.answer(w, http.StatusNotFound, f.Sample("error_session_not_found.json"))
	case p.Status == "expired":
		f.answer(w, http.StatusGone, f.Sample("error_session_expired.json"))
	case p.Status == "completed":
		f.answer(w, http.StatusConflict, f.Sample("error_session_already_completed.json"))
	default:
		f.Set(p.ID, "cancelled")
		doc := decode(f.Sample("session_cancel_response.json"))
		doc["data"].(map[string]any)["session_id"] = p.ID
		f.answer(w, http.StatusOK, encode(doc))
	}
}

func (f *Fake) charge(w http.ResponseWriter, r *http.Request) {
	b, n, ok := f.read(w, r)
	if !ok {
		return
	}
	if b.PaymentMethod != "card" || len(b.CardNumber) < 12 || len(b.CVV) < 3 {
		f.answer(w, http.StatusBadRequest, f.Sample("error_invalid_card.json"))
		return
	}
	if b.CardNumber == CardDeclined {
		f.answer(w, http.StatusBadRequest, f.Sample("error_card_declined.json"))
		return
	}
	p := &Payment{ID: newID("txn_"), GatewayID: newID("gw_"), Status: "completed", Amount: n, Currency: b.Currency,
		Metadata: b.Metadata, WebhookURL: b.WebhookURL, ReturnURL: b.ReturnURL, Last4: b.CardNumber[len(b.CardNumber)-4:]}
	file, status := "direct_payment_success.json", http.StatusOK
	if b.CardNumber == CardThreeDS {
		p.Status, file, status = "pending", "direct_payment_3ds.json", http.StatusAccepted
	}
	f.add(p)
	doc := decode(f.Sample(file))
	data := doc["data"].(map[string]any)
	f.fill(data, *p)
	if ad, ok := data["action_data"].(map[string]any); ok {
		ad["3ds_url"] = f.URL + "/3ds/" + p.ID
	}
	f.answer(w, status, encode(doc))
}

func (f *Fake) confirm(w http.ResponseWriter, r *http.Request) {
	var b struct {
		TransactionID string `json:"transaction_id"`
		Status        string `json:"status"`
		GatewayID     string `json:"gateway_id"`
	}
	if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
		f.answer(w, http.StatusBadRequest, f.Sample("error_transaction_not_found.json"))
		return
	}
	p, ok := f.Get(b.TransactionID)
	if !ok || p.GatewayID != b.GatewayID {
		f.answer(w, http.StatusNotFound, f.Sample("error_transaction_not_found.json"))
		return
	}
	if p.Status == "pending" {
		switch b.Status {
		case "success":
			f.Set(p.ID, "completed")
		case "failed":
			f.Set(p.ID, "failed")
		}
	}
	p, _ = f.Get(p.ID)
	doc := decode(f.Sample("threeds_confirm_response.json"))
	data := doc["data"].(map[string]any)
	data["transaction_id"], data["status"], data["gateway_transaction_id"] = p.ID, p.Status, p.GatewayID
	f.answer(w, http.StatusOK, encode(doc))
}

func (f *Fake) transaction(w http.ResponseWriter, r *http.Request) {
	p, ok := f.Get(r.PathValue("id"))
	if !ok {
		f.answer(w, http.StatusNotFound, f.Sample("error_transaction_not_found.json"))
		return
	}
	doc := decode(f.Sample("transaction_status.json"))
	f.fill(doc["data"].(map[string]any), p)
	f.answer(w, http.StatusOK, encode(doc))
}

// fill substitutes the payment into a sample's data object, keeping the
// sample's other fields.
func (f *Fake) fill(data map[string]any, p Payment) {
	set := func(k string, v any) {
		if _, ok := data[k]; ok {
			data[k] = v
		}
	}
	if strings.HasPrefix(p.ID, "sess_") {
		set("session_id", p.ID)
		set("payment_url", f.URL+"/pay/"+p.ID)
		set("description", p.Description)
		set("expires_at", p.ExpiresAt)
		if p.TransactionID != "" {
			data["transaction_id"] = p.TransactionID
		} else {
			delete(data, "transaction_id")
		}
		if p.Status != "completed" {
			delete(data, "completed_at")
		}
	} else {
		set("transaction_id", p.ID)
		set("gateway_transaction_id", p.GatewayID)
	}
	set("amount", p.Amount)
	set("currency", p.Currency)
	set("status", p.Status)
	if p.Metadata != nil {
		data["metadata"] = p.Metadata
	}
}

func (f *Fake) add(p *Payment) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.payments[p.ID] = p
	f.order = append(f.order, p.ID)
}

func newID(prefix string) string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return prefix + strings.ToUpper(hex.EncodeToString(b))
}

func decode(b []byte) map[string]any {
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		panic(fmt.Sprintf("circoflowstest: sample: %v", err))
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
