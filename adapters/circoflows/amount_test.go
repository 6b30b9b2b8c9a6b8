package circoflows_test

import (
	"errors"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/payledger/payledger/adapters/circoflows"
	"github.com/payledger/payledger/adapters/provider"
	"github.com/payledger/payledger/domain/money"
)

func TestCents(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		amount, currency string
		cents            int64
	}{
		{"10.00", "USD", 1000},
		{"150.00", "USD", 15000},
		{"0.01", "EUR", 1},
		{"0", "USD", 0},
		{"999999999999999.99", "USD", 99999999999999999},
		{"1000", "JPY", 1000},
		{"1", "KRW", 1},
		{"1.000", "KWD", 1000},
		{"0.001", "BHD", 1},
		{"12.345", "OMR", 12345},
	} {
		m, err := money.Parse(tc.amount, tc.currency)
		if err != nil {
			t.Fatal(err)
		}
		got, err := circoflows.Cents(m)
		if err != nil || got != tc.cents {
			t.Errorf("Cents(%s %s) = %d, %v; want %d", tc.amount, tc.currency, got, err, tc.cents)
			continue
		}
		back, err := circoflows.FromCents(decimal.NewFromInt(got).String(), tc.currency)
		if err != nil || !back.Equal(m) || back.String() != m.String() {
			t.Errorf("FromCents(%d %s) = %v, %v; want %s", got, tc.currency, back, err, m)
		}
	}
}

func TestCentsRefusals(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		amount   string
		currency money.Currency
		is       error
	}{
		{"crypto with six decimals", "1.5", money.Currency{Code: "USDT", Exponent: 6}, provider.ErrUnsupportedCurrency},
		{"bitcoin", "0.1", money.Currency{Code: "BTC", Exponent: 8}, provider.ErrUnsupportedCurrency},
		// A currency built by hand with the wrong exponent cannot smuggle a
		// fraction of a cent through.
		{"over-precise", "10.001", money.Currency{Code: "USD", Exponent: 3}, money.ErrTooPrecise},
		{"over-precise yen", "1.5", money.Currency{Code: "JPY", Exponent: 2}, money.ErrTooPrecise},
		{"unknown currency", "1", money.Currency{Code: "XXX", Exponent: 2}, money.ErrUnknownCurrency},
		{"zero value", "0", money.Currency{}, money.ErrUnknownCurrency},
	} {
		m, err := money.New(decimal.RequireFromString(tc.amount), tc.currency)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := circoflows.Cents(m); !errors.Is(err, tc.is) {
			t.Errorf("%s: Cents = %v, want %v", tc.name, err, tc.is)
		}
	}
	if _, err := circoflows.Cents(money.Money{}); !errors.Is(err, money.ErrUnknownCurrency) {
		t.Errorf("Cents(zero Money) = %v", err)
	}
}

func TestFromCentsRefusals(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		text, currency string
		is             error
	}{
		{"1000.5", "USD", money.ErrTooPrecise},
		{"1000.0", "USD", money.ErrTooPrecise},
		{"-1", "USD", money.ErrInvalidAmount},
		{"1e3", "USD", money.ErrInvalidAmount},
		{"", "USD", money.ErrInvalidAmount},
		{" 100", "USD", money.ErrInvalidAmount},
		{"0x10", "USD", money.ErrInvalidAmount},
		{"1234567890123456789", "USD", money.ErrInvalidAmount},
		{"999999999999999999", "USD", money.ErrTooLarge},
		{"100", "usdt", provider.ErrUnsupportedCurrency},
		{"100", "", money.ErrUnknownCurrency},
		{"100", "DOGE", money.ErrUnknownCurrency},
	} {
		if m, err := circoflows.FromCents(tc.text, tc.currency); !errors.Is(err, tc.is) {
			t.Errorf("FromCents(%q, %q) = %v, %v; want %v", tc.text, tc.currency, m, err, tc.is)
		}
	}
}
