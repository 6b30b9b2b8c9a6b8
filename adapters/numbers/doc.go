// Package numbers allocates invoice numbers (the merchant-facing order
// number, starting at 1001) in the SQL database that holds the event store:
// a sequence on PostgreSQL, a one-row counter table on SQLite.
//
// Numbers are unique and increasing but may have gaps: a number drawn for a
// create that then loses a reference_id race, or that crashes before its
// event commits, is never reused. That is what lets allocation happen
// outside the event append without a distributed transaction.
package numbers
