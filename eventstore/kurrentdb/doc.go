// Package kurrentdb is the ledger's event store on KurrentDB (formerly
// EventStoreDB), through the EventStore-Client-Go v4 gRPC client, for
// deployments that outgrow one PostgreSQL: a KurrentDB cluster is the
// distributed engine. It is selected with PAYLEDGER_EVENTSTORE_URL=esdb://…
// (or kurrentdb://…); read models stay in PostgreSQL.
//
// How the port maps onto the server:
//
//   - Versions are 1-based event counts, revisions 0-based indexes:
//     Exact(v) is revision v-1, NoStream is no_stream. Every write is sent
//     with an exact revision (or no_stream) computed from the stream's head,
//     because the hash chain needs the version each event lands at; the
//     caller's Any / StreamExists / Exact condition is checked against that
//     head first, and a stale head (the server answers WrongExpectedVersion)
//     is reloaded and the decision taken again. A WrongExpectedVersion left
//     standing becomes eventstore.ErrWrongVersion; errors are matched with
//     errors.As, never esdb.FromError, because the client wraps them.
//   - Hash chain: eventstore.ChainMetadata's output is the event's user
//     metadata; the previous hash comes from the cached head or the stream's
//     last event.
//   - Re-appends: the store reads a stream whole (ledger streams are short)
//     the first time it appends to it and keeps its ids, so an exact
//     re-append is answered with the earlier result before anything is
//     sent; the server's own idempotency on event ids backs this up when
//     another process wrote the same events meanwhile (it then answers with
//     the earlier revision and position, comparing ids only, not content).
//     An id reused in another stream is detected only among the streams
//     this process has cached: KurrentDB keys idempotency per stream.
//   - ReadStream: a missing stream is reported by the server on the first
//     Recv() and is an empty result; io.EOF ends the read; every other error
//     is returned, never an empty or partial result. A tombstoned stream
//     gives ErrStreamDeleted.
//   - ReadAll: positions are the server's (commit, prepare) pair, opaque to
//     callers; reads from a position include the event at it, so the store
//     skips it. $all shows only committed events in commit order, so nothing
//     needs holding back. System events (stream or type starting with "$")
//     are never returned.
//   - Follow / Subscribe: a catch-up subscription to $all filtered on the
//     server to exclude system events, which resubscribes from the last
//     handled or checkpointed position after SubscriptionDropped and builds
//     a new client when the old one gave up discovering the cluster (the
//     client then closes itself for good). Handlers see every event once, in
//     order.
//   - Changed is an in-process broadcast after each append through this
//     Store; other processes' appends are seen by Follow or by polling.
//
// Known limits of the client library that the store cannot fix: a call in
// flight at the moment the client gives up discovery may block until its
// context ends; a client that gave up is kept until Close rather than
// closed at once, because closing it while another call reports an error
// can panic inside the library.
//
// Tests run the conformance suite (eventstore/storetest) against the
// in-process protocol fake in internal/esdbfake, and against a real server
// when PAYLEDGER_TEST_KURRENTDB_URL is set:
//
//	PAYLEDGER_TEST_KURRENTDB_URL='esdb://127.0.0.1:2113?tls=false' go test ./eventstore/kurrentdb/ -run Conformance
//
// Rules for changing this package: keep the fake honest (it must only do
// what the server does, and its doc comment lists exactly that), and every
// new error path gets a fault in the fake and a test.
package kurrentdb
