// Package onramp is the client of the on-ramp/off-ramp invoice payment
// API, used with type CHECKOUT (the payer is sent to the platform's hosted
// checkout) or EXTERNAL (to a third-party system behind the platform).
// Type PLATFORM pays from an internal platform account and is no payer
// flow of ours, so New refuses it.
//
// Client implements provider.Adapter. The document describes no refund,
// so it is not a provider.Refunder.
//
// What the document fixes, and we follow:
//
//   - The request bodies of create-or-retrieve ({paymentId?, invoiceId,
//     type}), update ({paymentId, invoiceId, type, someData}) and confirm;
//     invoiceId is what we send as provider.Reference and what comes back
//     in every webhook. We never send discountCode: a discount would make
//     the platform charge less than the invoice says.
//   - The webhooks {"payload": {paymentId, invoiceId, status, amount,
//     currency, paymentDate, externalData?}}: amount is a JSON number in
//     major units (250.00), read exactly through its text, never through
//     float64; any currency the ledger knows is accepted, crypto included,
//     with its own number of decimals, and an amount finer than that is
//     refused.
//   - The success and failure redirects carry cko-payment-session-id,
//     cko-session-id and cko-payment-id; ParseReturn reads them.
//
// What the document leaves open, and what we chose:
//
//   - Paths: POST /invoice-payments (create or retrieve), POST
//     /invoice-payments/update, POST /invoice-payments/confirm; override
//     them in Config.Paths.
//   - Authentication: none is documented; we send the configured key as
//     "Authorization: Bearer <key>".
//   - The create request also carries our amount (a JSON number with the
//     currency's exact decimals), currency, description and the success,
//     failure and webhook URLs (successUrl, failureUrl, webhookUrl): the
//     documented body alone names no amount. Whatever amount the platform
//     reports back must equal the invoice's, or Create fails.
//   - Answers are the payment's fields (those of the webhook payload) at
//     the top level or inside "payload" or "data", with the payer's URL in
//     checkoutUrl, redirectUrl, paymentUrl or url.
//   - Status words are not listed in the document. MapStatus accepts a
//     fixed vocabulary, case-insensitively (see statuses); a word outside
//     it is refused, never guessed.
//   - Webhooks are not signed: ParseCallback never sets Verified, and the
//     caller must confirm the status through Status before booking money.
//   - Retrieval needs both ids, so Payment.Ref is "<invoiceId>/<paymentId>"
//     (see Ref and SplitRef), built the same way from create answers and
//     from webhooks.
//
// Retries: only a retrieve of a known payment (Status) is repeated, a
// bounded number of times after a network error, 429 or 5xx. Create,
// update and confirm are sent once: the document does not say a repeat is
// harmless.
package onramp
