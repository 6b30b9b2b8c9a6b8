// Package sandbox is the built-in test payment provider: a hosted card
// page served by the ledger itself, with the test cards of the public API
// (4242… processed, …0002 card_declined, …9995 insufficient_funds, …3220
// a 3-D Secure challenge, any other Luhn-valid number processed).
//
// The journey: GET /pay/{token} consumes the link and calls Begin, which
// renders the card form. The token is spent from then on, so the form
// posts to a checkout session URL
//
//	/sandbox/checkout/{invoice_id}/{link_id}?sig=<HMAC>
//
// where sig is an HMAC-SHA256 under a server secret over the invoice and
// the consumed link. Only the payer who won the link ever sees that URL
// (it is never logged by us, never cached, never sent as a Referer); a
// stranger can neither compute it nor pay or view someone else's page. The
// session additionally requires the link to be consumed in the invoice's
// events, so a signature cannot open a page for a link that was not used.
//
// Every payment outcome is an event through the ledger (InitiatePayment,
// RequireAction, RecordProcessed, RecordFailed). Card numbers and CVCs are
// never stored or logged: only the brand and last four digits reach an
// event. Invalid input (a Luhn-invalid number, an expiry in the past, a
// malformed CVC) is refused on the page and writes nothing.
//
// Pages are server-rendered html/template and work without JavaScript.
// After a processed payment the payer sees a result page that links (and
// refreshes after a few seconds) to return_urls.success; after a decline
// the form is shown again with the reason, and a link to return_urls.fail.
package sandbox
