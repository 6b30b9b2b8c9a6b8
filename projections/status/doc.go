// Package status is the invoice read model behind GET /v1/invoices and
// GET /v1/invoices/{id}: one row per invoice holding the public object
// (FromState of the folded state) plus the columns the list filters use,
// and a metadata table for metadata[key]=value filters.
//
// Rows are derived only from events (see package projections for the
// rules). Readers that need their own write reflected wait on the runner
// (projections.Set.WaitFor) before calling Get/List.
package status
