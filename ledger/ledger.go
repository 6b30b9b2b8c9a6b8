package ledger

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/payledger/payledger/domain/invoice"
	"github.com/payledger/payledger/eventstore"
)

// ErrConflict is returned when an invoice kept changing under a command for
// more than the retry budget. It is rare: every retry re-reads the stream.
var ErrConflict = errors.New("ledger: invoice changed concurrently, retries exhausted")

// maxAttempts bounds optimistic-concurrency retries. A conflict means another
// command won the version; re-deciding on the new state is always safe, but
// an unbounded loop would hide a hot-spot bug.
const maxAttempts = 8

// StreamName is the event-store stream of an invoice.
func StreamName(invoiceID string) string { return "invoice-" + invoiceID }

// InvoiceIDFromStream is the inverse of StreamName; ok is false for streams
// that are not invoices.
func InvoiceIDFromStream(stream string) (string, bool) {
	const p = "invoice-"
	if len(stream) > len(p) && stream[:len(p)] == p {
		return stream[len(p):], true
	}
	return "", false
}

// Service runs commands against invoices: load by replaying the stream,
// decide, append with the expected version, retry on conflict.
type Service struct {
	store eventstore.Store
	now   func() time.Time
}

// New builds a Service. now is the clock every decision uses; pass
// time.Now in production and a fake in tests.
func New(store eventstore.Store, now func() time.Time) *Service {
	return &Service{store: store, now: now}
}

// Store returns the event store the service writes to.
func (s *Service) Store() eventstore.Store { return s.store }

// Now returns the service clock's time.
func (s *Service) Now() time.Time { return s.now() }

// Result is what a command did.
type Result struct {
	// State is the invoice after the command (or after the earlier run of
	// the same idempotent command).
	State invoice.State
	// Events are the events this command appended; empty when the command
	// changed nothing.
	Events []invoice.Event
	// Recorded are the stored forms of Events.
	Recorded []eventstore.RecordedEvent
	// Position is the global position of the last appended event; the zero
	// Position when nothing was appended.
	Position eventstore.Position
	// Replayed is true when the command had already run under the same
	// idempotency key and its earlier result was returned.
	Replayed bool
}

// Option changes how one command is executed.
type Option func(*options)

type options struct {
	key      string
	metadata map[string]string
	// fresh: the stream is known not to exist yet (its id was minted for
	// this command), so the first attempt decides on the empty state
	// without reading it. If the id were taken after all, the append's
	// expected version fails and the next attempt reads.
	fresh bool
}

// Idempotent derives the ids of the command's events from key, so that
// running the same command again (after a lost response or a crash between
// commit and reply) returns the first run's result instead of deciding
// again.
func Idempotent(key string) Option { return func(o *options) { o.key = key } }

// WithMetadata attaches metadata (correlation id, actor) to the events.
func WithMetadata(md map[string]string) Option {
	return func(o *options) { o.metadata = md }
}

// Load replays an invoice. A missing invoice is the zero State and
// invoice.ErrNotFound.
func (s *Service) Load(ctx context.Context, invoiceID string) (invoice.State, error) {
	st, _, err := s.load(ctx, invoiceID)
	if err != nil {
		return st, err
	}
	if !st.Exists() {
		return st, fmt.Errorf("%w: %s", invoice.ErrNotFound, invoiceID)
	}
	return st, nil
}

// History returns the invoice's stored events, oldest first, decoded.
func (s *Service) History(ctx context.Context, invoiceID string) ([]eventstore.RecordedEvent, []invoice.Event, error) {
	recs, err := s.store.ReadStream(ctx, StreamName(invoiceID), 1)
	if err != nil {
		return nil, nil, err
	}
	evs := make([]invoice.Event, len(recs))
	for i, r := range recs {
		e, err := invoice.Decode(r.Type, r.Data)
		if err != nil {
			return nil, nil, fmt.Errorf("ledger: %s v%d: %w", r.Stream, r.StreamVersion, err)
		}
		evs[i] = e
	}
	return recs, evs, nil
}

// LoadAt replays an invoice up to and including the last event that
// occurred at or before t.
func (s *Service) LoadAt(ctx context.Context, invoiceID string, t time.Time) (invoice.State, error) {
	_, evs, err := s.History(ctx, invoiceID)
	if err != nil {
		return invoice.State{}, err
	}
	var st invoice.State
	for _, e := range evs {
		if e.OccurredAt().After(t) {
			break
		}
		st = invoice.Evolve(st, e)
	}
	if !st.Exists() {
		return st, fmt.Errorf("%w: %s at %s", invoice.ErrNotFound, invoiceID, t.Format(time.RFC3339))
	}
	return st, nil
}

func (s *Service) load(ctx context.Context, invoiceID string) (invoice.State, []eventstore.RecordedEvent, error) {
	recs, evs, err := s.History(ctx, invoiceID)
	if err != nil {
		return invoice.State{}, nil, err
	}
	return invoice.Fold(evs...), recs, nil
}

// Execute runs cmd against the invoice. Domain refusals come back as the
// domain's errors (test with errors.Is / errors.As); store failures are
// wrapped.
func (s *Service) Execute(ctx context.Context, invoiceID string, cmd invoice.Command, opts ...Option) (Result, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	for attempt := 0; attempt < maxAttempts; attempt++ {
		var (
			recs []eventstore.RecordedEvent
			evs  []invoice.Event
			err  error
		)
		if !o.fresh || attempt > 0 {
			if recs, evs, err = s.History(ctx, invoiceID); err != nil {
				return Result{}, err
			}
		}
		if o.key != "" {
			if r, ok := replayed(recs, evs, eventID(o.key, 0)); ok {
				return r, nil
			}
		}
		st := invoice.Fold(evs...)
		newEvents, err := invoice.Decide(st, cmd, s.now())
		if err != nil {
			return Result{State: st}, err
		}
		if len(newEvents) == 0 {
			return Result{State: st}, nil
		}
		data := make([]eventstore.EventData, len(newEvents))
		for i, e := range newEvents {
			typ, body, err := invoice.Encode(e)
			if err != nil {
				return Result{}, fmt.Errorf("ledger: encode %T: %w", e, err)
			}
			id := uuid.Must(uuid.NewV7()).String()
			if o.key != "" {
				id = eventID(o.key, i)
			}
			md, err := metadata(o)
			if err != nil {
				return Result{}, err
			}
			data[i] = eventstore.EventData{ID: id, Type: typ, Data: body, Metadata: md}
		}
		res, err := s.store.Append(ctx, StreamName(invoiceID), eventstore.Exact(st.Version), data...)
		if errors.Is(err, eventstore.ErrWrongVersion) {
			continue
		}
		if err != nil {
			return Result{}, fmt.Errorf("ledger: append to %s: %w", StreamName(invoiceID), err)
		}
		after := st
		for _, e := range newEvents {
			after = invoice.Evolve(after, e)
		}
		stored := make([]eventstore.RecordedEvent, len(data))
		for i, d := range data {
			stored[i] = eventstore.RecordedEvent{
				ID: d.ID, Stream: StreamName(invoiceID), StreamVersion: st.Version + uint64(i) + 1,
				Type: d.Type, Data: d.Data, Metadata: d.Metadata,
			}
		}
		stored[len(stored)-1].Position = res.Position
		return Result{State: after, Events: newEvents, Recorded: stored, Position: res.Position}, nil
	}
	return Result{}, fmt.Errorf("%w: %s", ErrConflict, invoiceID)
}

// replayed finds the batch an earlier run of the same idempotent command
// appended, and returns the invoice state right after it.
func replayed(recs []eventstore.RecordedEvent, evs []invoice.Event, firstID string) (Result, bool) {
	for i, r := range recs {
		if r.ID != firstID {
			continue
		}
		end := i + 1
		for end < len(recs) && isSameBatch(recs[end].ID, firstID) {
			end++
		}
		return Result{
			State:    invoice.Fold(evs[:end]...),
			Events:   evs[i:end],
			Recorded: recs[i:end],
			Position: recs[end-1].Position,
			Replayed: true,
		}, true
	}
	return Result{}, false
}

// isSameBatch reports whether id was derived from the same key as firstID.
// Derived ids share their first 12 bytes (the key's digest).
func isSameBatch(id, firstID string) bool {
	return len(id) == len(firstID) && id[:28] == firstID[:28]
}

// eventID derives a stable UUID (version 8, "custom") for the i-th event of
// an idempotent command: 12 bytes of SHA-256(key), then the index.
func eventID(key string, i int) string {
	sum := sha256.Sum256([]byte("payledger/idempotency\x00" + key))
	var u uuid.UUID
	copy(u[:12], sum[:12])
	u[12], u[13], u[14], u[15] = byte(i>>24), byte(i>>16), byte(i>>8), byte(i)
	u[6] = (u[6] & 0x0f) | 0x80 // version 8
	u[8] = (u[8] & 0x3f) | 0x80 // RFC 4122 variant
	return u.String()
}

func metadata(o options) ([]byte, error) {
	md := map[string]string{}
	for k, v := range o.metadata {
		md[k] = v
	}
	if o.key != "" {
		md["idempotency_key"] = o.key
	}
	if len(md) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(md)
	if err != nil {
		return nil, fmt.Errorf("ledger: metadata: %w", err)
	}
	return b, nil
}
