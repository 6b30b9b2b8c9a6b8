// Package postgres is the PostgreSQL event store (lib/pq + sqlx), the
// production single-node backend.
//
// Open connects three pools, forces synchronous_commit=on on all, and runs
// Migrate (idempotent; the migrate subcommand may call it alone): the main
// pool for reads and DB's callers (MaxConns), the appenders' pool, whose
// sessions pin generic plans for the prepared append statements
// (AppendConns), and WriteTx's, whose sessions are marked by their
// application_name (ReadModelConns): 56 connections at most. Tables:
//
//	streams(stream_id PK, version, last_hash)
//	events(global_position identity, tx_id xid8 DEFAULT pg_current_xact_id(),
//	       stream_id, stream_version, event_id uuid UNIQUE, event_type,
//	       data json, metadata json, recorded_at,
//	       PRIMARY KEY (tx_id, global_position), UNIQUE (stream_id, stream_version))
//
// data and metadata are json, not jsonb, because the hash chain covers the
// bytes exactly as appended (json keeps them verbatim; jsonb re-formats);
// cast to jsonb in queries that need its operators.
//
// Append is one statement per attempt: for an exact version an UPDATE of
// the stream row guarded by the expected version, for a new stream an
// INSERT … ON CONFLICT DO NOTHING, joined in a CTE with the INSERT of the
// events from unnest()ed arrays. Zero rows means the check failed (or the
// ids exist: see eventstore.CheckReappend). Any and StreamExists read the
// current head and retry on conflict. The previous event's hash comes from
// a bounded in-process cache filled by Append and ReadStream, or from the
// stream row (one primary-key SELECT) on a miss. No advisory lock and no
// NOTIFY sit on the append path: both serialise writers. Appends that
// arrive while others are in flight are combined into one statement and one
// transaction (group commit, group.go); each caller still learns its own
// result, after the commit.
//
// Position is (tx_id, global_position). ReadAll returns only rows with
// tx_id below the oldest transaction still running, in (tx_id,
// global_position) order: an event that commits late is never passed
// over, at the price that a write transaction left open in the ledger's
// database holds back $all until it ends. Two kinds are exceptions: other
// databases' transactions on the same server (xids are server-wide, but
// they cannot write these tables), and WriteTx's own, whose pool is
// marked and cannot append, so read models committing beside the log do
// not stall its readers. Keep other ledger-database transactions short;
// prepared (two-phase) transactions, which no session shows, still count. The horizon is the function
// payledger_read_horizon(), which Migrate creates: a PL/pgSQL plan is
// cached per session, where the same subquery inlined into every read
// was planned again each time.
//
// ReplayAll (eventstore.Replayer) is ReadAll for long replays: it fixes
// the horizon once and streams below it, one query per 100,000 rows.
// Connections read through a 64 KiB buffer (dial.go), which replays need.
//
// Changed is an in-process broadcast after commit; other processes' appends
// are only seen by polling. DB and WriteTx let read models share the
// database.
package postgres
