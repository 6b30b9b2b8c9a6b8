package projections

import (
	"context"
	"fmt"

	"github.com/payledger/payledger/domain/invoice"
	"github.com/payledger/payledger/eventstore"
	"github.com/payledger/payledger/ledger"
)

// StreamReader reads one stream; the event store implements it.
type StreamReader interface {
	ReadStream(ctx context.Context, stream string, from uint64) ([]eventstore.RecordedEvent, error)
}

// States keeps the latest folded state of recently seen invoices, so a
// projection applies each event with one Evolve instead of re-reading the
// stream. On a miss, or when the cached version is not the one right before
// the event (a rolled-back batch, a process restart), it re-reads the stream
// up to the event and folds. It is not safe for concurrent use: each
// projection (one runner goroutine) owns its own.
type States struct {
	r   StreamReader
	m   map[string]invoice.State
	max int
}

// NewStates returns an empty cache that re-reads through r.
func NewStates(r StreamReader) *States {
	return &States{r: r, m: map[string]invoice.State{}, max: 200_000}
}

// Reset drops every cached state.
func (c *States) Reset() { c.m = map[string]invoice.State{} }

// Step is one invoice event with the state before and after it.
type Step struct {
	InvoiceID string
	Recorded  eventstore.RecordedEvent
	Event     invoice.Event
	Before    invoice.State
	After     invoice.State
}

// Next applies e. ok is false (and nothing happens) for events that are not
// on an invoice stream.
func (c *States) Next(ctx context.Context, e eventstore.RecordedEvent) (Step, bool, error) {
	id, isInvoice := ledger.InvoiceIDFromStream(e.Stream)
	if !isInvoice {
		return Step{}, false, nil
	}
	ev, err := invoice.Decode(e.Type, e.Data)
	if err != nil {
		return Step{}, false, fmt.Errorf("%s v%d: %w", e.Stream, e.StreamVersion, err)
	}
	before, hit := c.m[id]
	if !hit || before.Version != e.StreamVersion-1 {
		before, err = c.reload(ctx, e)
		if err != nil {
			return Step{}, false, err
		}
	}
	after := invoice.Evolve(before, ev)
	if len(c.m) >= c.max {
		c.m = map[string]invoice.State{} // crude, but bounded; misses only cost a re-read
	}
	c.m[id] = after
	return Step{InvoiceID: id, Recorded: e, Event: ev, Before: before, After: after}, true, nil
}

func (c *States) reload(ctx context.Context, e eventstore.RecordedEvent) (invoice.State, error) {
	if e.StreamVersion <= 1 {
		return invoice.State{}, nil
	}
	recs, err := c.r.ReadStream(ctx, e.Stream, 1)
	if err != nil {
		return invoice.State{}, fmt.Errorf("re-read %s: %w", e.Stream, err)
	}
	var evs []invoice.Event
	for _, r := range recs {
		if r.StreamVersion >= e.StreamVersion {
			break
		}
		ev, err := invoice.Decode(r.Type, r.Data)
		if err != nil {
			return invoice.State{}, fmt.Errorf("%s v%d: %w", r.Stream, r.StreamVersion, err)
		}
		evs = append(evs, ev)
	}
	return invoice.Fold(evs...), nil
}

// Latest folds a batch and returns the final state of each invoice it
// touched, in order of first appearance, plus every step.
func (c *States) Latest(ctx context.Context, batch []eventstore.RecordedEvent) (order []string, final map[string]invoice.State, steps []Step, err error) {
	final = map[string]invoice.State{}
	for _, e := range batch {
		st, ok, err := c.Next(ctx, e)
		if err != nil {
			return nil, nil, nil, err
		}
		if !ok {
			continue
		}
		if _, seen := final[st.InvoiceID]; !seen {
			order = append(order, st.InvoiceID)
		}
		final[st.InvoiceID] = st.After
		steps = append(steps, st)
	}
	return order, final, steps, nil
}
