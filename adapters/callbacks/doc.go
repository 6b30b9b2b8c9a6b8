// Package callbacks drives the external provider adapters (package
// provider's Adapter): it is the pay.Provider that sends a payer from the
// one-time link to the provider's page, the POST /callbacks/{provider}
// endpoint that ingests the provider's notifications, and the janitor that
// reconciles payments the provider has gone quiet about.
//
// Rules it keeps, and why:
//   - Nothing half-written. A payment is recorded (invoice.InitiatePayment)
//     only after the provider created it; a provider error or timeout
//     leaves the ledger untouched and shows the payer a retry page. The
//     payment id and the reference sent to the provider are derived from
//     the invoice and the attempt number (provider.PaymentID, Reference),
//     so a retry, or a callback that races ahead of our own record, lands
//     on the same payment and never counts money twice.
//   - Every callback body is kept verbatim (invoice.RecordCallback) before
//     anything else, on the invoice's stream, or for a reference no invoice
//     has on "callback-<provider>-<ref>" (the reconciliation view counts
//     those as unmatched_callback). A repeated body is a no-op.
//   - Only a Verified callback is proof of money. Anything else is a hint:
//     the provider's status API is asked, and only its answer, tied to a
//     payment this invoice started (same provider reference, or the
//     provider echoing our reference), writes RecordProcessed or
//     RecordFailed. The endpoint answers 2xx only after those commits, and
//     5xx when the confirmation could not be had, so the provider retries.
//   - A stale message (a pending callback after the processed one) never
//     undoes a settled payment; the domain makes repeats no-ops. Only the
//     provider's current status (a status query) can contradict the
//     ledger, and a contradiction is flagged provider_status_mismatch
//     (invoice.RecordMismatch), never "fixed" by hand.
//   - Payer pages are HTML (pay.Style), never JSON, with no-store and
//     no-referrer headers; the routes behind them (retry, return) carry an
//     HMAC over their path so that nobody can start or inspect a payment
//     of an invoice whose link they did not open.
package callbacks
