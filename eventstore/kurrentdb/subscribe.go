package kurrentdb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/payledger/payledger/eventstore"
)

// Handler receives what a catch-up subscription delivers. Event is
// required; the others are optional.
type Handler struct {
	// Event is called for each ledger event after the start position, in
	// $all order, exactly once per Follow call (redeliveries after a
	// resubscription are filtered out by position). An error stops Follow
	// and is returned by it.
	Event func(eventstore.RecordedEvent) error
	// Checkpoint is called with a position up to which the server has
	// scanned $all past events the filter excluded (system events, other
	// prefixes). Everything at or before it has been delivered, so a
	// projection may store it as its checkpoint to restart further on.
	Checkpoint func(eventstore.Position) error
	// CaughtUp is called each time the subscription has delivered every
	// stored event and goes live (again after each resubscription).
	CaughtUp func()
}

// Subscribe is Follow with only an event handler.
func (s *Store) Subscribe(ctx context.Context, from eventstore.Position, handle func(eventstore.RecordedEvent) error) error {
	return s.Follow(ctx, from, Handler{Event: handle})
}

// Backoff between resubscription attempts.
const (
	minBackoff = 20 * time.Millisecond
	maxBackoff = 2 * time.Second
)

// Follow runs a catch-up subscription to $all from the position after
// from (Start for everything), filtered on the server to exclude system
// events, until ctx ends (it returns ctx.Err()), a handler fails (it
// returns that error) or the store is closed (ErrClosed). When the
// subscription drops it resubscribes from the last position handled or
// checkpointed, with backoff; when the client gave up discovering the
// server it builds a new one. The caller sees no gap and no duplicate.
func (s *Store) Follow(ctx context.Context, from eventstore.Position, h Handler) error {
	if h.Event == nil {
		return errors.New("eventstore/kurrentdb: Follow needs an event handler")
	}
	last, started := from, from != eventstore.Start
	filter := esdb.ExcludeSystemEventsFilter()
	if s.prefix != "" {
		filter = &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Prefixes: []string{s.prefix}}
	}
	backoff := minBackoff
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		cl, err := s.client()
		if err != nil {
			return err
		}
		opts := esdb.SubscribeToAllOptions{From: esdb.Start{}, Filter: filter, MaxSearchWindow: 32, CheckpointInterval: 1}
		if started {
			opts.From = esdb.Position{Commit: last.Commit, Prepare: last.Prepare}
		}
		sub, err := cl.SubscribeToAll(ctx, opts)
		if err != nil {
			if gaveUp(err) {
				if err := s.renew(cl); err != nil {
					return err
				}
			}
			s.logger.Warn("kurrentdb: subscribe to $all failed; retrying", "after", last.String(), "err", err)
			if err := sleep(ctx, backoff); err != nil {
				return err
			}
			backoff = min(backoff*2, maxBackoff)
			continue
		}
		dropped, err := s.deliver(sub, h, &last, &started, &backoff)
		sub.Close()
		if err != nil {
			return err
		}
		if ctx.Err() == nil {
			s.logger.Warn("kurrentdb: subscription dropped; resubscribing", "after", last.String(), "err", dropped)
			if err := sleep(ctx, backoff); err != nil {
				return err
			}
			backoff = min(backoff*2, maxBackoff)
		}
	}
}

// deliver reads one subscription until it drops (returning why) or a
// handler fails (returning that error as the second result).
func (s *Store) deliver(sub *esdb.Subscription, h Handler, last *eventstore.Position, started *bool, backoff *time.Duration) (dropped error, _ error) {
	for {
		ev := sub.Recv()
		switch {
		case ev.EventAppeared != nil:
			e, ok := s.convert(ev.EventAppeared)
			if !ok {
				continue
			}
			if *started && !last.Less(e.Position) {
				continue // redelivered after a resubscription
			}
			if err := h.Event(e); err != nil {
				return nil, err
			}
			*last, *started, *backoff = e.Position, true, minBackoff
		case ev.CheckPointReached != nil:
			p := eventstore.Position{Commit: ev.CheckPointReached.Commit, Prepare: ev.CheckPointReached.Prepare}
			if *started && !last.Less(p) {
				continue
			}
			if h.Checkpoint != nil {
				if err := h.Checkpoint(p); err != nil {
					return nil, err
				}
			}
			*last, *started = p, true
		case ev.CaughtUp != nil:
			*backoff = minBackoff
			if h.CaughtUp != nil {
				h.CaughtUp()
			}
		case ev.SubscriptionDropped != nil:
			return fmt.Errorf("eventstore/kurrentdb: subscription dropped: %w", ev.SubscriptionDropped.Error), nil
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
