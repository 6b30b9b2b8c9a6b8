package main

import (
	"context"

	httpapi "github.com/payledger/payledger/adapters/http"
	"github.com/payledger/payledger/adapters/pay"
)

// mountExtras mounts the areas that are wired in their own files (webhooks,
// reports, provider adapters, event relay) and returns their background
// jobs. Each area keeps its state in its own part of app, so the files do
// not depend on one another.
func (a *app) mountExtras(ctx context.Context, srv *httpapi.Server, providers map[string]pay.Provider) ([]func(context.Context) error, error) {
	var jobs []func(context.Context) error
	for _, mount := range []func(context.Context, *httpapi.Server, map[string]pay.Provider) ([]func(context.Context) error, error){
		a.mountReports, a.mountWebhooks, a.mountProviders, a.mountRelay,
	} {
		more, err := mount(ctx, srv, providers)
		if err != nil {
			return nil, err
		}
		jobs = append(jobs, more...)
	}
	return jobs, nil
}
