// Package paytest builds the real ledger of the payer-flow tests: an event
// store (an SQLite file or a fresh PostgreSQL database), the ledger
// service and invoice use cases on a settable clock, and the links and
// deadlines read models running live.
package paytest

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/payledger/payledger/eventstore"
	"github.com/payledger/payledger/eventstore/postgres"
	"github.com/payledger/payledger/eventstore/sqlite"
	"github.com/payledger/payledger/internal/pgtest"
	"github.com/payledger/payledger/ledger"
	"github.com/payledger/payledger/projections"
	"github.com/payledger/payledger/projections/deadlines"
	"github.com/payledger/payledger/projections/links"
)

// Store is what the stores here offer beyond eventstore.Store.
type Store interface {
	projections.Backend
	Head(ctx context.Context) (eventstore.Position, error)
}

// Clock is a settable clock, safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock starts at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// Counter is an in-process invoice Numberer (numbers only need to be
// unique inside one test).
type Counter struct{ n atomic.Int64 }

// Next implements ledger.Numberer.
func (c *Counter) Next(context.Context) (int64, error) { return 1000 + c.n.Add(1), nil }

// Env is one test's ledger.
type Env struct {
	Store     Store
	Clock     *Clock
	Service   *ledger.Service
	Invoices  *ledger.Invoices
	Set       *projections.Set
	Links     *links.Projection
	Deadlines *deadlines.Projection

	mu   sync.Mutex
	last eventstore.Position
}

// Note records the position of an append the test made, so that MustSync
// waits for it (the PostgreSQL head can lag behind a commit while other
// transactions are open).
func (e *Env) Note(res ledger.Result) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.last.Less(res.Position) {
		e.last = res.Position
	}
}

// Backends are the store kinds every payer-flow test runs on.
var Backends = []string{"sqlite", "postgres"}

// OpenStore opens a fresh store of the kind ("sqlite" or "postgres").
func OpenStore(t testing.TB, kind string, dir string) Store {
	t.Helper()
	ctx := context.Background()
	var (
		s   Store
		err error
	)
	switch kind {
	case "sqlite":
		s, err = sqlite.Open(ctx, dir+"/events.db")
	case "postgres":
		s, err = postgres.Open(ctx, pgtest.New(t))
	default:
		t.Fatalf("paytest: unknown backend %q", kind)
	}
	if err != nil {
		t.Fatalf("paytest: open %s: %v", kind, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// New builds an Env on a fresh store with live projections. policy fields
// left zero take the ledger's defaults; the link TTL minimum is lowered so
// tests may issue short links.
func New(t testing.TB, kind string) *Env {
	t.Helper()
	return Open(t, OpenStore(t, kind, t.TempDir()), NewClock(time.Now().UTC().Truncate(time.Second)))
}

// Open builds an Env on store with clock and starts its projections; they
// stop at cleanup. Opening twice on one store is how tests restart.
func Open(t testing.TB, store Store, clock *Clock) *Env {
	t.Helper()
	svc := ledger.New(store, clock.Now)
	e := &Env{
		Store:     store,
		Clock:     clock,
		Service:   svc,
		Invoices:  ledger.NewInvoices(svc, &Counter{}, nil, ledger.Policy{LinkTTLMin: time.Second}),
		Links:     links.New(store, store.DB()),
		Deadlines: deadlines.New(store, store.DB()),
	}
	set, err := projections.NewSet(store, projections.Options{}, e.Links, e.Deadlines)
	if err != nil {
		t.Fatal(err)
	}
	if err := set.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.Set = set
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = set.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return e
}

// Sync waits until the projections include every appended event.
func (e *Env) Sync(ctx context.Context) error {
	pos, err := e.Store.Head(ctx)
	if err != nil {
		return err
	}
	return e.Set.WaitFor(ctx, pos)
}

// MustSync is Sync bounded by 20 s, failing the test on error.
func (e *Env) MustSync(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := e.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	e.mu.Lock()
	last := e.last
	e.mu.Unlock()
	if err := e.Set.WaitFor(ctx, last); err != nil {
		t.Fatal(err)
	}
}

// Invoice creates an open invoice of amount USD on provider and issues a
// link; it returns the invoice id and the link token.
func (e *Env) Invoice(t testing.TB, amount, provider string, returns ...string) (string, string) {
	t.Helper()
	ctx := context.Background()
	req := ledger.InvoiceRequest{Amount: amount, Currency: "USD", Description: "Account reset 1 Step $100,000", Provider: provider}
	if len(returns) == 2 {
		req.ReturnURLs.Success, req.ReturnURLs.Fail = returns[0], returns[1]
	}
	res, err := e.Invoices.Create(ctx, req, "")
	if err != nil {
		t.Fatalf("paytest: create: %v", err)
	}
	e.Note(res.Result)
	l, err := e.Invoices.IssueLink(ctx, res.State.ID, 0)
	if err != nil {
		t.Fatalf("paytest: issue link: %v", err)
	}
	e.Note(l.Result)
	return res.State.ID, l.Token
}
