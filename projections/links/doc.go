// Package links is the payment-link index: SHA-256 of a link token (hex) →
// invoice, link, expiry and state. GET /pay/{token} looks the token up here
// and then runs ConsumeLink on the invoice, which is the authority: this
// index may lag, the aggregate never does.
package links
