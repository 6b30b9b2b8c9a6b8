// Package eventstore is the ledger's event log port: the Store interface
// every backend implements (postgres, sqlite, kurrentdb), the event
// envelope, the optimistic-concurrency conditions, and the per-stream hash
// chain that makes tampering evident.
//
// # Rules for backends
//
//   - Pass the conformance suite in eventstore/storetest.
//   - Call Normalize on the events of every append, then ChainMetadata for
//     each event with the previous event's hash, and store the metadata it
//     returns. Store Data and the returned metadata as opaque bytes and
//     return them byte-for-byte: the hash covers those exact bytes (a
//     PostgreSQL jsonb column would re-format them, so it must not be used).
//   - An append that fails its version check writes nothing and returns an
//     error wrapping ErrWrongVersion; event ids that already exist are
//     decided by CheckReappend (earlier result or ErrDuplicateEvent).
//   - ReadAll must never return an event and later return another one
//     before it in the global order: hold back events that are not yet
//     safely ordered.
//   - Close the Changed channel after each committed append.
//
// # Hash chain
//
// The stored metadata of every event is the caller's metadata object,
// compacted (insignificant whitespace removed; members, their order and
// escapes kept; "{}" when there is none), with two members appended as its
// last ones, in this order and with no whitespace:
//
//	{<caller members>,"prev_hash":"<64 lowercase hex>","hash":"<64 lowercase hex>"}
//
// (without the comma when the caller had no members). prev_hash is the hash
// of the stream's previous event, 32 zero bytes for version 1, and
//
//	hash = SHA-256( prev_hash (32 raw bytes) ‖ N(stream) ‖ N(version) ‖ N(type) ‖ N(data) ‖ N(caller metadata) )
//
// where N(x) is the netstring of x: the byte length of x in decimal ASCII,
// ":", the bytes of x, "," — e.g. N("abc") = "3:abc,". version is decimal
// ASCII with no leading zeros ("1" for the first event), data is the event's
// Data exactly as stored and returned, and caller metadata is the stored
// metadata with its chain members cut off:
//
//	sed -E 's/,?"prev_hash":"[0-9a-f]{64}","hash":"[0-9a-f]{64}"\}$/}/'
//
// An auditor reproduces a hash with shell tools only:
//
//	n() { printf '%s:' "$(printf '%s' "$1" | LC_ALL=C wc -c | tr -d ' ')"; printf '%s,' "$1"; }
//	{ printf '%s' "$PREV_HEX" | xxd -r -p; n "$STREAM"; n "$VERSION"; n "$TYPE"; n "$DATA"; n "$CALLER_META"; } | sha256sum
//
// VerifyStream checks one stream; ChainVerifier checks every stream during a
// replay of $all. The chain proves that no event was edited, removed from
// the middle or reordered; dropping a stream's newest events is only
// visible against a head hash kept elsewhere (a published checkpoint).
package eventstore
