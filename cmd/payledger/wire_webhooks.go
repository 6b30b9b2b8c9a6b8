package main

import (
	"context"
	"fmt"
	"time"

	httpapi "github.com/payledger/payledger/adapters/http"
	"github.com/payledger/payledger/adapters/pay"
	"github.com/payledger/payledger/adapters/webhook"
	"github.com/payledger/payledger/eventstore"
	"github.com/payledger/payledger/projections"
	"github.com/payledger/payledger/projections/outbox"
)

// webhooksParts holds what the webhooks area shares between its projections
// and its routes: the endpoint store, which the outbox projection reads to
// fan events out and the API writes.
type webhooksParts struct {
	endpoints *webhook.Store
}

func (a *app) webhookProjections(ctx context.Context) ([]projections.Projection, error) {
	st, err := webhook.NewStore(ctx, a.be, time.Now)
	if err != nil {
		return nil, err
	}
	a.webhooks.endpoints = st
	return []projections.Projection{outbox.New(a.be, st)}, nil
}

// mountWebhooks serves the endpoints API and returns the sender, woken by
// every committed outbox batch so that delivery does not wait for a poll.
func (a *app) mountWebhooks(ctx context.Context, srv *httpapi.Server, providers map[string]pay.Provider) ([]func(context.Context) error, error) {
	guard := webhook.Guard{AllowPrivate: a.cfg.AllowPrivate}
	sender, err := webhook.NewSender(webhook.SenderOptions{
		DB:         a.be,
		Endpoints:  a.webhooks.endpoints,
		Guard:      guard,
		Timeout:    a.cfg.WebhookTimeout,
		Source:     a.cfg.PublicURL + "/",
		Logger:     a.log,
		Registerer: srv.Registry(),
	})
	if err != nil {
		return nil, fmt.Errorf("webhooks: %w", err)
	}
	r := a.set.Runner(outbox.Name)
	if r == nil {
		return nil, fmt.Errorf("webhooks: the %s projection is not registered", outbox.Name)
	}
	r.OnCommit(func([]eventstore.RecordedEvent) { sender.Wake() })
	api := webhook.NewAPI(webhook.APIOptions{DB: a.be, Endpoints: a.webhooks.endpoints, Guard: guard, Wake: sender.Wake, Logger: a.log})
	srv.Mount(api.Routes)
	return []func(context.Context) error{sender.Run}, nil
}
