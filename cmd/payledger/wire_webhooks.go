package main

import (
	"context"

	httpapi "github.com/payledger/payledger/adapters/http"
	"github.com/payledger/payledger/adapters/pay"
	"github.com/payledger/payledger/projections"
)

// webhooksParts holds what the webhooks area shares between its projections
// and its routes.
type webhooksParts struct{}

func (a *app) webhookProjections(ctx context.Context) ([]projections.Projection, error) {
	return nil, nil
}

func (a *app) mountWebhooks(ctx context.Context, srv *httpapi.Server, providers map[string]pay.Provider) ([]func(context.Context) error, error) {
	return nil, nil
}
