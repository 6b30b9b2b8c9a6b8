// Package cardpage is the ledger's card page for CircoFlows direct card
// payments (invoices whose provider is circoflows.DirectName): the payer
// types the card on a page the ledger serves, the ledger charges it with
// the direct payment API, sends the payer to the bank when 3-D Secure is
// required, and books the outcome.
//
// The journey: GET /pay/{token} consumes the link and calls Begin, which
// renders the form. It posts to the card session
//
//	/pay/card/{invoice_id}/{link_id}?sig=<HMAC>
//
// signed, like the sandbox's checkout, over the invoice and the consumed
// link, so only the payer who opened the link can pay or look. After a
// 3-D Secure challenge the bank sends the payer back to
//
//	/pay/card/{invoice_id}/{link_id}/3ds/{payment_id}?brand=&last4=&sig=…&transaction_id=…&status=…&gateway_id=…
//
// whose signature covers everything before the bank's parameters. The
// bank's parameters prove nothing: they are passed to Confirm3DS as the
// document says, and what is booked comes from TransactionStatus.
//
// Rules it keeps, and why:
//   - The card is charged first and recorded after: a refusal before
//     CircoFlows acted (bad input, 503, a rejected request) writes
//     nothing. Once CircoFlows answered, its answer is booked
//     (InitiatePayment with the transaction id, then RecordProcessed,
//     RecordFailed or RequireAction); these answers come over our
//     authenticated request and are proof, unlike a webhook's body.
//   - Payment ids are derived (provider.PaymentID) and the reference sent
//     in the metadata is provider.Reference, so a webhook that races ahead
//     of our record lands on the same payment. When the charge was sent
//     but no answer came (circoflows.ErrOutcomeUnknown) the attempt is
//     recorded without a transaction id, so that its number is not reused
//     and its webhook still finds it; the payer is warned not to pay
//     twice. Two charges racing for one attempt number (a double submit)
//     each get their own payment: the loser moves to the next number.
//   - Before a new charge, earlier attempts still in progress (a 3-D
//     Secure page the payer left) are asked about, so that a payment that
//     went through is shown and booked instead of charged again.
//   - Card numbers and CVCs live for one request: never stored, logged or
//     echoed. Only the brand and last four digits reach an event.
//   - Pages are server-rendered html/template with the field names of the
//     sandbox (card_number, expiry, cvc, cardholder) and work without
//     JavaScript; every response carries pay.NoStore's headers.
package cardpage
