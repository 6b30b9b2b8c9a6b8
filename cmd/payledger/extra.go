package main

import (
	"context"

	"github.com/payledger/payledger/projections"
)

// extraProjections returns the read models beyond status, links and
// deadlines, one group per area file (reconciliation, webhook outbox,
// event relay).
func (a *app) extraProjections(ctx context.Context) ([]projections.Projection, error) {
	var all []projections.Projection
	for _, group := range []func(context.Context) ([]projections.Projection, error){
		a.reportProjections, a.webhookProjections, a.relayProjections, a.auditProjections,
	} {
		ps, err := group(ctx)
		if err != nil {
			return nil, err
		}
		all = append(all, ps...)
	}
	return all, nil
}
