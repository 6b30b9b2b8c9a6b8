// Package ledger is the application layer: it runs invoice commands by
// loading the invoice's stream, asking the pure domain to decide, and
// appending the resulting events with the expected version. A version
// conflict means another command won; the command is re-decided on the new
// state, a bounded number of times.
//
// Nothing here reads the environment or the wall clock directly: the clock
// is passed to New so that tests and replays decide with the time they
// choose.
package ledger
