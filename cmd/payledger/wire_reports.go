package main

import (
	"context"

	httpapi "github.com/payledger/payledger/adapters/http"
	"github.com/payledger/payledger/adapters/pay"
	"github.com/payledger/payledger/adapters/reports"
	"github.com/payledger/payledger/projections"
	"github.com/payledger/payledger/projections/recon"
)

// reportsParts holds what the reports area shares between its projections
// and its routes: the reconciliation read model. (The events feed is a
// route of the API server itself.)
type reportsParts struct {
	recon *recon.Projection
}

func (a *app) reportProjections(ctx context.Context) ([]projections.Projection, error) {
	a.reports.recon = recon.New(a.be, a.be.DB())
	return []projections.Projection{a.reports.recon}, nil
}

func (a *app) mountReports(ctx context.Context, srv *httpapi.Server, providers map[string]pay.Provider) ([]func(context.Context) error, error) {
	h := reports.New(reports.Options{
		Recon: a.reports.recon,
		// A report includes everything appended before it was asked for;
		// it waits for its own read model only, not for slower ones.
		Sync:   pay.SyncTo(a.be.Head, a.set.Runner(recon.Name).WaitFor).Sync,
		Logger: a.log,
	})
	srv.Mount(h.Routes)
	return nil, nil
}
