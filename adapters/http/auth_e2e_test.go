package httpapi_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/payledger/payledger/adapters/apikey"
	httpapi "github.com/payledger/payledger/adapters/http"
	"github.com/payledger/payledger/projections"
	"github.com/payledger/payledger/projections/projectiontest"
)

// TestAuth: missing, malformed, unknown, wrong-secret and revoked keys are
// 401; a read-only key reads but may not write (403, nothing written);
// last_used_at follows use.
func TestAuth(t *testing.T) {
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		e := newEnv(t, b)
		ctx := context.Background()
		inv := e.create(simple("1.00"))

		id, secret, _ := strings.Cut(strings.TrimPrefix(e.full, "plk_"), "_")
		for name, auth := range map[string]string{
			"none":         "",
			"basic":        "Basic dXNlcjpwYXNz",
			"empty bearer": "Bearer ",
			"garbage":      "Bearer garbage",
			"unknown id":   "Bearer plk_0000000000000000_" + secret,
			"wrong secret": "Bearer plk_" + id + "_" + strings.Repeat("A", len(secret)),
			"no prefix":    "Bearer " + id + "_" + secret,
		} {
			for _, req := range [][2]string{{"GET", "/v1/invoices/" + inv.ID}, {"POST", "/v1/invoices"}} {
				r := e.do(req[0], req[1], simple("1.00"), "Authorization", auth)
				if r.code != http.StatusUnauthorized || !strings.HasPrefix(r.hdr.Get("WWW-Authenticate"), "Bearer") {
					t.Fatalf("%s %s with %s: %s", req[0], req[1], name, r)
				}
				if c := r.problem(t).Code; c != "unauthorized" && c != "invalid_api_key" {
					t.Fatalf("%s: code %s", name, c)
				}
			}
		}
		if r := e.do("GET", "/v1/invoices/"+inv.ID, "", "Authorization", "bearer "+e.full); r.code != http.StatusOK {
			t.Fatalf("lower-case scheme: %s", r)
		}

		// Read-only key.
		head := e.head()
		rd := []string{"Authorization", "Bearer " + e.read}
		if r := e.do("GET", "/v1/invoices/"+inv.ID, "", rd...); r.code != http.StatusOK {
			t.Fatalf("read key GET: %s", r)
		}
		if r := e.do("GET", "/v1/invoices", "", rd...); r.code != http.StatusOK {
			t.Fatalf("read key list: %s", r)
		}
		for _, path := range []string{"/v1/invoices", "/v1/invoices/" + inv.ID + "/cancel", "/v1/invoices/" + inv.ID + "/payment_links", "/v1/refunds"} {
			r := e.do("POST", path, simple("1.00"), append(rd, "Idempotency-Key", "ro")...)
			if r.code != http.StatusForbidden || r.problem(t).Code != "insufficient_scope" {
				t.Fatalf("read key POST %s: %s", path, r)
			}
		}
		if h := e.head(); h != head {
			t.Fatal("a read-only key wrote events")
		}

		// last_used_at: set on first use, then at most once a minute.
		k, tok, err := e.keys.Create(ctx, "usage", apikey.ScopeFull)
		if err != nil {
			t.Fatal(err)
		}
		lastUsed := func() *time.Time {
			t.Helper()
			keys, err := e.keys.List(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, x := range keys {
				if x.ID == k.ID {
					return x.LastUsedAt
				}
			}
			t.Fatalf("key %s not listed", k.ID)
			return nil
		}
		if lu := lastUsed(); lu != nil {
			t.Fatalf("unused key has last_used_at %s", lu)
		}
		use := func() {
			t.Helper()
			if r := e.do("GET", "/v1/invoices/"+inv.ID, "", "Authorization", "Bearer "+tok); r.code != http.StatusOK {
				t.Fatal(r)
			}
		}
		t1 := e.clock.Now()
		use()
		if lu := lastUsed(); lu == nil || !lu.Equal(t1) {
			t.Fatalf("after first use: %v, want %s", lu, t1)
		}
		e.clock.Advance(30 * time.Second)
		use()
		if lu := lastUsed(); lu == nil || !lu.Equal(t1) {
			t.Fatalf("30 s later: %v, want still %s", lu, t1)
		}
		e.clock.Advance(31 * time.Second)
		t2 := e.clock.Now()
		use()
		if lu := lastUsed(); lu == nil || !lu.Equal(t2) {
			t.Fatalf("61 s later: %v, want %s", lu, t2)
		}

		// Revoked: 401 at once in this process.
		if err := e.keys.Revoke(ctx, k.ID); err != nil {
			t.Fatal(err)
		}
		r := e.do("GET", "/v1/invoices/"+inv.ID, "", "Authorization", "Bearer "+tok)
		if r.code != http.StatusUnauthorized || r.problem(t).Code != "invalid_api_key" {
			t.Fatalf("revoked key: %s", r)
		}
	})
}

// TestRateLimit: a tiny per-key bucket shows X-RateLimit-* on every
// response, answers 429 with Retry-After when empty, refills with time,
// and does not touch other keys; /pay/ is limited per client IP.
func TestRateLimit(t *testing.T) {
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		e := newEnv(t, b, func(o *httpapi.Options) {
			o.KeyLimit = httpapi.Limit{Rate: 1, Burst: 3}
			o.PayLimit = httpapi.Limit{Rate: 0.5, Burst: 2}
		})
		e.api.Mount(func(mux *http.ServeMux) {
			mux.HandleFunc("GET /pay/{token}", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNotFound) })
		})
		for i, want := range []int{200, 200, 400} { // a refusal spends a token too
			path := "/v1/invoices"
			if want == 400 {
				path += "?limit=0"
			}
			r := e.do("GET", path, "")
			if r.code != want || r.hdr.Get("X-RateLimit-Limit") != "3" || r.hdr.Get("X-RateLimit-Remaining") != strconv.Itoa(2-i) {
				t.Fatalf("request %d: %s limit %q remaining %q", i, r, r.hdr.Get("X-RateLimit-Limit"), r.hdr.Get("X-RateLimit-Remaining"))
			}
			if reset, err := strconv.Atoi(r.hdr.Get("X-RateLimit-Reset")); err != nil || reset < 1 || reset > 3 {
				t.Fatalf("request %d: X-RateLimit-Reset %q", i, r.hdr.Get("X-RateLimit-Reset"))
			}
		}
		head := e.head()
		r := e.do("POST", "/v1/invoices", simple("1.00"))
		if r.code != http.StatusTooManyRequests || r.problem(t).Code != "rate_limited" || r.hdr.Get("Retry-After") != "1" ||
			r.hdr.Get("X-RateLimit-Remaining") != "0" || r.hdr.Get("X-RateLimit-Limit") != "3" {
			t.Fatalf("over the limit: %s, headers %v", r, r.hdr)
		}
		if h := e.head(); h != head {
			t.Fatal("a rate-limited create wrote events")
		}
		// Another key has its own bucket.
		if r := e.do("GET", "/v1/invoices", "", "Authorization", "Bearer "+e.read); r.code != http.StatusOK || r.hdr.Get("X-RateLimit-Remaining") != "2" {
			t.Fatalf("other key: %s remaining %q", r, r.hdr.Get("X-RateLimit-Remaining"))
		}
		// One second refills one token.
		e.clock.Advance(time.Second)
		if r := e.do("GET", "/v1/invoices", ""); r.code != http.StatusOK || r.hdr.Get("X-RateLimit-Remaining") != "0" {
			t.Fatalf("after 1 s: %s", r)
		}
		if r := e.do("GET", "/v1/invoices", ""); r.code != http.StatusTooManyRequests {
			t.Fatalf("bucket empty again: %s", r)
		}

		// /pay/ per IP: 2 in a burst, then 429 with a 2 s Retry-After.
		for i := range 2 {
			if r := e.do("GET", "/pay/tok", "", "Authorization", ""); r.code != http.StatusNotFound || r.hdr.Get("X-RateLimit-Limit") != "2" {
				t.Fatalf("pay %d: %s", i, r)
			}
		}
		r = e.do("GET", "/pay/tok", "", "Authorization", "")
		if r.code != http.StatusTooManyRequests || r.hdr.Get("Retry-After") != "2" {
			t.Fatalf("pay over the limit: %s Retry-After %q", r, r.hdr.Get("Retry-After"))
		}
		// Requests without a valid key are limited per IP, with headers.
		e.clock.Advance(10 * time.Second)
		for i := range 3 {
			if r := e.do("GET", "/v1/invoices", "", "Authorization", "Bearer nope"); r.code != http.StatusUnauthorized || r.hdr.Get("X-RateLimit-Remaining") != strconv.Itoa(2-i) {
				t.Fatalf("unauthenticated %d: %s remaining %q", i, r, r.hdr.Get("X-RateLimit-Remaining"))
			}
		}
		if r := e.do("GET", "/v1/invoices", "", "Authorization", ""); r.code != http.StatusTooManyRequests || r.hdr.Get("Retry-After") == "" {
			t.Fatalf("unauthenticated over the limit: %s", r)
		}
		// The API keys' buckets are separate from the IP's.
		e.clock.Advance(time.Second)
		if r := e.do("GET", "/v1/invoices", ""); r.code != http.StatusOK {
			t.Fatalf("key bucket after pay limit: %s", r)
		}
	})
}
