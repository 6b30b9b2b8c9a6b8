// Package pay serves the payer's entry point, GET /pay/{token}: the
// one-time payment link.
//
// The handler hashes the token, finds the invoice through a LinkIndex (the
// links read model), checks the link against the invoice's own events and
// the server's clock, and spends it with invoice.ConsumeLink through the
// ledger. The domain refuses a second consumption and the event store's
// optimistic append lets exactly one of any number of concurrent first
// visits win; every loser re-decides on the new state and gets a 410 page.
//
// The winner is handed to the Provider registered under the invoice's
// provider name (the sandbox renders its hosted page; external providers
// redirect). A link is consumed only when that provider is configured: a
// missing provider is an operator error and must not burn the payer's link.
//
// Rules for implementers of Provider: Begin runs after the link is spent,
// so it must not rely on the token again; it answers the request itself
// (200 page or redirect) and reports its own failures as an HTML page, never
// as JSON. The headers Cache-Control: no-store and Referrer-Policy:
// no-referrer are already set when Begin is called; keep them.
package pay
