package main

import (
	"context"

	httpapi "github.com/payledger/payledger/adapters/http"
	"github.com/payledger/payledger/adapters/pay"
)

// mountExtras mounts the areas that are optional or configured separately
// (webhooks, reports, provider adapters) and returns their background jobs.
func (a *app) mountExtras(ctx context.Context, srv *httpapi.Server, providers map[string]pay.Provider) ([]func(context.Context) error, error) {
	return nil, nil
}
