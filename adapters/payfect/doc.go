// Package payfect is the Payfect checkouts adapter (seed 004): a checkout
// created with POST /checkouts/ (Authorization: Api-Key …) holding one
// invoice item for the amount due, the payer redirected to its url, its
// status (open, complete, expired) read back with GET /checkouts/{id}/.
//
// What the seed does not document, and what we do about it:
//   - No status endpoint: we read the checkout at /checkouts/{id}/, the
//     REST form of the create endpoint, and expect the create response's
//     shape.
//   - No callback body and no signature: a callback is the checkout object
//     (bare or under "data"), never Verified, and always confirmed through
//     the status read before money is recorded. The sample response echoes
//     clientReferenceId as null, so callbacks are matched by checkout id
//     (recorded as the payment's provider reference) as well as by
//     reference.
//   - No error format: bodies of the {"detail": "…"} or {"field": ["…"]}
//     kind are shown in our errors, anything else by its HTTP status.
//   - No idempotency for create: a failed or timed-out create is not
//     repeated (a second checkout could be paid twice); the payer's retry
//     page repeats it on demand. GET is retried on 5xx, three attempts at
//     most.
//   - No refund API: the adapter is not a provider.Refunder.
//
// Amounts are decimal strings both ways ("20.5"), converted exactly.
package payfect
