// Package webhook sends the ledger's events to merchant systems: the
// webhook endpoints API, request signing in the two formats of API.md
// (Standard Webhooks v1 and WooCommerce order.updated), the SSRF guard on
// target URLs, and the sender.
//
// The sender is durable by construction. The outbox projection commits a
// delivery row together with its checkpoint; the sender's poller leases due
// rows from the database and publishes them to an in-process watermill
// topic, whose router handler (with the Recoverer, Retry, PoisonQueue and
// CorrelationID middlewares) makes one HTTP attempt and records it. Every
// outcome, including the time of the next attempt, is written to the
// database before the message is acknowledged, so a crash or a restart
// loses at most a lease: the row is due again once the lease passes. The
// retry schedule of API.md (5 s … 24 h) therefore lives in next_attempt_at,
// not in memory; watermill's Retry only covers the sender's own failures
// (a database hiccup while recording), and PoisonQueue takes messages the
// sender cannot process at all, which the lease brings back later.
//
// Delivery is at least once: a process killed after the receiver answered
// but before the outcome was recorded sends that attempt again, with the
// same webhook-id, which receivers use to de-duplicate.
package webhook
