// Package idempotency implements the Idempotency-Key contract of the native
// API for every POST under /v1: the same key with the same request replays
// the first response (status and body), the same key with another request
// is refused with 422, and a key whose first request is still running gets
// 409. Keys are scoped by the caller (per API key) and kept at least 7 days.
//
// Crash safety does not rest on this table alone. Handlers pass the scoped
// key (FromContext) to the ledger as ledger.Idempotent, which derives the
// ids of the events a command appends from it; a retry after a crash
// between the commit of the events and the storing of the response re-runs
// the command, finds its own events and returns the same result. Because of
// that the table may be written with asynchronous commit on PostgreSQL: a
// lost row costs a re-run, never a double effect.
//
// A request whose handler answers 5xx, or any status with Retry-After, is
// forgotten, so that the client's retry runs again instead of replaying a
// transient failure. A request
// still marked in flight after the lease (a crashed process) is taken over
// by the next retry.
//
// The table stores neither the client's key nor a readable response: rows
// are found by the SHA-256 of the scoped key, and each response is sealed
// with AES-GCM under a key derived from the scoped key. A response may
// carry a payment link's token, which is otherwise only ever stored
// hashed.
package idempotency
