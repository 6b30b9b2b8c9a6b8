package httpapi

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/payledger/payledger/adapters/problem"
	"github.com/payledger/payledger/domain/invoice"
	"github.com/payledger/payledger/eventstore"
	"github.com/payledger/payledger/ledger"
)

// PositionLocator finds where an event sits in the global order. The SQL
// event stores implement it; GET /v1/events needs it to resume after an
// event id.
type PositionLocator interface {
	PositionOf(ctx context.Context, eventID string) (eventstore.Position, bool, error)
}

// FeedEvent is one entry of GET /v1/events: an event of the ledger with
// the invoice it belongs to.
type FeedEvent struct {
	Event
	InvoiceID string `json:"invoice_id,omitempty"`
}

// publicEventID renders a stored event id (a UUID) as the API's evt_ id.
func publicEventID(storeID string) string { return "evt_" + strings.ReplaceAll(storeID, "-", "") }

// storeEventID is the inverse of publicEventID; ok is false for anything
// that is not an evt_ id.
func storeEventID(public string) (string, bool) {
	h, ok := strings.CutPrefix(public, "evt_")
	if !ok || len(h) != 32 {
		return "", false
	}
	if _, err := hex.DecodeString(h); err != nil {
		return "", false
	}
	h = strings.ToLower(h)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], true
}

func eventOf(rec eventstore.RecordedEvent, decoded invoice.Event) Event {
	var md struct {
		Hash string `json:"hash"`
	}
	_ = json.Unmarshal(rec.Metadata, &md)
	at := rec.RecordedAt.UTC()
	if decoded != nil {
		at = decoded.OccurredAt().UTC()
	}
	data := json.RawMessage(rec.Data)
	if len(data) == 0 {
		data = json.RawMessage("null")
	}
	return Event{
		ID: publicEventID(rec.ID), Object: "event", Sequence: rec.StreamVersion,
		Type: rec.Type, OccurredAt: at, Data: data, Hash: md.Hash,
	}
}

// feedScanBatch is how many events one store read fetches while filling a
// page; a type filter may have to look at several batches.
const feedScanBatch = 500

func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var bad []problem.FieldError
	limit := 20
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			bad = append(bad, problem.FieldError{Field: "limit", Message: "must be an integer from 1 to 100"})
		}
		limit = n
	}
	types := map[string]bool{}
	for _, t := range q["type"] {
		for _, one := range strings.Split(t, ",") {
			if one = strings.TrimSpace(one); one != "" {
				types[one] = true
			}
		}
	}
	var storeID string
	if v := q.Get("after"); v != "" {
		id, ok := storeEventID(v)
		if !ok {
			bad = append(bad, problem.FieldError{Field: "after", Message: "must be an event id (evt_…)"})
		}
		storeID = id
	}
	if len(bad) > 0 {
		problem.Write(w, problem.New(http.StatusBadRequest, "validation_failed", "invalid query parameters", bad...))
		return
	}
	store := s.opt.Invoices.Service().Store()
	after := eventstore.Start
	if storeID != "" {
		loc, ok := store.(PositionLocator)
		if !ok {
			problem.Respond(w, http.StatusNotImplemented, "not_supported", "this event store cannot resume the feed after an event id")
			return
		}
		pos, found, err := loc.PositionOf(r.Context(), storeID)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if !found {
			problem.Respond(w, http.StatusBadRequest, "validation_failed", "after names no event of this ledger",
				problem.FieldError{Field: "after", Message: "no such event"})
			return
		}
		after = pos
	}
	s.awaitFeed(r, store)
	out := make([]FeedEvent, 0, limit)
	more := false
	for !more {
		batch, err := store.ReadAll(r.Context(), after, feedScanBatch)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		for _, rec := range batch {
			after = rec.Position
			if len(types) > 0 && !types[rec.Type] {
				continue
			}
			if len(out) == limit {
				more = true
				break
			}
			var decoded invoice.Event
			if e, err := invoice.Decode(rec.Type, rec.Data); err == nil {
				decoded = e
			}
			fe := FeedEvent{Event: eventOf(rec, decoded)}
			fe.InvoiceID, _ = ledger.InvoiceIDFromStream(rec.Stream)
			out = append(out, fe)
		}
		if len(batch) < feedScanBatch {
			break
		}
	}
	writeJSON(w, http.StatusOK, listBody[FeedEvent]{Object: "list", Data: out, HasMore: more})
}

// awaitFeed lets a client see its own writes in the feed. The store only
// shows an event once every transaction that might commit before it has
// finished (PostgreSQL xids are cluster-wide, so an unrelated transaction
// can hold the feed back for a moment); wait, bounded, until the client's
// last write is visible. A timeout only means the page may lag.
func (s *Server) awaitFeed(r *http.Request, store eventstore.Store) {
	h, ok := store.(interface {
		Head(context.Context) (eventstore.Position, error)
	})
	if !ok {
		return
	}
	s.last.mu.Lock()
	pos, wrote := s.last.pos[scopeOf(r)]
	s.last.mu.Unlock()
	if !wrote {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), readYourWritesWait)
	defer cancel()
	for wait := time.Millisecond; ; wait = min(2*wait, 50*time.Millisecond) {
		head, err := h.Head(ctx)
		if err != nil || !head.Less(pos) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}
