// Package providermix holds the scripted mixed run across every payment
// provider: the sandbox, WZRDPAY, Payfect, CircoFlows (hosted sessions
// and direct card payments) and the on-ramp, each against its fake
// server, through the real payer pages, callback endpoint and
// reconciliation janitor, on both stores. The run pays, declines, pays
// late, pays twice, underpays, refunds, receives an unmatched callback
// and meets a provider that contradicts the ledger; the test then checks
// that the reconciliation read model and its HTTP views show exactly the
// totals per day, currency and provider, and exactly the flags, that this
// script implies.
//
// It is a test package only: nothing here is linked into the server.
package providermix
