package main

import (
	"context"

	httpapi "github.com/payledger/payledger/adapters/http"
	"github.com/payledger/payledger/adapters/pay"
)

// providersParts holds what the providers area shares between its projections
// and its routes.
type providersParts struct{}

func (a *app) mountProviders(ctx context.Context, srv *httpapi.Server, providers map[string]pay.Provider) ([]func(context.Context) error, error) {
	return nil, nil
}
