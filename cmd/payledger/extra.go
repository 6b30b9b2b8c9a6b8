package main

import (
	"context"

	"github.com/payledger/payledger/projections"
)

// extraProjections returns read models beyond status, links and deadlines
// (reconciliation, webhook outbox, event relay) as their packages land.
func (a *app) extraProjections(ctx context.Context) ([]projections.Projection, error) {
	return nil, nil
}
