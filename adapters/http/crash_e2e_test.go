package httpapi_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/payledger/payledger/adapters/idempotency"

	"github.com/payledger/payledger/projections"
	"github.com/payledger/payledger/projections/projectiontest"
)

// TestIdempotencyAcrossACrash: the events a keyed request produced and its
// stored response are not one transaction, so a crash can leave the
// events without the response (row lost) or with the key still in flight.
// Either way the retry must give the first result and write nothing new:
// the ledger derives the events' ids from the key and finds them.
func TestIdempotencyAcrossACrash(t *testing.T) {
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		e := newEnv(t, b)
		ctx := context.Background()
		exec := func(q, key string) {
			t.Helper()
			err := b.WriteTx(ctx, func(tx *sqlx.Tx) error {
				_, err := tx.ExecContext(ctx, tx.Rebind(q), idempotency.RowKey(e.fullID+":"+key))
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		// forget: the response row never committed.
		forget := func(key string) { exec(`DELETE FROM payledger_idempotency WHERE scoped_key = ?`, key) }
		// stuck: the process died before finishing.
		stuck := func(key string) { exec(`UPDATE payledger_idempotency SET status = 0 WHERE scoped_key = ?`, key) }
		body := `{"amount":"25.00","currency":"USD","description":"crash"}`
		first := e.do("POST", "/v1/invoices", body, "Idempotency-Key", "c1")
		var inv invoiceJSON
		first.decode(t, &inv)
		head := e.head()

		forget("c1")
		r := e.do("POST", "/v1/invoices", body, "Idempotency-Key", "c1")
		var again invoiceJSON
		r.decode(t, &again)
		if r.code != http.StatusCreated || again.ID != inv.ID || again.Number != inv.Number {
			t.Fatalf("retry after a lost response: %s, first %s", r, first)
		}

		stuck("c1")
		if r := e.do("POST", "/v1/invoices", body, "Idempotency-Key", "c1"); r.code != http.StatusConflict {
			t.Fatalf("in flight within the lease: %s", r)
		}
		e.clock.Advance(2 * time.Minute) // past the lease
		r = e.do("POST", "/v1/invoices", body, "Idempotency-Key", "c1")
		r.decode(t, &again)
		if r.code != http.StatusCreated || again.ID != inv.ID {
			t.Fatalf("retry after the lease: %s", r)
		}
		if h := e.head(); h != head {
			t.Fatalf("retries of a committed create wrote events: %v → %v", head, h)
		}

		// The same for a refund and a cancel.
		e.pay(inv.ID, "25.00", "USD")
		rb := `{"invoice_id":"` + inv.ID + `","amount":"5.00"}`
		r1 := e.do("POST", "/v1/refunds", rb, "Idempotency-Key", "r1")
		forget("r1")
		r2 := e.do("POST", "/v1/refunds", rb, "Idempotency-Key", "r1")
		if r1.code != http.StatusCreated || string(r1.body) != string(r2.body) {
			t.Fatalf("refund retry: %s / %s", r1, r2)
		}
		st, err := e.inv.Service().Load(ctx, inv.ID)
		if err != nil || len(st.Refunds) != 1 || st.AmountRefunded.String() != "5.00" {
			t.Fatalf("refunds after a retried refund: %d (%v)", len(st.Refunds), err)
		}

		open := e.create(simple("3.00"))
		c1 := e.do("POST", "/v1/invoices/"+open.ID+"/cancel", ``, "Idempotency-Key", "x1")
		forget("x1")
		c2 := e.do("POST", "/v1/invoices/"+open.ID+"/cancel", ``, "Idempotency-Key", "x1")
		if c1.code != http.StatusOK || c2.code != http.StatusOK || string(c1.body) != string(c2.body) {
			t.Fatalf("cancel retry: %s / %s", c1, c2)
		}
	})
}

// TestIdempotencyTableHoldsNoSecrets: a payment link issued under a key is
// replayed with its URL, yet the table holds neither the token nor the
// client's key in readable form.
func TestIdempotencyTableHoldsNoSecrets(t *testing.T) {
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		e := newEnv(t, b)
		inv := e.create(simple("9.00"))
		r1 := e.do("POST", "/v1/invoices/"+inv.ID+"/payment_links", ``, "Idempotency-Key", "link-key-7135")
		r2 := e.do("POST", "/v1/invoices/"+inv.ID+"/payment_links", ``, "Idempotency-Key", "link-key-7135")
		var link struct{ URL string }
		r1.decode(t, &link)
		token := link.URL[strings.LastIndex(link.URL, "/")+1:]
		if r1.code != http.StatusCreated || string(r1.body) != string(r2.body) || len(token) != 43 {
			t.Fatalf("link replay: %s / %s", r1, r2)
		}
		rows, err := b.DB().QueryContext(context.Background(), `SELECT scoped_key, request_hash, content_type, location, body FROM payledger_idempotency`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		n := 0
		for rows.Next() {
			var k, h, ct, loc string
			var body []byte
			if err := rows.Scan(&k, &h, &ct, &loc, &body); err != nil {
				t.Fatal(err)
			}
			n++
			for _, col := range []string{k, h, ct, loc, string(body)} {
				if strings.Contains(col, token) || strings.Contains(col, "link-key-7135") || strings.Contains(col, "payer@example.com") {
					t.Fatalf("idempotency row holds a secret in clear: %q", col)
				}
			}
		}
		if err := rows.Err(); err != nil || n != 1 {
			t.Fatalf("%d rows, %v", n, err)
		}
	})
}
