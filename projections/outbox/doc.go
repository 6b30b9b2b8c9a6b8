// Package outbox is the webhook outbox: the projection that turns committed
// ledger events into the published webhook events of the API contract and
// into one delivery row per subscribed endpoint, in the same transaction as
// its checkpoint. Because the rows and the checkpoint commit together, an
// event is never lost between "committed" and "queued for delivery", and
// never queued twice (idempotent by position and by the (endpoint, event)
// key).
//
// Three tables:
//   - webhook_messages: one row per published event (evt_…), holding the
//     exact request bodies of both formats (Standard Webhooks payload and
//     WooCommerce order). Bodies are a pure function of the events, so a
//     replay renders the same bytes.
//   - webhook_deliveries: one row per (endpoint, event); its id (wd_…) is
//     derived from both, so a replay lands on the same row. The delivery
//     state (status, attempts, next_attempt_at) is written by the sender.
//   - webhook_attempts: one row per attempt (status, duration, response
//     excerpt), written by the sender.
//
// Deliveries and attempts record side effects that already reached the
// outside world, so Reset leaves them alone: a rebuild re-derives the same
// delivery keys, inserts only the missing ones and never sends an event a
// second time. Which endpoints receive an event is decided by the
// Subscribers the projection is given (the endpoint store): an endpoint
// receives the events recorded while it was subscribed, a rule that depends
// only on the event's recorded time, so live processing and a replay agree.
//
// The package also holds the delivery queue operations the sender uses
// (Claim, Record, Requeue, CancelPending, List). It decides nothing about
// retry policy: the sender passes the next state in.
package outbox
