// Package scheduler is the durable expiry scheduler: it expires payment
// links and invoices whose deadline has passed by executing
// invoice.ExpireLink and invoice.Expire through the ledger.
//
// It keeps no state of its own. What is due comes from a Source (the
// deadlines read model, built from events), so a restarted process picks
// up every pending deadline, and several processes may run it at once:
// the domain turns a second expiry of the same thing into no events, and
// each command carries an idempotency key derived from the deadline.
//
// Run polls at most every Interval and sleeps exactly until the earliest
// deadline when the Source can tell it (Nexter); Wake makes it look at
// once (e.g. after a restore). Tests drive Tick directly, or Run with an
// injected After and the ledger's injected clock, never with sleeps.
//
// Correctness never depends on the scheduler being on time: GET /pay and
// every payment command check expiry against the clock themselves. The
// scheduler only makes the ledger's history say so, and emits the
// link_expired / invoice.expired events webhooks and reports rely on.
package scheduler
