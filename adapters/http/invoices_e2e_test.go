package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payledger/payledger/domain/invoice"
	"github.com/payledger/payledger/projections"
	"github.com/payledger/payledger/projections/projectiontest"
)

const fullBody = `{"amount":"100.55","currency":"USD","reference_id":"order-7135",
  "description":"Account reset 1 Step $100,000",
  "customer":{"email":"john@example.com","name":"John Smith","phone":"+1234567890",
    "address":{"line1":"1 Main St","line2":"Apt 4","city":"Springfield","postcode":"12345","country":"US"}},
  "metadata":{"account_id":"12345"},
  "provider":"sandbox",
  "return_urls":{"success":"https://shop.example/ok","fail":"https://shop.example/fail"}}`

// TestCreateAndGet: the create of API.md answers the documented invoice
// object, and GET returns the same object.
func TestCreateAndGet(t *testing.T) {
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		e := newEnv(t, b)
		r := e.do("POST", "/v1/invoices", fullBody)
		if r.code != http.StatusCreated {
			t.Fatal(r)
		}
		var inv invoiceJSON
		r.decode(t, &inv)
		now := e.clock.Now()
		if !strings.HasPrefix(inv.ID, "inv_") || inv.Object != "invoice" || inv.Number < 1001 || inv.Status != "open" ||
			inv.Amount != "100.55" || inv.Currency != "USD" || inv.AmountPaid != "0.00" || inv.AmountRefunded != "0.00" ||
			inv.ReferenceID != "order-7135" || inv.Provider != "sandbox" || inv.Customer.Email != "john@example.com" ||
			inv.Customer.Address == nil || inv.Customer.Address.City != "Springfield" || inv.Metadata["account_id"] != "12345" ||
			inv.PaidAt != nil || inv.Version != 1 || !inv.CreatedAt.Equal(now) || !inv.ExpiresAt.Equal(now.Add(24*time.Hour)) {
			t.Fatalf("invoice object %+v", inv)
		}
		if loc := r.hdr.Get("Location"); loc != "/v1/invoices/"+inv.ID {
			t.Fatalf("Location %q", loc)
		}
		for _, h := range []string{"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} {
			if r.hdr.Get(h) == "" {
				t.Errorf("no %s", h)
			}
		}
		var raw map[string]any
		r.decode(t, &raw)
		if v, ok := raw["paid_at"]; !ok || v != nil {
			t.Fatalf("paid_at must be present and null, got %v", raw["paid_at"])
		}

		g := e.do("GET", "/v1/invoices/"+inv.ID, "")
		var got invoiceJSON
		g.decode(t, &got)
		if g.code != http.StatusOK || !reflect.DeepEqual(got, inv) {
			t.Fatalf("GET: %s\nwant %+v", g, inv)
		}

		// A second invoice gets the next number; an explicit expiry is kept.
		exp := now.Add(2 * time.Hour).Truncate(time.Second)
		second := e.create(fmt.Sprintf(`{"amount":"5000","currency":"jpy","expires_at":%q}`, exp.Format(time.RFC3339)))
		if second.Number <= inv.Number || second.Currency != "JPY" || second.Amount != "5000" || !second.ExpiresAt.Equal(exp) {
			t.Fatalf("second invoice %+v", second)
		}
	})
}

// TestReferenceIDRules: the same reference_id with an identical body
// returns the existing invoice (200), with a different body 409
// reference_id_conflict; concurrent creates of one reference make one
// invoice.
func TestReferenceIDRules(t *testing.T) {
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		e := newEnv(t, b)
		first := e.create(fullBody)
		head := e.head()

		e.clock.Advance(time.Minute) // the default expiry moves; it is not part of "identical"
		r := e.do("POST", "/v1/invoices", fullBody)
		var again invoiceJSON
		r.decode(t, &again)
		if r.code != http.StatusOK || again.ID != first.ID || again.Number != first.Number || again.Version != 1 {
			t.Fatalf("repeat: %s", r)
		}

		for name, body := range map[string]string{
			"other amount":   strings.Replace(fullBody, `"100.55"`, `"100.56"`, 1),
			"other email":    strings.Replace(fullBody, "john@example.com", "jane@example.com", 1),
			"other metadata": strings.Replace(fullBody, `"12345"}`, `"99999"}`, 1),
			"fewer fields":   `{"amount":"100.55","currency":"USD","reference_id":"order-7135"}`,
		} {
			r := e.do("POST", "/v1/invoices", body)
			if r.code != http.StatusConflict {
				t.Fatalf("%s: %s", name, r)
			}
			p := r.problem(t)
			if p.Code != "reference_id_conflict" || len(p.Errors) != 1 || p.Errors[0].Field != "reference_id" {
				t.Fatalf("%s: %+v", name, p)
			}
		}
		if h := e.head(); h != head {
			t.Fatalf("repeats and conflicts wrote events: head %v → %v", head, h)
		}

		// 20 concurrent first creates of a new reference: one invoice.
		body := `{"amount":"7.00","currency":"EUR","reference_id":"race-1"}`
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			codes = map[int]int{}
			ids   = map[string]bool{}
		)
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := e.do("POST", "/v1/invoices", body)
				var inv invoiceJSON
				_ = json.Unmarshal(r.body, &inv)
				mu.Lock()
				codes[r.code]++
				ids[inv.ID] = true
				mu.Unlock()
			}()
		}
		wg.Wait()
		if codes[http.StatusCreated] != 1 || codes[http.StatusOK] != 19 || len(ids) != 1 {
			t.Fatalf("concurrent creates: codes %v, ids %v", codes, ids)
		}
		var l listJSON[invoiceJSON]
		e.do("GET", "/v1/invoices?reference_id=race-1", "").decode(t, &l)
		if len(l.Data) != 1 {
			t.Fatalf("list by reference: %d invoices", len(l.Data))
		}
	})
}

// TestIdempotencyKey: same key and body → the original status and body
// replayed, nothing executed again; same key, other body → 422; keys are
// per API key; a key also guards cancel, links and refunds.
func TestIdempotencyKey(t *testing.T) {
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		e := newEnv(t, b)
		body := `{"amount":"12.00","currency":"USD"}`
		first := e.do("POST", "/v1/invoices", body, "Idempotency-Key", "k-1")
		if first.code != http.StatusCreated {
			t.Fatal(first)
		}
		head := e.head()
		for range 3 {
			again := e.do("POST", "/v1/invoices", body, "Idempotency-Key", "k-1")
			if again.code != http.StatusCreated || string(again.body) != string(first.body) ||
				again.hdr.Get("Idempotent-Replayed") != "true" || again.hdr.Get("Location") != first.hdr.Get("Location") {
				t.Fatalf("replay: %s (first %s)", again, first)
			}
		}
		if h := e.head(); h != head {
			t.Fatalf("replays wrote events: %v → %v", head, h)
		}

		r := e.do("POST", "/v1/invoices", `{"amount":"13.00","currency":"USD"}`, "Idempotency-Key", "k-1")
		if r.code != http.StatusUnprocessableEntity || r.problem(t).Code != "idempotency_key_reused" {
			t.Fatalf("other body: %s", r)
		}
		r = e.do("POST", "/v1/refunds", body, "Idempotency-Key", "k-1")
		if r.code != http.StatusUnprocessableEntity {
			t.Fatalf("other path, same key: %s", r)
		}

		// Another API key has its own key space.
		_, tok, err := e.keys.Create(context.Background(), "other client", "full")
		if err != nil {
			t.Fatal(err)
		}
		other := e.do("POST", "/v1/invoices", body, "Idempotency-Key", "k-1", "Authorization", "Bearer "+tok)
		var a, c invoiceJSON
		first.decode(t, &a)
		other.decode(t, &c)
		if other.code != http.StatusCreated || other.hdr.Get("Idempotent-Replayed") != "" || a.ID == c.ID {
			t.Fatalf("other API key: %s", other)
		}

		// Cancel under a key: replayed, not re-decided (a second cancel
		// without the key is refused: the invoice is no longer open).
		cancel := e.do("POST", "/v1/invoices/"+a.ID+"/cancel", `{"reason":"dup"}`, "Idempotency-Key", "c-1")
		again := e.do("POST", "/v1/invoices/"+a.ID+"/cancel", `{"reason":"dup"}`, "Idempotency-Key", "c-1")
		if cancel.code != http.StatusOK || again.code != http.StatusOK || string(again.body) != string(cancel.body) {
			t.Fatalf("cancel replay: %s / %s", cancel, again)
		}
		if r := e.do("POST", "/v1/invoices/"+a.ID+"/cancel", `{"reason":"dup"}`); r.code != http.StatusConflict {
			t.Fatalf("cancel without key: %s", r)
		}

		// A link under a key: the replay is the same link, so no second
		// link revokes the first.
		inv := e.create(simple("3.00"))
		l1 := e.do("POST", "/v1/invoices/"+inv.ID+"/payment_links", ``, "Idempotency-Key", "l-1")
		l2 := e.do("POST", "/v1/invoices/"+inv.ID+"/payment_links", ``, "Idempotency-Key", "l-1")
		if l1.code != http.StatusCreated || string(l1.body) != string(l2.body) {
			t.Fatalf("link replay: %s / %s", l1, l2)
		}
		st, err := e.inv.Service().Load(context.Background(), inv.ID)
		if err != nil || len(st.Links) != 1 {
			t.Fatalf("links after a replayed issue: %d (%v)", len(st.Links), err)
		}

		// Refund under a key: one refund however often it is sent.
		e.pay(inv.ID, "3.00", "USD")
		rb := `{"invoice_id":"` + inv.ID + `","amount":"1.00"}`
		r1 := e.do("POST", "/v1/refunds", rb, "Idempotency-Key", "r-1")
		r2 := e.do("POST", "/v1/refunds", rb, "Idempotency-Key", "r-1")
		if r1.code != http.StatusCreated || string(r1.body) != string(r2.body) {
			t.Fatalf("refund replay: %s / %s", r1, r2)
		}
		var got invoiceJSON
		e.do("GET", "/v1/invoices/"+inv.ID, "").decode(t, &got)
		if got.AmountRefunded != "1.00" {
			t.Fatalf("refunded %s after a replayed refund, want 1.00", got.AmountRefunded)
		}
	})
}

// TestIdempotencyKeyRace: many goroutines send one key at once. Exactly
// one request executes; every other one is either the replay of its
// response or 409 while it is in flight — never a second invoice.
func TestIdempotencyKeyRace(t *testing.T) {
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		e := newEnv(t, b)
		head := e.head()
		const n = 64
		var (
			wg     sync.WaitGroup
			mu     sync.Mutex
			codes  = map[string]int{}
			bodies = map[string]bool{}
			start  = make(chan struct{})
		)
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				r := e.do("POST", "/v1/invoices", `{"amount":"9.99","currency":"USD","description":"race"}`, "Idempotency-Key", "same-key")
				kind := fmt.Sprint(r.code)
				if r.code == http.StatusCreated {
					if r.hdr.Get("Idempotent-Replayed") == "true" {
						kind += " replay"
					}
					mu.Lock()
					bodies[string(r.body)] = true
					mu.Unlock()
				}
				if r.code == http.StatusConflict {
					if r.problem(t).Code != "idempotency_request_in_progress" || r.hdr.Get("Retry-After") == "" {
						t.Errorf("409 without the in-progress code or Retry-After: %s", r)
					}
				}
				mu.Lock()
				codes[kind]++
				mu.Unlock()
			}()
		}
		close(start)
		wg.Wait()
		if codes["201"] != 1 || codes["201"]+codes["201 replay"]+codes["409"] != n || len(bodies) != 1 {
			t.Fatalf("outcomes %v, %d distinct bodies", codes, len(bodies))
		}
		if h := e.head(); h.Count != head.Count+1 {
			t.Fatalf("%d events written, want exactly one", h.Count-head.Count)
		}
		var l listJSON[invoiceJSON]
		e.do("GET", "/v1/invoices", "").decode(t, &l)
		if len(l.Data) != 1 {
			t.Fatalf("%d invoices listed, want 1", len(l.Data))
		}
		recs, err := b.ReadStream(context.Background(), "invoice-"+l.Data[0].ID, 1)
		if err != nil || len(recs) != 1 || recs[0].Type != "invoice.created" {
			t.Fatalf("stream: %d events, %v", len(recs), err)
		}
		t.Logf("%d racers: %v", n, codes)
	})
}

// TestIdempotencyInFlight makes the in-flight window deterministic with a
// slow route: a second request with the key while the first runs is 409
// with Retry-After; after it finishes, the replay. A 5xx is forgotten so
// the retry executes again.
func TestIdempotencyInFlight(t *testing.T) {
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		e := newEnv(t, b)
		release := make(chan struct{})
		entered := make(chan struct{}, 1)
		var calls, flaky int
		var mu sync.Mutex
		e.api.Mount(func(mux *http.ServeMux) {
			mux.HandleFunc("POST /v1/test/slow", func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				calls++
				mu.Unlock()
				entered <- struct{}{}
				<-release
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusAccepted)
				fmt.Fprint(w, `{"done":true}`)
			})
			mux.HandleFunc("POST /v1/test/flaky", func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				flaky++
				n := flaky
				mu.Unlock()
				switch n {
				case 1:
					http.Error(w, "boom", http.StatusServiceUnavailable)
				case 2:
					w.Header().Set("Retry-After", "1")
					w.WriteHeader(http.StatusConflict)
				default:
					w.WriteHeader(http.StatusCreated)
					fmt.Fprintf(w, "run %d", n)
				}
			})
		})
		done := make(chan resp)
		go func() { done <- e.do("POST", "/v1/test/slow", `{"x":1}`, "Idempotency-Key", "slow") }()
		<-entered
		r := e.do("POST", "/v1/test/slow", `{"x":1}`, "Idempotency-Key", "slow")
		if r.code != http.StatusConflict || r.hdr.Get("Retry-After") == "" || r.problem(t).Code != "idempotency_request_in_progress" {
			t.Fatalf("while in flight: %s", r)
		}
		if r := e.do("POST", "/v1/test/slow", `{"x":2}`, "Idempotency-Key", "slow"); r.code != http.StatusUnprocessableEntity {
			t.Fatalf("other body while in flight: %s", r)
		}
		close(release)
		if first := <-done; first.code != http.StatusAccepted {
			t.Fatalf("first: %s", first)
		}
		r = e.do("POST", "/v1/test/slow", `{"x":1}`, "Idempotency-Key", "slow")
		if r.code != http.StatusAccepted || string(r.body) != `{"done":true}` || r.hdr.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("after: %s", r)
		}
		if calls != 1 {
			t.Fatalf("handler ran %d times", calls)
		}

		for i, want := range []int{503, 409, 201, 201} {
			r := e.do("POST", "/v1/test/flaky", `{}`, "Idempotency-Key", "flaky")
			if r.code != want {
				t.Fatalf("flaky attempt %d: %s, want %d", i+1, r, want)
			}
		}
		if flaky != 3 {
			t.Fatalf("flaky handler ran %d times, want 3 (5xx and Retry-After answers are retried, the 201 is replayed)", flaky)
		}
	})
}

// TestCancel: only open invoices without a payment in progress.
func TestCancel(t *testing.T) {
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		e := newEnv(t, b)
		inv := e.create(simple("10.00"))
		r := e.do("POST", "/v1/invoices/"+inv.ID+"/cancel", `{"reason":"customer asked"}`)
		var got invoiceJSON
		r.decode(t, &got)
		if r.code != http.StatusOK || got.Status != "cancelled" || got.Version != 2 {
			t.Fatalf("cancel: %s", r)
		}
		if r := e.do("POST", "/v1/invoices/"+inv.ID+"/cancel", ``); r.code != http.StatusConflict || r.problem(t).Code != "invoice_not_open" {
			t.Fatalf("cancel twice: %s", r)
		}
		if r := e.do("POST", "/v1/invoices/"+inv.ID+"/payment_links", ``); r.code != http.StatusConflict {
			t.Fatalf("link on a cancelled invoice: %s", r)
		}

		busy := e.create(simple("11.00"))
		if _, err := e.inv.Service().Execute(context.Background(), busy.ID, invoice.InitiatePayment{PaymentID: "pay_busy", Provider: "sandbox"}); err != nil {
			t.Fatal(err)
		}
		if r := e.do("POST", "/v1/invoices/"+busy.ID+"/cancel", ``); r.code != http.StatusConflict || r.problem(t).Code != "payment_in_progress" {
			t.Fatalf("cancel during a payment: %s", r)
		}
	})
}

// TestPaymentLinkEndpoint: the link object, its TTL bounds, revocation of
// the earlier link, and the expiry clamped to the invoice's.
func TestPaymentLinkEndpoint(t *testing.T) {
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		e := newEnv(t, b)
		now := e.clock.Now()
		inv := e.create(simple("20.00"))
		type linkJSON struct {
			ID, Object, InvoiceID, URL string
			ExpiresAt                  time.Time `json:"expires_at"`
		}
		issue := func(body string) linkJSON {
			t.Helper()
			r := e.do("POST", "/v1/invoices/"+inv.ID+"/payment_links", body)
			if r.code != http.StatusCreated {
				t.Fatal(r)
			}
			var raw map[string]any
			r.decode(t, &raw)
			l := linkJSON{ID: raw["id"].(string), Object: raw["object"].(string), InvoiceID: raw["invoice_id"].(string), URL: raw["url"].(string)}
			l.ExpiresAt, _ = time.Parse(time.RFC3339, raw["expires_at"].(string))
			return l
		}
		l1 := issue(``)
		if !strings.HasPrefix(l1.ID, "lnk_") || l1.Object != "payment_link" || l1.InvoiceID != inv.ID ||
			!strings.HasPrefix(l1.URL, e.publicURL+"/pay/") || len(strings.TrimPrefix(l1.URL, e.publicURL+"/pay/")) != 43 ||
			!l1.ExpiresAt.Equal(now.Add(10*time.Minute)) {
			t.Fatalf("default link %+v", l1)
		}
		l2 := issue(`{"ttl_seconds":300}`)
		if !l2.ExpiresAt.Equal(now.Add(5*time.Minute)) || l2.URL == l1.URL {
			t.Fatalf("5 min link %+v", l2)
		}
		st, err := e.inv.Service().Load(context.Background(), inv.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Links) != 2 || st.Links[0].State == invoice.LinkStateActive || st.Links[1].State != invoice.LinkStateActive {
			t.Fatalf("the earlier link was not revoked: %+v", st.Links)
		}
		for _, l := range st.Links {
			if strings.Contains(l.TokenHash, strings.TrimPrefix(l2.URL, e.publicURL+"/pay/")) {
				t.Fatal("token stored in clear")
			}
		}

		// An invoice expiring in 15 minutes, 8 minutes later: a 10 minute
		// link ends with the invoice.
		exp := now.Add(15 * time.Minute)
		short := e.create(fmt.Sprintf(`{"amount":"1.00","currency":"USD","expires_at":%q}`, exp.Format(time.RFC3339)))
		e.clock.Advance(8 * time.Minute)
		inv = invoiceJSON{ID: short.ID}
		if l := issue(`{"ttl_seconds":600}`); !l.ExpiresAt.Equal(exp) {
			t.Fatalf("link expires %s, want the invoice's %s", l.ExpiresAt, exp)
		}
	})
}

// TestListFiltersAndPagination: every filter of API.md and both cursors,
// newest first, against the status read model.
func TestListFiltersAndPagination(t *testing.T) {
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		e := newEnv(t, b)
		const n = 25
		all := make([]invoiceJSON, n)
		var mid time.Time
		for i := range n {
			if i == 10 {
				e.clock.Advance(time.Hour)
				mid = e.clock.Now()
			}
			all[i] = e.create(fmt.Sprintf(`{"amount":"%d.00","currency":"USD","reference_id":"list-%d","customer":{"email":"Payer%d@Example.com"},"metadata":{"account_id":"acc-%d","tier":"%s"}}`,
				i+1, i, i%3, i%5, map[bool]string{true: "gold", false: "basic"}[i%2 == 0]))
			e.clock.Advance(time.Second)
		}
		for _, i := range []int{3, 7, 11} {
			if r := e.do("POST", "/v1/invoices/"+all[i].ID+"/cancel", ``); r.code != http.StatusOK {
				t.Fatal(r)
			}
		}
		e.pay(all[4].ID, "5.00", "USD")

		list := func(q string) listJSON[invoiceJSON] {
			t.Helper()
			r := e.do("GET", "/v1/invoices?"+q, "")
			if r.code != http.StatusOK {
				t.Fatalf("%s: %s", q, r)
			}
			var l listJSON[invoiceJSON]
			r.decode(t, &l)
			if l.Object != "list" {
				t.Fatalf("object %q", l.Object)
			}
			return l
		}
		idx := func(l listJSON[invoiceJSON]) []int {
			var out []int
			for _, inv := range l.Data {
				for i, a := range all {
					if a.ID == inv.ID {
						out = append(out, i)
					}
				}
			}
			return out
		}
		check := func(q string, want ...int) {
			t.Helper()
			got := idx(list(q))
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s: got %v, want %v", q, got, want)
			}
		}
		check("status=cancelled", 11, 7, 3)
		check("status=paid", 4)
		check("reference_id=list-17", 17)
		check("customer_email=payer2@example.com&limit=100", 23, 20, 17, 14, 11, 8, 5, 2)
		check("metadata[account_id]=acc-1&limit=100", 21, 16, 11, 6, 1)
		check("metadata[account_id]=acc-1&metadata[tier]=gold&limit=100", 16, 6)
		check("metadata[account_id]=acc-1&status=cancelled", 11)
		check(fmt.Sprintf("created_lt=%d&limit=100", mid.Unix()), 9, 8, 7, 6, 5, 4, 3, 2, 1, 0)
		check("created_gte="+url.QueryEscape(mid.Add(2*time.Second).Format(time.RFC3339))+"&limit=100", 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12)
		check("reference_id=nothing")

		// Default page is 20, newest first.
		if l := list(""); len(l.Data) != 20 || !l.HasMore || l.Data[0].ID != all[n-1].ID {
			t.Fatalf("default page: %d, has_more %v", len(l.Data), l.HasMore)
		}
		// Walk forward with starting_after, 7 a page.
		var seen []string
		cursor := ""
		for pages := 0; ; pages++ {
			q := "limit=7"
			if cursor != "" {
				q += "&starting_after=" + cursor
			}
			l := list(q)
			for _, inv := range l.Data {
				seen = append(seen, inv.ID)
			}
			if !l.HasMore {
				if pages != 3 || len(l.Data) != 4 {
					t.Fatalf("last page %d has %d", pages, len(l.Data))
				}
				break
			}
			cursor = l.Data[len(l.Data)-1].ID
		}
		if len(seen) != n || !sort.SliceIsSorted(seen, func(i, j int) bool { return seen[i] > seen[j] }) {
			t.Fatalf("walk: %d ids, sorted newest first: %v", len(seen), sort.SliceIsSorted(seen, func(i, j int) bool { return seen[i] > seen[j] }))
		}
		// And back with ending_before: the page just newer than all[5].
		back := list("limit=3&ending_before=" + all[5].ID)
		if got := idx(back); !reflect.DeepEqual(got, []int{8, 7, 6}) || !back.HasMore {
			t.Fatalf("ending_before: %v has_more %v", got, back.HasMore)
		}
		if top := list("limit=3&ending_before=" + all[22].ID); !reflect.DeepEqual(idx(top), []int{24, 23}) || top.HasMore {
			t.Fatalf("ending_before near the top: %v has_more %v", idx(top), top.HasMore)
		}
	})
}

// TestAsOfAndEvents: point-in-time reads replay the events, and the
// history lists them oldest first with sequence, type, time, data, hash.
func TestAsOfAndEvents(t *testing.T) {
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		e := newEnv(t, b)
		t0 := e.clock.Now()
		inv := e.create(simple("42.00"))
		e.clock.Advance(time.Minute)
		if r := e.do("POST", "/v1/invoices/"+inv.ID+"/payment_links", ``); r.code != http.StatusCreated {
			t.Fatal(r)
		}
		e.clock.Advance(time.Minute)
		e.pay(inv.ID, "42.00", "USD")
		e.clock.Advance(time.Minute)
		if r := e.do("POST", "/v1/refunds", `{"invoice_id":"`+inv.ID+`","amount":"2.00"}`); r.code != http.StatusCreated {
			t.Fatal(r)
		}

		at := func(d time.Duration) invoiceJSON {
			t.Helper()
			r := e.do("GET", "/v1/invoices/"+inv.ID+"?as_of="+url.QueryEscape(t0.Add(d).Format(time.RFC3339Nano)), "")
			if r.code != http.StatusOK {
				t.Fatalf("as_of +%s: %s", d, r)
			}
			var v invoiceJSON
			r.decode(t, &v)
			return v
		}
		if v := at(30 * time.Second); v.Status != "open" || v.Version != 1 {
			t.Fatalf("as of +30s: %+v", v)
		}
		if v := at(90 * time.Second); v.Status != "open" || v.Version != 2 {
			t.Fatalf("as of +90s: %+v", v)
		}
		if v := at(150 * time.Second); v.Status != "paid" || v.AmountPaid != "42.00" || v.AmountRefunded != "0.00" {
			t.Fatalf("as of +150s: %+v", v)
		}
		if v := at(time.Hour); v.Status != "partially_refunded" || v.AmountRefunded != "2.00" {
			t.Fatalf("as of +1h: %+v", v)
		}
		if r := e.do("GET", "/v1/invoices/"+inv.ID+"?as_of="+url.QueryEscape(t0.Add(-time.Second).Format(time.RFC3339)), ""); r.code != http.StatusNotFound {
			t.Fatalf("before creation: %s", r)
		}

		r := e.do("GET", "/v1/invoices/"+inv.ID+"/events", "")
		var l listJSON[struct {
			ID         string          `json:"id"`
			Sequence   uint64          `json:"sequence"`
			Type       string          `json:"type"`
			OccurredAt time.Time       `json:"occurred_at"`
			Data       json.RawMessage `json:"data"`
			Hash       string          `json:"hash"`
		}]
		r.decode(t, &l)
		wantTypes := []string{"invoice.created", "invoice.link_issued", "payment.initiated", "payment.processed", "invoice.paid", "payment.refunded"}
		if len(l.Data) != len(wantTypes) || l.HasMore {
			t.Fatalf("history: %s", r)
		}
		hashes := map[string]bool{}
		for i, ev := range l.Data {
			if ev.Sequence != uint64(i+1) || !strings.HasPrefix(ev.ID, "evt_") || len(ev.Hash) < 32 || hashes[ev.Hash] || len(ev.Data) < 2 {
				t.Fatalf("event %d: %+v", i, ev)
			}
			if ev.Type != wantTypes[i] {
				t.Fatalf("event %d type %s, want %s", i, ev.Type, wantTypes[i])
			}
			if i > 0 && ev.OccurredAt.Before(l.Data[i-1].OccurredAt) {
				t.Fatalf("events out of order at %d", i)
			}
			hashes[ev.Hash] = true
		}
		if !l.Data[0].OccurredAt.Equal(t0) {
			t.Fatalf("created at %s, want %s", l.Data[0].OccurredAt, t0)
		}
	})
}

// TestEventFeed: GET /v1/events pages through every event in global
// order, resumes after an evt_ id and filters by type.
func TestEventFeed(t *testing.T) {
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		e := newEnv(t, b)
		var ids []string
		for i := range 4 {
			inv := e.create(simple(fmt.Sprintf("%d.00", i+1)))
			ids = append(ids, inv.ID)
			if i%2 == 0 {
				if r := e.do("POST", "/v1/invoices/"+inv.ID+"/payment_links", ``); r.code != http.StatusCreated {
					t.Fatal(r)
				}
			}
		}
		type feedEvent struct {
			ID        string `json:"id"`
			Type      string `json:"type"`
			InvoiceID string `json:"invoice_id"`
			Sequence  uint64 `json:"sequence"`
		}
		page := func(q string) listJSON[feedEvent] {
			t.Helper()
			r := e.do("GET", "/v1/events?"+q, "")
			if r.code != http.StatusOK {
				t.Fatalf("%s: %s", q, r)
			}
			var l listJSON[feedEvent]
			r.decode(t, &l)
			return l
		}
		var all []feedEvent
		after := ""
		for {
			q := "limit=4"
			if after != "" {
				q += "&after=" + after
			}
			l := page(q)
			all = append(all, l.Data...)
			if !l.HasMore {
				break
			}
			after = l.Data[len(l.Data)-1].ID
		}
		if len(all) != 6 {
			t.Fatalf("feed has %d events, want 6", len(all))
		}
		want := []struct{ typ, inv string }{
			{"invoice.created", ids[0]}, {"invoice.link_issued", ids[0]}, {"invoice.created", ids[1]},
			{"invoice.created", ids[2]}, {"invoice.link_issued", ids[2]}, {"invoice.created", ids[3]},
		}
		for i, w := range want {
			if all[i].Type != w.typ || all[i].InvoiceID != w.inv {
				t.Fatalf("event %d: %+v, want %v", i, all[i], w)
			}
		}
		links := page("type=invoice.link_issued&limit=1")
		if len(links.Data) != 1 || links.Data[0].InvoiceID != ids[0] || !links.HasMore {
			t.Fatalf("type filter: %+v", links)
		}
		next := page("type=invoice.link_issued&after=" + links.Data[0].ID)
		if len(next.Data) != 1 || next.Data[0].InvoiceID != ids[2] || next.HasMore {
			t.Fatalf("type filter, second page: %+v", next)
		}
		if l := page("after=" + all[5].ID); len(l.Data) != 0 || l.HasMore {
			t.Fatalf("after the last event: %+v", l)
		}
	})
}
