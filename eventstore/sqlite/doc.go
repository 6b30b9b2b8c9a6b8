// Package sqlite is the embedded event store (modernc.org/sqlite, pure Go,
// no cgo): the default backend, so the server runs on a fresh machine with
// nothing installed.
//
// Open(ctx, path) creates the file and its directory if needed, sets WAL
// mode, synchronous=FULL (an acknowledged append survives power loss) and a
// busy timeout, and creates the tables (streams, events) if they do not
// exist; there is no separate migration step.
//
// All writes go through one connection: SQLite allows one writer at a
// time, and queueing in Go is cheaper and fairer than retrying on
// SQLITE_BUSY. Appends are group-committed: a writer goroutine takes every
// append waiting at that moment (up to 128), runs each in its own SAVEPOINT
// (a failing one is rolled back alone) and commits them with one fsync,
// answering all of them only after the commit. Because writes are
// serialised, row ids are assigned in commit order, so Position is
// {rowid, rowid} and $all needs no hold-back rule.
//
// Read models share the file: read through DB() (a query_only pool) and
// write through WriteTx, which queues with the appends on the writer. A
// second process must not append to the same file.
package sqlite
