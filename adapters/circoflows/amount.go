package circoflows

import (
	"fmt"
	"strconv"

	"github.com/payledger/payledger/adapters/provider"
	"github.com/payledger/payledger/domain/money"
)

// maxExponent is the most decimals a CircoFlows currency has: its amounts
// are "cents" of three-letter ISO codes, whose exponents are 0, 2 or 3.
const maxExponent = 3

// maxCentsDigits bounds the integer text we accept: 15 integer digits plus
// three decimals, the largest amount money accepts.
const maxCentsDigits = 18

// Cents converts an amount to CircoFlows' integer minor units with the
// currency's exponent (10.00 USD is 1000, 1000 JPY is 1000, 1.000 KWD is
// 1000). A currency with more than three decimals wraps
// provider.ErrUnsupportedCurrency; an amount finer than the exponent wraps
// money.ErrTooPrecise.
func Cents(m money.Money) (int64, error) {
	cur, err := currency(m.Currency().Code)
	if err != nil {
		return 0, err
	}
	// The exponent is the registry's, not the one the Money carries: a
	// hand-built currency must not smuggle a fraction of a cent through.
	minor := m.Amount().Shift(cur.Exponent)
	if !minor.IsInteger() {
		return 0, fmt.Errorf("%w: %s has more than %d decimals for %s", money.ErrTooPrecise, m.Amount(), cur.Exponent, cur.Code)
	}
	if minor.IsNegative() {
		return 0, fmt.Errorf("%w: %s", money.ErrNegative, m.Amount())
	}
	if len(minor.String()) > maxCentsDigits {
		return 0, fmt.Errorf("%w: %s", money.ErrTooLarge, m.Amount())
	}
	return minor.IntPart(), nil
}

// FromCents reads CircoFlows' integer minor units (the JSON number's text)
// in the given currency. Anything but plain digits — a fraction of a cent,
// a sign, an exponent — is refused: the field is documented as an integer,
// and "1000.5" cents is not an amount we can book.
func FromCents(text, code string) (money.Money, error) {
	cur, err := currency(code)
	if err != nil {
		return money.Money{}, err
	}
	if text == "" || len(text) > maxCentsDigits {
		return money.Money{}, fmt.Errorf("%w: %q is not an integer amount in minor units", money.ErrInvalidAmount, clean(text, 40))
	}
	for i := 0; i < len(text); i++ {
		if text[i] < '0' || text[i] > '9' {
			if text[i] == '.' {
				return money.Money{}, fmt.Errorf("%w: %q minor units of %s", money.ErrTooPrecise, text, cur.Code)
			}
			return money.Money{}, fmt.Errorf("%w: %q is not an integer amount in minor units", money.ErrInvalidAmount, clean(text, 40))
		}
	}
	n, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		return money.Money{}, fmt.Errorf("%w: %q", money.ErrTooLarge, text)
	}
	return money.FromMinor(n, cur)
}

// currency looks a code up and refuses the ones CircoFlows cannot carry.
func currency(code string) (money.Currency, error) {
	cur, err := money.LookupCurrency(code)
	if err != nil {
		return money.Currency{}, err
	}
	if cur.Exponent > maxExponent || len(cur.Code) != 3 {
		return money.Currency{}, fmt.Errorf("%w: %s (CircoFlows takes three-letter ISO currencies in minor units)", provider.ErrUnsupportedCurrency, cur.Code)
	}
	return cur, nil
}
