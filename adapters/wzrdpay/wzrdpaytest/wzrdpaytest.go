// Package wzrdpaytest is a fake WZRDPAY private API for tests: an
// httptest server that answers with the seed's sample documents from
// testdata/wzrdpay/, with the fields of the invoice at hand (id,
// reference_id, amount, status…) substituted, and knobs for the failures
// the seed's table of HTTP codes describes (5xx, timeouts, transactions
// created although the answer was an error).
package wzrdpaytest

import (
	"bytes"
	"crypto/rand"
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
)

// Keys the fake accepts (BasicAuth public:private).
const (
	PublicKey  = "pk_test_ClSQHi2T9WXuFa76WcwwBB6rspRpg6ANM69cS9zNOJy"
	PrivateKey = "sk_test_fake"
)

// Invoice is the fake's record of one payment invoice.
type Invoice struct {
	ID              string
	ReferenceID     string
	Amount          string // the JSON number text as sent
	Currency        string
	Status          string // process_pending, processed, process_failed
	Resolution      string
	ProcessedAmount string
	CallbackURL     string
	Metadata        map[string]string
	Expires         string
	Body            map[string]any // the create request's attributes as sent
}

// Fake is the server. Its fields are guarded by mu; use the methods.
type Fake struct {
	*httptest.Server
	dir string

	mu       sync.Mutex
	invoices map[string]*Invoice
	order    []string
	// failCreate answers the next n creates with status (after creating
	// the invoice when createThenFail).
	failCreate     int
	failStatus     int
	createThenFail bool
	failGets       int
	delay          time.Duration
	delayCommits   bool
	formOnly       bool
	creates        int
	gets           int
}

// Dir is the testdata directory of the WZRDPAY samples.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "testdata", "wzrdpay")
}

// New starts a fake; it is closed at cleanup.
func New(t testing.TB) *Fake {
	t.Helper()
	f := &Fake{dir: Dir(), invoices: map[string]*Invoice{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/payment-invoices", f.create)
	mux.HandleFunc("GET /api/payment-invoices/{id}", f.get)
	mux.HandleFunc("GET /api/payment-invoices", f.list)
	f.Server = httptest.NewServer(f.auth(mux))
	t.Cleanup(f.Server.Close)
	return f
}

// Sample returns a testdata file verbatim.
func (f *Fake) Sample(name string) []byte {
	b, err := os.ReadFile(filepath.Join(f.dir, name))
	if err != nil {
		panic(err)
	}
	return b
}

// FailCreates makes the next n creates answer status with the seed's 500
// document. With created true the invoice is created first, as when the
// platform fails after committing.
func (f *Fake) FailCreates(n, status int, created bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failCreate, f.failStatus, f.createThenFail = n, status, created
}

// FailGets makes the next n GET requests answer 500.
func (f *Fake) FailGets(n int) { f.mu.Lock(); f.failGets = n; f.mu.Unlock() }

// Delay holds every create for d before answering (timeouts). With
// committed true the invoice exists from the start, as when the platform
// is slow to answer but did the work; otherwise it is created only if the
// client is still waiting when d has passed.
func (f *Fake) Delay(d time.Duration, committed bool) {
	f.mu.Lock()
	f.delay, f.delayCommits = d, committed
	f.mu.Unlock()
}

// FormOnly drops hpp_url from create answers, leaving flow_data.
func (f *Fake) FormOnly(on bool) { f.mu.Lock(); f.formOnly = on; f.mu.Unlock() }

// Creates and Gets count the requests received.
func (f *Fake) Creates() int { f.mu.Lock(); defer f.mu.Unlock(); return f.creates }

// Gets counts GET requests.
func (f *Fake) Gets() int { f.mu.Lock(); defer f.mu.Unlock(); return f.gets }

// Invoices returns copies of the invoices in creation order.
func (f *Fake) Invoices() []Invoice {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Invoice, 0, len(f.order))
	for _, id := range f.order {
		out = append(out, *f.invoices[id])
	}
	return out
}

// ByReference finds an invoice by reference_id.
func (f *Fake) ByReference(ref string) (Invoice, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range f.order {
		if inv := f.invoices[id]; inv.ReferenceID == ref {
			return *inv, true
		}
	}
	return Invoice{}, false
}

// Set changes an invoice's status (the payer paid, the invoice expired…).
// processedAmount is used for "processed" (empty: the invoice amount).
func (f *Fake) Set(id, status, resolution, processedAmount string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	inv, ok := f.invoices[id]
	if !ok {
		panic("wzrdpaytest: unknown invoice " + id)
	}
	inv.Status, inv.Resolution = status, resolution
	inv.ProcessedAmount = ""
	if status == "processed" {
		inv.ProcessedAmount = processedAmount
		if inv.ProcessedAmount == "" {
			inv.ProcessedAmount = inv.Amount
		}
	}
}

// Document renders the invoice as the private API's status document (the
// seed's reconciliation sample with this invoice's fields). Callbacks
// carry the same document.
func (f *Fake) Document(id string) []byte {
	f.mu.Lock()
	inv := *f.invoices[id]
	f.mu.Unlock()
	return f.render("private_status_processed.json", inv)
}

// DocumentAs renders the invoice's document with another status, as a
// forged or stale callback would claim.
func (f *Fake) DocumentAs(id, status, resolution string) []byte {
	f.mu.Lock()
	inv := *f.invoices[id]
	f.mu.Unlock()
	inv.Status, inv.Resolution = status, resolution
	if status == "processed" && inv.ProcessedAmount == "" {
		inv.ProcessedAmount = inv.Amount
	}
	return f.render("private_status_processed.json", inv)
}

func (f *Fake) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || u != PublicKey || p != PrivateKey {
			f.answer(w, http.StatusUnauthorized, f.Sample("error_401.json"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (f *Fake) answer(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func newID() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return "cpi_" + string(b)
}

func (f *Fake) create(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Data struct {
			Type       string         `json:"type"`
			Attributes map[string]any `json:"attributes"`
		} `json:"data"`
	}
	dec := json.NewDecoder(r.Body)
	dec.UseNumber()
	if err := dec.Decode(&req); err != nil || req.Data.Type != "payment-invoices" {
		f.answer(w, http.StatusBadRequest, []byte(`{"errors":[{"status":"Bad Request","code":"400"}]}`))
		return
	}
	f.mu.Lock()
	f.creates++
	delay, commitFirst := f.delay, f.delayCommits
	f.mu.Unlock()
	if delay > 0 && !commitFirst {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
		delay = 0
	}
	a := req.Data.Attributes
	amount, _ := a["amount"].(json.Number)
	if amount == "" || strings.HasPrefix(string(amount), "-") || strings.Trim(string(amount), "0.") == "" {
		f.answer(w, http.StatusUnprocessableEntity, f.Sample("error_validation.json"))
		return
	}
	str := func(k string) string { s, _ := a[k].(string); return s }
	f.mu.Lock()
	fail := f.failCreate > 0
	status, thenFail, formOnly := f.failStatus, f.createThenFail, f.formOnly
	if fail {
		f.failCreate--
	}
	var existing *Invoice
	for _, id := range f.order {
		if f.invoices[id].ReferenceID == str("reference_id") {
			existing = f.invoices[id]
		}
	}
	var inv *Invoice
	if existing == nil && (!fail || thenFail) {
		md := map[string]string{}
		if m, ok := a["metadata"].(map[string]any); ok {
			for k, v := range m {
				md[k], _ = v.(string)
			}
		}
		inv = &Invoice{
			ID: newID(), ReferenceID: str("reference_id"), Amount: string(amount), Currency: str("currency"),
			Status: "process_pending", Resolution: "ok", CallbackURL: str("callback_url"), Metadata: md,
			Expires: str("expires"), Body: a,
		}
		f.invoices[inv.ID] = inv
		f.order = append(f.order, inv.ID)
	}
	f.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	switch {
	case fail:
		f.answer(w, status, f.Sample("error_500.json"))
	case existing != nil:
		f.answer(w, http.StatusConflict, f.renderCreate(*existing, formOnly))
	default:
		f.answer(w, http.StatusCreated, f.renderCreate(*inv, formOnly))
	}
}

func (f *Fake) renderCreate(inv Invoice, formOnly bool) []byte {
	b := f.render("private_create_response.json", inv)
	if !formOnly {
		return b
	}
	doc := decode(b)
	delete(doc["data"].(map[string]any)["attributes"].(map[string]any), "hpp_url")
	return encode(doc)
}

func (f *Fake) takeGetFailure() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gets++
	if f.failGets > 0 {
		f.failGets--
		return true
	}
	return false
}

func (f *Fake) get(w http.ResponseWriter, r *http.Request) {
	if f.takeGetFailure() {
		f.answer(w, http.StatusInternalServerError, f.Sample("error_500.json"))
		return
	}
	f.mu.Lock()
	inv, ok := f.invoices[r.PathValue("id")]
	var cp Invoice
	if ok {
		cp = *inv
	}
	f.mu.Unlock()
	if !ok {
		f.answer(w, http.StatusNotFound, f.Sample("error_404.json"))
		return
	}
	f.answer(w, http.StatusOK, f.render("private_status_processed.json", cp))
}

// list serves the reference_id filter: the seed's list document with one
// entry per match.
func (f *Fake) list(w http.ResponseWriter, r *http.Request) {
	if f.takeGetFailure() {
		f.answer(w, http.StatusInternalServerError, f.Sample("error_500.json"))
		return
	}
	ref := r.URL.Query().Get("filter[reference_id]")
	doc := decode(f.Sample("invoice_list.json"))
	tmpl := doc["data"].([]any)[0]
	var data []any
	for _, inv := range f.Invoices() {
		if ref != "" && inv.ReferenceID != ref {
			continue
		}
		entry := decode(encode(map[string]any{"data": tmpl}))
		fill(entry, inv, f.URL)
		data = append(data, entry["data"])
	}
	if data == nil {
		data = []any{}
	}
	doc["data"] = data
	meta, _ := doc["meta"].(map[string]any)
	if meta != nil {
		meta["count"] = len(data)
	}
	f.answer(w, http.StatusOK, encode(doc))
}

func (f *Fake) render(name string, inv Invoice) []byte {
	doc := decode(f.Sample(name))
	fill(doc, inv, f.URL)
	return encode(doc)
}

// fill substitutes the invoice's fields into a {"data":{…,"attributes"}}
// document.
func fill(doc map[string]any, inv Invoice, base string) {
	data := doc["data"].(map[string]any)
	data["id"] = inv.ID
	if links, ok := data["links"].(map[string]any); ok {
		links["self"] = "/api/payment-invoices/" + inv.ID
	}
	a := data["attributes"].(map[string]any)
	a["serial_number"] = strings.TrimPrefix(inv.ID, "cpi_")
	a["reference_id"] = inv.ReferenceID
	a["amount"] = json.Number(inv.Amount)
	a["payment_amount"] = json.Number(inv.Amount)
	a["currency"] = inv.Currency
	a["service_currency"] = inv.Currency
	a["status"] = inv.Status
	a["resolution"] = inv.Resolution
	if inv.ProcessedAmount != "" {
		a["processed_amount"] = json.Number(inv.ProcessedAmount)
	} else {
		a["processed_amount"] = nil
	}
	if inv.Status != "processed" {
		a["payload"] = nil
		a["processed"] = nil
	}
	a["hpp_url"] = base + "/redirect/hpp/?cpi=" + inv.ID
	if fd, ok := a["flow_data"].(map[string]any); ok {
		fd["action"] = base + "/hpp/" + inv.ID
	}
	if inv.CallbackURL != "" {
		a["callback_url"] = inv.CallbackURL
	}
	md := map[string]any{"merchant_url": "https://lets.doc.it"}
	for k, v := range inv.Metadata {
		md[k] = v
	}
	a["metadata"] = md
}

func decode(b []byte) map[string]any {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		panic(fmt.Sprintf("wzrdpaytest: sample is not JSON: %v", err))
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
