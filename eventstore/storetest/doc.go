// Package storetest is the conformance suite every eventstore backend
// runs from its own tests:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) eventstore.Store { return openEmptyStore(t) })
//	}
//
// It lives in a non-test file so that backends in other packages (and
// other modules) can import it. Each subtest gets a store of its own from
// newStore and runs in parallel with the others. Reads of $all poll with a
// deadline: a store may hold back committed events while an older
// transaction is still running, which the port allows.
//
// What a backend cannot be tested for generically (PostgreSQL's held-open
// transaction, for instance) belongs in that backend's own tests.
package storetest
