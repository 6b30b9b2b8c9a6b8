// Package projections turns the event log into read models.
//
// A Projection owns some tables and knows how to apply a batch of recorded
// events to them. A Runner feeds one projection from the store's global
// order ($all), starting after the projection's checkpoint, and commits the
// projection's rows and the new checkpoint in ONE transaction: a crash
// between the two is impossible, so every event takes effect exactly once
// (idempotent by position). A Set runs every projection of the process, one
// Runner each, and offers WaitFor (read-your-writes), Rebuild (drop, reset,
// replay) and Verify (replay in a rolled-back transaction and diff against
// the live rows). The runners of a Set share their work where it is the
// same: one $all read serves every runner at the same checkpoint (tail),
// and batches that become ready while another runner's transaction is
// committing are committed together in one, each behind its own checkpoint
// check (txGroup); a combined transaction that fails is rerun one batch at
// a time, so a projection's failure stays its own.
//
// Rules for implementers of Projection:
//   - write only through the *sqlx.Tx handed to Apply/Reset/Migrate, with
//     "?" placeholders passed through tx.Rebind, so one query text serves
//     PostgreSQL (lib/pq) and SQLite (modernc);
//   - times are stored as BIGINT unix microseconds and amounts as TEXT
//     decimal strings (summed with shopspring/decimal, never float), so the
//     two dialects store identical values;
//   - Apply must be deterministic in the events alone (no wall clock, no
//     randomness), otherwise a rebuild would not equal the live rows;
//   - in-memory caches are allowed but must be dropped by Reset and must
//     survive a rolled-back Apply (check stream versions, see States);
//   - Apply may share its transaction with other projections' batches:
//     no transaction-wide settings (SET LOCAL), no names another
//     projection could also use; and batches must not be modified, since
//     the runners share them;
//   - write with Exec, Upsert and DeleteIn where the statement's result is
//     not needed: in a live batch on PostgreSQL they are deferred and sent
//     together just before the commit (see deferred.go). A statement sent
//     on tx directly runs at once, ahead of what is deferred, so an Apply
//     that reads, or writes directly, rows it wrote through those helpers
//     in the same Apply calls Flush first.
package projections
