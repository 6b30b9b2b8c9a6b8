// Package apikey stores the API keys of the native API and authenticates
// bearer tokens.
//
// A key reads plk_<id>_<secret>: the id (16 hex characters) finds the row,
// the secret (256 bits, base64url) is never stored — only its SHA-256,
// compared in constant time. Keys have a scope ("full" = read and write,
// "read" = GET/HEAD only), can be revoked, and record when they were last
// used (written at most once a minute per key, so authentication stays a
// read).
//
// The table lives in the same SQL database as the event store (PostgreSQL
// or SQLite). Lookups are cached for one second: a revocation takes effect
// within that second, in every process.
package apikey
