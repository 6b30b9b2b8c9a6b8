package providermix_test

import (
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/payledger/payledger/adapters/callbacks"
	"github.com/payledger/payledger/adapters/callbacks/callbackstest"
	"github.com/payledger/payledger/adapters/circoflows"
	"github.com/payledger/payledger/adapters/circoflows/cardpage"
	"github.com/payledger/payledger/adapters/circoflows/circoflowstest"
	"github.com/payledger/payledger/adapters/onramp"
	"github.com/payledger/payledger/adapters/onramp/onramptest"
	"github.com/payledger/payledger/adapters/pay"
	"github.com/payledger/payledger/adapters/payfect"
	"github.com/payledger/payledger/adapters/payfect/payfecttest"
	"github.com/payledger/payledger/adapters/reports"
	"github.com/payledger/payledger/adapters/sandbox"
	"github.com/payledger/payledger/adapters/wzrdpay"
	"github.com/payledger/payledger/adapters/wzrdpay/wzrdpaytest"
	"github.com/payledger/payledger/domain/invoice"
	"github.com/payledger/payledger/eventstore"
	"github.com/payledger/payledger/internal/paytest"
	"github.com/payledger/payledger/ledger"
	"github.com/payledger/payledger/projections"
	"github.com/payledger/payledger/projections/projectiontest"
	"github.com/payledger/payledger/projections/recon"
)

// run is the ledger with every provider on its fake, and the
// reconciliation read model beside it.
type run struct {
	*callbackstest.Harness
	t     *testing.T
	wz    *wzrdpaytest.Fake
	pf    *payfecttest.Fake
	cf    *circoflowstest.Fake
	or    *onramptest.Fake
	recon *recon.Projection
	set   *projections.Set
	// streams are every stream the script wrote to, to wait for.
	streams []string
}

func newRun(t *testing.T, b projections.Backend) *run {
	t.Helper()
	r := &run{t: t, wz: wzrdpaytest.New(t), pf: payfecttest.New(t), cf: circoflowstest.New(t), or: onramptest.New(t)}
	wz, err := wzrdpay.New(wzrdpay.Config{PublicKey: wzrdpaytest.PublicKey, PrivateKey: wzrdpaytest.PrivateKey, BaseURL: r.wz.URL, TestMode: true, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	pf, err := payfect.New(payfect.Config{APIKey: payfecttest.APIKey, BaseURL: r.pf.BaseURL(), Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	cf := r.cf.Client(t)
	or := r.or.Client(t)
	setup := func(h *callbackstest.Harness, mux *http.ServeMux, providers map[string]pay.Provider) {
		sb := sandbox.New(sandbox.Options{Ledger: h.Env.Service, PublicURL: h.Server.URL, Secret: []byte("mix sandbox secret")})
		sb.Routes(mux)
		providers[sandbox.Name] = sb
		card := cardpage.New(cardpage.Options{
			Ledger: h.Env.Service, Charger: cf.Direct(), PublicURL: h.Server.URL, Secret: []byte("mix card secret"),
			CallbackURL:   func(ref string) string { return h.Service.CallbackURL(circoflows.DirectName, ref) },
			StatusTimeout: 2 * time.Second,
		})
		card.Routes(mux)
		providers[cardpage.Name] = card
	}
	r.Harness = callbackstest.NewWith(t, b.(paytest.Store), callbacks.Options{CreateTimeout: 2 * time.Second, StatusTimeout: 2 * time.Second},
		callbacks.JanitorOptions{After: 15 * time.Minute}, setup, wz, pf, cf, cf.Direct(), or)

	r.recon = recon.New(b, b.DB())
	r.set, err = projections.NewSet(b, projections.Options{}, r.recon)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.set.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = r.set.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

func (r *run) invoice(amount, currency, prov string, expires time.Duration) (string, string) {
	r.t.Helper()
	id, token := r.InvoiceIn(r.t, amount, currency, prov, expires)
	r.streams = append(r.streams, ledger.StreamName(id))
	return id, token
}

// visit opens the link and expects a redirect to the provider.
func (r *run) visit(token string) string {
	r.t.Helper()
	res := r.Visit(r.t, token)
	if res.Code != http.StatusFound {
		r.t.Fatalf("visit: %d %s", res.Code, res.Body)
	}
	return res.Location
}

// card opens a card page (sandbox or CircoFlows direct) and returns the
// form's action.
func (r *run) card(token string) string {
	r.t.Helper()
	res := r.Visit(r.t, token)
	if res.Code != http.StatusOK || !strings.Contains(res.Body, `name="card_number"`) {
		r.t.Fatalf("card page: %d %s", res.Code, res.Body)
	}
	return res.Action(r.t)
}

func (r *run) pay(action, number string) callbackstest.Response {
	r.t.Helper()
	form := url.Values{"card_number": {number}, "expiry": {"12/35"}, "cvc": {"123"}, "cardholder": {"Jane Smith"}}
	return r.Do(r.t, http.MethodPost, action, []byte(form.Encode()), http.Header{"Content-Type": {"application/x-www-form-urlencoded"}})
}

func (r *run) post(target string, body []byte, h http.Header) {
	r.t.Helper()
	if h == nil {
		h = http.Header{"Content-Type": {"application/json"}}
	}
	if res := r.Do(r.t, http.MethodPost, target, body, h); res.Code != http.StatusOK {
		r.t.Fatalf("callback to %s: %d %s", target, res.Code, res.Body)
	}
}

func (r *run) status(id string, want invoice.Status) {
	r.t.Helper()
	if st := r.State(r.t, id); st.Status != want {
		r.t.Fatalf("%s is %s, want %s (%+v)", id, st.Status, want, st.Payments)
	}
}

// sync waits until the reconciliation model has every event of the
// streams the script wrote to (on PostgreSQL the head can lag behind
// commits, so the positions are read from the streams themselves).
func (r *run) sync() {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var last eventstore.Position
	for _, s := range r.streams {
		recs, err := r.Env.Store.ReadStream(ctx, s, 1)
		if err != nil {
			r.t.Fatal(err)
		}
		if n := len(recs); n > 0 && last.Less(recs[n-1].Position) {
			last = recs[n-1].Position
		}
	}
	if err := r.set.WaitFor(ctx, last); err != nil {
		r.t.Fatal(err)
	}
}

// script plays the mixed day. Every figure the assertions expect follows
// from it; the comments say which.
type script struct {
	s1, s2, w1, w2, p1, p2, c1, c2, d1, o1, o2, o3 string
	d1First                                        string // the 3-D Secure charge the payer left
	day                                            string
}

func play(r *run) script {
	t := r.t
	ctx := context.Background()
	// Start at 08:00 UTC of the next day, so that the whole script falls
	// on one UTC day however late the test runs.
	now := r.Env.Clock.Now()
	start := now.Truncate(24 * time.Hour).Add(32 * time.Hour)
	r.Env.Clock.Advance(start.Sub(now))
	var sc script
	sc.day = start.Format(time.DateOnly)

	// Sandbox: one paid (and partly refunded), one declined.
	var tok string
	sc.s1, tok = r.invoice("100.00", "USD", sandbox.Name, 0)
	if res := r.pay(r.card(tok), sandbox.CardSuccess); res.Code != http.StatusSeeOther {
		t.Fatalf("sandbox pay: %d", res.Code)
	}
	r.status(sc.s1, invoice.StatusPaid)
	if _, err := r.Env.Invoices.Refund(ctx, ledger.RefundRequest{InvoiceID: sc.s1, Amount: "25.00", Reason: "requested_by_customer"}, ""); err != nil {
		t.Fatal(err)
	}
	sc.s2, tok = r.invoice("50.00", "USD", sandbox.Name, 0)
	r.pay(r.card(tok), sandbox.CardDeclined)
	r.status(sc.s2, invoice.StatusOpen)

	// WZRDPAY: one paid, its callback delivered twice; one underpaid.
	sc.w1, tok = r.invoice("200.00", "USD", wzrdpay.Name, 0)
	r.visit(tok)
	w1, _ := r.wz.ByReference(sc.w1)
	r.wz.Set(w1.ID, "processed", "ok", "")
	r.post(w1.CallbackURL, r.wz.Document(w1.ID), nil)
	r.post(w1.CallbackURL, r.wz.Document(w1.ID), nil)
	r.status(sc.w1, invoice.StatusPaid)
	sc.w2, tok = r.invoice("80.00", "USD", wzrdpay.Name, 0)
	r.visit(tok)
	w2, _ := r.wz.ByReference(sc.w2)
	r.wz.Set(w2.ID, "processed", "ok", "70.00")
	r.post(w2.CallbackURL, r.wz.Document(w2.ID), nil)
	r.status(sc.w2, invoice.StatusOpen)

	// Payfect (USDT): one paid now, one that will be paid after our
	// expiry.
	sc.p1, tok = r.invoice("20.5", "USDT", payfect.Name, 0)
	r.visit(tok)
	p1 := r.pf.Checkouts()[0]
	r.pf.Set(p1.ID, "complete")
	r.post(p1.CallbackURL, r.pf.Document(p1.ID), nil)
	r.status(sc.p1, invoice.StatusPaid)
	sc.p2, tok = r.invoice("15", "USDT", payfect.Name, 20*time.Minute)
	r.visit(tok)
	p2 := r.pf.Checkouts()[1]

	// CircoFlows hosted sessions (EUR): one paid, one declined.
	sc.c1, tok = r.invoice("75.00", "EUR", circoflows.Name, 0)
	r.visit(tok)
	c1, _ := r.cf.ByReference(sc.c1)
	r.cf.Set(c1.ID, "completed")
	body, h := r.cf.Webhook(c1.ID, "")
	r.post(c1.WebhookURL, body, h)
	r.status(sc.c1, invoice.StatusPaid)
	sc.c2, tok = r.invoice("30.00", "EUR", circoflows.Name, 0)
	r.visit(tok)
	c2, _ := r.cf.ByReference(sc.c2)
	r.cf.Set(c2.ID, "failed")
	body, h = r.cf.Webhook(c2.ID, "")
	r.post(c2.WebhookURL, body, h)

	// CircoFlows direct: the payer leaves the bank's 3-D Secure page and
	// pays with another card; the bank then completes the first charge
	// too, so the invoice is paid twice.
	sc.d1, tok = r.invoice("60.00", "USD", cardpage.Name, 0)
	action := r.card(tok)
	if res := r.pay(action, circoflowstest.CardThreeDS); res.Code != http.StatusSeeOther || !strings.HasPrefix(res.Location, r.cf.URL+"/3ds/") {
		t.Fatalf("3-D Secure: %d %q", res.Code, res.Location)
	}
	if res := r.pay(action, circoflowstest.CardSuccess); res.Code != http.StatusSeeOther {
		t.Fatalf("second card: %d %s", res.Code, res.Body)
	}
	r.status(sc.d1, invoice.StatusPaid)
	var first circoflowstest.Payment
	for _, p := range r.cf.Payments() {
		if p.Metadata["invoice_id"] == sc.d1 && p.Status == "pending" {
			first = p
		}
	}
	sc.d1First = first.ID
	r.cf.Set(first.ID, "completed")
	body, h = r.cf.Webhook(first.ID, "")
	r.post(first.WebhookURL, body, h)

	// On-ramp: one paid and announced, one paid whose webhook is lost,
	// one expired; and a webhook about an invoice nobody here has.
	sc.o1, tok = r.invoice("250.00", "USD", onramp.Name, 0)
	r.visit(tok)
	o1, _ := r.or.ByInvoice(sc.o1)
	r.or.Set(o1.PaymentID, "PAID")
	body, h = r.or.Webhook(o1.PaymentID)
	r.post(o1.WebhookURL, body, h)
	r.status(sc.o1, invoice.StatusPaid)
	sc.o2, tok = r.invoice("40.00", "USD", onramp.Name, 0)
	r.visit(tok)
	o2, _ := r.or.ByInvoice(sc.o2)
	r.or.Set(o2.PaymentID, "PAID")
	sc.o3, tok = r.invoice("10.00", "USD", onramp.Name, 0)
	r.visit(tok)
	o3, _ := r.or.ByInvoice(sc.o3)
	r.or.Set(o3.PaymentID, "EXPIRED")
	body, h = r.or.Webhook(o3.PaymentID)
	r.post(o3.WebhookURL, body, h)
	r.post("/callbacks/onramp", r.or.Sample("webhook_external_paid.json"), nil)
	r.streams = append(r.streams, unmatchedStreams(t, r)...)

	// 21 minutes later: the Payfect invoice has expired at our end and
	// its checkout is paid; WZRDPAY reverses the first payment; the
	// janitor asks about everything it has not confirmed.
	r.Env.Clock.Advance(21 * time.Minute)
	if _, err := r.Env.Service.Execute(ctx, sc.p2, invoice.Expire{}); err != nil {
		t.Fatal(err)
	}
	r.pf.Set(p2.ID, "complete")
	r.post(p2.CallbackURL, r.pf.Document(p2.ID), nil)
	r.status(sc.p2, invoice.StatusExpired)
	r.wz.Set(w1.ID, "process_failed", "reversed", "")
	rep := r.Sweep(t)
	// Asked: every settled or open payment at an external provider
	// started before the cut-off, except the late Payfect payment settled
	// just now: W1 W2 P1 C1 C2 D1×2 O1 O2 O3.
	if rep.Checked != 10 || rep.Settled != 1 || rep.Flagged != 1 || rep.Errors != 0 {
		t.Fatalf("sweep %+v", rep)
	}
	r.status(sc.o2, invoice.StatusPaid)
	r.status(sc.w1, invoice.StatusPaid) // flagged, never "fixed"
	return sc
}

// unmatchedStreams are the streams of callbacks kept outside invoices:
// the one of the on-ramp sample's reference, which has a slash and so is
// named after its digest.
func unmatchedStreams(t *testing.T, r *run) []string {
	t.Helper()
	sum := sha256.Sum256([]byte(onramp.Ref("inv_0190d7a1b2c34d5e8f9a0b1c2d3e4f50", "pmt_7f3c2a9e41b84d0c")))
	stream := "callback-onramp-h" + hex.EncodeToString(sum[:12])
	if kept := r.Unmatched(t, stream); len(kept) != 1 {
		t.Fatalf("unmatched callbacks on %s: %+v", stream, kept)
	}
	return []string{stream}
}

// row is the part of a summary row the script determines.
type row struct {
	Invoiced, Paid, Refunded, Net                   string
	Invoices, Payments, Failed, Refunds, Flagged    int64
	Open, PaidN, PartiallyRefunded, Expired, Cancel int64
}

func rowOf(f recon.Figures) row {
	return row{f.Invoiced, f.Paid, f.Refunded, f.Net, f.InvoiceCount, f.PaymentCount, f.FailedPaymentCount, f.RefundCount, f.FlaggedCount,
		f.Counts.Open, f.Counts.Paid, f.Counts.PartiallyRefunded, f.Counts.Expired, f.Counts.Cancelled}
}

func TestMixedRunReconciles(t *testing.T) {
	t.Parallel()
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		r := newRun(t, b)
		sc := play(r)
		r.sync()
		ctx := context.Background()

		// Summary: one row per currency and provider, all on the script's
		// day, with every figure the script implies.
		rows, totals, err := r.recon.Summary(ctx, recon.SummaryFilter{})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]row{}
		for _, sr := range rows {
			if sr.Date != sc.day {
				t.Errorf("row on %s, want %s: %+v", sr.Date, sc.day, sr)
			}
			cur := ""
			if sr.Currency != nil {
				cur = *sr.Currency
			}
			got[cur+"/"+sr.Provider] = rowOf(sr.Figures)
		}
		want := map[string]row{
			// S1 100 paid, 25 refunded (partially_refunded); S2 50 declined.
			"USD/sandbox": {"150.00", "100.00", "25.00", "75.00", 2, 1, 1, 1, 0, 1, 0, 1, 0, 0},
			// W1 200 paid then reversed (flag); W2 80 underpaid 70 (flag).
			"USD/wzrdpay": {"280.00", "270.00", "0.00", "270.00", 2, 2, 0, 0, 2, 1, 1, 0, 0, 0},
			// P1 20.5 paid; P2 15 paid after it expired (flag).
			"USDT/payfect": {"35.500000", "35.500000", "0.000000", "35.500000", 2, 2, 0, 0, 1, 0, 1, 0, 1, 0},
			// C1 75 paid; C2 30 declined.
			"EUR/circoflows": {"105.00", "75.00", "0.00", "75.00", 2, 1, 1, 0, 0, 1, 1, 0, 0, 0},
			// D1 60 paid twice (flag on the second).
			"USD/circoflows_direct": {"60.00", "120.00", "0.00", "120.00", 1, 2, 0, 0, 1, 0, 1, 0, 0, 0},
			// O1 250 paid; O2 40 paid, settled by the janitor; O3 10 expired.
			"USD/onramp": {"300.00", "290.00", "0.00", "290.00", 3, 2, 1, 0, 0, 1, 2, 0, 0, 0},
			// The unmatched webhook: no currency, one flagged item.
			"/onramp": {"0", "0", "0", "0", 0, 0, 0, 0, 1, 0, 0, 0, 0, 0},
		}
		if len(got) != len(want) {
			t.Errorf("summary rows %v", keys(got))
		}
		for k, w := range want {
			if g, ok := got[k]; !ok || g != w {
				t.Errorf("summary %s:\n got  %+v\n want %+v", k, g, w)
			}
		}
		tot := map[string]row{}
		for _, x := range totals {
			cur := ""
			if x.Currency != nil {
				cur = *x.Currency
			}
			tot[cur] = rowOf(x.Figures)
		}
		wantTot := map[string]row{
			"USD":  {"790.00", "780.00", "25.00", "755.00", 8, 7, 2, 1, 3, 3, 4, 1, 0, 0},
			"USDT": {"35.500000", "35.500000", "0.000000", "35.500000", 2, 2, 0, 0, 1, 0, 1, 0, 1, 0},
			"EUR":  {"105.00", "75.00", "0.00", "75.00", 2, 1, 1, 0, 0, 1, 1, 0, 0, 0},
			"":     {"0", "0", "0", "0", 0, 0, 0, 0, 1, 0, 0, 0, 0, 0},
		}
		for k, w := range wantTot {
			if g := tot[k]; g != w {
				t.Errorf("total %q:\n got  %+v\n want %+v", k, g, w)
			}
		}

		// Items: 13 payment attempts, one refund, one callback; exactly
		// one item per flag the script raised, each on the right payment.
		items, _, err := r.recon.Items(ctx, recon.ItemFilter{})
		if err != nil {
			t.Fatal(err)
		}
		kinds := map[string]int{}
		statuses := map[string]int{}
		for _, it := range items {
			kinds[it.Type]++
			if it.Type == recon.KindPayment {
				statuses[it.Status]++
			}
		}
		if kinds[recon.KindPayment] != 13 || kinds[recon.KindRefund] != 1 || kinds[recon.KindCallback] != 1 || len(items) != 15 ||
			statuses["processed"] != 10 || statuses["failed"] != 3 {
			t.Errorf("items by kind %v, payments by status %v", kinds, statuses)
		}
		type flagged struct{ invoice, provider, gross, currency, status string }
		wantFlag := map[invoice.Flag]flagged{
			invoice.FlagLatePayment:            {sc.p2, payfect.Name, "15.000000", "USDT", "processed"},
			invoice.FlagDuplicatePayment:       {sc.d1, circoflows.DirectName, "60.00", "USD", "processed"},
			invoice.FlagAmountMismatch:         {sc.w2, wzrdpay.Name, "70.00", "USD", "processed"},
			invoice.FlagProviderStatusMismatch: {sc.w1, wzrdpay.Name, "200.00", "USD", "processed"},
			invoice.FlagUnmatchedCallback:      {"", onramp.Name, "", "", "PAID"},
			invoice.FlagCurrencyMismatch:       {},
		}
		for f, w := range wantFlag {
			its, _, err := r.recon.Items(ctx, recon.ItemFilter{Flag: string(f)})
			if err != nil {
				t.Fatal(err)
			}
			if w == (flagged{}) {
				if len(its) != 0 {
					t.Errorf("%s: %d items", f, len(its))
				}
				continue
			}
			if len(its) != 1 {
				t.Errorf("%s: %d items %+v", f, len(its), its)
				continue
			}
			it := its[0]
			g := flagged{deref(it.InvoiceID), it.Provider, deref(it.Gross), deref(it.Currency), it.Status}
			if g != w || it.Flag != string(f) {
				t.Errorf("%s: got %+v (flag %q), want %+v", f, g, it.Flag, w)
			}
		}
		dup, _, _ := r.recon.Items(ctx, recon.ItemFilter{Flag: string(invoice.FlagDuplicatePayment)})
		if len(dup) == 1 && deref(dup[0].ProviderReference) != sc.d1First {
			t.Errorf("duplicate names %s, want the first charge %s", deref(dup[0].ProviderReference), sc.d1First)
		}

		// The same through GET /v1/reconciliation, JSON and CSV.
		mux := http.NewServeMux()
		reports.New(reports.Options{Recon: r.recon}).Routes(mux)
		srv := httptest.NewServer(mux)
		defer srv.Close()
		var sum struct {
			Data   []recon.SummaryRow `json:"data"`
			Totals []recon.Total      `json:"totals"`
		}
		getJSON(t, srv.URL+"/v1/reconciliation/summary?currency=USD&provider=wzrdpay", &sum)
		if len(sum.Data) != 1 || rowOf(sum.Data[0].Figures) != want["USD/wzrdpay"] || len(sum.Totals) != 1 || rowOf(sum.Totals[0].Figures) != want["USD/wzrdpay"] {
			t.Errorf("summary over HTTP: %+v", sum)
		}
		var page struct {
			Data    []recon.Item `json:"data"`
			HasMore bool         `json:"has_more"`
		}
		getJSON(t, srv.URL+"/v1/reconciliation/items?flag=provider_status_mismatch", &page)
		if len(page.Data) != 1 || deref(page.Data[0].InvoiceID) != sc.w1 || page.HasMore {
			t.Errorf("items over HTTP: %+v", page)
		}
		recs := getCSV(t, srv.URL+"/v1/reconciliation/items")
		if len(recs) != 16 {
			t.Errorf("CSV: %d records, want a header and 15 items", len(recs))
		}
		recs = getCSV(t, srv.URL+"/v1/reconciliation/summary")
		if len(recs) != 8 {
			t.Errorf("summary CSV: %d records, want a header and 7 rows", len(recs))
		}
	})
}

func keys(m map[string]row) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %d %s", u, resp.StatusCode, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

func getCSV(t *testing.T, u string) [][]string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("Accept", "text/csv")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") {
		t.Fatalf("GET %s as CSV: %d %s", u, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	recs, err := csv.NewReader(resp.Body).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return recs
}
