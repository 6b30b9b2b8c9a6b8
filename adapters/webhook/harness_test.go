package webhook_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/payledger/payledger/adapters/webhook"
	"github.com/payledger/payledger/domain/invoice"
	"github.com/payledger/payledger/eventstore"
	"github.com/payledger/payledger/eventstore/postgres"
	"github.com/payledger/payledger/eventstore/sqlite"
	"github.com/payledger/payledger/internal/pgtest"
	"github.com/payledger/payledger/ledger"
	"github.com/payledger/payledger/projections"
	"github.com/payledger/payledger/projections/outbox"
	"github.com/payledger/payledger/projections/projectiontest"
)

// opener opens the same database again each call (a restart).
type opener func(t *testing.T) projections.Backend

// reopenable runs fn on both backends with an opener instead of an open
// store, for tests that close and reopen the database.
func reopenable(t *testing.T, fn func(t *testing.T, open opener)) {
	t.Helper()
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		url := pgtest.New(t)
		fn(t, func(t *testing.T) projections.Backend {
			s, err := postgres.Open(context.Background(), url)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		})
	})
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "ledger.db")
		fn(t, func(t *testing.T) projections.Backend {
			s, err := sqlite.Open(context.Background(), path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		})
	})
}

// node is one life of the process: store, outbox projection, sender.
type node struct {
	b      projections.Backend
	store  *webhook.Store
	set    *projections.Set
	sender *webhook.Sender
	stop   func()
}

// newNode wires the webhook parts over b; the projection and sender run
// only after start.
func newNode(t *testing.T, b projections.Backend, so webhook.SenderOptions) *node {
	t.Helper()
	ctx := context.Background()
	store, err := webhook.NewStore(ctx, b, so.Now)
	if err != nil {
		t.Fatal(err)
	}
	set, err := projections.NewSet(b, projections.Options{}, outbox.New(b, store))
	if err != nil {
		t.Fatal(err)
	}
	if err := set.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	so.DB, so.Endpoints = b, store
	if so.Jitter == 0 {
		so.Jitter = -1
	}
	if so.MaxPoll == 0 {
		so.MaxPoll = 50 * time.Millisecond
	}
	if so.Client == nil && !so.Guard.AllowPrivate {
		so.Guard.AllowPrivate = true // receivers are httptest servers on loopback
	}
	sender, err := webhook.NewSender(so)
	if err != nil {
		t.Fatal(err)
	}
	set.Runner(outbox.Name).OnCommit(func([]eventstore.RecordedEvent) { sender.Wake() })
	return &node{b: b, store: store, set: set, sender: sender, stop: func() {}}
}

// start runs the projection and the sender until stop (also at cleanup).
func (n *node) start(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = n.set.Run(ctx) }()
	go func() { defer wg.Done(); _ = n.sender.Run(ctx) }()
	var once sync.Once
	n.stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(n.stop)
}

// endpoint registers a receiver URL directly in the store (the API's URL
// check is tested on its own).
func (n *node) endpoint(t *testing.T, url, format string, events ...string) webhook.Endpoint {
	t.Helper()
	if len(events) == 0 {
		events = []string{"*"}
	}
	e, err := n.store.Create(context.Background(), webhook.NewEndpoint{URL: url, Format: format, Events: events})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// paidInvoices appends n invoices that are created, get a link that is
// consumed, and are paid: 4 published events each (created, link_issued,
// link_consumed, paid), one of them (paid) an order update.
func paidInvoices(t *testing.T, b projections.Backend, n int) []string {
	t.Helper()
	ctx := context.Background()
	ids := make([]string, n)
	t0 := time.Now()
	for i := range n {
		id := ledger.NewID("inv")
		ids[i] = id
		s := projectiontest.NewScript(id).
			Do(projectiontest.Create(id, int64(2000+i), "10.00", "USD", t0.Add(time.Hour)), t0).
			Do(invoice.IssueLink{LinkID: "lnk_" + id[4:], TokenHash: fmt.Sprintf("%064x", i+1), ExpiresAt: t0.Add(10 * time.Minute)}, t0).
			Do(invoice.ConsumeLink{TokenHash: fmt.Sprintf("%064x", i+1)}, t0).
			Do(invoice.InitiatePayment{PaymentID: "pay_" + id[4:], Provider: "sandbox"}, t0).
			Do(invoice.RecordProcessed{PaymentID: "pay_" + id[4:], Provider: "sandbox", ProviderRef: "ch_" + id[4:], Amount: projectiontest.MustMoney("10.00", "USD")}, t0)
		if _, err := s.Append(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	projectiontest.Settle(t, b, ids)
	return ids
}

// receiver is a merchant endpoint that checks every signature, fails the
// first failFirst attempts of each message with failStatus, and counts.
type receiver struct {
	srv        *httptest.Server
	mu         sync.Mutex
	secrets    map[string]string // endpoint id → secret, set after creation
	failFirst  int
	failStatus int
	attempts   map[string]int // message key → attempts seen
	successes  map[string]int // message key → 2xx answered
	badSig     []string
	total      int
}

func newReceiver(t *testing.T, failFirst, failStatus int) *receiver {
	t.Helper()
	r := &receiver{secrets: map[string]string{}, failFirst: failFirst, failStatus: failStatus,
		attempts: map[string]int{}, successes: map[string]int{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) url(path string) string { return r.srv.URL + path }

func (r *receiver) secret(endpointID, secret string) {
	r.mu.Lock()
	r.secrets[endpointID] = secret
	r.mu.Unlock()
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	endpointID := req.URL.Path[1:]
	r.mu.Lock()
	defer r.mu.Unlock()
	r.total++
	secret := r.secrets[endpointID]
	var key string
	if id := req.Header.Get("X-WC-Webhook-Delivery-ID"); id != "" {
		key = "woo " + id
		if !webhook.VerifyWooCommerce(secret, body, req.Header.Get("X-WC-Webhook-Signature")) ||
			req.Header.Get("X-WC-Webhook-Topic") != "order.updated" || req.Header.Get("X-WC-Webhook-ID") != endpointID {
			r.badSig = append(r.badSig, key)
		}
	} else {
		key = "std " + endpointID + " " + req.Header.Get("webhook-id")
		ts := req.Header.Get("webhook-timestamp")
		sec, _ := strconv.ParseInt(ts, 10, 64)
		if !webhook.VerifyStandard(secret, req.Header.Get("webhook-id"), ts, body, req.Header.Get("webhook-signature")) ||
			time.Since(time.Unix(sec, 0)).Abs() > 5*time.Minute {
			r.badSig = append(r.badSig, key)
		}
	}
	r.attempts[key]++
	if r.attempts[key] <= r.failFirst {
		w.WriteHeader(r.failStatus)
		fmt.Fprintf(w, "failing on purpose, attempt %d", r.attempts[key])
		return
	}
	r.successes[key]++
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("ok"))
}

func (r *receiver) snapshot() (attempts, successes map[string]int, bad []string, total int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	attempts, successes = map[string]int{}, map[string]int{}
	for k, v := range r.attempts {
		attempts[k] = v
	}
	for k, v := range r.successes {
		successes[k] = v
	}
	return attempts, successes, append([]string(nil), r.badSig...), r.total
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func count(t *testing.T, b projections.Backend, q string, args ...any) int {
	t.Helper()
	var n int
	if err := b.DB().QueryRowx(b.DB().Rebind(q), args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}
