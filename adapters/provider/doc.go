// Package provider is the port between the ledger and external payment
// providers (WZRDPAY, Payfect, CircoFlows, the on-ramp API). Each provider
// package implements Adapter; adapters/callbacks drives them (payer
// redirect, callback ingestion, reconciliation).
//
// Rules for implementers:
//   - Amounts cross the boundary as money.Money, converted exactly from the
//     provider's wire format (JSON numbers through json.Number, decimal
//     strings, integer minor units). Never float64.
//   - ParseCallback verifies the raw body before parsing it when the
//     provider signs, and wraps every refusal with ErrBadCallback. Only a
//     verified callback may be used as proof of money; an unverified one is
//     a hint that the caller confirms through Status.
//   - Outbound errors are *Error values wrapping one of the sentinels below,
//     so that HTTP code can answer with Problem(err).
//   - Retry a request only where the provider says it is safe.
package provider
