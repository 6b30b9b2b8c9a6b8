// Package invoice is the invoice aggregate with its payment links, payments
// and refunds, as pure functions over events:
//
//	Decide(state, command, now) → events or a refusal
//	Evolve(state, event) → state      Fold(events...) → state
//	Encode(event) → (stable name, JSON)   Decode(name, JSON) → event
//
// The lifecycle (see ARCHITECTURE.md):
//
//	invoice   open → paid → partially_refunded → refunded
//	          open → expired | cancelled
//	link      active → consumed | expired | revoked (by the next IssueLink)
//	payment   initiated → action_required → processed | failed
//
// Choices callers rely on:
//
//   - A processed payment is a fact and is never refused for the invoice's
//     state. It is counted in AmountPaid when in the invoice's currency
//     (late and duplicate payments included: AmountPaid is the money held),
//     pays an open invoice once AmountPaid reaches Amount, and is flagged:
//     late_payment (invoice expired or cancelled), duplicate_payment (already
//     paid or refunded), currency_mismatch (other currency, not counted),
//     amount_mismatch (on an open invoice, the payment differs from the
//     amount still due: an underpayment leaves the invoice open, an
//     overpayment pays it). Lateness is judged by status, not by the clock:
//     a payment recorded after ExpiresAt but before the Expire command ran
//     pays the invoice.
//   - Repeats are no-ops (no events, nil error): RecordProcessed for an
//     already processed payment, RecordFailed for a settled one, Expire on a
//     closed invoice, ExpireLink on a link that is no longer active. A
//     processed after a failed for the same payment is accepted: the
//     provider's last word on money moved wins.
//   - A link is valid on [issued, ExpiresAt): consuming it at the expiry
//     instant is refused. IssueLink clamps the link's expiry to the
//     invoice's (read the issued expiry from the LinkIssued event) and
//     refuses once the invoice is past its own expiry.
//   - Expire does not wait for payments in progress; Cancel does
//     (ErrPaymentInProgress). Expire also emits LinkExpired for the active
//     link; Cancel leaves links as they are (consuming one is refused with
//     ErrNotOpen).
//   - Refunds need the invoice's currency and a running total within
//     AmountPaid, on a paid or partially refunded invoice (which they move
//     to partially_refunded / refunded). An expired, cancelled or refunded
//     invoice still holding money (a late payment, a duplicate after a full
//     refund) also accepts refunds of that money; its status stays. Open
//     invoices refuse refunds (ErrNotPaid), even when underpaid.
//
// Rules for implementers:
//
//   - No clock, randomness or I/O here: ids, token hashes and now come in.
//   - Decide never changes its input; Evolve returns a State that shares no
//     slice or map with its input.
//   - Event names and JSON field names are stored history: never rename or
//     remove one; add optional fields only. Decode ignores unknown fields
//     so history written by newer code stays readable.
//   - Every new event type goes into Types, Encode, Decode and Evolve, and
//     gets a sample in the registry test, which round-trips every name in
//     Types.
package invoice
