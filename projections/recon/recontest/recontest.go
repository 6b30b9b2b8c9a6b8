// Package recontest writes the scripted reconciliation history that the
// read model's tests and the report routes' tests both check figure by
// figure. The history runs through the real ledger (load, decide, append)
// on a clock that each step sets, so every event is one the ledger writes
// in production, in the global order the timeline gives.
package recontest

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/payledger/payledger/domain/invoice"
	"github.com/payledger/payledger/domain/money"
	"github.com/payledger/payledger/eventstore"
	"github.com/payledger/payledger/ledger"
)

// Days of the history (UTC).
var (
	Day1 = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	Day2 = Day1.AddDate(0, 0, 1)
	Day3 = Day1.AddDate(0, 0, 2)
)

// History names what Write appended.
type History struct {
	// Invoices maps the script's letters (A–I) to invoice ids.
	Invoices map[string]string
	// CallbackEventID is the evt_ id of the unmatched callback.
	CallbackEventID string
	// Last is the position of the last appended event.
	Last eventstore.Position
}

func at(d time.Time, hhmm string) time.Time {
	t, err := time.Parse("15:04", hhmm)
	if err != nil {
		panic(err)
	}
	return d.Add(time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute)
}

func m(amount, cur string) money.Money {
	v, err := money.Parse(amount, cur)
	if err != nil {
		panic(err)
	}
	return v
}

type step struct {
	at  time.Time
	inv string
	cmd invoice.Command
}

// Write appends the history to store:
//
//	A USD 100.55 paid Day1; refund 20.00 Day2            → partially_refunded
//	B USD 50.00 declined, paid, paid again (duplicate) Day1; refund 50.00 Day2
//	C JPY 5000 expired Day1; late payment and full refund Day2
//	D KWD 12.345 underpaid 12.300 (amount_mismatch), then 0.045, Day1; refund 1.005 Day2
//	E EUR 49.99 paid in USD (currency_mismatch) then cancelled, Day1
//	F EUR 10.00 on provider acme, paid Day2; provider status mismatch Day3
//	G USD 75.00 payment still in progress, Day2
//	H JPY 1200 cancelled Day2
//	I USD 30.00 overpaid 35.00 (amount_mismatch) Day2
//	and an unmatched acme callback (ref_zzz, status paid) Day2 12:00.
func Write(ctx context.Context, store eventstore.Store) (History, error) {
	h := History{Invoices: map[string]string{}}
	var now time.Time
	svc := ledger.New(store, func() time.Time { return now })
	create := func(letter, amount, cur, provider string, exp time.Time) invoice.Command {
		id := ledger.NewID("inv")
		h.Invoices[letter] = id
		return invoice.Create{
			InvoiceID: id, Number: int64(1000 + len(h.Invoices)), Amount: m(amount, cur), Provider: provider,
			ReferenceID: "order-" + letter, Description: "scripted " + letter, ExpiresAt: exp,
		}
	}
	far := Day1.AddDate(0, 0, 20)
	processed := func(pid, amount, cur, provider string) invoice.Command {
		return invoice.RecordProcessed{PaymentID: pid, Provider: provider, ProviderRef: "ref_" + pid, Amount: m(amount, cur), CardBrand: "visa", CardLast4: "4242"}
	}
	initiate := func(pid string) invoice.Command { return invoice.InitiatePayment{PaymentID: pid} }
	steps := []step{
		{at(Day1, "10:00"), "A", create("A", "100.55", "USD", "sandbox", far)},
		{at(Day1, "10:00"), "A", initiate("pay_A1")},
		{at(Day1, "10:01"), "A", processed("pay_A1", "100.55", "USD", "sandbox")},
		{at(Day1, "11:00"), "B", create("B", "50.00", "USD", "sandbox", far)},
		{at(Day1, "11:00"), "B", initiate("pay_B1")},
		{at(Day1, "11:01"), "B", invoice.RecordFailed{PaymentID: "pay_B1", Code: "card_declined", Message: "Your card was declined."}},
		{at(Day1, "11:01"), "B", initiate("pay_B2")},
		{at(Day1, "11:02"), "B", processed("pay_B2", "50.00", "USD", "sandbox")},
		{at(Day1, "12:00"), "C", create("C", "5000", "JPY", "sandbox", at(Day1, "13:00"))},
		{at(Day1, "12:00"), "B", processed("pay_B3", "50.00", "USD", "sandbox")},
		{at(Day1, "13:00"), "C", invoice.Expire{}},
		{at(Day1, "13:00"), "D", create("D", "12.345", "KWD", "sandbox", far)},
		{at(Day1, "13:04"), "D", initiate("pay_D1")},
		{at(Day1, "13:05"), "D", processed("pay_D1", "12.300", "KWD", "sandbox")},
		{at(Day1, "13:09"), "D", initiate("pay_D2")},
		{at(Day1, "13:10"), "D", processed("pay_D2", "0.045", "KWD", "sandbox")},
		{at(Day1, "14:00"), "E", create("E", "49.99", "EUR", "sandbox", far)},
		{at(Day1, "14:04"), "E", initiate("pay_E1")},
		{at(Day1, "14:05"), "E", processed("pay_E1", "49.99", "USD", "sandbox")},
		{at(Day1, "15:00"), "E", invoice.Cancel{Reason: "paid in the wrong currency"}},
		{at(Day2, "08:00"), "C", processed("pay_C1", "5000", "JPY", "sandbox")},
		{at(Day2, "09:00"), "A", invoice.Refund{RefundID: "re_A1", Amount: m("20.00", "USD"), Reason: "requested_by_customer"}},
		{at(Day2, "09:30"), "C", invoice.Refund{RefundID: "re_C1", Amount: m("5000", "JPY"), Reason: "late payment"}},
		{at(Day2, "10:00"), "B", invoice.Refund{RefundID: "re_B1", Amount: m("50.00", "USD"), Reason: "duplicate"}},
		{at(Day2, "10:30"), "D", invoice.Refund{RefundID: "re_D1", Amount: m("1.005", "KWD")}},
		{at(Day2, "10:55"), "F", create("F", "10.00", "EUR", "acme", far)},
		{at(Day2, "10:59"), "F", initiate("pay_F1")},
		{at(Day2, "11:00"), "F", processed("pay_F1", "10.00", "EUR", "acme")},
		{at(Day2, "12:00"), "", nil}, // the unmatched callback
		{at(Day2, "13:00"), "G", create("G", "75.00", "USD", "sandbox", far)},
		{at(Day2, "13:00"), "G", initiate("pay_G1")},
		{at(Day2, "14:00"), "H", create("H", "1200", "JPY", "sandbox", far)},
		{at(Day2, "14:30"), "H", invoice.Cancel{}},
		{at(Day2, "15:00"), "I", create("I", "30.00", "USD", "sandbox", far)},
		{at(Day2, "15:00"), "I", initiate("pay_I1")},
		{at(Day2, "15:01"), "I", processed("pay_I1", "35.00", "USD", "sandbox")},
		{at(Day3, "09:00"), "F", invoice.RecordMismatch{PaymentID: "pay_F1", Detail: "acme reports the payment as failed"}},
	}
	for i, s := range steps {
		if s.inv == "" {
			if err := writeCallback(ctx, store, &h, s.at); err != nil {
				return h, err
			}
			continue
		}
		now = s.at
		res, err := svc.Execute(ctx, h.Invoices[s.inv], s.cmd)
		if err != nil {
			return h, fmt.Errorf("step %d (%s %T): %w", i, s.inv, s.cmd, err)
		}
		if len(res.Events) == 0 {
			return h, fmt.Errorf("step %d (%s %T) changed nothing", i, s.inv, s.cmd)
		}
		h.Last = res.Position
	}
	return h, nil
}

func writeCallback(ctx context.Context, store eventstore.Store, h *History, t time.Time) error {
	typ, body, err := invoice.Encode(invoice.CallbackReceived{
		Provider: "acme", ProviderRef: "ref_zzz", Status: "paid", Verified: true,
		Body: `{"reference":"ref_zzz","status":"paid"}`, At: t,
	})
	if err != nil {
		return err
	}
	id := uuid.Must(uuid.NewV7()).String()
	res, err := store.Append(ctx, "callback-acme-ref_zzz", eventstore.Any, eventstore.EventData{ID: id, Type: typ, Data: body})
	if err != nil {
		return err
	}
	h.CallbackEventID = "evt_" + strings.ReplaceAll(id, "-", "")
	h.Last = res.Position
	return nil
}
