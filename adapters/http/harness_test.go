package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/payledger/payledger/adapters/apikey"
	httpapi "github.com/payledger/payledger/adapters/http"
	"github.com/payledger/payledger/adapters/idempotency"
	"github.com/payledger/payledger/adapters/numbers"
	"github.com/payledger/payledger/domain/invoice"
	"github.com/payledger/payledger/domain/money"
	"github.com/payledger/payledger/ledger"
	"github.com/payledger/payledger/projections"
	"github.com/payledger/payledger/projections/status"
)

// clock is the one settable clock of a test server: ledger decisions, key
// last-use times, idempotency leases and the rate limiter all read it.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// env is a running server wired as cmd/payledger wires it (numbers,
// reference reservations, keys, idempotency, the status projection
// running live behind lists), listening on a real socket.
type env struct {
	t      testing.TB
	store  projections.Backend
	clock  *clock
	inv    *ledger.Invoices
	keys   *apikey.Store
	idem   *idempotency.Store
	set    *projections.Set
	api    *httpapi.Server
	url    string
	client *http.Client

	full, read   string // bearer tokens
	fullID       string
	publicURL    string
	validateSpec bool
}

type envOption func(*httpapi.Options)

func newEnv(t testing.TB, b projections.Backend, opts ...envOption) *env {
	t.Helper()
	ctx := context.Background()
	clk := &clock{t: time.Now().UTC().Truncate(time.Second)}
	svc := ledger.New(b, clk.Now)
	seq, err := numbers.New(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	refs, err := numbers.NewReferences(ctx, b, seq) // wired as the server wires it
	if err != nil {
		t.Fatal(err)
	}
	policy := ledger.DefaultPolicy()
	e := &env{t: t, store: b, clock: clk, inv: ledger.NewInvoices(svc, seq, refs, policy), validateSpec: true}
	if e.keys, err = apikey.New(ctx, b, clk.Now); err != nil {
		t.Fatal(err)
	}
	if e.idem, err = idempotency.New(ctx, b, clk.Now); err != nil {
		t.Fatal(err)
	}
	st := status.New(b, b.DB())
	if e.set, err = projections.NewSet(b, projections.Options{}, st); err != nil {
		t.Fatal(err)
	}
	if err := e.set.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = e.set.Run(runCtx) }()
	t.Cleanup(func() { cancel(); <-done })

	e.publicURL = "https://pay.example.test"
	o := httpapi.Options{
		Invoices: e.inv, Keys: e.keys, Idempotency: e.idem,
		Lister: st, WaitFor: e.set.WaitFor,
		PublicURL: e.publicURL,
		KeyLimit:  httpapi.DefaultKeyLimit, PayLimit: httpapi.DefaultPayLimit,
		Now: clk.Now,
	}
	for _, opt := range opts {
		opt(&o)
	}
	e.api = httpapi.New(o)
	srv := httptest.NewServer(e.api)
	t.Cleanup(srv.Close)
	e.url = srv.URL
	e.client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 128}, Timeout: 30 * time.Second}
	t.Cleanup(e.client.CloseIdleConnections)

	k, tok, err := e.keys.Create(ctx, "test full", apikey.ScopeFull)
	if err != nil {
		t.Fatal(err)
	}
	e.full, e.fullID = tok, k.ID
	if _, e.read, err = e.keys.Create(ctx, "test read", apikey.ScopeRead); err != nil {
		t.Fatal(err)
	}
	return e
}

// resp is a finished response.
type resp struct {
	code int
	hdr  http.Header
	body []byte
}

func (r resp) String() string { return fmt.Sprintf("%d %s", r.code, bytes.TrimSpace(r.body)) }

// problem is the decoded problem+json body.
type problemBody struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Code   string `json:"code"`
	Errors []struct {
		Field   string `json:"field"`
		Message string `json:"message"`
	} `json:"errors"`
}

func (r resp) problem(t testing.TB) problemBody {
	t.Helper()
	if ct := r.hdr.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("content type %q, want application/problem+json (%s)", ct, r)
	}
	var p problemBody
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Errorf("problem body: %v (%s)", err, r)
	}
	if p.Status != r.code || p.Code == "" || p.Type == "" || p.Title == "" {
		t.Errorf("incomplete problem %+v for %s", p, r)
	}
	return p
}

func (r resp) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r, err)
	}
}

// do sends one request. hdr are name/value pairs; without an Authorization
// pair the full-scope key is sent ("Authorization", "" sends none). It is
// safe from many goroutines: failures are t.Errorf. Every response of a
// route the OpenAPI document describes is validated against it.
func (e *env) do(method, path, body string, hdr ...string) resp {
	return e.doBytes(method, path, []byte(body), hdr...)
}

func (e *env) doBytes(method, path string, body []byte, hdr ...string) resp {
	t := e.t
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		t.Errorf("new request: %v", err)
		return resp{}
	}
	if len(body) > 0 {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+e.full)
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := e.client.Do(req)
	if err != nil {
		t.Errorf("%s %s: %v", method, path, err)
		return resp{}
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Errorf("%s %s: read body: %v", method, path, err)
	}
	r := resp{code: res.StatusCode, hdr: res.Header, body: b}
	if r.code >= 500 && r.code != http.StatusNotImplemented && !strings.HasPrefix(path, "/v1/test/") {
		t.Errorf("%s %s: server error %s", method, path, r)
	}
	if e.validateSpec {
		checkAgainstSpec(t, req, body, r)
	}
	return r
}

// invoiceJSON is the invoice object as a client reads it.
type invoiceJSON struct {
	ID             string            `json:"id"`
	Object         string            `json:"object"`
	Number         int64             `json:"number"`
	Status         string            `json:"status"`
	Amount         string            `json:"amount"`
	Currency       string            `json:"currency"`
	AmountPaid     string            `json:"amount_paid"`
	AmountRefunded string            `json:"amount_refunded"`
	ReferenceID    string            `json:"reference_id"`
	Description    string            `json:"description"`
	Provider       string            `json:"provider"`
	Customer       invoice.Customer  `json:"customer"`
	Metadata       map[string]string `json:"metadata"`
	CreatedAt      time.Time         `json:"created_at"`
	ExpiresAt      time.Time         `json:"expires_at"`
	PaidAt         *time.Time        `json:"paid_at"`
	Version        uint64            `json:"version"`
}

type listJSON[T any] struct {
	Object  string `json:"object"`
	Data    []T    `json:"data"`
	HasMore bool   `json:"has_more"`
}

// create posts an invoice and fails the test unless it is 201.
func (e *env) create(body string, hdr ...string) invoiceJSON {
	e.t.Helper()
	r := e.do("POST", "/v1/invoices", body, hdr...)
	if r.code != http.StatusCreated {
		e.t.Fatalf("create %s: %s", body, r)
	}
	var inv invoiceJSON
	r.decode(e.t, &inv)
	return inv
}

var seq atomic.Int64

// simple is a valid create body with a unique reference.
func simple(amount string) string {
	return fmt.Sprintf(`{"amount":%q,"currency":"USD","reference_id":"order-%d","customer":{"email":"payer@example.com"}}`, amount, seq.Add(1))
}

// head is the "nothing was written" witness: how many events are
// committed and the highest global position. It is read from the events
// table, not with the store's Head: on PostgreSQL Head holds back behind
// any open transaction of the cluster, so it can move without a write.
type storeHead struct{ Count, Max int64 }

func (e *env) head() storeHead {
	e.t.Helper()
	var h storeHead
	err := e.store.DB().QueryRowContext(context.Background(), `SELECT COUNT(*), COALESCE(MAX(global_position), 0) FROM events`).Scan(&h.Count, &h.Max)
	if err != nil {
		e.t.Fatal(err)
	}
	return h
}

// pay records a processed payment of the invoice's full amount (or amount)
// through the ledger, as a provider callback would.
func (e *env) pay(id, amount, currency string) {
	e.t.Helper()
	ctx := context.Background()
	m, err := money.Parse(amount, currency)
	if err != nil {
		e.t.Fatal(err)
	}
	pid := ledger.NewID("pay")
	svc := e.inv.Service()
	if _, err := svc.Execute(ctx, id, invoice.InitiatePayment{PaymentID: pid, Provider: "sandbox"}); err != nil {
		e.t.Fatal(err)
	}
	res, err := svc.Execute(ctx, id, invoice.RecordProcessed{PaymentID: pid, Provider: "sandbox", ProviderRef: "ch_" + pid, Amount: m, CardBrand: "visa", CardLast4: "4242"})
	if err != nil {
		e.t.Fatal(err)
	}
	// The server did not make this write, so its lists do not wait for
	// it; wait here so that tests read a settled read model.
	wait, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := e.set.WaitFor(wait, res.Position); err != nil {
		e.t.Fatal(err)
	}
}

func bigBody(n int) []byte {
	return []byte(`{"amount":"1.00","currency":"USD","description":"` + strings.Repeat("x", n) + `"}`)
}
