package audit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/payledger/payledger/adapters/apikey"
	httpapi "github.com/payledger/payledger/adapters/http"
	"github.com/payledger/payledger/adapters/idempotency"
	"github.com/payledger/payledger/audit"
	"github.com/payledger/payledger/domain/invoice"
	"github.com/payledger/payledger/domain/money"
	"github.com/payledger/payledger/internal/paytest"
	"github.com/payledger/payledger/ledger"
	"github.com/payledger/payledger/projections"
	"github.com/payledger/payledger/projections/deadlines"
	"github.com/payledger/payledger/projections/links"
	"github.com/payledger/payledger/projections/projectiontest"
	"github.com/payledger/payledger/projections/status"
)

// api is the real native API over a real store on a settable clock, with
// the status read model running live behind GET /v1/invoices.
type api struct {
	t     *testing.T
	url   string
	token string
	svc   *ledger.Service
	set   *projections.Set
	clock *paytest.Clock
	n     int
}

func newAPI(t *testing.T, b projections.Backend) *api {
	t.Helper()
	ctx := context.Background()
	clock := paytest.NewClock(time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC))
	svc := ledger.New(b, clock.Now)
	invoices := ledger.NewInvoices(svc, &paytest.Counter{}, nil, ledger.Policy{LinkTTLMin: time.Second})
	st := status.New(b, b.DB())
	set, err := projections.NewSet(b, projections.Options{}, st, links.New(b, b.DB()), deadlines.New(b, b.DB()))
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
	keys, err := apikey.New(ctx, b, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	idem, err := idempotency.New(ctx, b, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	_, token, err := keys.Create(ctx, "auditor", apikey.ScopeFull)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(httpapi.New(httpapi.Options{Invoices: invoices, Keys: keys, Idempotency: idem, Lister: st,
		WaitFor: set.WaitFor, PublicURL: "http://pay.example"}))
	t.Cleanup(srv.Close)
	return &api{t: t, url: srv.URL, token: token, svc: svc, set: set, clock: clock}
}

func (a *api) do(method, path string, body any) (int, []byte) {
	a.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, a.url+path, rd)
	req.Header.Set("Authorization", "Bearer "+a.token)
	if method == http.MethodPost {
		a.n++
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", fmt.Sprintf("step-%d", a.n))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

func (a *api) must(method, path string, body any, want int) []byte {
	a.t.Helper()
	code, out := a.do(method, path, body)
	if code != want {
		a.t.Fatalf("%s %s: %d %s", method, path, code, out)
	}
	return out
}

func (a *api) exec(id string, cmd invoice.Command) {
	a.t.Helper()
	res, err := a.svc.Execute(context.Background(), id, cmd)
	if err != nil {
		a.t.Fatalf("%T: %v", cmd, err)
	}
	// A provider's report does not pass through the API, whose lists wait
	// for the caller's own writes only: wait here as its handler would.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := a.set.WaitFor(ctx, res.Position); err != nil {
		a.t.Fatal(err)
	}
}

// generic decodes JSON for comparison regardless of field order and
// formatting.
func generic(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	return v
}

func genericOf(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return generic(t, b)
}

// moment is what the status API answered right after one step.
type moment struct {
	step string
	at   time.Time
	// object is GET /v1/invoices/{id}; listed is the same invoice from
	// GET /v1/invoices (the status read model).
	object, listed any
}

// TestStateAtEveryBoundaryEqualsTheStatusAPIThen drives one invoice
// through its life over the real API (links issued and revoked, a
// declined then a processed payment as a provider reports them, two
// refunds), one second apart, and records what the status API answered
// after each step. Afterwards the replayed state at each of those
// instants — GET ?as_of=, audit history --as-of, and the state after each
// event of the full history — must equal what the API said then; the
// events endpoint must list the same events with the same hashes.
func TestStateAtEveryBoundaryEqualsTheStatusAPIThen(t *testing.T) {
	t.Parallel()
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		a := newAPI(t, b)
		var id string
		var moments []moment
		usd := func(s string) money.Money { m, _ := money.Parse(s, "USD"); return m }
		steps := []struct {
			name string
			do   func()
		}{
			{"create", func() {
				out := a.must("POST", "/v1/invoices", map[string]any{"amount": "120.00", "currency": "USD", "reference_id": "order-77",
					"customer": map[string]string{"email": "payer@example.com"}, "metadata": map[string]string{"plan": "pro"}}, 201)
				var inv status.Invoice
				_ = json.Unmarshal(out, &inv)
				id = inv.ID
			}},
			{"first link", func() { a.must("POST", "/v1/invoices/"+id+"/payment_links", map[string]any{}, 201) }},
			{"second link revokes the first", func() { a.must("POST", "/v1/invoices/"+id+"/payment_links", map[string]any{}, 201) }},
			{"payment initiated", func() { a.exec(id, invoice.InitiatePayment{PaymentID: "pay_1", Provider: "sandbox"}) }},
			{"payment declined", func() {
				a.exec(id, invoice.RecordFailed{PaymentID: "pay_1", Provider: "sandbox", Code: "card_declined", Message: "declined"})
			}},
			{"second attempt", func() { a.exec(id, invoice.InitiatePayment{PaymentID: "pay_2", Provider: "sandbox"}) }},
			{"payment processed", func() {
				a.exec(id, invoice.RecordProcessed{PaymentID: "pay_2", Provider: "sandbox", ProviderRef: "ch_2", Amount: usd("120.00"), CardBrand: "visa", CardLast4: "4242"})
			}},
			{"partial refund", func() {
				a.must("POST", "/v1/refunds", map[string]any{"invoice_id": id, "amount": "20.00", "reason": "requested_by_customer"}, 201)
			}},
			{"rest refunded", func() { a.must("POST", "/v1/refunds", map[string]any{"invoice_id": id, "amount": "100.00"}, 201) }},
		}
		for _, s := range steps {
			a.clock.Advance(time.Second)
			s.do()
			m := moment{step: s.name, at: a.clock.Now(), object: generic(t, a.must("GET", "/v1/invoices/"+id, nil, 200))}
			var list struct {
				Data []json.RawMessage `json:"data"`
			}
			if err := json.Unmarshal(a.must("GET", "/v1/invoices?reference_id=order-77", nil, 200), &list); err != nil || len(list.Data) != 1 {
				t.Fatalf("%s: list: %v %d", s.name, err, len(list.Data))
			}
			m.listed = generic(t, list.Data[0])
			if !reflect.DeepEqual(m.object, m.listed) {
				t.Fatalf("%s: the read model answers\n%v\nthe aggregate\n%v", s.name, m.listed, m.object)
			}
			moments = append(moments, m)
		}
		a.clock.Advance(time.Hour)
		last := moments[len(moments)-1].object.(map[string]any)
		if last["status"] != "refunded" || last["amount_refunded"] != "120.00" || last["amount_paid"] != "120.00" {
			t.Fatalf("the script did not end refunded: %v", last)
		}

		ctx := context.Background()
		full, err := audit.LoadHistory(ctx, a.svc, id, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if full.Chain != "ok" || len(full.Steps) < len(steps) {
			t.Fatalf("history: chain %q, %d events", full.Chain, len(full.Steps))
		}
		for i, m := range moments {
			// The instant itself and half a second later (between two
			// steps) both show the state the API showed then.
			for _, at := range []time.Time{m.at, m.at.Add(500 * time.Millisecond)} {
				code, body := a.do("GET", "/v1/invoices/"+id+"?as_of="+url.QueryEscape(at.Format(time.RFC3339Nano)), nil)
				if code != 200 || !reflect.DeepEqual(generic(t, body), m.object) {
					t.Fatalf("after %q: ?as_of=%s gives %d\n%s\nthe API said then\n%v", m.step, at.Format(time.RFC3339Nano), code, body, m.object)
				}
				h, err := audit.LoadHistory(ctx, a.svc, id, at)
				if err != nil {
					t.Fatal(err)
				}
				if got := genericOf(t, h.State); !reflect.DeepEqual(got, m.object) {
					t.Fatalf("after %q: audit history --as-of %s gives\n%v\nthe API said then\n%v", m.step, at, got, m.object)
				}
			}
			// Every event boundary of the full history: the state after
			// the last event of step i is what the API said after step i.
			var after *audit.Step
			for j := range full.Steps {
				if !full.Steps[j].OccurredAt.After(m.at) {
					after = &full.Steps[j]
				}
			}
			if after == nil || !after.OccurredAt.Equal(m.at) {
				t.Fatalf("step %d (%s) has no event at %s", i, m.step, m.at)
			}
			if got := genericOf(t, after.State); !reflect.DeepEqual(got, m.object) {
				t.Fatalf("state after event %d (%s) is\n%v\nthe API said\n%v", after.Sequence, after.Type, got, m.object)
			}
		}
		if code, _ := a.do("GET", "/v1/invoices/"+id+"?as_of="+url.QueryEscape(moments[0].at.Add(-time.Second).Format(time.RFC3339)), nil); code != 404 {
			t.Fatalf("as_of before creation: %d", code)
		}
		if _, err := audit.LoadHistory(ctx, a.svc, id, moments[0].at.Add(-time.Second)); err == nil || !strings.Contains(err.Error(), "not found") {
			t.Fatalf("history before creation: %v", err)
		}

		// GET /v1/invoices/{id}/events lists the same events, hashes
		// included.
		var evs struct {
			Data []httpapi.Event `json:"data"`
		}
		if err := json.Unmarshal(a.must("GET", "/v1/invoices/"+id+"/events", nil, 200), &evs); err != nil {
			t.Fatal(err)
		}
		if len(evs.Data) != len(full.Steps) {
			t.Fatalf("events endpoint: %d events, history %d", len(evs.Data), len(full.Steps))
		}
		for i, e := range evs.Data {
			s := full.Steps[i]
			if e.Sequence != s.Sequence || e.Type != s.Type || e.Hash != s.Hash || len(e.Hash) != 64 || !e.OccurredAt.Equal(s.OccurredAt) {
				t.Fatalf("event %d: API %+v, history %+v", i, e, s)
			}
		}

		var table bytes.Buffer
		if err := full.WriteTable(&table); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"invoice.created", full.Steps[0].Hash, "refunded", "hash chain: ok"} {
			if !strings.Contains(table.String(), want) {
				t.Fatalf("history table lacks %q:\n%s", want, table.String())
			}
		}
	})
}
