package openapitest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	httpapi "github.com/payledger/payledger/adapters/http"
)

// The document is parsed and checked once per test binary; validators
// share it read-only.
var loaded struct {
	once   sync.Once
	router routers.Router
	err    error
}

func load() (routers.Router, error) {
	loaded.once.Do(func() {
		// The document and the CSV exports are validated as the raw text
		// they are: kin-openapi's own CSV decoder re-joins records, which
		// would hide the quoting and the CRLF line ends the schema pins.
		openapi3filter.RegisterBodyDecoder("application/yaml", openapi3filter.PlainBodyDecoder)
		openapi3filter.RegisterBodyDecoder("text/csv", openapi3filter.PlainBodyDecoder)
		doc, err := openapi3.NewLoader().LoadFromData(httpapi.OpenAPI())
		if err != nil {
			loaded.err = fmt.Errorf("openapi document: %w", err)
			return
		}
		if err := doc.Validate(context.Background()); err != nil {
			loaded.err = fmt.Errorf("openapi document: %w", err)
			return
		}
		// The document's server is relative ("/"): route on paths alone so
		// that a test server's random port matches.
		doc.Servers = nil
		loaded.router, loaded.err = legacy.NewRouter(doc)
	})
	return loaded.router, loaded.err
}

// Validator checks exchanges against the document and remembers which
// operation and status each valid one covered. It is safe for concurrent
// use.
type Validator struct {
	router routers.Router
	mu     sync.Mutex
	seen   map[string]int // "METHOD /path/template STATUS" → exchanges
}

// New returns a validator over the embedded document; an invalid document
// fails t at once.
func New(t testing.TB) *Validator {
	t.Helper()
	r, err := load()
	if err != nil {
		t.Fatal(err)
	}
	return &Validator{router: r, seen: map[string]int{}}
}

// Validate checks one exchange: the route is documented, the status is
// listed for the operation (a status below 500 may not fall through to
// `default`), and headers and body match the response's schemas. A
// request the server accepted (2xx) must also match the request schemas,
// so that the document never refuses what the server takes. body is the
// whole response body; the request body is read through req.GetBody.
func (v *Validator) Validate(req *http.Request, res *http.Response, body []byte) error {
	var reqBody []byte
	if req.GetBody != nil {
		rc, err := req.GetBody()
		if err != nil {
			return fmt.Errorf("request body: %w", err)
		}
		reqBody, err = io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return fmt.Errorf("request body: %w", err)
		}
	}
	// A fresh request: routing and validation read its body.
	vreq, err := http.NewRequestWithContext(context.Background(), req.Method, req.URL.String(), bytes.NewReader(reqBody))
	if err != nil {
		return err
	}
	vreq.Header = req.Header.Clone()
	route, params, err := v.router.FindRoute(vreq)
	if err != nil {
		return fmt.Errorf("%s %s is not in the OpenAPI document: %w", req.Method, req.URL.Path, err)
	}
	if route.Operation.Responses.Status(res.StatusCode) == nil && res.StatusCode < 500 {
		return fmt.Errorf("%s %s answered %d, a status the document does not list for %s %s",
			req.Method, req.URL.Path, res.StatusCode, req.Method, route.Path)
	}
	opts := &openapi3filter.Options{IncludeResponseStatus: true,
		AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}
	in := &openapi3filter.RequestValidationInput{Request: vreq, PathParams: params, Route: route, Options: opts}
	if err := openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 res.StatusCode,
		Header:                 res.Header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                opts,
	}); err != nil {
		return fmt.Errorf("%s %s → %d does not match the OpenAPI document: %w\nbody: %s",
			req.Method, req.URL.RequestURI(), res.StatusCode, err, clip(body))
	}
	if res.StatusCode >= 200 && res.StatusCode < 300 {
		vreq.Body = io.NopCloser(bytes.NewReader(reqBody))
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
			return fmt.Errorf("%s %s was accepted (%d) but the OpenAPI document refuses the request: %w\nrequest body: %s",
				req.Method, req.URL.RequestURI(), res.StatusCode, err, clip(reqBody))
		}
	}
	v.mu.Lock()
	v.seen[req.Method+" "+route.Path+" "+strconv.Itoa(res.StatusCode)]++
	v.mu.Unlock()
	return nil
}

// Check is Validate reporting to t.
func (v *Validator) Check(t testing.TB, req *http.Request, res *http.Response, body []byte) {
	t.Helper()
	if err := v.Validate(req, res, body); err != nil {
		t.Error(err)
	}
}

// Client returns an HTTP client that checks every response it receives.
// The response body handed back is the whole body, already read.
func (v *Validator) Client(t testing.TB) *http.Client {
	return &http.Client{Transport: &transport{v: v, t: t, base: http.DefaultTransport}}
}

type transport struct {
	v    *Validator
	t    testing.TB
	base http.RoundTripper
}

func (tr *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil && req.GetBody == nil {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(b))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	}
	res, err := tr.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		return nil, errors.Join(errors.New("openapitest: reading the response body"), err)
	}
	res.Body = io.NopCloser(bytes.NewReader(body))
	tr.v.Check(tr.t, req, res, body)
	return res, nil
}

// Seen lists the "METHOD /path/template STATUS" keys of the valid
// exchanges so far, sorted.
func (v *Validator) Seen() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := make([]string, 0, len(v.seen))
	for k := range v.seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// RequireSeen fails t for each "METHOD /path/template STATUS" in want that
// no valid exchange covered, so that a sweep cannot silently stop
// reaching an operation.
func (v *Validator) RequireSeen(t testing.TB, want ...string) {
	t.Helper()
	v.mu.Lock()
	var missing []string
	for _, w := range want {
		if v.seen[w] == 0 {
			missing = append(missing, w)
		}
	}
	v.mu.Unlock()
	if len(missing) > 0 {
		t.Errorf("not validated against the OpenAPI document: %v\nvalidated: %v", missing, v.Seen())
	}
}

func clip(b []byte) string {
	if len(b) > 800 {
		return string(b[:800]) + "…"
	}
	return string(b)
}
