package onramp

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/shopspring/decimal"

	"github.com/payledger/payledger/domain/money"
)

// maxAmountText bounds the number text we parse; money's longest amount
// is 15 integer digits, a point and 18 decimals.
const maxAmountText = 64

// maxExponent bounds a JSON number's exponent ("2.5e2"): beyond it the
// value cannot be a valid amount, and a huge exponent would make the
// decimal arithmetic expensive.
const maxExponent = 40

// Amount reads the on-ramp's amount, a JSON number in major units (250.00),
// exactly from its text, in the given currency. Exponent forms are valid
// JSON and accepted ("2.5e2" is 250). It refuses signs, more decimals than
// the currency has (10.005 USD), NaN-like words and absurd sizes, with
// errors wrapping the money sentinels.
func Amount(text, currency string) (money.Money, error) {
	cur, err := money.LookupCurrency(currency)
	if err != nil {
		return money.Money{}, err
	}
	if text == "" || len(text) > maxAmountText {
		return money.Money{}, fmt.Errorf("%w: %q", money.ErrInvalidAmount, clean(text, 40))
	}
	if text[0] == '-' {
		return money.Money{}, fmt.Errorf("%w: %q", money.ErrNegative, text)
	}
	if !jsonNumber(text) {
		return money.Money{}, fmt.Errorf("%w: %q is not a JSON number", money.ErrInvalidAmount, clean(text, 40))
	}
	// Refuse absurd exponents before decimal sees them.
	if i := strings.IndexAny(text, "eE"); i >= 0 {
		exp := strings.TrimLeft(text[i+1:], "+")
		neg := strings.HasPrefix(exp, "-")
		if digits := strings.TrimLeft(strings.TrimPrefix(exp, "-"), "0"); len(digits) > 3 {
			if neg {
				return money.Money{}, fmt.Errorf("%w: %q", money.ErrTooPrecise, text)
			}
			return money.Money{}, fmt.Errorf("%w: %q", money.ErrTooLarge, text)
		}
	}
	d, err := decimal.NewFromString(text)
	if err != nil {
		return money.Money{}, fmt.Errorf("%w: %q", money.ErrInvalidAmount, text)
	}
	switch e := d.Exponent(); {
	case e > maxExponent:
		return money.Money{}, fmt.Errorf("%w: %q", money.ErrTooLarge, text)
	case e < -maxExponent:
		return money.Money{}, fmt.Errorf("%w: %q", money.ErrTooPrecise, text)
	}
	return money.New(d, cur)
}

// AmountNumber is m on the wire: a JSON number with exactly the currency's
// decimals ("250.00"), written from the decimal, never through float64.
func AmountNumber(m money.Money) json.Number { return json.Number(m.String()) }

// jsonNumber checks the JSON number grammar (RFC 8259 §6), which also
// keeps out "Inf", "0x1p3" and the other texts decimal would read.
func jsonNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	default:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		start := i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		if i == start {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		start := i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		if i == start {
			return false
		}
	}
	return i == len(s)
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }
