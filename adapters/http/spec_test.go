package httpapi_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	httpapi "github.com/payledger/payledger/adapters/http"
	"github.com/payledger/payledger/projections"
	"github.com/payledger/payledger/projections/projectiontest"
)

var spec struct {
	once   sync.Once
	doc    *openapi3.T
	router routers.Router
	err    error

	mu      sync.Mutex
	checked map[string]int // "METHOD /path/template STATUS" → responses validated
}

func loadSpec() (*openapi3.T, routers.Router, error) {
	spec.once.Do(func() {
		openapi3filter.RegisterBodyDecoder("application/yaml", openapi3filter.PlainBodyDecoder)
		loader := openapi3.NewLoader()
		doc, err := loader.LoadFromData(httpapi.OpenAPI())
		if err != nil {
			spec.err = err
			return
		}
		if err := doc.Validate(context.Background()); err != nil {
			spec.err = err
			return
		}
		// The document's server is relative ("/"); route on paths alone so
		// that the test server's random port matches.
		doc.Servers = nil
		spec.doc = doc
		spec.router, spec.err = legacy.NewRouter(doc)
		spec.checked = map[string]int{}
	})
	return spec.doc, spec.router, spec.err
}

// checkAgainstSpec validates one real response against the OpenAPI
// document: status documented, headers and body matching their schemas.
// Routes the document does not describe (/pay/, test-only routes) are
// skipped.
func checkAgainstSpec(t testing.TB, req *http.Request, reqBody []byte, r resp) {
	t.Helper()
	_, router, err := loadSpec()
	if err != nil {
		t.Errorf("openapi document: %v", err)
		return
	}
	if !strings.HasPrefix(req.URL.Path, "/v1/") || strings.HasPrefix(req.URL.Path, "/v1/test/") {
		return
	}
	// A fresh request: FindRoute and the validator read the body.
	vreq, _ := http.NewRequest(req.Method, req.URL.String(), bytes.NewReader(reqBody))
	vreq.Header = req.Header.Clone()
	route, params, err := router.FindRoute(vreq)
	if err != nil {
		t.Errorf("%s %s: not in the OpenAPI document: %v", req.Method, req.URL.Path, err)
		return
	}
	opts := &openapi3filter.Options{IncludeResponseStatus: true, AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: vreq, PathParams: params, Route: route, Options: opts},
		Status:                 r.code,
		Header:                 r.hdr,
		Body:                   io.NopCloser(bytes.NewReader(r.body)),
		Options:                opts,
	}
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		t.Errorf("%s %s → %d does not match the OpenAPI document: %v\nbody: %s", req.Method, req.URL.Path, r.code, err, truncate(r.body))
		return
	}
	spec.mu.Lock()
	spec.checked[req.Method+" "+route.Path+" "+http.StatusText(r.code)]++
	spec.mu.Unlock()
}

func truncate(b []byte) string {
	if len(b) > 600 {
		return string(b[:600]) + "…"
	}
	return string(b)
}

// TestOpenAPIDocument: the document is valid OpenAPI 3.1, docs/openapi.yaml
// is the same file, and the server serves it without a key.
func TestOpenAPIDocument(t *testing.T) {
	t.Parallel()
	doc, _, err := loadSpec()
	if err != nil {
		t.Fatal(err)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Fatalf("openapi %s, want 3.1", doc.OpenAPI)
	}
	docs, err := os.ReadFile("../../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(docs, httpapi.OpenAPI()) {
		t.Fatal("docs/openapi.yaml differs from adapters/http/openapi.yaml: copy the canonical file over")
	}
	// Every native route the server registers is documented.
	for _, p := range []string{"/v1/invoices", "/v1/invoices/{id}", "/v1/invoices/{id}/cancel", "/v1/invoices/{id}/events",
		"/v1/invoices/{id}/payment_links", "/v1/refunds", "/v1/events", "/v1/openapi.yaml"} {
		if doc.Paths.Find(p) == nil {
			t.Errorf("path %s is not documented", p)
		}
	}

	e := newEnv(t, projectiontest.SQLite(t))
	r := e.do("GET", "/v1/openapi.yaml", "", "Authorization", "")
	if r.code != http.StatusOK || !bytes.Equal(r.body, httpapi.OpenAPI()) {
		t.Fatalf("GET /v1/openapi.yaml: %d, %d bytes", r.code, len(r.body))
	}
	if ct := r.hdr.Get("Content-Type"); ct != "application/yaml" {
		t.Fatalf("content type %q", ct)
	}
}

// TestResponsesMatchOpenAPI drives every documented native operation
// through its success and its typical refusals on both backends; each
// response is validated by the harness. It then checks that the sweep
// really reached every operation, so a route can not silently escape
// validation.
func TestResponsesMatchOpenAPI(t *testing.T) {
	// Parallel subtests finish after this function returns; the coverage
	// check runs when they are all done.
	t.Cleanup(func() { checkCoverage(t) })
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		e := newEnv(t, b)
		inv := e.create(`{"amount":"100.55","currency":"usd","reference_id":"spec-1","description":"Account reset",
			"customer":{"email":"john@example.com","name":"John Smith","phone":"+1234567890",
			"address":{"line1":"1 Main St","line2":"Apt 2","city":"Springfield","postcode":"12345","country":"us"}},
			"metadata":{"account_id":"12345"},"provider":"sandbox",
			"return_urls":{"success":"https://shop.example/ok","fail":"https://shop.example/fail"}}`)
		e.do("POST", "/v1/invoices", `{"amount":"100.55","currency":"usd","reference_id":"spec-1"}`) // 409 conflict
		e.do("POST", "/v1/invoices", `{"amount":"-1","currency":"USD"}`)                             // 400
		e.do("POST", "/v1/invoices", `{"amount":"1.00","currency":"USD"}`, "Authorization", "Bearer "+e.read)
		e.do("POST", "/v1/invoices", `{}`, "Authorization", "")
		e.doBytes("POST", "/v1/invoices", bigBody(2<<20))
		e.do("POST", "/v1/invoices", simple("1.00"), "Idempotency-Key", "spec-k")
		e.do("POST", "/v1/invoices", simple("2.00"), "Idempotency-Key", "spec-k") // 422
		e.do("GET", "/v1/invoices/"+inv.ID, "")
		e.do("GET", "/v1/invoices/"+inv.ID+"?as_of="+inv.CreatedAt.Format("2006-01-02T15:04:05.999999999Z07:00"), "")
		e.do("GET", "/v1/invoices/inv_nope", "")
		e.do("GET", "/v1/invoices?limit=2&status=open&metadata[account_id]=12345", "")
		e.do("GET", "/v1/invoices?limit=0", "")
		e.do("GET", "/v1/invoices/"+inv.ID+"/events", "")
		e.do("GET", "/v1/invoices/inv_nope/events", "")
		e.do("POST", "/v1/invoices/"+inv.ID+"/payment_links", `{"ttl_seconds":300}`)
		e.do("POST", "/v1/invoices/"+inv.ID+"/payment_links", `{"ttl_seconds":1}`)
		e.do("POST", "/v1/invoices/inv_nope/payment_links", ``)
		e.do("GET", "/v1/events?limit=3", "")
		e.do("GET", "/v1/events?after=evt_x", "")
		e.do("POST", "/v1/refunds", `{"invoice_id":"`+inv.ID+`","amount":"1.00"}`) // 409 not paid
		e.pay(inv.ID, "100.55", "USD")
		e.do("POST", "/v1/refunds", `{"invoice_id":"`+inv.ID+`","amount":"10.00","reason":"requested_by_customer"}`)
		e.do("POST", "/v1/refunds", `{"invoice_id":"`+inv.ID+`","amount":"1000.00"}`)
		e.do("POST", "/v1/refunds", `{"invoice_id":"inv_nope","amount":"1.00"}`)
		e.do("POST", "/v1/invoices/"+inv.ID+"/cancel", ``) // 409 paid
		other := e.create(simple("5.00"))
		e.do("POST", "/v1/invoices/"+other.ID+"/cancel", `{"reason":"customer changed their mind"}`)
		e.do("POST", "/v1/invoices/"+other.ID+"/payment_links", ``) // 409 not open
	})
}

func checkCoverage(t *testing.T) {
	if t.Failed() {
		return
	}
	spec.mu.Lock()
	defer spec.mu.Unlock()
	want := []string{
		"POST /v1/invoices Created", "POST /v1/invoices Bad Request", "POST /v1/invoices Conflict",
		"POST /v1/invoices Forbidden", "POST /v1/invoices Unauthorized", "POST /v1/invoices Request Entity Too Large",
		"POST /v1/invoices Unprocessable Entity",
		"GET /v1/invoices/{id} OK", "GET /v1/invoices/{id} Not Found", "GET /v1/invoices OK", "GET /v1/invoices Bad Request",
		"GET /v1/invoices/{id}/events OK", "GET /v1/invoices/{id}/events Not Found",
		"POST /v1/invoices/{id}/payment_links Created", "POST /v1/invoices/{id}/payment_links Bad Request",
		"POST /v1/invoices/{id}/payment_links Not Found", "POST /v1/invoices/{id}/payment_links Conflict",
		"GET /v1/events OK", "GET /v1/events Bad Request",
		"POST /v1/refunds Created", "POST /v1/refunds Conflict", "POST /v1/refunds Not Found",
		"POST /v1/invoices/{id}/cancel OK", "POST /v1/invoices/{id}/cancel Conflict",
	}
	var missing []string
	for _, w := range want {
		if spec.checked[w] == 0 {
			missing = append(missing, w)
		}
	}
	if len(missing) > 0 {
		var seen []string
		for k := range spec.checked {
			seen = append(seen, k)
		}
		sort.Strings(seen)
		t.Errorf("not validated: %v\nvalidated: %v", missing, seen)
	}
}
