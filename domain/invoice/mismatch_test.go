package invoice_test

import (
	"testing"
	"time"

	"github.com/payledger/payledger/domain/invoice"
)

func TestDecideRecordMismatch(t *testing.T) {
	t.Parallel()
	now := at(10 * time.Minute)
	flag := invoice.Flagged{PaymentID: "pay_1", Flag: invoice.FlagProviderStatusMismatch, Detail: "provider says failed", At: now}
	runDecide(t, []decideCase{
		{
			name:  "processed here, failed there: flagged, still paid",
			given: given(created, pay1, pay1Done, paid1),
			cmd:   invoice.RecordMismatch{PaymentID: "pay_1", Detail: "provider says failed"},
			now:   now,
			want:  []invoice.Event{flag},
			check: func(t *testing.T, s invoice.State) {
				if s.Status != invoice.StatusPaid || len(s.Payments[0].Flags) != 1 || s.Payments[0].Flags[0] != invoice.FlagProviderStatusMismatch {
					t.Fatalf("status %s flags %v", s.Status, s.Payments[0].Flags)
				}
			},
		},
		{
			name:  "already flagged: nothing",
			given: given(created, pay1, pay1Done, paid1, flag),
			cmd:   invoice.RecordMismatch{PaymentID: "pay_1", Detail: "again"},
			now:   now,
		},
		{
			name:    "unknown payment",
			given:   given(created),
			cmd:     invoice.RecordMismatch{PaymentID: "pay_x"},
			now:     now,
			wantErr: invoice.ErrPaymentNotFound,
		},
	})
}
