package main

import (
	"context"

	"github.com/payledger/payledger/audit"
	"github.com/payledger/payledger/projections"
)

// auditProjections records a digest over the $all prefix every
// PAYLEDGER_AUDIT_DIGEST_EVERY events; audit verify checks them.
func (a *app) auditProjections(ctx context.Context) ([]projections.Projection, error) {
	return []projections.Projection{audit.NewDigests(a.cfg.AuditDigestEvery)}, nil
}
