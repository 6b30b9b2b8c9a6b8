// Package payfecttest is a fake Payfect API for tests: an httptest server
// under /api/v1 that answers with the seed's sample checkout
// (testdata/payfect/create_response.json) carrying the fields of the
// checkout at hand, and knobs for the failures a provider can have.
package payfecttest

import (
	"bytes"
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

	"github.com/google/uuid"
	"github.com/shopspring/decimal"
)

// APIKey is the key the fake accepts (the seed's example key).
const APIKey = "5a31f3a4-279c-11ee-be56-0242ac120002"

// Checkout is the fake's record of one checkout.
type Checkout struct {
	ID          string
	Reference   string
	Currency    string
	Total       string // exact decimal of unit_amount × quantity
	Status      string // open, complete, expired
	SuccessURL  string
	CancelURL   string
	CallbackURL string
	Body        map[string]any // the create request as sent
}

// Fake is the server.
type Fake struct {
	*httptest.Server
	dir string

	mu         sync.Mutex
	checkouts  map[string]*Checkout
	order      []string
	failCreate int
	failStatus int
	commitFail bool
	failGets   int
	delay      time.Duration
	echoRef    bool
	creates    int
	gets       int
}

// Dir is the testdata directory of the Payfect samples.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "testdata", "payfect")
}

// New starts a fake; it is closed at cleanup. Its API root is URL+"/api/v1".
func New(t testing.TB) *Fake {
	t.Helper()
	f := &Fake{dir: Dir(), checkouts: map[string]*Checkout{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/checkouts/", f.create)
	mux.HandleFunc("GET /api/v1/checkouts/{id}/", f.get)
	f.Server = httptest.NewServer(f.auth(mux))
	t.Cleanup(f.Server.Close)
	return f
}

// BaseURL is the API root to configure the client with.
func (f *Fake) BaseURL() string { return f.URL + "/api/v1" }

// Sample returns a testdata file verbatim.
func (f *Fake) Sample(name string) []byte {
	b, err := os.ReadFile(filepath.Join(f.dir, name))
	if err != nil {
		panic(err)
	}
	return b
}

// EchoReference makes the fake fill clientReferenceId; by default it
// answers null, as the seed's sample does.
func (f *Fake) EchoReference(on bool) { f.mu.Lock(); f.echoRef = on; f.mu.Unlock() }

// FailCreates answers the next n creates with status; with committed the
// checkout is created first.
func (f *Fake) FailCreates(n, status int, committed bool) {
	f.mu.Lock()
	f.failCreate, f.failStatus, f.commitFail = n, status, committed
	f.mu.Unlock()
}

// FailGets answers the next n GETs with 502.
func (f *Fake) FailGets(n int) { f.mu.Lock(); f.failGets = n; f.mu.Unlock() }

// Delay holds every create for d (the checkout is created only if the
// client is still waiting then).
func (f *Fake) Delay(d time.Duration) { f.mu.Lock(); f.delay = d; f.mu.Unlock() }

// Creates counts create requests that passed authentication.
func (f *Fake) Creates() int { f.mu.Lock(); defer f.mu.Unlock(); return f.creates }

// Gets counts GET requests that passed authentication.
func (f *Fake) Gets() int { f.mu.Lock(); defer f.mu.Unlock(); return f.gets }

// Checkouts returns copies in creation order.
func (f *Fake) Checkouts() []Checkout {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Checkout, 0, len(f.order))
	for _, id := range f.order {
		out = append(out, *f.checkouts[id])
	}
	return out
}

// Set changes a checkout's status.
func (f *Fake) Set(id, status string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.checkouts[id].Status = status
}

// Document renders the checkout as the API returns it (and as the fake's
// callbacks carry it).
func (f *Fake) Document(id string) []byte {
	f.mu.Lock()
	co, echo := *f.checkouts[id], f.echoRef
	f.mu.Unlock()
	return f.render(co, echo)
}

// DocumentAs renders the checkout claiming another status.
func (f *Fake) DocumentAs(id, status string) []byte {
	f.mu.Lock()
	co, echo := *f.checkouts[id], f.echoRef
	f.mu.Unlock()
	co.Status = status
	return f.render(co, echo)
}

func (f *Fake) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Api-Key "+APIKey {
			answer(w, http.StatusUnauthorized, []byte(`{"detail":"Authentication credentials were not provided."}`))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func answer(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func (f *Fake) create(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.creates++
	delay := f.delay
	f.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	var req map[string]any
	dec := json.NewDecoder(r.Body)
	dec.UseNumber()
	if err := dec.Decode(&req); err != nil {
		answer(w, http.StatusBadRequest, []byte(`{"detail":"JSON parse error"}`))
		return
	}
	cur, _ := req["currency"].(string)
	items, _ := req["invoice_items"].([]any)
	if cur == "" || len(items) == 0 {
		answer(w, http.StatusBadRequest, []byte(`{"currency":["This field is required."],"invoice_items":["This field is required."]}`))
		return
	}
	total := decimal.Zero
	for _, it := range items {
		m, _ := it.(map[string]any)
		pd, _ := m["price_data"].(map[string]any)
		ua, _ := pd["unit_amount"].(string)
		q, _ := m["quantity"].(json.Number)
		d, err := decimal.NewFromString(ua)
		n, qerr := q.Int64()
		if err != nil || qerr != nil || d.Sign() <= 0 || n <= 0 {
			answer(w, http.StatusBadRequest, []byte(`{"invoice_items":["A valid unit_amount and quantity are required."]}`))
			return
		}
		total = total.Add(d.Mul(decimal.NewFromInt(n)))
	}
	str := func(k string) string { s, _ := req[k].(string); return s }
	f.mu.Lock()
	fail := f.failCreate > 0
	status, commit, echo := f.failStatus, f.commitFail, f.echoRef
	if fail {
		f.failCreate--
	}
	var co *Checkout
	if !fail || commit {
		co = &Checkout{
			ID: uuid.NewString(), Reference: str("client_reference_id"), Currency: cur, Total: total.StringFixed(2),
			Status: "open", SuccessURL: str("success_url"), CancelURL: str("cancel_url"), CallbackURL: str("callback_url"), Body: req,
		}
		if total.Exponent() < -2 {
			co.Total = total.String()
		}
		f.checkouts[co.ID] = co
		f.order = append(f.order, co.ID)
	}
	f.mu.Unlock()
	if fail {
		answer(w, status, []byte(`{"detail":"A server error occurred."}`))
		return
	}
	answer(w, http.StatusCreated, f.render(*co, echo))
}

func (f *Fake) get(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.gets++
	fail := f.failGets > 0
	if fail {
		f.failGets--
	}
	co, ok := f.checkouts[r.PathValue("id")]
	var cp Checkout
	if ok {
		cp = *co
	}
	echo := f.echoRef
	f.mu.Unlock()
	switch {
	case fail:
		answer(w, http.StatusBadGateway, []byte(`{"detail":"Bad gateway."}`))
	case !ok:
		answer(w, http.StatusNotFound, []byte(`{"detail":"Not found."}`))
	default:
		answer(w, http.StatusOK, f.render(cp, echo))
	}
}

func (f *Fake) render(co Checkout, echo bool) []byte {
	dec := json.NewDecoder(bytes.NewReader(f.Sample("create_response.json")))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		panic(fmt.Sprintf("payfecttest: sample is not JSON: %v", err))
	}
	doc["id"] = co.ID
	doc["status"] = co.Status
	doc["amountTotal"] = co.Total
	doc["currency"] = strings.ToLower(co.Currency)
	doc["successUrl"], doc["cancelUrl"] = co.SuccessURL, co.CancelURL
	doc["url"] = f.URL + "/checkouts/" + co.ID
	if items, ok := doc["invoiceItems"].([]any); ok && len(items) > 0 {
		if it, ok := items[0].(map[string]any); ok {
			it["amount"] = co.Total
		}
	}
	if echo {
		doc["clientReferenceId"] = co.Reference
	} else {
		doc["clientReferenceId"] = nil
	}
	b, err := json.Marshal(doc)
	if err != nil {
		panic(err)
	}
	return b
}
