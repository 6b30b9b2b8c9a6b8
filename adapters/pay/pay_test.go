package pay_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payledger/payledger/adapters/pay"
	"github.com/payledger/payledger/adapters/sandbox"
	"github.com/payledger/payledger/domain/invoice"
	"github.com/payledger/payledger/internal/paytest"
	"github.com/payledger/payledger/ledger"
)

// echoProvider stands in for a provider adapter: it answers the winner with
// a page naming the invoice, as the sandbox would.
type echoProvider struct{}

func (echoProvider) Begin(w http.ResponseWriter, r *http.Request, inv invoice.State) {
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, "checkout for "+inv.ID)
}

func server(t *testing.T, env *paytest.Env, providers map[string]pay.Provider) *httptest.Server {
	t.Helper()
	h := pay.New(pay.Options{
		Ledger:    env.Service,
		Links:     pay.FromLinks(env.Links),
		Sync:      pay.SyncFunc(env.Sync),
		Providers: providers,
	})
	mux := http.NewServeMux()
	h.Routes(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("%s: Cache-Control %q", url, cc)
	}
	if rp := resp.Header.Get("Referrer-Policy"); rp != "no-referrer" {
		t.Errorf("%s: Referrer-Policy %q", url, rp)
	}
	return resp.StatusCode, string(b)
}

func consumed(t *testing.T, env *paytest.Env, id string) int {
	t.Helper()
	st, err := env.Service.Load(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range st.Links {
		if l.State == invoice.LinkStateConsumed {
			n++
		}
	}
	return n
}

func TestLinkLifecycle(t *testing.T) {
	t.Parallel()
	env := paytest.New(t, "sqlite")
	srv := server(t, env, map[string]pay.Provider{"sandbox": echoProvider{}})

	id, token := env.Invoice(t, "99.00", "sandbox")
	// No MustSync here: the handler itself must wait for the read model.
	code, body := get(t, srv.URL+"/pay/"+token)
	if code != http.StatusOK || !strings.Contains(body, "checkout for "+id) {
		t.Fatalf("first visit: %d %q", code, body)
	}
	code, body = get(t, srv.URL+"/pay/"+token)
	if code != http.StatusGone || !strings.Contains(body, "This payment link has already been used") {
		t.Fatalf("second visit: %d %q", code, body)
	}

	_, token2 := env.Invoice(t, "10.00", "sandbox")
	env.MustSync(t)
	env.Clock.Advance(11 * time.Minute) // past the 10 min default TTL; no expiry event written
	code, body = get(t, srv.URL+"/pay/"+token2)
	if code != http.StatusGone || !strings.Contains(body, "This payment link has expired") {
		t.Fatalf("expired: %d %q", code, body)
	}

	for _, tok := range []string{ledger.NewToken(), "short", strings.Repeat("!", 43)} {
		code, body = get(t, srv.URL+"/pay/"+tok)
		if code != http.StatusNotFound || !strings.Contains(body, "not found") {
			t.Fatalf("unknown %q: %d %q", tok, code, body)
		}
	}
}

func TestRevokedAndClosed(t *testing.T) {
	t.Parallel()
	env := paytest.New(t, "sqlite")
	srv := server(t, env, map[string]pay.Provider{"sandbox": echoProvider{}})
	ctx := context.Background()

	id, old := env.Invoice(t, "5.00", "sandbox")
	if _, err := env.Invoices.IssueLink(ctx, id, 0); err != nil {
		t.Fatal(err)
	}
	if code, body := get(t, srv.URL+"/pay/"+old); code != http.StatusGone || !strings.Contains(body, "newer payment link") {
		t.Fatalf("revoked: %d %q", code, body)
	}

	id2, tok := env.Invoice(t, "5.00", "sandbox")
	if _, err := env.Service.Execute(ctx, id2, invoice.Cancel{Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	if code, body := get(t, srv.URL+"/pay/"+tok); code != http.StatusGone || !strings.Contains(body, "cancelled") {
		t.Fatalf("cancelled: %d %q", code, body)
	}
}

// A missing provider is the operator's fault: the payer's link must
// survive it.
func TestUnconfiguredProviderConsumesNothing(t *testing.T) {
	t.Parallel()
	env := paytest.New(t, "sqlite")
	id, token := env.Invoice(t, "12.50", "wzrdpay")
	srv := server(t, env, map[string]pay.Provider{"sandbox": echoProvider{}})
	if code, body := get(t, srv.URL+"/pay/"+token); code != http.StatusServiceUnavailable || !strings.Contains(body, "has not been used") {
		t.Fatalf("no provider: %d %q", code, body)
	}
	if n := consumed(t, env, id); n != 0 {
		t.Fatalf("%d links consumed without a provider", n)
	}
	srv2 := server(t, env, map[string]pay.Provider{"wzrdpay": echoProvider{}})
	if code, _ := get(t, srv2.URL+"/pay/"+token); code != http.StatusOK {
		t.Fatalf("after configuring: %d", code)
	}
}

// Exactly one of many concurrent first visits wins, on both backends.
func TestConcurrentFirstVisits(t *testing.T) {
	t.Parallel()
	const visitors = 120
	for _, kind := range paytest.Backends {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			env := paytest.New(t, kind)
			// The real sandbox page, so the winner is shown the card form.
			srv := server(t, env, map[string]pay.Provider{"sandbox": sandbox.New(sandbox.Options{Ledger: env.Service})})
			id, token := env.Invoice(t, "99.00", "sandbox")
			env.MustSync(t)

			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: visitors}}
			var (
				wg    sync.WaitGroup
				start = make(chan struct{})
				mu    sync.Mutex
				codes = map[int]int{}
				errs  []error
				forms int
			)
			for range visitors {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					resp, err := client.Get(srv.URL + "/pay/" + token)
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						errs = append(errs, err)
						return
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					codes[resp.StatusCode]++
					if strings.Contains(string(b), `name="card_number"`) {
						forms++
					}
				}()
			}
			t0 := time.Now()
			close(start)
			wg.Wait()
			t.Logf("%s: %d concurrent visits in %s: %v", kind, visitors, time.Since(t0), codes)
			if err := errors.Join(errs...); err != nil {
				t.Fatal(err)
			}
			if codes[http.StatusOK] != 1 || codes[http.StatusGone] != visitors-1 || forms != 1 {
				t.Fatalf("want 1×200 and %d×410, got %v", visitors-1, codes)
			}
			if n := consumed(t, env, id); n != 1 {
				t.Fatalf("%d consumed links", n)
			}
			_, evs, err := env.Service.History(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, e := range evs {
				if _, ok := e.(invoice.LinkConsumed); ok {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("%d link_consumed events", n)
			}
		})
	}
}

// Untrusted tokens never make the handler fail or consume anything.
func FuzzPayToken(f *testing.F) {
	env := paytest.New(f, "sqlite")
	h := pay.New(pay.Options{Ledger: env.Service, Links: pay.FromLinks(env.Links), SyncTimeout: 10 * time.Millisecond, Providers: map[string]pay.Provider{"sandbox": echoProvider{}}})
	mux := http.NewServeMux()
	h.Routes(mux)
	f.Add(ledger.NewToken())
	f.Add("")
	f.Add("%2e%2e")
	f.Add(strings.Repeat("A", 43))
	f.Fuzz(func(t *testing.T, tok string) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/pay/x", nil)
		req.SetPathValue("token", tok)
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusNotFound {
			t.Fatalf("token %q: %d", tok, rec.Code)
		}
		if rec.Header().Get("Cache-Control") != "no-store" || rec.Header().Get("Referrer-Policy") != "no-referrer" {
			t.Fatal("missing headers")
		}
	})
}
