// Package callbackstest runs the provider bridge against a real ledger for
// adapter tests: a fresh store with the links and deadlines read models
// live, the GET /pay/{token} handler with the configured adapters, the
// callbacks routes, the janitor's payments index, and helpers to visit
// pages and post callbacks the way a browser and a provider would.
package callbackstest

import (
	"bytes"
	"context"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payledger/payledger/adapters/callbacks"
	"github.com/payledger/payledger/adapters/pay"
	"github.com/payledger/payledger/adapters/provider"
	"github.com/payledger/payledger/domain/invoice"
	"github.com/payledger/payledger/eventstore"
	"github.com/payledger/payledger/internal/paytest"
	"github.com/payledger/payledger/ledger"
	"github.com/payledger/payledger/projections"
)

// Harness is one test's ledger and server.
type Harness struct {
	Env      *paytest.Env
	Service  *callbacks.Service
	Server   *httptest.Server
	Payments *callbacks.Payments
	Janitor  *callbacks.Janitor
	index    *projections.Set
	client   *http.Client

	mu       sync.Mutex
	invoices []string
}

// New builds a harness on store (projectiontest.Backends hands out
// stores that satisfy paytest.Store) with adapters. opt.Ledger,
// opt.Adapters and opt.PublicURL are filled in.
func New(t testing.TB, store paytest.Store, opt callbacks.Options, jopt callbacks.JanitorOptions, adapters ...provider.Adapter) *Harness {
	t.Helper()
	return NewWith(t, store, opt, jopt, nil, adapters...)
}

// Setup adds a test's own payer pages beside the bridge's: it may mount
// routes on mux and set providers (the GET /pay/{token} handler's map,
// by invoice provider name; the bridge's are in it already). It runs
// before the server takes requests, with h's Env, Service and Server
// ready.
type Setup func(h *Harness, mux *http.ServeMux, providers map[string]pay.Provider)

// NewWith is New with a Setup (nil: none).
func NewWith(t testing.TB, store paytest.Store, opt callbacks.Options, jopt callbacks.JanitorOptions, setup Setup, adapters ...provider.Adapter) *Harness {
	t.Helper()
	env := paytest.Open(t, store, paytest.NewClock(time.Now().UTC().Truncate(time.Second)))
	// Invoices may name the adapters under test, whatever their names.
	names := []string{"sandbox"}
	for _, a := range adapters {
		names = append(names, a.Name())
	}
	env.Invoices = ledger.NewInvoices(env.Service, &paytest.Counter{}, nil, ledger.Policy{LinkTTLMin: time.Second, Providers: names})
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	opt.Ledger, opt.Adapters, opt.PublicURL = env.Service, adapters, srv.URL
	if opt.Secret == nil {
		opt.Secret = []byte("callbacks test secret")
	}
	svc := callbacks.New(opt)
	svc.Routes(mux)
	providers := svc.Providers()
	h := &Harness{Env: env, Service: svc, Server: srv}
	if setup != nil {
		setup(h, mux, providers)
	}
	pay.New(pay.Options{
		Ledger: env.Service, Links: pay.FromLinks(env.Links), Sync: pay.SyncFunc(env.Sync),
		Providers: providers,
	}).Routes(mux)
	idx := callbacks.NewPayments(store)
	set, err := projections.NewSet(store, projections.Options{}, idx)
	if err != nil {
		t.Fatal(err)
	}
	if err := set.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = set.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	h.Payments, h.Janitor, h.index = idx, svc.Janitor(idx, jopt), set
	h.client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return h
}

// Response is an answer, redirects not followed.
type Response struct {
	Code     int
	Body     string
	Location string
	Header   http.Header
}

var actionRE = regexp.MustCompile(`<form[^>]* action="([^"]+)"`)

// Action is the target of the page's first form (the retry button).
func (r Response) Action(t testing.TB) string {
	t.Helper()
	m := actionRE.FindStringSubmatch(r.Body)
	if m == nil {
		t.Fatalf("no form on the page (%d): %s", r.Code, r.Body)
	}
	return html.UnescapeString(m[1])
}

// Do sends a request to the server; target is a path or an absolute URL.
func (h *Harness) Do(t testing.TB, method, target string, body []byte, hdr http.Header) Response {
	t.Helper()
	if strings.HasPrefix(target, "/") {
		target = h.Server.URL + target
	}
	req, err := http.NewRequest(method, target, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return Response{Code: resp.StatusCode, Body: string(b), Location: resp.Header.Get("Location"), Header: resp.Header}
}

// Invoice creates an open USD invoice on provider and issues its link.
func (h *Harness) Invoice(t testing.TB, amount, provider string) (string, string) {
	t.Helper()
	id, token := h.Env.Invoice(t, amount, provider, "https://merchant.example/ok", "https://merchant.example/fail")
	h.track(id)
	return id, token
}

func (h *Harness) track(id string) {
	h.mu.Lock()
	h.invoices = append(h.invoices, id)
	h.mu.Unlock()
}

// InvoiceIn creates an open invoice in currency on provider, expiring
// after expires (0: the default), and issues its link.
func (h *Harness) InvoiceIn(t testing.TB, amount, currency, provider string, expires time.Duration) (string, string) {
	t.Helper()
	ctx := context.Background()
	req := ledger.InvoiceRequest{Amount: amount, Currency: currency, Description: "Standard Plan", Provider: provider}
	req.ReturnURLs.Success, req.ReturnURLs.Fail = "https://merchant.example/ok", "https://merchant.example/fail"
	if expires > 0 {
		req.ExpiresAt = h.Env.Clock.Now().Add(expires)
	}
	res, err := h.Env.Invoices.Create(ctx, req, "")
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	h.Env.Note(res.Result)
	l, err := h.Env.Invoices.IssueLink(ctx, res.State.ID, 0)
	if err != nil {
		t.Fatalf("issue link: %v", err)
	}
	h.Env.Note(l.Result)
	h.track(res.State.ID)
	return res.State.ID, l.Token
}

// Visit opens the one-time link, once the links read model has the
// link (the pay handler's own wait is short, and tests run under load).
func (h *Harness) Visit(t testing.TB, token string) Response {
	t.Helper()
	h.Env.MustSync(t)
	return h.Do(t, http.MethodGet, "/pay/"+token, nil, nil)
}

// Callback posts a provider notification.
func (h *Harness) Callback(t testing.TB, name string, body []byte, hdr http.Header) Response {
	t.Helper()
	if hdr == nil {
		hdr = http.Header{"Content-Type": {"application/json"}}
	}
	return h.Do(t, http.MethodPost, "/callbacks/"+name, body, hdr)
}

// State loads an invoice.
func (h *Harness) State(t testing.TB, id string) invoice.State {
	t.Helper()
	st, err := h.Env.Service.Load(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// Events are the invoice's events in order.
func (h *Harness) Events(t testing.TB, id string) []invoice.Event {
	t.Helper()
	_, evs, err := h.Env.Service.History(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// Count is how many of the invoice's events have type typ.
func (h *Harness) Count(t testing.TB, id, typ string) int {
	t.Helper()
	n := 0
	for _, e := range h.Events(t, id) {
		if e.EventType() == typ {
			n++
		}
	}
	return n
}

// Sweep waits until the payments index has every event of the invoices
// the harness created (on PostgreSQL a commit can stay invisible to
// readers for a while, so catching up to the head is not enough), then
// runs one janitor sweep.
func (h *Harness) Sweep(t testing.TB) callbacks.Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	h.mu.Lock()
	ids := append([]string(nil), h.invoices...)
	h.mu.Unlock()
	var last eventstore.Position
	for _, id := range ids {
		recs, err := h.Env.Store.ReadStream(ctx, ledger.StreamName(id), 1)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(recs); n > 0 && last.Less(recs[n-1].Position) {
			last = recs[n-1].Position
		}
	}
	if err := h.index.WaitFor(ctx, last); err != nil {
		t.Fatal(err)
	}
	rep, err := h.Janitor.Sweep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// Unmatched returns the callbacks kept on stream.
func (h *Harness) Unmatched(t testing.TB, stream string) []invoice.CallbackReceived {
	t.Helper()
	recs, err := h.Env.Store.ReadStream(context.Background(), stream, 1)
	if err != nil {
		t.Fatal(err)
	}
	var out []invoice.CallbackReceived
	for _, r := range recs {
		e, err := invoice.Decode(r.Type, r.Data)
		if err != nil {
			t.Fatal(err)
		}
		if c, ok := e.(invoice.CallbackReceived); ok {
			out = append(out, c)
		}
	}
	return out
}

// Payment is the invoice's payment with id.
func Payment(st invoice.State, id string) (invoice.Payment, bool) {
	for _, p := range st.Payments {
		if p.ID == id {
			return p, true
		}
	}
	return invoice.Payment{}, false
}

// HasFlag reports whether a payment of st carries f.
func HasFlag(st invoice.State, f invoice.Flag) bool {
	for _, p := range st.Payments {
		for _, g := range p.Flags {
			if g == f {
				return true
			}
		}
	}
	return false
}
