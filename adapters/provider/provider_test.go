package provider

import (
	"errors"
	"testing"

	"github.com/payledger/payledger/domain/money"
)

func TestAmountExact(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		text, cur, want string
		err             bool
	}{
		{"100.55", "USD", "100.55", false},
		{"123.45", "usd", "123.45", false},
		{"100", "USD", "100.00", false},
		{"1e2", "USD", "100.00", false},
		{"20.00", "usdt", "20.000000", false},
		{"0.1", "USD", "0.10", false},
		{"100.555", "USD", "", true}, // more decimals than USD has: never rounded
		{"-1", "USD", "", true},
		{"1e999999999", "USD", "", true},
		{"NaN", "USD", "", true},
		{"", "USD", "", true},
		{"12", "XXX", "", true},
	} {
		m, err := Amount(tc.text, tc.cur)
		if tc.err {
			if err == nil {
				t.Errorf("Amount(%q, %q) = %s, want an error", tc.text, tc.cur, m)
			}
			continue
		}
		if err != nil || m.String() != tc.want {
			t.Errorf("Amount(%q, %q) = %s, %v; want %s", tc.text, tc.cur, m, err, tc.want)
		}
	}
	if _, err := Amount("1.001", "USD"); !errors.Is(err, money.ErrTooPrecise) {
		t.Errorf("too precise: %v", err)
	}
}

func TestReferenceAndPaymentIDs(t *testing.T) {
	t.Parallel()
	inv := "inv_0190f5aa00000000000000000000abcd"
	for attempt := 1; attempt <= 3; attempt++ {
		ref := Reference(inv, attempt)
		if InvoiceID(ref) != inv || Attempt(ref) != attempt {
			t.Fatalf("attempt %d: reference %q gives %q, %d", attempt, ref, InvoiceID(ref), Attempt(ref))
		}
		pid := PaymentIDForReference(ref)
		if pid != PaymentID(inv, attempt) || PaymentAttempt(inv, pid) != attempt {
			t.Fatalf("attempt %d: payment id %q, attempt back %d", attempt, pid, PaymentAttempt(inv, pid))
		}
	}
	if Reference(inv, 1) != inv {
		t.Errorf("first attempt must be the bare invoice id, got %q", Reference(inv, 1))
	}
	for _, bad := range []string{inv + "~0", inv + "~x", inv + "~-2"} {
		if Attempt(bad) != 0 || PaymentIDForReference(bad) != "" {
			t.Errorf("%q: attempt %d, payment %q", bad, Attempt(bad), PaymentIDForReference(bad))
		}
	}
	for _, other := range []string{"pay_0190f5aa", "pay_x_1", PaymentID("inv_other", 1), PaymentID(inv, 2) + "0x", "pay_0190f5aa00000000000000000000abcd_01"} {
		if PaymentAttempt(inv, other) != 0 {
			t.Errorf("PaymentAttempt(%q) = %d, want 0", other, PaymentAttempt(inv, other))
		}
	}
}

func FuzzAmount(f *testing.F) {
	for _, s := range []string{"100.55", "1e2", "1e999999999", "0.000001", "-0", "99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := Amount(s, "USDT")
		if err != nil {
			return
		}
		// Whatever is accepted must round-trip exactly through the decimal
		// string the ledger stores.
		back, err := money.Parse(m.String(), "USDT")
		if err != nil || !back.Equal(m) {
			t.Fatalf("%q: %s does not round-trip: %v", s, m, err)
		}
	})
}
