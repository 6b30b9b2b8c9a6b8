// Package wzrdpay is the WZRDPAY adapter (seed 003): payment invoices
// created through the private JSON:API (BasicAuth public key : private
// key), the payer sent to hpp_url or to a form built from flow_data,
// callbacks treated as hints and confirmed through the private
// reconciliation endpoint.
//
// Rules:
//   - reference_id is provider.Reference(invoice, attempt); metadata carries
//     invoice_id and payment_id as well. Callbacks are matched by reference
//     and by the provider's invoice id (cpi_…).
//   - Amounts are JSON numbers on the wire ("float format"); they are
//     written from the decimal text and read through json.Number, so
//     100.55 stays exactly 100.55 both ways.
//   - Retries follow the seed's table of HTTP codes: after a 5xx or a
//     timeout on create, the status is checked by reference_id and the
//     create is repeated only when the check says no transaction exists
//     (if the check fails too we stop: a second transaction is worse than
//     a retry page); 409 means the earlier transaction is in the body;
//     400 is checked by reference; 401/403/404/405/422 mean nothing was
//     created. GET requests are retried on 5xx. At most three attempts.
//   - The seed documents no callback signature (so no callback is ever
//     Verified), shows no callback body (we accept the invoice document
//     the APIs return, in either shape), and documents no refund endpoint
//     (the adapter is not a provider.Refunder).
package wzrdpay
