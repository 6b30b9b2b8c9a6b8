package invoice_test

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/payledger/payledger/domain/invoice"
	"github.com/payledger/payledger/domain/money"
)

// allowedStatus lists every status change an event may cause.
var allowedStatus = map[invoice.Status][]invoice.Status{
	invoice.StatusOpen:              {invoice.StatusPaid, invoice.StatusExpired, invoice.StatusCancelled},
	invoice.StatusPaid:              {invoice.StatusPartiallyRefunded, invoice.StatusRefunded},
	invoice.StatusPartiallyRefunded: {invoice.StatusRefunded},
}

// lifecycle drives random command sequences through Decide and Evolve and
// checks the invariants every accepted history must keep. choose picks a
// number in [0, n).
func lifecycle(t *testing.T, choose func(n int) int) {
	t.Helper()
	now := t0
	var (
		s      invoice.State
		all    []invoice.Event
		trace  []string
		amount = []string{"1.00", "39.50", "60.50", "100.00", "120.00"}
	)
	pick := func(xs ...string) string { return xs[choose(len(xs))] }
	usd := func(a string) money.Money { return amt(t, a, "USD") }
	for step := 0; step < 40; step++ {
		now = now.Add(time.Duration(choose(4*3600)) * time.Second)
		id := func(p string) string { return fmt.Sprintf("%s_%d", p, choose(4)) }
		var cmd invoice.Command
		switch choose(13) {
		case 0:
			cmd = invoice.Create{InvoiceID: "inv_1", Amount: usd("100.00"), Provider: "sandbox", ExpiresAt: now.Add(time.Duration(1+choose(48)) * time.Hour)}
		case 1:
			cmd = invoice.IssueLink{LinkID: fmt.Sprintf("lnk_%d", step), TokenHash: fmt.Sprintf("h%d", step), ExpiresAt: now.Add(10 * time.Minute)}
		case 2:
			cmd = invoice.ConsumeLink{TokenHash: fmt.Sprintf("h%d", choose(step+1))}
		case 3:
			cmd = invoice.ExpireLink{LinkID: fmt.Sprintf("lnk_%d", choose(step+1))}
		case 4:
			cmd = invoice.Expire{}
		case 5:
			cmd = invoice.Cancel{}
		case 6:
			cmd = invoice.InitiatePayment{PaymentID: id("pay")}
		case 7:
			cmd = invoice.RequireAction{PaymentID: id("pay")}
		case 8, 9:
			cmd = invoice.RecordProcessed{PaymentID: id("pay"), Amount: amt(t, pick(amount...), pick("USD", "USD", "USD", "EUR"))}
		case 10:
			cmd = invoice.RecordFailed{PaymentID: id("pay"), Code: "card_declined"}
		case 11:
			cmd = invoice.Refund{RefundID: id("re"), Amount: usd(pick("20.00", "50.00", "100.00", "130.00"))}
		case 12:
			cmd = invoice.RecordCallback{Provider: "sandbox", Body: "{}"}
		}
		before := invoice.Fold(all...)
		evs, err := invoice.Decide(s, cmd, now)
		trace = append(trace, fmt.Sprintf("%T%+v → %d events, %v", cmd, cmd, len(evs), err))
		if !reflect.DeepEqual(s, before) {
			t.Fatalf("Decide changed its input\n%v", trace)
		}
		if err != nil && evs != nil {
			t.Fatalf("events with an error\n%v", trace)
		}
		for _, e := range evs {
			prev := s.Status
			s = invoice.Evolve(s, e)
			if prev != s.Status && prev != "" {
				ok := false
				for _, to := range allowedStatus[prev] {
					ok = ok || to == s.Status
				}
				if !ok {
					t.Fatalf("status %s → %s by %T\n%v", prev, s.Status, e, trace)
				}
			}
			typ, data, err := invoice.Encode(e)
			if err != nil {
				t.Fatal(err)
			}
			back, err := invoice.Decode(typ, data)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, back) // replay what the store would give back
		}
		checkInvariants(t, s, all, trace)
	}
}

func checkInvariants(t *testing.T, s invoice.State, all []invoice.Event, trace []string) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf(format+"\n%v", append(args, trace)...)
	}
	if s.Version != uint64(len(all)) {
		fail("version %d after %d events", s.Version, len(all))
	}
	if f := invoice.Fold(all...); !reflect.DeepEqual(f, s) {
		fail("Fold of the decoded history differs from the evolved state:\n%+v\n%+v", f, s)
	}
	if !s.Exists() {
		return
	}
	active := 0
	for _, l := range s.Links {
		if l.State == invoice.LinkStateActive {
			active++
		}
		if l.ExpiresAt.After(s.ExpiresAt) {
			fail("link %s outlives the invoice", l.ID)
		}
	}
	if active > 1 {
		fail("%d active links", active)
	}
	sum := decimal.Zero
	for _, p := range s.Payments {
		if p.Status == invoice.PaymentStatusProcessed && p.Currency == s.Amount.Currency().Code {
			sum = sum.Add(decimal.RequireFromString(p.Amount))
		}
	}
	if !sum.Equal(s.AmountPaid.Amount()) {
		fail("amount paid %s, processed payments sum to %s", s.AmountPaid, sum)
	}
	if s.AmountRefunded.Cmp(s.AmountPaid) > 0 {
		fail("refunded %s exceeds paid %s", s.AmountRefunded, s.AmountPaid)
	}
	switch s.Status {
	case invoice.StatusPaid, invoice.StatusPartiallyRefunded, invoice.StatusRefunded:
		if s.AmountPaid.Cmp(s.Amount) < 0 || s.PaidAt.IsZero() {
			fail("status %s with %s paid of %s", s.Status, s.AmountPaid, s.Amount)
		}
	case invoice.StatusOpen:
		if s.AmountPaid.Cmp(s.Amount) >= 0 {
			fail("open although %s of %s is paid", s.AmountPaid, s.Amount)
		}
	}
	if s.Status == invoice.StatusPartiallyRefunded && s.AmountRefunded.Cmp(s.AmountPaid) >= 0 {
		fail("partially refunded with %s of %s", s.AmountRefunded, s.AmountPaid)
	}
}

func TestLifecycleInvariants(t *testing.T) {
	t.Parallel()
	for seed := uint64(0); seed < 400; seed++ {
		r := rand.New(rand.NewPCG(seed, 7))
		// Start from a created invoice most of the time so the runs go deep.
		first := true
		lifecycle(t, func(n int) int {
			if first && n == 13 {
				first = false
				return 0
			}
			return r.IntN(n)
		})
	}
}

// FuzzLifecycle lets the fuzzer choose the command sequences.
func FuzzLifecycle(f *testing.F) {
	f.Add([]byte{0, 1, 2, 8, 3, 11, 11})
	f.Add([]byte{0, 0, 6, 7, 4, 8, 8, 11})
	f.Fuzz(func(t *testing.T, script []byte) {
		i := 0
		lifecycle(t, func(n int) int {
			if i >= len(script) {
				return 0
			}
			b := int(script[i])
			i++
			return b % n
		})
	})
}
