// Package reports serves the reconciliation views of the native API,
// GET /v1/reconciliation/summary and GET /v1/reconciliation/items, from the
// recon read model, as JSON or, for a client sending Accept: text/csv, as
// CSV with a header row. The routes are mounted on the API server
// (httpapi.Server.Mount), which authenticates them (read scope suffices)
// and rate-limits them; this package only parses queries and renders.
//
// Query semantics, since a report is only useful if its edges are exact:
//
//   - from / to take a day (YYYY-MM-DD, UTC), an RFC 3339 instant or unix
//     seconds. A day given as to is included whole; an instant given as to
//     is excluded (from <= t < to), the usual half-open range.
//   - the summary is per UTC day, so instants select the days they fall on.
//   - items are newest first; limit (1–100, default 20) and starting_after
//     / ending_before (item ids) page JSON. CSV is an export: without a
//     limit it streams every matching row.
//
// An item can carry several flags (a late payment in the wrong currency
// has two): flag is the first one raised, flags lists all of them in
// order (";"-separated in CSV), and ?flag= matches an item carrying the
// flag anywhere. Values unknown for an item (an unmatched callback has no
// invoice, amount or currency) are JSON null and empty CSV cells. The
// summary's JSON adds totals per currency over the selected rows.
//
// CSV cells that hold text from outside (merchant references, provider
// references and statuses) are neutralised against spreadsheet formula
// injection by a leading apostrophe when they start with = + - @ or a
// control character; amount columns are never altered, so a negative net
// stays a number.
//
// The events feed (GET /v1/events) belongs to the API server itself
// (adapters/http); this package's tests drive it as a client would.
package reports
