package main

import (
	"context"

	httpapi "github.com/payledger/payledger/adapters/http"
	"github.com/payledger/payledger/adapters/pay"
	"github.com/payledger/payledger/projections"
)

// relayParts holds what the relay area shares between its projections
// and its routes.
type relayParts struct{}

func (a *app) relayProjections(ctx context.Context) ([]projections.Projection, error) {
	return nil, nil
}

func (a *app) mountRelay(ctx context.Context, srv *httpapi.Server, providers map[string]pay.Provider) ([]func(context.Context) error, error) {
	return nil, nil
}
