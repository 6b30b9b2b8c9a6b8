package main

import (
	"context"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	httpapi "github.com/payledger/payledger/adapters/http"
	"github.com/payledger/payledger/adapters/pay"
	"github.com/payledger/payledger/projections"
	"github.com/payledger/payledger/projections/relay"
)

// relayParts is the event relay: on PostgreSQL a durable watermill-sql
// topic other services subscribe to; embedded, an in-process bus.
type relayParts struct {
	relay *relay.Relay
	// bus is the in-process publisher in embedded mode (nil on
	// PostgreSQL); in-process consumers subscribe to it.
	bus *gochannel.GoChannel
}

func (a *app) relayProjections(ctx context.Context) ([]projections.Projection, error) {
	if a.cfg.DatabaseURL != "" {
		a.relay.relay = relay.SQL(a.cfg.RelayTopic)
	} else {
		// No broker in embedded mode. Persistent is off: a bus without
		// subscribers would otherwise keep every event in memory.
		a.relay.bus = gochannel.NewGoChannel(gochannel.Config{OutputChannelBuffer: 1024}, watermill.NopLogger{})
		a.relay.relay = relay.Local(a.cfg.RelayTopic, a.relay.bus)
	}
	return []projections.Projection{a.relay.relay}, nil
}

func (a *app) mountRelay(ctx context.Context, srv *httpapi.Server, providers map[string]pay.Provider) ([]func(context.Context) error, error) {
	if a.relay.bus == nil {
		return nil, nil
	}
	bus := a.relay.bus
	return []func(context.Context) error{func(ctx context.Context) error {
		<-ctx.Done()
		return bus.Close()
	}}, nil
}
