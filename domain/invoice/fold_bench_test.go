package invoice_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/payledger/payledger/domain/invoice"
)

// BenchmarkFold measures rehydrating one invoice from a typical history
// (create, a few links, declined attempts, a payment, refunds, callbacks)
// already decoded; BenchmarkDecodeFold adds JSON decoding of every event.
func benchHistory() []invoice.Event {
	evs := given(created)
	for i := 0; i < 3; i++ {
		evs = append(evs, invoice.LinkIssued{LinkID: fmt.Sprintf("lnk_%d", i), TokenHash: fmt.Sprintf("h%d", i), ExpiresAt: at(time.Hour), At: at(time.Duration(i) * time.Minute)})
		evs = append(evs, invoice.PaymentInitiated{PaymentID: fmt.Sprintf("pay_%d", i), Provider: "sandbox", Attempt: i + 1, At: at(time.Duration(i) * time.Minute)})
		evs = append(evs, invoice.PaymentFailed{PaymentID: fmt.Sprintf("pay_%d", i), Provider: "sandbox", Code: "card_declined", At: at(time.Duration(i) * time.Minute)})
		evs = append(evs, invoice.CallbackReceived{Provider: "sandbox", Body: `{"status":"failed"}`, At: at(time.Duration(i) * time.Minute)})
	}
	evs = append(evs, processed("pay_9", "100.00", "USD", 10*time.Minute), invoice.Paid{PaymentID: "pay_9", AmountPaid: "100.00", At: at(10 * time.Minute)},
		invoice.Refunded{RefundID: "re_1", Amount: "20.00", Currency: "USD", At: at(time.Hour)})
	return evs
}

func BenchmarkFold(b *testing.B) {
	evs := benchHistory()
	for b.Loop() {
		invoice.Fold(evs...)
	}
	b.ReportMetric(float64(len(evs)), "events/op")
}

func BenchmarkDecodeFold(b *testing.B) {
	evs := benchHistory()
	type rec struct {
		typ  string
		data []byte
	}
	recs := make([]rec, len(evs))
	for i, e := range evs {
		typ, data, err := invoice.Encode(e)
		if err != nil {
			b.Fatal(err)
		}
		recs[i] = rec{typ, data}
	}
	for b.Loop() {
		out := make([]invoice.Event, len(recs))
		for i, r := range recs {
			e, err := invoice.Decode(r.typ, r.data)
			if err != nil {
				b.Fatal(err)
			}
			out[i] = e
		}
		invoice.Fold(out...)
	}
	b.ReportMetric(float64(len(evs)), "events/op")
}
