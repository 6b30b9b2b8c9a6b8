package outbox_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/payledger/payledger/domain/invoice"
	"github.com/payledger/payledger/eventstore"
	"github.com/payledger/payledger/ledger"
	"github.com/payledger/payledger/projections"
	"github.com/payledger/payledger/projections/outbox"
	"github.com/payledger/payledger/projections/projectiontest"
)

// subs is a fixed endpoint list.
type subs []outbox.Subscriber

func (s subs) Subscribers(context.Context, sqlx.QueryerContext) ([]outbox.Subscriber, error) {
	return s, nil
}

func newSet(t *testing.T, b projections.Backend, s outbox.Subscribers) *projections.Set {
	t.Helper()
	set, err := projections.NewSet(b, projections.Options{BatchSize: 37, RebuildBatchSize: 101}, outbox.New(b, s))
	if err != nil {
		t.Fatal(err)
	}
	if err := set.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return set
}

func count(t *testing.T, b projections.Backend, q string, args ...any) int {
	t.Helper()
	var n int
	if err := b.DB().QueryRowx(b.DB().Rebind(q), args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// publishedInLog counts the log's events by published type.
func publishedInLog(t *testing.T, b projections.Backend) map[string]int {
	t.Helper()
	out := map[string]int{}
	pos := eventstore.Start
	for {
		batch, err := b.ReadAll(context.Background(), pos, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(batch) == 0 {
			return out
		}
		for _, e := range batch {
			if typ, ok := outbox.PublishedType(e.Type); ok {
				out[typ]++
			}
		}
		pos = batch[len(batch)-1].Position
	}
}

// TestFanOut checks who gets what: type filters, the WooCommerce subset,
// subscription windows; then that a rebuild neither duplicates nor re-arms
// deliveries and that Verify finds the outbox equal to a fresh replay.
func TestFanOut(t *testing.T) {
	t.Parallel()
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		ctx := context.Background()
		now := time.Now()
		s := subs{
			{ID: "we_all", Format: outbox.FormatStandard, Events: []string{"*"}, From: now.Add(-time.Hour)},
			{ID: "we_woo", Format: outbox.FormatWooCommerce, Events: []string{"*"}, From: now.Add(-time.Hour)},
			{ID: "we_paid", Format: outbox.FormatStandard, Events: []string{outbox.InvoicePaid, outbox.InvoiceRefunded}, From: now.Add(-time.Hour)},
			{ID: "we_gone", Format: outbox.FormatStandard, Events: []string{"*"}, From: now.Add(-2 * time.Hour), Until: now.Add(-time.Hour)},
			{ID: "we_later", Format: outbox.FormatStandard, Events: []string{"*"}, From: now.Add(time.Hour)},
		}
		set := newSet(t, b, s)
		ids, err := projectiontest.Generate(ctx, b, 60, now.Add(-time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		projectiontest.Settle(t, b, ids)
		if err := set.CatchUp(ctx); err != nil {
			t.Fatal(err)
		}
		pub := publishedInLog(t, b)
		total, woo := 0, 0
		for typ, n := range pub {
			total += n
			switch typ {
			case outbox.InvoicePaid, outbox.InvoicePaymentFailed, outbox.InvoiceExpired, outbox.InvoiceCancelled, outbox.InvoiceRefunded, outbox.InvoiceFlagged:
				woo += n
			}
		}
		if total == 0 || pub[outbox.InvoicePaid] == 0 || pub[outbox.InvoiceRefunded] == 0 || pub[outbox.InvoiceFlagged] == 0 {
			t.Fatalf("history lacks the types the test needs: %v", pub)
		}
		want := map[string]int{"we_all": total, "we_woo": woo, "we_paid": pub[outbox.InvoicePaid] + pub[outbox.InvoiceRefunded], "we_gone": 0, "we_later": 0}
		check := func(stage string) {
			t.Helper()
			if got := count(t, b, `SELECT COUNT(*) FROM webhook_messages`); got != total {
				t.Errorf("%s: %d messages, want %d", stage, got, total)
			}
			for ep, n := range want {
				if got := count(t, b, `SELECT COUNT(*) FROM webhook_deliveries WHERE endpoint_id = ?`, ep); got != n {
					t.Errorf("%s: %s has %d deliveries, want %d", stage, ep, got, n)
				}
			}
		}
		check("live")
		if n := count(t, b, `SELECT COUNT(*) FROM webhook_deliveries WHERE format = 'woocommerce' AND event_type IN ('invoice.created', 'invoice.link_issued', 'invoice.link_consumed')`); n != 0 {
			t.Errorf("%d creation/link events queued for a WooCommerce endpoint", n)
		}

		// Mark one delivery done, as the sender would, then rebuild.
		var id string
		if err := b.DB().QueryRowx(`SELECT id FROM webhook_deliveries ORDER BY id LIMIT 1`).Scan(&id); err != nil {
			t.Fatal(err)
		}
		err = b.WriteTx(ctx, func(tx *sqlx.Tx) error {
			_, err := outbox.Record(ctx, tx, outbox.Outcome{
				Attempt: outbox.Attempt{DeliveryID: id, Attempt: 1, StartedAt: now, Duration: time.Millisecond, StatusCode: 200},
				Status:  outbox.StatusSucceeded,
			})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := set.Rebuild(ctx, outbox.Name, nil); err != nil {
			t.Fatal(err)
		}
		check("rebuilt")
		var st string
		var attempts int
		if err := b.DB().QueryRowx(b.DB().Rebind(`SELECT status, attempts FROM webhook_deliveries WHERE id = ?`), id).Scan(&st, &attempts); err != nil {
			t.Fatal(err)
		}
		if st != outbox.StatusSucceeded || attempts != 1 {
			t.Errorf("after rebuild the sent delivery is %s with %d attempts: a rebuild re-armed it", st, attempts)
		}
		ms, err := set.Verify(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			t.Errorf("verify: %s", m)
		}
	})
}

type message struct {
	Type string
	Std  string
	Woo  string
}

func messagesOf(t *testing.T, b projections.Backend, invoiceID string) []message {
	t.Helper()
	rows, err := b.DB().Queryx(b.DB().Rebind(`SELECT type, standard_body, woocommerce_body FROM webhook_messages WHERE invoice_id = ? ORDER BY commit_pos, prepare_pos`), invoiceID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []message
	for rows.Next() {
		var m message
		if err := rows.Scan(&m.Type, &m.Std, &m.Woo); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// TestPayloads follows one invoice through the published types and checks
// both bodies at each step.
func TestPayloads(t *testing.T) {
	t.Parallel()
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		ctx := context.Background()
		set := newSet(t, b, subs{})
		t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
		id := ledger.NewID("inv")
		c := projectiontest.Create(id, 1042, "100.55", "USD", t0.Add(24*time.Hour))
		c.Customer = invoice.Customer{Email: "john@example.com", Name: "John Smith", Phone: "+1234567890",
			Address: &invoice.Address{Line1: "1 Main St", City: "Springfield", Postcode: "12345", Country: "US"}}
		c.Metadata = map[string]string{"account_id": "12345"}
		s := projectiontest.NewScript(id).Do(c, t0).
			Do(invoice.IssueLink{LinkID: "lnk_1", TokenHash: "ab", ExpiresAt: t0.Add(10 * time.Minute)}, t0.Add(time.Second)).
			Do(invoice.ConsumeLink{TokenHash: "ab"}, t0.Add(2*time.Second)).
			Do(invoice.InitiatePayment{PaymentID: "pay_1", Provider: "sandbox"}, t0.Add(3*time.Second)).
			Do(invoice.RecordFailed{PaymentID: "pay_1", Provider: "sandbox", Code: "card_declined"}, t0.Add(4*time.Second)).
			Do(invoice.InitiatePayment{PaymentID: "pay_2", Provider: "sandbox"}, t0.Add(5*time.Second)).
			Do(invoice.RecordProcessed{PaymentID: "pay_2", Provider: "sandbox", ProviderRef: "sb_ch_9", Amount: projectiontest.MustMoney("100.55", "USD")}, t0.Add(6*time.Second)).
			Do(invoice.Refund{RefundID: "re_1", Amount: projectiontest.MustMoney("20.00", "USD"), Reason: "requested_by_customer"}, t0.Add(time.Hour))
		if _, err := s.Append(ctx, b); err != nil {
			t.Fatal(err)
		}
		projectiontest.Settle(t, b, []string{id})
		if err := set.CatchUp(ctx); err != nil {
			t.Fatal(err)
		}
		ms := messagesOf(t, b, id)
		wantTypes := []string{outbox.InvoiceCreated, outbox.InvoiceLinkIssued, outbox.InvoiceLinkConsumed,
			outbox.InvoicePaymentFailed, outbox.InvoicePaid, outbox.InvoiceRefunded}
		if len(ms) != len(wantTypes) {
			t.Fatalf("%d messages %v, want types %v", len(ms), ms, wantTypes)
		}
		type stdBody struct {
			ID        string    `json:"id"`
			Type      string    `json:"type"`
			CreatedAt time.Time `json:"created_at"`
			Data      struct {
				Object map[string]any `json:"object"`
			} `json:"data"`
		}
		wooStatus := map[string]string{outbox.InvoicePaymentFailed: "failed", outbox.InvoicePaid: "processing", outbox.InvoiceRefunded: "processing"}
		for i, m := range ms {
			if m.Type != wantTypes[i] {
				t.Errorf("message %d is %s, want %s", i, m.Type, wantTypes[i])
			}
			var sb stdBody
			dec := json.NewDecoder(stringsReader(m.Std))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&sb); err != nil {
				t.Fatalf("%s: standard body %s: %v", m.Type, m.Std, err)
			}
			if sb.Type != m.Type || len(sb.ID) != 36 || sb.ID[:4] != "evt_" || sb.CreatedAt.IsZero() {
				t.Errorf("%s: envelope %+v", m.Type, sb)
			}
			obj := sb.Data.Object
			switch m.Type {
			case outbox.InvoiceRefunded:
				if obj["object"] != "refund" || obj["id"] != "re_1" || obj["amount"] != "20.00" || obj["invoice_id"] != id {
					t.Errorf("refund object %v", obj)
				}
			case outbox.InvoicePaid:
				if obj["object"] != "invoice" || obj["status"] != "paid" || obj["amount_paid"] != "100.55" || obj["paid_at"] == nil {
					t.Errorf("paid invoice object %v", obj)
				}
			default:
				if obj["object"] != "invoice" || obj["id"] != id || obj["status"] != "open" {
					t.Errorf("%s: invoice object %v", m.Type, obj)
				}
			}
			want, isWoo := wooStatus[m.Type]
			if !isWoo {
				if m.Woo != "" {
					t.Errorf("%s has a WooCommerce body", m.Type)
				}
				continue
			}
			var o outbox.Order
			if err := json.Unmarshal([]byte(m.Woo), &o); err != nil {
				t.Fatalf("%s: woo body: %v", m.Type, err)
			}
			if o.ID != 1042 || o.Number != "1042" || o.Status != want || o.Currency != "USD" || o.Total != "100.55" {
				t.Errorf("%s: order %d/%s status %s %s %s", m.Type, o.ID, o.Number, o.Status, o.Currency, o.Total)
			}
			if o.Billing.FirstName != "John" || o.Billing.LastName != "Smith" || o.Billing.Email != "john@example.com" || o.Billing.Country != "US" {
				t.Errorf("%s: billing %+v", m.Type, o.Billing)
			}
			if len(o.MetaData) == 0 || o.MetaData[0].Key != "account_id" || o.MetaData[0].Value != "12345" {
				t.Errorf("%s: meta_data %+v", m.Type, o.MetaData)
			}
			if len(o.LineItems) != 1 || o.LineItems[0].Total != "100.55" {
				t.Errorf("%s: line_items %+v", m.Type, o.LineItems)
			}
			switch m.Type {
			case outbox.InvoicePaymentFailed:
				if o.DatePaidGMT != nil || o.TransactionID != "" {
					t.Errorf("failed order has payment fields: %v %q", o.DatePaidGMT, o.TransactionID)
				}
			case outbox.InvoicePaid:
				if o.DatePaidGMT == nil || *o.DatePaidGMT != "2026-03-01T10:00:06" || o.TransactionID != "sb_ch_9" {
					t.Errorf("paid order: date_paid_gmt %v, transaction_id %q", o.DatePaidGMT, o.TransactionID)
				}
			case outbox.InvoiceRefunded:
				if len(o.Refunds) != 1 || o.Refunds[0].Total != "-20.00" || o.Refunds[0].Reason != "requested_by_customer" {
					t.Errorf("refunds %+v", o.Refunds)
				}
			}
		}
	})
}
