package money_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/payledger/payledger/domain/money"
)

// FuzzParse checks the parser of untrusted amounts: whatever it accepts is a
// non-negative amount that prints with exactly the currency's decimals and
// parses back to itself; whatever it refuses is refused with one of the
// documented errors.
func FuzzParse(f *testing.F) {
	for _, s := range []struct{ amount, currency string }{
		{"100.55", "USD"}, {"0", "JPY"}, {"1.000", "KWD"}, {"12.345678", "USDT"},
		{"-1", "USD"}, {"1e3", "USD"}, {"NaN", "USD"}, {".5", "EUR"}, {"1.", "EUR"},
		{"999999999999999.99", "USD"}, {"0.000000000000000001", "ETH"}, {"1.5", "xyz"},
		{"00000000000000000000001", "btc"}, {"１", "USD"},
	} {
		f.Add(s.amount, s.currency)
	}
	sentinels := []error{money.ErrUnknownCurrency, money.ErrInvalidAmount, money.ErrNegative, money.ErrTooPrecise, money.ErrTooLarge}
	f.Fuzz(func(t *testing.T, amount, currency string) {
		m, err := money.Parse(amount, currency)
		if err != nil {
			for _, s := range sentinels {
				if errors.Is(err, s) {
					return
				}
			}
			t.Fatalf("Parse(%q, %q): error %v wraps no documented sentinel", amount, currency, err)
		}
		if m.Amount().IsNegative() {
			t.Fatalf("Parse(%q) accepted a negative amount %s", amount, m.Amount())
		}
		out := m.String()
		exp := int(m.Currency().Exponent)
		whole, frac, hasDot := strings.Cut(out, ".")
		if (exp == 0 && hasDot) || (exp > 0 && len(frac) != exp) || whole == "" || strings.HasPrefix(out, "-") {
			t.Fatalf("String() = %q, want exactly %d decimals", out, exp)
		}
		back, err := money.Parse(out, m.Currency().Code)
		if err != nil {
			t.Fatalf("String() = %q does not parse back: %v", out, err)
		}
		if !back.Equal(m) || back.String() != out {
			t.Fatalf("round trip %q → %q → %q", amount, out, back.String())
		}
	})
}
