package money

import (
	"errors"
	"fmt"
	"strings"

	"github.com/shopspring/decimal"
)

// Errors returned by Parse and New. They are wrapped with the offending
// input; test with errors.Is.
var (
	ErrUnknownCurrency  = errors.New("unknown currency")
	ErrInvalidAmount    = errors.New("invalid amount")
	ErrNegative         = errors.New("amount must not be negative")
	ErrTooPrecise       = errors.New("amount has more decimals than the currency allows")
	ErrTooLarge         = errors.New("amount is too large")
	ErrCurrencyMismatch = errors.New("currencies differ")
)

// maxDigits bounds the integer part so that no amount can overflow a
// NUMERIC column or a provider's integer minor units (int64).
const maxDigits = 15

// maxInput bounds the text Parse looks at. The longest sensible amount is
// 15 integer digits, a point and 18 decimals; the bound leaves room for
// leading zeros while keeping hostile megabyte-long digit strings away from
// big-number parsing, whose cost grows faster than linearly.
const maxInput = 64

// Currency is an upper-case ISO 4217 code (or a crypto code such as USDT)
// with its minor-unit exponent.
type Currency struct {
	Code     string
	Exponent int32
}

// exponents lists the currencies the ledger accepts. ISO 4217 exponents;
// crypto codes with the scale their networks settle in for stablecoins and
// 8 for BTC-like coins.
var exponents = map[string]int32{
	"USD": 2, "EUR": 2, "GBP": 2, "CHF": 2, "CAD": 2, "AUD": 2, "NZD": 2,
	"SEK": 2, "NOK": 2, "DKK": 2, "PLN": 2, "CZK": 2, "HUF": 2, "RON": 2,
	"BGN": 2, "TRY": 2, "ILS": 2, "AED": 2, "SAR": 2, "QAR": 2, "INR": 2,
	"CNY": 2, "HKD": 2, "SGD": 2, "MYR": 2, "THB": 2, "PHP": 2, "IDR": 2,
	"MXN": 2, "BRL": 2, "ARS": 2, "COP": 2, "ZAR": 2, "NGN": 2, "KES": 2,
	"EGP": 2, "MAD": 2, "UAH": 2, "KZT": 2, "GEL": 2, "RUB": 2, "PKR": 2,
	"JPY": 0, "KRW": 0, "VND": 0, "CLP": 0, "ISK": 0, "UGX": 0, "XAF": 0,
	"XOF": 0, "PYG": 0, "RWF": 0,
	"KWD": 3, "BHD": 3, "OMR": 3, "JOD": 3, "TND": 3, "LYD": 3, "IQD": 3,
	"USDT": 6, "USDC": 6, "BTC": 8, "ETH": 18, "LTC": 8, "TRX": 6,
}

// LookupCurrency returns the currency for a code, case-insensitively.
func LookupCurrency(code string) (Currency, error) {
	c := strings.ToUpper(strings.TrimSpace(code))
	exp, ok := exponents[c]
	if !ok {
		return Currency{}, fmt.Errorf("%w: %q", ErrUnknownCurrency, code)
	}
	return Currency{Code: c, Exponent: exp}, nil
}

// Money is an exact non-negative amount in a currency. The zero value is not
// a valid Money; build one with Parse, New or Zero.
type Money struct {
	amount   decimal.Decimal
	currency Currency
}

// Parse reads a decimal string such as "100.55" in the given currency. It
// refuses signs, exponents, spaces, NaN/Inf words, more decimals than the
// currency allows and more than 15 integer digits.
func Parse(amount, currency string) (Money, error) {
	cur, err := LookupCurrency(currency)
	if err != nil {
		return Money{}, err
	}
	d, err := parseDecimal(amount)
	if err != nil {
		return Money{}, err
	}
	return New(d, cur)
}

func parseDecimal(s string) (decimal.Decimal, error) {
	if s == "" {
		return decimal.Decimal{}, fmt.Errorf("%w: empty", ErrInvalidAmount)
	}
	if len(s) > maxInput {
		return decimal.Decimal{}, fmt.Errorf("%w: longer than %d characters", ErrInvalidAmount, maxInput)
	}
	if s[0] == '-' {
		return decimal.Decimal{}, fmt.Errorf("%w: %q", ErrNegative, s)
	}
	dot := false
	digits := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '.' && !dot && i > 0 && i < len(s)-1:
			dot = true
		default:
			return decimal.Decimal{}, fmt.Errorf("%w: %q (want digits with an optional decimal point, e.g. \"100.55\")", ErrInvalidAmount, s)
		}
	}
	if digits == 0 {
		return decimal.Decimal{}, fmt.Errorf("%w: %q", ErrInvalidAmount, s)
	}
	d, err := decimal.NewFromString(s)
	if err != nil {
		return decimal.Decimal{}, fmt.Errorf("%w: %q", ErrInvalidAmount, s)
	}
	return d, nil
}

// New builds Money from a decimal, checking sign, precision and size.
func New(d decimal.Decimal, cur Currency) (Money, error) {
	if d.IsNegative() {
		return Money{}, fmt.Errorf("%w: %s", ErrNegative, d.String())
	}
	if !d.Equal(d.Truncate(cur.Exponent)) {
		return Money{}, fmt.Errorf("%w: %s has more than %d decimals for %s", ErrTooPrecise, d.String(), cur.Exponent, cur.Code)
	}
	if d.Truncate(0).String() != "0" && len(d.Truncate(0).String()) > maxDigits {
		return Money{}, fmt.Errorf("%w: %s", ErrTooLarge, d.String())
	}
	return Money{amount: d, currency: cur}, nil
}

// Zero is a zero amount in the currency.
func Zero(cur Currency) Money { return Money{amount: decimal.Zero, currency: cur} }

// FromMinor builds Money from integer minor units (cents for USD).
func FromMinor(units int64, cur Currency) (Money, error) {
	return New(decimal.New(units, -cur.Exponent), cur)
}

// Amount returns the decimal amount.
func (m Money) Amount() decimal.Decimal { return m.amount }

// Currency returns the currency.
func (m Money) Currency() Currency { return m.currency }

// IsZero reports whether the amount is zero.
func (m Money) IsZero() bool { return m.amount.IsZero() }

// Minor returns the amount in integer minor units. It fits int64 for every
// currency with an exponent up to 3 at any accepted size; for 18-decimal
// coins (ETH) it overflows above about 9.2 units, so callers handling those
// use Amount().Shift(exponent) instead.
func (m Money) Minor() int64 { return m.amount.Shift(m.currency.Exponent).IntPart() }

// String formats the amount with exactly the currency's decimals ("100.50").
func (m Money) String() string { return m.amount.StringFixed(m.currency.Exponent) }

// Add returns m+o; the currencies must match.
func (m Money) Add(o Money) (Money, error) {
	if m.currency.Code != o.currency.Code {
		return Money{}, fmt.Errorf("%w: %s and %s", ErrCurrencyMismatch, m.currency.Code, o.currency.Code)
	}
	return Money{amount: m.amount.Add(o.amount), currency: m.currency}, nil
}

// Sub returns m-o; the currencies must match and the result must not be
// negative.
func (m Money) Sub(o Money) (Money, error) {
	if m.currency.Code != o.currency.Code {
		return Money{}, fmt.Errorf("%w: %s and %s", ErrCurrencyMismatch, m.currency.Code, o.currency.Code)
	}
	d := m.amount.Sub(o.amount)
	if d.IsNegative() {
		return Money{}, fmt.Errorf("%w: %s - %s", ErrNegative, m, o)
	}
	return Money{amount: d, currency: m.currency}, nil
}

// Cmp compares amounts of the same currency (-1, 0, 1). Comparing different
// currencies compares the amounts alone; callers check currency first.
func (m Money) Cmp(o Money) int { return m.amount.Cmp(o.amount) }

// Equal reports same currency and same amount.
func (m Money) Equal(o Money) bool {
	return m.currency.Code == o.currency.Code && m.amount.Equal(o.amount)
}
