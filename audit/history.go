package audit

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/payledger/payledger/domain/invoice"
	"github.com/payledger/payledger/eventstore"
	"github.com/payledger/payledger/ledger"
	"github.com/payledger/payledger/projections/status"
)

// Step is one event of an invoice with the invoice as it was right after.
type Step struct {
	Sequence   uint64         `json:"sequence"`
	EventID    string         `json:"event_id"`
	Type       string         `json:"type"`
	OccurredAt time.Time      `json:"occurred_at"`
	RecordedAt time.Time      `json:"recorded_at"`
	Hash       string         `json:"hash"`
	State      status.Invoice `json:"state"`
}

// History is an invoice's events, each with the state after it, and the
// state at the requested instant.
type History struct {
	InvoiceID string     `json:"invoice_id"`
	AsOf      *time.Time `json:"as_of,omitempty"`
	Steps     []Step     `json:"events"`
	// State is the invoice after the last step: now, or at AsOf.
	State status.Invoice `json:"state"`
	// Chain is "ok" when the stream's hash chain verifies, otherwise
	// where it breaks.
	Chain string `json:"chain"`
}

// LoadHistory replays the invoice. With a non-zero asOf it stops after
// the last event that occurred at or before it, exactly as the API's
// ?as_of= does (ledger.Service.LoadAt), and fails with
// invoice.ErrNotFound when the invoice did not exist yet.
func LoadHistory(ctx context.Context, svc *ledger.Service, invoiceID string, asOf time.Time) (*History, error) {
	recs, evs, err := svc.History(ctx, invoiceID)
	if err != nil {
		return nil, err
	}
	h := &History{InvoiceID: invoiceID, Steps: []Step{}, Chain: "ok"}
	if err := eventstore.VerifyStream(recs); err != nil {
		h.Chain = err.Error()
	}
	if !asOf.IsZero() {
		t := asOf.UTC()
		h.AsOf = &t
	}
	var st invoice.State
	for i, e := range evs {
		if h.AsOf != nil && e.OccurredAt().After(*h.AsOf) {
			break
		}
		st = invoice.Evolve(st, e)
		r := recs[i]
		hash := ""
		if b, err := eventstore.LastHash(r.Metadata); err == nil {
			hash = hex.EncodeToString(b)
		}
		h.Steps = append(h.Steps, Step{Sequence: r.StreamVersion, EventID: r.ID, Type: r.Type,
			OccurredAt: e.OccurredAt().UTC(), RecordedAt: r.RecordedAt.UTC(), Hash: hash, State: status.FromState(st)})
	}
	if !st.Exists() {
		if h.AsOf != nil {
			return nil, fmt.Errorf("%w: %s at %s", invoice.ErrNotFound, invoiceID, h.AsOf.Format(time.RFC3339Nano))
		}
		return nil, fmt.Errorf("%w: %s", invoice.ErrNotFound, invoiceID)
	}
	h.State = status.FromState(st)
	return h, nil
}

// WriteJSON writes the history as one indented JSON document.
func (h *History) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(h)
}

// WriteTable writes one row per event (state columns after the event) and
// the resulting state.
func (h *History) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tTYPE\tOCCURRED AT\tSTATUS\tPAID\tREFUNDED\tHASH")
	for _, s := range h.Steps {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Sequence, s.Type, s.OccurredAt.Format(time.RFC3339Nano),
			s.State.Status, s.State.AmountPaid, s.State.AmountRefunded, s.Hash)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	when := "now"
	if h.AsOf != nil {
		when = "as of " + h.AsOf.Format(time.RFC3339Nano)
	}
	s := h.State
	_, err := fmt.Fprintf(w, "\n%s %s (version %d): %s, amount %s %s, paid %s, refunded %s\nhash chain: %s\n",
		s.ID, when, s.Version, s.Status, s.Amount, s.Currency, s.AmountPaid, s.AmountRefunded, h.Chain)
	return err
}
