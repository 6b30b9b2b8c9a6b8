// Package recon is the reconciliation read model behind
// GET /v1/reconciliation/summary and GET /v1/reconciliation/items.
//
// Two tables, both derived only from events:
//
//   - recon_items: one row per payment attempt, per refund and per
//     unmatched provider callback, with our references (invoice id,
//     number, reference_id), the provider's reference, the gross amount,
//     currency, status, the instant it happened and the flags the domain
//     raised on it (invoice.Flagged events). A callback is "unmatched" when
//     it was recorded on a stream that is not an invoice stream: the
//     provider adapters keep callbacks naming no known invoice on their own
//     streams, and every such callback is an item flagged
//     unmatched_callback.
//   - recon_summary: running totals per UTC day, currency and provider,
//     maintained incrementally from each event's before/after state
//     (projections.States) so that a rebuild over millions of events does
//     not re-scan anything. Amounts are TEXT decimals added with
//     shopspring/decimal at the currency's exponent (JPY 0, KWD 3), never
//     SQL SUM over floats.
//
// Attribution, so that every figure has exactly one home:
//
//   - invoiced, the invoice count and the counts by invoice status go to
//     the invoice's creation day, its currency and its provider; a status
//     change moves one count between statuses on that same row;
//   - paid and the payment count go to the day a payment was processed, in
//     the currency and through the provider it was processed in (late,
//     duplicate and mismatched payments included: paid is money received,
//     which is what a provider's settlement report shows);
//   - failed payments go to the day of the decline, in the invoice's
//     currency;
//   - refunded and the refund count go to the refund's day and currency,
//     through the provider of the invoice's latest processed payment (the
//     one that returns the money), or the invoice's provider;
//   - an item counts as flagged once, on the day its first flag was raised;
//     unmatched callbacks have no known currency and count on a row whose
//     currency is empty.
package recon
