// Package httpapi is the HTTP face of payledger: the native /v1 API of
// API.md (invoices, payment links, refunds), health and metrics, and the
// middleware every /v1 route gets — Bearer API-key auth with scopes,
// Idempotency-Key handling for POST, per-key rate limiting, the 1 MB body
// limit, panic recovery, request logging and Prometheus metrics.
//
// Other areas mount their routes on the server's mux with Mount (each
// exposes Routes(*http.ServeMux)); whatever they register under /v1/ gets
// the same middleware, so their handlers never re-implement auth,
// idempotency or limits. Routes outside /v1/ (/pay/, /sandbox/,
// /callbacks/, /wp-json/) are public: only the body limit, recovery,
// logging, metrics and the per-IP limit on /pay/ apply.
//
// Handlers stay thin: decode (strictly: unknown fields, wrong types and
// trailing data are 400s with the field named) → ledger command → map the
// domain error to a stable code → encode. Bad input never yields a 500.
package httpapi
