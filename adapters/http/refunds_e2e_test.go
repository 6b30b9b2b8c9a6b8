package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/payledger/payledger/projections"
	"github.com/payledger/payledger/projections/projectiontest"
)

type refundJSON struct {
	ID        string `json:"id"`
	Object    string `json:"object"`
	InvoiceID string `json:"invoice_id"`
	Status    string `json:"status"`
	Amount    string `json:"amount"`
	Currency  string `json:"currency"`
	Reason    string `json:"reason"`
}

// TestRefunds: partial and repeated refunds, never above the amount paid,
// the invoice's status following.
func TestRefunds(t *testing.T) {
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		e := newEnv(t, b)
		inv := e.create(simple("100.00"))
		e.pay(inv.ID, "100.00", "USD")

		refund := func(body string) resp {
			t.Helper()
			return e.do("POST", "/v1/refunds", body)
		}
		get := func() invoiceJSON {
			t.Helper()
			var v invoiceJSON
			e.do("GET", "/v1/invoices/"+inv.ID, "").decode(t, &v)
			return v
		}
		if v := get(); v.Status != "paid" || v.AmountPaid != "100.00" || v.PaidAt == nil {
			t.Fatalf("after payment: %+v", v)
		}

		r := refund(`{"invoice_id":"` + inv.ID + `","amount":"30.00","reason":"requested_by_customer"}`)
		var rf refundJSON
		r.decode(t, &rf)
		if r.code != http.StatusCreated || !strings.HasPrefix(rf.ID, "re_") || rf.Object != "refund" || rf.Status != "succeeded" ||
			rf.Amount != "30.00" || rf.Currency != "USD" || rf.InvoiceID != inv.ID || rf.Reason != "requested_by_customer" {
			t.Fatalf("refund: %s", r)
		}
		if v := get(); v.Status != "partially_refunded" || v.AmountRefunded != "30.00" {
			t.Fatalf("after 30: %+v", v)
		}
		if r := refund(`{"invoice_id":"` + inv.ID + `","amount":"30"}`); r.code != http.StatusCreated {
			t.Fatalf("second 30: %s", r)
		}
		if v := get(); v.Status != "partially_refunded" || v.AmountRefunded != "60.00" {
			t.Fatalf("after 60: %+v", v)
		}
		head := e.head()
		r = refund(`{"invoice_id":"` + inv.ID + `","amount":"40.01"}`)
		if r.code != http.StatusConflict || r.problem(t).Code != "refund_exceeds_payment" {
			t.Fatalf("over the rest: %s", r)
		}
		if h := e.head(); h != head {
			t.Fatal("a refused refund wrote events")
		}
		// No amount: everything that is left.
		r = refund(`{"invoice_id":"` + inv.ID + `"}`)
		r.decode(t, &rf)
		if r.code != http.StatusCreated || rf.Amount != "40.00" {
			t.Fatalf("rest: %s", r)
		}
		if v := get(); v.Status != "refunded" || v.AmountRefunded != "100.00" {
			t.Fatalf("after all: %+v", v)
		}
		for _, body := range []string{`{"invoice_id":"` + inv.ID + `","amount":"0.01"}`, `{"invoice_id":"` + inv.ID + `"}`} {
			if r := refund(body); r.code != http.StatusConflict || r.problem(t).Code != "refund_exceeds_payment" {
				t.Fatalf("after a full refund, %s: %s", body, r)
			}
		}
		var l listJSON[invoiceJSON]
		e.do("GET", "/v1/invoices?status=refunded", "").decode(t, &l)
		if len(l.Data) != 1 || l.Data[0].ID != inv.ID {
			t.Fatalf("list status=refunded: %+v", l.Data)
		}

		// Currency precision follows the invoice: 3 decimals for KWD.
		kwd := e.create(`{"amount":"12.345","currency":"KWD"}`)
		e.pay(kwd.ID, "12.345", "KWD")
		if r := refund(`{"invoice_id":"` + kwd.ID + `","amount":"0.005"}`); r.code != http.StatusCreated {
			t.Fatalf("KWD refund: %s", r)
		}
		if r := refund(`{"invoice_id":"` + kwd.ID + `","amount":"0.0005"}`); r.code != http.StatusBadRequest {
			t.Fatalf("over-precise KWD refund: %s", r)
		}
	})
}

// TestConcurrentRefunds: 40 clients each ask for 10.00 of a 100.00
// payment at once (half with Idempotency-Keys). Exactly 10 succeed, the
// others are refused with refund_exceeds_payment, and the ledger's total
// equals the sum of the 201 answers.
func TestConcurrentRefunds(t *testing.T) {
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		e := newEnv(t, b)
		inv := e.create(simple("100.00"))
		e.pay(inv.ID, "100.00", "USD")

		const n = 40
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			ok    []string
			codes = map[string]int{}
			start = make(chan struct{})
		)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				hdr := []string{}
				if i%2 == 0 {
					hdr = []string{"Idempotency-Key", fmt.Sprintf("refund-%d", i)}
				}
				// A client retries what the API asks it to retry (409 with
				// Retry-After), as documented.
				for attempt := 0; ; attempt++ {
					r := e.do("POST", "/v1/refunds", `{"invoice_id":"`+inv.ID+`","amount":"10.00"}`, hdr...)
					if r.code == http.StatusConflict && r.hdr.Get("Retry-After") != "" && attempt < 20 {
						time.Sleep(time.Duration(attempt+1) * 5 * time.Millisecond) // client back-off
						continue
					}
					mu.Lock()
					defer mu.Unlock()
					switch r.code {
					case http.StatusCreated:
						var rf refundJSON
						_ = json.Unmarshal(r.body, &rf)
						ok = append(ok, rf.Amount)
						codes["201"]++
					default:
						var p problemBody
						_ = json.Unmarshal(r.body, &p)
						codes[fmt.Sprintf("%d %s", r.code, p.Code)]++
					}
					return
				}
			}()
		}
		close(start)
		wg.Wait()
		sum := decimal.Zero
		for _, a := range ok {
			sum = sum.Add(decimal.RequireFromString(a))
		}
		if len(ok) != 10 || !sum.Equal(decimal.NewFromInt(100)) || codes["409 refund_exceeds_payment"] != n-10 {
			t.Fatalf("outcomes %v, refunded %s", codes, sum)
		}
		st, err := e.inv.Service().Load(context.Background(), inv.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Refunds) != 10 || st.AmountRefunded.String() != "100.00" || st.Status != "refunded" {
			t.Fatalf("ledger: %d refunds, %s refunded, status %s", len(st.Refunds), st.AmountRefunded, st.Status)
		}
		t.Logf("%d concurrent refund requests: %v", n, codes)
	})
}
