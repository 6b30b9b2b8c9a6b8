// Package sqlite is the embedded event store (modernc.org/sqlite, pure Go,
// no cgo): the default backend, so the server runs on a fresh machine with
// nothing installed.
//
// Open(ctx, path) creates the file and its directory if needed, sets WAL
// mode, synchronous=FULL (an acknowledged append survives power loss) and a
// busy timeout, and creates the tables (streams, events) if they do not
// exist; there is no separate migration step.
//
// All writes go through one connection, serialised by a mutex in Go:
// SQLite allows one writer at a time, and queueing in Go is cheaper and
// fairer than retrying on SQLITE_BUSY. Because appends are serialised, row
// ids are assigned in commit order, so Position is {rowid, rowid} and $all
// needs no hold-back rule.
//
// Read models share the file: read through DB() (a query_only pool) and
// write through WriteTx, which queues with the appends on the writer. A
// second process must not append to the same file.
package sqlite
