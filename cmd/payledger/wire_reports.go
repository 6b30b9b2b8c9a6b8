package main

import (
	"context"

	httpapi "github.com/payledger/payledger/adapters/http"
	"github.com/payledger/payledger/adapters/pay"
	"github.com/payledger/payledger/projections"
)

// reportsParts holds what the reports area shares between its projections
// and its routes.
type reportsParts struct{}

func (a *app) reportProjections(ctx context.Context) ([]projections.Projection, error) {
	return nil, nil
}

func (a *app) mountReports(ctx context.Context, srv *httpapi.Server, providers map[string]pay.Provider) ([]func(context.Context) error, error) {
	return nil, nil
}
