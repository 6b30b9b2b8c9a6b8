// Package relay publishes every committed ledger event to a watermill
// topic, so that other services can consume the ledger without reading
// its tables.
//
// The relay is a projection: it reads $all after its checkpoint like every
// read model. On PostgreSQL it writes watermill-sql's message rows (the
// schema adapter's insert, as watermill-sql's Publisher would) inside the
// runner's transaction, one of the batch's deferred writes, so a message row exists exactly when the
// checkpoint past its event is committed — durable, and never published
// twice by a crash. In embedded (SQLite) mode there is no broker: messages
// go to an in-process watermill Publisher (typically a gochannel), and a
// crash between publishing and the checkpoint commit publishes that batch
// again on restart. Either way the message UUID is the event id, so a
// consumer that de-duplicates by UUID sees every event exactly once.
//
// A rebuild of the relay publishes the whole history again (the same
// UUIDs); consumers that de-duplicate are unaffected.
package relay
