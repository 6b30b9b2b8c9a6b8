package idempotency_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/payledger/payledger/adapters/idempotency"
	"github.com/payledger/payledger/projections"
	"github.com/payledger/payledger/projections/projectiontest"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

type fixture struct {
	store *idempotency.Store
	clock *clock
	h     http.Handler
	runs  atomic.Int64
	// block, when set, holds the handler until closed.
	block   chan struct{}
	entered chan struct{}
}

func newFixture(t *testing.T, b projections.Backend) *fixture {
	t.Helper()
	f := &fixture{clock: &clock{t: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}}
	s, err := idempotency.New(context.Background(), b, f.clock.now)
	if err != nil {
		t.Fatal(err)
	}
	f.store = s
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := f.runs.Add(1)
		if f.block != nil {
			f.entered <- struct{}{}
			<-f.block
		}
		body, _ := io.ReadAll(r.Body)
		if strings.Contains(string(body), "panic") {
			panic("handler failure")
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Location", "/v1/things/1")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"run":%d,"key":%q}`, n, idempotency.FromContext(r.Context()))
	})
	// The scope is the caller: here the X-Caller header.
	f.h = s.Middleware(func(r *http.Request) string { return r.Header.Get("X-Caller") }, next)
	return f
}

func (f *fixture) post(caller, key, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("POST", "/v1/things", strings.NewReader(body))
	r.Header.Set("X-Caller", caller)
	if key != "" {
		r.Header.Set(idempotency.Header, key)
	}
	w := httptest.NewRecorder()
	func() {
		defer func() { _ = recover() }()
		f.h.ServeHTTP(w, r)
	}()
	return w
}

// TestContract: replay, mismatch, scoping, and which requests the
// middleware leaves alone.
func TestContract(t *testing.T) {
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		f := newFixture(t, b)
		first := f.post("a", "k1", `{"x":1}`)
		if first.Code != 201 || first.Body.String() != `{"run":1,"key":"a:k1"}` {
			t.Fatalf("first: %d %s", first.Code, first.Body)
		}
		again := f.post("a", "k1", `{"x":1}`)
		if again.Code != 201 || again.Body.String() != first.Body.String() || again.Header().Get("Idempotent-Replayed") != "true" ||
			again.Header().Get("Location") != "/v1/things/1" || again.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("replay: %d %s %v", again.Code, again.Body, again.Header())
		}
		if w := f.post("a", "k1", `{"x":2}`); w.Code != http.StatusUnprocessableEntity || !strings.Contains(w.Body.String(), "idempotency_key_reused") {
			t.Fatalf("other body: %d %s", w.Code, w.Body)
		}
		if w := f.post("b", "k1", `{"x":1}`); w.Code != 201 || !strings.Contains(w.Body.String(), `"key":"b:k1"`) {
			t.Fatalf("other caller: %d %s", w.Code, w.Body)
		}
		if w := f.post("a", "", `{"x":1}`); w.Code != 201 || !strings.Contains(w.Body.String(), `"key":""`) {
			t.Fatalf("no key: %d %s", w.Code, w.Body)
		}
		for name, key := range map[string]string{"too long": strings.Repeat("k", 256), "control character": "k\x01", "non-ASCII": "ключ"} {
			if w := f.post("a", key, `{}`); w.Code != http.StatusBadRequest {
				t.Fatalf("%s key: %d", name, w.Code)
			}
		}
		get := httptest.NewRequest("GET", "/v1/things", nil)
		get.Header.Set(idempotency.Header, "k1")
		w := httptest.NewRecorder()
		f.h.ServeHTTP(w, get)
		if w.Code != 201 || w.Header().Get("Idempotent-Replayed") != "" {
			t.Fatalf("GET is not idempotency-handled: %d", w.Code)
		}
		if n := f.runs.Load(); n != 4 {
			t.Fatalf("handler ran %d times, want 4", n)
		}
	})
}

// TestFailuresAreForgotten: a panicking handler leaves no key behind, so
// the retry runs.
func TestFailuresAreForgotten(t *testing.T) {
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		f := newFixture(t, b)
		f.post("a", "p", `{"panic":true}`)
		if w := f.post("a", "p", `{"panic":true}`); f.runs.Load() != 2 {
			t.Fatalf("retry after a panic did not run again (%d runs, %d)", f.runs.Load(), w.Code)
		}
	})
}

// TestLeaseTakeover: a key left in flight by a crashed process is 409
// until its lease ends, then the next retry takes it over and runs.
func TestLeaseTakeover(t *testing.T) {
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		f := newFixture(t, b)
		f.store.SetLease(time.Minute)
		f.block, f.entered = make(chan struct{}), make(chan struct{}, 2)
		done := make(chan struct{})
		go func() { defer close(done); f.post("a", "crash", `{}`) }() // the "crashed" first request
		<-f.entered
		if w := f.post("a", "crash", `{}`); w.Code != http.StatusConflict || w.Header().Get("Retry-After") == "" {
			t.Fatalf("in flight: %d", w.Code)
		}
		f.clock.advance(61 * time.Second)
		taken := make(chan *httptest.ResponseRecorder)
		go func() { taken <- f.post("a", "crash", `{}`) }()
		<-f.entered // the takeover runs the handler
		close(f.block)
		if w := <-taken; w.Code != 201 {
			t.Fatalf("takeover: %d", w.Code)
		}
		<-done
		if f.runs.Load() != 2 {
			t.Fatalf("runs %d", f.runs.Load())
		}
	})
}

// TestPurge: keys are kept at least the 7 days of API.md, then purged.
func TestPurge(t *testing.T) {
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		ctx := context.Background()
		f := newFixture(t, b)
		f.post("a", "old", `{}`)
		f.clock.advance(24 * time.Hour)
		f.post("a", "newer", `{}`)

		f.clock.advance(idempotency.Retention - 24*time.Hour) // "old" is exactly 7 days old
		if n, err := f.store.Purge(ctx); err != nil || n != 0 {
			t.Fatalf("purge at 7 days: %d, %v", n, err)
		}
		if w := f.post("a", "old", `{}`); w.Header().Get("Idempotent-Replayed") != "true" {
			t.Fatal("a 7-day-old key no longer replays")
		}
		f.clock.advance(2 * time.Hour)
		if n, err := f.store.Purge(ctx); err != nil || n != 1 {
			t.Fatalf("purge past 7 days: %d, %v; want the old key only", n, err)
		}
		if w := f.post("a", "old", `{}`); w.Header().Get("Idempotent-Replayed") != "" || w.Code != 201 {
			t.Fatal("a purged key still replays")
		}
		if w := f.post("a", "newer", `{}`); w.Header().Get("Idempotent-Replayed") != "true" {
			t.Fatal("a 6-day-old key was purged")
		}
	})
}

// TestSealedRows: rows are found by a digest of the scoped key and the
// response is sealed; a row altered in the table is never replayed.
func TestSealedRows(t *testing.T) {
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		ctx := context.Background()
		f := newFixture(t, b)
		first := f.post("a", "sealed", `{"x":1}`)
		var body []byte
		if err := b.DB().QueryRowContext(ctx, b.DB().Rebind(`SELECT body FROM payledger_idempotency WHERE scoped_key = ?`), idempotency.RowKey("a:sealed")).Scan(&body); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(body), "run") || len(body) <= first.Body.Len() {
			t.Fatalf("stored body is not sealed: %q", body)
		}
		body[len(body)-1] ^= 1
		err := b.WriteTx(ctx, func(tx *sqlx.Tx) error {
			_, err := tx.ExecContext(ctx, tx.Rebind(`UPDATE payledger_idempotency SET body = ? WHERE scoped_key = ?`), body, idempotency.RowKey("a:sealed"))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if w := f.post("a", "sealed", `{"x":1}`); w.Code != http.StatusServiceUnavailable {
			t.Fatalf("tampered row: %d %s", w.Code, w.Body)
		}
	})
}
