package reports_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/payledger/payledger/adapters/apikey"
	httpapi "github.com/payledger/payledger/adapters/http"
	"github.com/payledger/payledger/adapters/idempotency"
	"github.com/payledger/payledger/adapters/reports"
	"github.com/payledger/payledger/eventstore"
	"github.com/payledger/payledger/internal/paytest"
	"github.com/payledger/payledger/ledger"
	"github.com/payledger/payledger/projections"
	"github.com/payledger/payledger/projections/projectiontest"
	"github.com/payledger/payledger/projections/recon"
	"github.com/payledger/payledger/projections/recon/recontest"
)

// env is a real API server (authentication, rate limit, problem errors)
// with the reports mounted, over a store holding the scripted
// reconciliation history, the recon projection caught up with it.
type env struct {
	t     *testing.T
	store projections.Backend
	url   string
	token string // read scope: reports are reads
	h     recontest.History
}

func newEnv(t *testing.T, b projections.Backend) *env {
	t.Helper()
	ctx := context.Background()
	svc := ledger.New(b, time.Now)
	keys, err := apikey.New(ctx, b, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	idem, err := idempotency.New(ctx, b, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	rp := recon.New(b, b.DB())
	set, err := projections.NewSet(b, projections.Options{}, rp)
	if err != nil {
		t.Fatal(err)
	}
	if err := set.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = set.Run(runCtx) }()
	t.Cleanup(func() { cancel(); <-done })

	srv := httpapi.New(httpapi.Options{
		Invoices: ledger.NewInvoices(svc, &paytest.Counter{}, nil, ledger.Policy{}),
		Keys:     keys, Idempotency: idem, WaitFor: set.WaitFor,
		KeyLimit: httpapi.DefaultKeyLimit,
	})
	srv.Mount(reports.New(reports.Options{Recon: rp}).Routes)
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	_, tok, err := keys.Create(ctx, "reports test", apikey.ScopeRead)
	if err != nil {
		t.Fatal(err)
	}
	h, err := recontest.Write(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	wait, stop := context.WithTimeout(ctx, 20*time.Second)
	defer stop()
	if err := set.WaitFor(wait, h.Last); err != nil {
		t.Fatal(err)
	}
	return &env{t: t, store: b, url: hs.URL, token: tok, h: h}
}

// get returns status, content type and body.
func (e *env) get(path, accept string) (int, string, string) {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.url+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	if e.token != "" {
		req.Header.Set("Authorization", "Bearer "+e.token)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return res.StatusCode, res.Header.Get("Content-Type"), string(body)
}

func (e *env) getJSON(path string, v any) {
	e.t.Helper()
	code, ct, body := e.get(path, "application/json")
	if code != http.StatusOK || ct != "application/json" {
		e.t.Fatalf("GET %s: %d %s %s", path, code, ct, body)
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		e.t.Fatalf("GET %s: %v in %s", path, err, body)
	}
}

func crlf(lines ...string) string { return strings.Join(lines, "\r\n") + "\r\n" }

const summaryHeader = "date,currency,provider,invoiced,paid,refunded,net,invoice_count,count_open,count_paid,count_partially_refunded,count_refunded,count_expired,count_cancelled,payment_count,failed_payment_count,refund_count,flagged_count"

const itemHeader = "id,type,invoice_id,invoice_number,reference_id,provider,provider_reference,gross,currency,status,occurred_at,flag,flags"

func TestReconciliationRoutes(t *testing.T) {
	t.Parallel()
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		e := newEnv(t, b)
		inv := e.h.Invoices

		t.Run("summary csv", func(t *testing.T) {
			code, ct, body := e.get("/v1/reconciliation/summary", "text/csv")
			want := crlf(summaryHeader,
				"2026-03-03,EUR,acme,0.00,0.00,0.00,0.00,0,0,0,0,0,0,0,0,0,0,1",
				"2026-03-02,,acme,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1",
				"2026-03-02,EUR,acme,10.00,10.00,0.00,10.00,1,0,1,0,0,0,0,1,0,0,0",
				"2026-03-02,JPY,sandbox,1200,5000,5000,0,1,0,0,0,0,0,1,1,0,1,1",
				"2026-03-02,KWD,sandbox,0.000,0.000,1.005,-1.005,0,0,0,0,0,0,0,0,0,1,0",
				"2026-03-02,USD,sandbox,105.00,35.00,70.00,-35.00,2,1,1,0,0,0,0,1,0,2,1",
				"2026-03-01,EUR,sandbox,49.99,0.00,0.00,0.00,1,0,0,0,0,0,1,0,0,0,0",
				"2026-03-01,JPY,sandbox,5000,0,0,0,1,0,0,0,0,1,0,0,0,0,0",
				"2026-03-01,KWD,sandbox,12.345,12.345,0.000,12.345,1,0,0,1,0,0,0,2,0,0,1",
				"2026-03-01,USD,sandbox,150.55,250.54,0.00,250.54,2,0,0,2,0,0,0,4,1,0,2",
			)
			if code != http.StatusOK || ct != "text/csv; charset=utf-8" || body != want {
				t.Fatalf("%d %s\n%s\nwant\n%s", code, ct, body, want)
			}
		})

		t.Run("summary json with totals", func(t *testing.T) {
			var got struct {
				Object  string             `json:"object"`
				Data    []recon.SummaryRow `json:"data"`
				HasMore bool               `json:"has_more"`
				Totals  []recon.Total      `json:"totals"`
			}
			e.getJSON("/v1/reconciliation/summary?from=2026-03-02&to=2026-03-02&currency=KWD", &got)
			if got.Object != "list" || got.HasMore || len(got.Data) != 1 || len(got.Totals) != 1 {
				t.Fatalf("%+v", got)
			}
			r := got.Data[0]
			if r.Object != "reconciliation_summary" || r.Date != "2026-03-02" || *r.Currency != "KWD" || r.Provider != "sandbox" ||
				r.Refunded != "1.005" || r.Net != "-1.005" || r.RefundCount != 1 || got.Totals[0].Net != "-1.005" {
				t.Fatalf("%+v", r)
			}
			e.getJSON("/v1/reconciliation/summary", &got)
			var totals []string
			for _, tot := range got.Totals {
				c := "null"
				if tot.Currency != nil {
					c = *tot.Currency
				}
				totals = append(totals, c+" "+tot.Invoiced+" "+tot.Paid+" "+tot.Refunded+" "+tot.Net)
			}
			want := "null 0 0 0 0|EUR 59.99 10.00 0.00 10.00|JPY 6200 5000 5000 0|KWD 12.345 12.345 1.005 11.340|USD 255.55 285.54 70.00 215.54"
			if strings.Join(totals, "|") != want {
				t.Fatalf("totals %s, want %s", strings.Join(totals, "|"), want)
			}
			// An instant as to excludes itself: 2026-03-02T00:00Z selects day 1 only.
			e.getJSON("/v1/reconciliation/summary?to=2026-03-02T00:00:00Z&provider=sandbox", &got)
			if len(got.Data) != 4 || got.Data[0].Date != "2026-03-01" {
				t.Fatalf("day 1 by instant: %+v", got.Data)
			}
		})

		t.Run("items csv", func(t *testing.T) {
			code, ct, body := e.get("/v1/reconciliation/items?from=2026-03-01&to=2026-03-01", "text/csv")
			want := crlf(itemHeader,
				"pay_E1,payment,"+inv["E"]+",1005,order-E,sandbox,ref_pay_E1,49.99,USD,processed,2026-03-01T14:05:00Z,currency_mismatch,currency_mismatch",
				"pay_D2,payment,"+inv["D"]+",1004,order-D,sandbox,ref_pay_D2,0.045,KWD,processed,2026-03-01T13:10:00Z,,",
				"pay_D1,payment,"+inv["D"]+",1004,order-D,sandbox,ref_pay_D1,12.300,KWD,processed,2026-03-01T13:05:00Z,amount_mismatch,amount_mismatch",
				"pay_B3,payment,"+inv["B"]+",1002,order-B,sandbox,ref_pay_B3,50.00,USD,processed,2026-03-01T12:00:00Z,duplicate_payment,duplicate_payment",
				"pay_B2,payment,"+inv["B"]+",1002,order-B,sandbox,ref_pay_B2,50.00,USD,processed,2026-03-01T11:02:00Z,,",
				"pay_B1,payment,"+inv["B"]+",1002,order-B,sandbox,,50.00,USD,failed,2026-03-01T11:01:00Z,,",
				"pay_A1,payment,"+inv["A"]+",1001,order-A,sandbox,ref_pay_A1,100.55,USD,processed,2026-03-01T10:01:00Z,,",
			)
			if code != http.StatusOK || ct != "text/csv; charset=utf-8" || body != want {
				t.Fatalf("%d %s\n%s\nwant\n%s", code, ct, body, want)
			}
			_, _, body = e.get("/v1/reconciliation/items?flag=unmatched_callback", "text/csv")
			want = crlf(itemHeader, e.h.CallbackEventID+",callback,,,,acme,ref_zzz,,,paid,2026-03-02T12:00:00Z,unmatched_callback,unmatched_callback")
			if body != want {
				t.Fatalf("unmatched callbacks:\n%s\nwant\n%s", body, want)
			}
			// No rows: the header alone.
			_, _, body = e.get("/v1/reconciliation/items?from=2027-01-01", "text/csv")
			if body != crlf(itemHeader) {
				t.Fatalf("empty export: %q", body)
			}
			// Without a limit the export holds every item; with one, a page.
			_, _, body = e.get("/v1/reconciliation/items", "text/csv")
			if n := strings.Count(body, "\r\n"); n != 17 {
				t.Fatalf("full export has %d lines, want 17", n)
			}
			_, _, body = e.get("/v1/reconciliation/items?limit=2", "text/csv")
			if n := strings.Count(body, "\r\n"); n != 3 {
				t.Fatalf("limited export has %d lines, want 3", n)
			}
		})

		t.Run("items json flags and pages", func(t *testing.T) {
			var page struct {
				Data    []recon.Item `json:"data"`
				HasMore bool         `json:"has_more"`
			}
			for flag, want := range map[string]string{
				"late_payment": "pay_C1", "duplicate_payment": "pay_B3", "amount_mismatch": "pay_I1 pay_D1",
				"currency_mismatch": "pay_E1", "unmatched_callback": e.h.CallbackEventID, "provider_status_mismatch": "pay_F1",
			} {
				e.getJSON("/v1/reconciliation/items?flag="+flag, &page)
				var ids []string
				for _, it := range page.Data {
					ids = append(ids, it.ID)
					if it.Flag != flag {
						t.Errorf("%s: item %s has flag %q", flag, it.ID, it.Flag)
					}
				}
				if strings.Join(ids, " ") != want || page.HasMore {
					t.Errorf("flag %s: %v (more %v), want %s", flag, ids, page.HasMore, want)
				}
			}
			// Unknown values are null, not empty strings.
			_, _, raw := e.get("/v1/reconciliation/items?flag=unmatched_callback", "")
			for _, frag := range []string{`"invoice_id":null`, `"invoice_number":null`, `"gross":null`, `"currency":null`, `"object":"reconciliation_item"`, `"type":"callback"`} {
				if !strings.Contains(raw, frag) {
					t.Errorf("callback item lacks %s: %s", frag, raw)
				}
			}
			var all []string
			after := ""
			for range 10 {
				q := "/v1/reconciliation/items?limit=6"
				if after != "" {
					q += "&starting_after=" + after
				}
				e.getJSON(q, &page)
				for _, it := range page.Data {
					all = append(all, it.ID)
				}
				if !page.HasMore {
					break
				}
				after = page.Data[len(page.Data)-1].ID
			}
			if len(all) != 16 || all[0] != "pay_I1" || all[15] != "pay_A1" {
				t.Fatalf("paged through %v", all)
			}
			e.getJSON("/v1/reconciliation/items", &page)
			if len(page.Data) != 16 || page.HasMore {
				t.Fatalf("default page: %d items, more %v", len(page.Data), page.HasMore)
			}
		})

		t.Run("content negotiation", func(t *testing.T) {
			for accept, csv := range map[string]bool{
				"": false, "*/*": false, "application/json": false, "text/csv": true,
				"text/csv; charset=utf-8": true, "application/json, text/csv;q=0.5": false,
				"application/json;q=0.4, text/csv": true, "text/csv;q=0": false,
			} {
				_, ct, _ := e.get("/v1/reconciliation/summary", accept)
				if got := strings.HasPrefix(ct, "text/csv"); got != csv {
					t.Errorf("Accept %q: content type %s", accept, ct)
				}
			}
		})

		t.Run("bad queries are problems", func(t *testing.T) {
			for _, path := range []string{
				"/v1/reconciliation/items?flag=bogus",
				"/v1/reconciliation/items?from=yesterday",
				"/v1/reconciliation/items?limit=0",
				"/v1/reconciliation/items?limit=101",
				"/v1/reconciliation/items?type=charge",
				"/v1/reconciliation/items?starting_after=pay_nope",
				"/v1/reconciliation/items?starting_after=pay_A1&ending_before=pay_I1",
				"/v1/reconciliation/summary?from=2026-03-02&to=2026-03-01",
				"/v1/reconciliation/summary?currency=XXX",
				"/v1/reconciliation/summary?to=99999999999999",
			} {
				for _, accept := range []string{"", "text/csv"} {
					code, ct, body := e.get(path, accept)
					var p struct {
						Code   string `json:"code"`
						Errors []struct {
							Field string `json:"field"`
						} `json:"errors"`
					}
					_ = json.Unmarshal([]byte(body), &p)
					if code != http.StatusBadRequest || ct != "application/problem+json" || p.Code != "validation_failed" || len(p.Errors) == 0 {
						t.Errorf("GET %s (Accept %q): %d %s %s", path, accept, code, ct, body)
					}
				}
			}
			anon := *e
			anon.token = ""
			if code, _, _ := anon.get("/v1/reconciliation/summary", ""); code != http.StatusUnauthorized {
				t.Errorf("without a key: %d", code)
			}
		})
	})
}

type feedPage struct {
	Object string `json:"object"`
	Data   []struct {
		ID         string          `json:"id"`
		Type       string          `json:"type"`
		Sequence   uint64          `json:"sequence"`
		InvoiceID  string          `json:"invoice_id"`
		OccurredAt time.Time       `json:"occurred_at"`
		Data       json.RawMessage `json:"data"`
		Hash       string          `json:"hash"`
	} `json:"data"`
	HasMore bool `json:"has_more"`
}

// TestEventsFeed pages GET /v1/events (served by the API server itself)
// through the scripted history and checks it against the store's $all.
func TestEventsFeed(t *testing.T) {
	t.Parallel()
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		e := newEnv(t, b)
		all, err := b.ReadAll(context.Background(), eventstore.Start, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 47 {
			t.Fatalf("%d events in $all", len(all))
		}
		var want []string
		for _, r := range all {
			want = append(want, recon.PublicEventID(r.ID))
		}

		// Every event once, in global order, across pages of 7.
		var got []string
		after := ""
		pages := 0
		for {
			var p feedPage
			q := "/v1/events?limit=7"
			if after != "" {
				q += "&after=" + after
			}
			e.getJSON(q, &p)
			pages++
			for i, ev := range p.Data {
				got = append(got, ev.ID)
				r := all[len(got)-1]
				id, isInvoice := ledger.InvoiceIDFromStream(r.Stream)
				if !isInvoice {
					id = ""
				}
				if ev.Type != r.Type || ev.Sequence != r.StreamVersion || ev.InvoiceID != id || ev.Hash == "" || len(ev.Data) == 0 {
					t.Fatalf("page %d item %d: %+v for %s v%d", pages, i, ev, r.Stream, r.StreamVersion)
				}
			}
			if !p.HasMore {
				break
			}
			if len(p.Data) != 7 || pages > 20 {
				t.Fatalf("page %d has %d events and more", pages, len(p.Data))
			}
			after = p.Data[len(p.Data)-1].ID
		}
		if strings.Join(got, " ") != strings.Join(want, " ") || pages != 7 {
			t.Fatalf("feed gave %d events in %d pages, want %d in 7", len(got), pages, len(want))
		}

		// A type filter pages too: 6 flags and the callback, 3 at a time.
		var seen []string
		after = ""
		for i, wantLen := range []int{3, 3, 1} {
			var p feedPage
			q := "/v1/events?limit=3&type=invoice.flagged,provider.callback_received"
			if after != "" {
				q += "&after=" + after
			}
			e.getJSON(q, &p)
			if len(p.Data) != wantLen || p.HasMore != (i < 2) {
				t.Fatalf("filtered page %d: %d events, more %v", i, len(p.Data), p.HasMore)
			}
			for _, ev := range p.Data {
				seen = append(seen, ev.Type)
			}
			after = p.Data[len(p.Data)-1].ID
		}
		if strings.Count(strings.Join(seen, " "), "invoice.flagged") != 6 || seen[4] != "provider.callback_received" {
			t.Fatalf("filtered types %v", seen)
		}
		var refunds feedPage
		e.getJSON("/v1/events?type=payment.refunded", &refunds)
		if len(refunds.Data) != 4 || refunds.HasMore {
			t.Fatalf("refund events: %+v", refunds)
		}
		var tail feedPage
		e.getJSON("/v1/events?after="+want[len(want)-1], &tail)
		if len(tail.Data) != 0 || tail.HasMore {
			t.Fatalf("after the last event: %+v", tail)
		}
		for _, q := range []string{"/v1/events?after=evt_00000000000000000000000000000000", "/v1/events?after=pay_A1", "/v1/events?limit=500"} {
			if code, ct, body := e.get(q, ""); code != http.StatusBadRequest || ct != "application/problem+json" {
				t.Errorf("GET %s: %d %s %s", q, code, ct, body)
			}
		}
	})
}
