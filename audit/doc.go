// Package audit is what an auditor runs against the ledger: the history of
// one invoice with its state after every event or at any instant, a full
// verification of the log and the read models, an export an outsider can
// check with shell tools, and digests that commit to the whole history.
//
// Verify reads $all once. For every event it recomputes the hash chain of
// its stream (eventstore's canonical bytes), checks that stream versions
// run 1, 2, 3… without a gap, and folds the event's hash into a running
// digest. After the pass the streams table's heads are compared with the
// chains, because dropping a stream's newest events leaves its chain
// intact and only the head shows it. Meanwhile every read model that can
// dump its rows is rebuilt from the log inside a rolled-back transaction
// and diffed against its live rows (projections.Set.Verify), all of them
// side by side. Each finding names where to look: stream and version for
// the log, projection and row key for a read model, event count for a
// digest.
//
// A digest is D(n) = SHA-256(D(n-1) ‖ hash of event n), D(0) = 32 zero
// bytes, over $all in global order. Since every event hash commits to its
// stream's whole prefix, D(n) commits to every byte and the order of the
// first n events: an auditor who wrote down "n:D(n)" once can later prove
// that nothing before it changed, even if the attacker rewrote chains and
// heads consistently. The Digests projection records D every N events and
// at its checkpoint; Verify checks each recorded value and any the auditor
// passes in. Digests are commitments, not a cache: rebuilding the read
// models never rewrites them.
//
// The byte layout and the shell procedure are documented for auditors in
// docs/audit.md; a test runs that document's script.
package audit
