// Package domain holds the ledger's rules and nothing else: money (package
// money) and the invoice aggregate with its payments (package invoice).
//
// Rules for implementers:
//
//   - Import only the standard library and github.com/shopspring/decimal
//     (imports_test.go enforces it). Storage, HTTP, ids and clocks live in
//     adapters and the ledger service, which call into the domain.
//   - Stay pure: time, ids and random tokens are passed in; no time.Now, no
//     crypto/rand, no I/O, no globals that change.
//   - Events are the stored history. Their names and JSON fields are a
//     contract with every byte already written: add fields, never rename or
//     repurpose one.
//   - Money is exact: decimal.Decimal with a currency, decimal strings in
//     JSON, never float64.
package domain
