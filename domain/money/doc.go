// Package money is exact amounts in a currency: a decimal.Decimal paired
// with an ISO 4217 code (or a crypto code such as USDT) and its minor-unit
// exponent (USD 2, JPY 0, KWD 3, USDT 6, BTC 8, ETH 18).
//
// Parse is the gate for untrusted text (API bodies, provider payloads): it
// accepts only plain digits with an optional decimal point ("100.55"), and
// refuses signs, exponents, spaces, NaN/Inf words, more decimals than the
// currency allows, more than 15 integer digits and inputs longer than 64
// characters, each with an error wrapping one of the Err* sentinels.
// Trailing zeros are not extra precision: "1.000" is 1.00 USD.
//
// Rules for implementers:
//
//   - A Money is never negative; arithmetic that would go below zero fails
//     with ErrNegative instead.
//   - String always prints exactly the currency's decimals, so it is the
//     wire format of amounts (JSON strings, never numbers or float64).
//   - Convert a provider's JSON number through json.Number and New, never
//     through float64.
//   - Mixing currencies is an error (ErrCurrencyMismatch), not a conversion.
package money
