package money_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/payledger/payledger/domain/money"
)

func mustParse(t testing.TB, amount, currency string) money.Money {
	t.Helper()
	m, err := money.Parse(amount, currency)
	if err != nil {
		t.Fatalf("Parse(%q, %q): %v", amount, currency, err)
	}
	return m
}

func TestParse(t *testing.T) {
	t.Parallel()
	cases := []struct {
		amount, currency string
		want             string // String() of the result
		wantMinor        int64
		wantErr          error
	}{
		{"100.55", "USD", "100.55", 10055, nil},
		{"100.5", "USD", "100.50", 10050, nil},
		{"100", "usd", "100.00", 10000, nil},
		{"0", "USD", "0.00", 0, nil},
		{"0.01", "EUR", "0.01", 1, nil},
		{"007.10", "USD", "7.10", 710, nil},
		{"1.000", "USD", "1.00", 100, nil}, // trailing zeros are not extra precision
		{"999999999999999.99", "USD", "999999999999999.99", 99999999999999999, nil},
		{"1500", "JPY", "1500", 1500, nil},
		{"1.000", "KWD", "1.000", 1000, nil},
		{"0.125", "BHD", "0.125", 125, nil},
		{"12.345678", "USDT", "12.345678", 12345678, nil},
		{"0.00000001", "BTC", "0.00000001", 1, nil},
		{"1.000000000000000001", "ETH", "1.000000000000000001", 1000000000000000001, nil},
		{" 1.00", "USD", "", 0, money.ErrInvalidAmount},
		{"1.00 ", "USD", "", 0, money.ErrInvalidAmount},

		{"100.555", "USD", "", 0, money.ErrTooPrecise},
		{"1.5", "JPY", "", 0, money.ErrTooPrecise},
		{"0.0001", "KWD", "", 0, money.ErrTooPrecise},
		{"0.0000001", "USDT", "", 0, money.ErrTooPrecise},
		{"-1.00", "USD", "", 0, money.ErrNegative},
		{"-0", "USD", "", 0, money.ErrNegative},
		{"+1.00", "USD", "", 0, money.ErrInvalidAmount},
		{"", "USD", "", 0, money.ErrInvalidAmount},
		{".5", "USD", "", 0, money.ErrInvalidAmount},
		{"5.", "USD", "", 0, money.ErrInvalidAmount},
		{"1.2.3", "USD", "", 0, money.ErrInvalidAmount},
		{"1,00", "USD", "", 0, money.ErrInvalidAmount},
		{"1e2", "USD", "", 0, money.ErrInvalidAmount},
		{"NaN", "USD", "", 0, money.ErrInvalidAmount},
		{"Inf", "USD", "", 0, money.ErrInvalidAmount},
		{"Infinity", "USD", "", 0, money.ErrInvalidAmount},
		{"0x10", "USD", "", 0, money.ErrInvalidAmount},
		{"１", "USD", "", 0, money.ErrInvalidAmount}, // full-width digit
		{"1_000", "USD", "", 0, money.ErrInvalidAmount},
		{strings.Repeat("0", 65) + "1", "USD", "", 0, money.ErrInvalidAmount},
		{"1000000000000000", "USD", "", 0, money.ErrTooLarge}, // 16 integer digits
		{"1.00", "XYZ", "", 0, money.ErrUnknownCurrency},
		{"1.00", "", "", 0, money.ErrUnknownCurrency},
	}
	for _, tc := range cases {
		t.Run(tc.amount+"_"+tc.currency, func(t *testing.T) {
			t.Parallel()
			m, err := money.Parse(tc.amount, tc.currency)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				if !strings.HasPrefix(err.Error(), tc.wantErr.Error()) || err.Error() == tc.wantErr.Error() {
					t.Errorf("err %q does not say what was wrong with the input", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if got := m.String(); got != tc.want {
				t.Errorf("String() = %q, want %q", got, tc.want)
			}
			if got := m.Minor(); got != tc.wantMinor {
				t.Errorf("Minor() = %d, want %d", got, tc.wantMinor)
			}
			if m.Currency().Code != strings.ToUpper(tc.currency) {
				t.Errorf("currency %q", m.Currency().Code)
			}
		})
	}
}

func TestLookupCurrency(t *testing.T) {
	t.Parallel()
	cases := map[string]int32{"USD": 2, "usd": 2, "JPY": 0, "KWD": 3, "BHD": 3, "USDT": 6, "BTC": 8}
	for code, exp := range cases {
		c, err := money.LookupCurrency(code)
		if err != nil || c.Exponent != exp || c.Code != strings.ToUpper(code) {
			t.Errorf("LookupCurrency(%q) = %+v, %v; want exponent %d", code, c, err, exp)
		}
	}
	if _, err := money.LookupCurrency("ZZZ"); !errors.Is(err, money.ErrUnknownCurrency) {
		t.Errorf("ZZZ: err = %v", err)
	}
}

func TestNewAndFromMinor(t *testing.T) {
	t.Parallel()
	usd, _ := money.LookupCurrency("USD")
	jpy, _ := money.LookupCurrency("JPY")
	cases := []struct {
		name    string
		build   func() (money.Money, error)
		want    string
		wantErr error
	}{
		{"minor cents", func() (money.Money, error) { return money.FromMinor(10055, usd) }, "100.55", nil},
		{"minor yen", func() (money.Money, error) { return money.FromMinor(1500, jpy) }, "1500", nil},
		{"minor negative", func() (money.Money, error) { return money.FromMinor(-1, usd) }, "", money.ErrNegative},
		{"decimal", func() (money.Money, error) { return money.New(decimal.RequireFromString("2.5"), usd) }, "2.50", nil},
		{"decimal too precise", func() (money.Money, error) { return money.New(decimal.RequireFromString("2.505"), usd) }, "", money.ErrTooPrecise},
		{"decimal negative", func() (money.Money, error) { return money.New(decimal.RequireFromString("-2"), usd) }, "", money.ErrNegative},
		{"decimal huge", func() (money.Money, error) { return money.New(decimal.New(1, 20), usd) }, "", money.ErrTooLarge},
		{"zero", func() (money.Money, error) { return money.Zero(usd), nil }, "0.00", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m, err := tc.build()
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil || m.String() != tc.want {
				t.Fatalf("got %q, %v; want %q", m.String(), err, tc.want)
			}
		})
	}
}

func TestArithmetic(t *testing.T) {
	t.Parallel()
	a, b := mustParse(t, "100.55", "USD"), mustParse(t, "0.45", "USD")
	sum, err := a.Add(b)
	if err != nil || sum.String() != "101.00" {
		t.Errorf("Add = %s, %v", sum, err)
	}
	diff, err := a.Sub(b)
	if err != nil || diff.String() != "100.10" {
		t.Errorf("Sub = %s, %v", diff, err)
	}
	if _, err := b.Sub(a); !errors.Is(err, money.ErrNegative) {
		t.Errorf("b-a: err = %v", err)
	}
	eur := mustParse(t, "1.00", "EUR")
	if _, err := a.Add(eur); !errors.Is(err, money.ErrCurrencyMismatch) {
		t.Errorf("USD+EUR: err = %v", err)
	}
	if _, err := a.Sub(eur); !errors.Is(err, money.ErrCurrencyMismatch) {
		t.Errorf("USD-EUR: err = %v", err)
	}
	if a.Cmp(b) != 1 || b.Cmp(a) != -1 || a.Cmp(a) != 0 {
		t.Error("Cmp")
	}
	if !mustParse(t, "1.5", "USD").Equal(mustParse(t, "1.50", "USD")) {
		t.Error("1.5 and 1.50 USD differ")
	}
	if mustParse(t, "1.00", "USD").Equal(eur) {
		t.Error("USD equals EUR")
	}
	if !money.Zero(a.Currency()).IsZero() || a.IsZero() {
		t.Error("IsZero")
	}
	// Exactness: 0.1 + 0.2 is 0.3, which float64 cannot say.
	x, _ := mustParse(t, "0.1", "USD").Add(mustParse(t, "0.2", "USD"))
	if !x.Equal(mustParse(t, "0.3", "USD")) {
		t.Errorf("0.1+0.2 = %s", x)
	}
}
