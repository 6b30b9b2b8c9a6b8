// Package circoflows is the client of the CircoFlows payment API: hosted
// payment sessions (the payer is redirected to the session's payment_url),
// direct card payments (a card page served by the ledger collects the card
// and calls ChargeCard; the bank's 3-D Secure page comes back through
// Confirm3DS), transaction and session status, and the signed webhooks
// payment.succeeded, payment.failed and payment.pending.
//
// Client implements provider.Adapter for hosted sessions (invoices with
// provider Name); Status also answers for direct-payment transactions
// (refs starting with "txn_"). Client.Direct is the adapter of direct
// card payments (provider DirectName) for the callbacks bridge, whose
// webhooks and reconciliation it serves; the card page that charges them
// is package cardpage.
// CircoFlows documents no refund API, so Client is not a provider.Refunder.
//
// Wire rules, from the provider's document:
//
//   - Every request carries "Authorization: Bearer <API key>".
//   - Amounts are integer minor units ("cents"): 1000 is 10.00 USD. We
//     apply the currency's ISO exponent, so 1000 is 1000 JPY and 1.000 KWD;
//     currencies with more than three decimals (crypto) are refused with
//     provider.ErrUnsupportedCurrency rather than guessed at.
//   - Errors come as {"error":{"code","message","type","decline_code"}}.
//     Card errors of a direct payment (HTTP 400, type card_error) are a
//     declined charge, not a failed call: ChargeCard returns them as a
//     failed payment so the card page can show the reason.
//   - Webhooks are signed: X-Webhook-Signature is the hex HMAC-SHA256 of
//     the raw body under the webhook secret. ParseCallback checks it in
//     constant time before it looks at the JSON and refuses anything
//     unsigned, so every Callback it returns is Verified.
//
// What the document does not say, and what we chose (all paths can be
// overridden in Config.Paths if the account's API differs):
//
//   - Only POST /api/direct-payment and GET /api/health have documented
//     paths. 3-D Secure confirmation is POST /api/direct-payment/confirm-3ds,
//     transaction status GET /api/transaction/{id}, sessions POST
//     /api/payment-session, GET /api/payment-session/{id} and POST
//     /api/payment-session/{id}/cancel.
//   - The webhook body is not shown. We read {"event": "payment.…",
//     "data": {…transaction fields of the status response…}} and also
//     accept "type" for "event".
//   - We send metadata {"reference", "invoice_id", "payment_id"}; the
//     status response and webhooks echo metadata, which is how a callback
//     finds its invoice (Payment.Reference).
//   - A session has one return_url: we send CreateRequest.SuccessURL. The
//     page behind it must ask Status for the outcome; the redirect itself
//     proves nothing.
//
// Retries: only reads (status, health) are retried, a bounded number of
// times, after a network error, 429 or 5xx. Creating a session, charging a
// card and confirming 3-D Secure are never retried: the document offers no
// idempotency key, and a repeated charge takes the payer's money twice.
// When such a request was sent but no answer came, the outcome is unknown
// and the error also wraps ErrOutcomeUnknown.
//
// Card numbers and CVVs are never logged, never put into an error and
// never kept after the request.
package circoflows
