package outbox

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/payledger/payledger/domain/invoice"
	"github.com/payledger/payledger/projections"
	"github.com/payledger/payledger/projections/status"
)

// Published event types: the webhook contract of API.md. They are a
// versioned vocabulary of their own, not the internal event names.
const (
	InvoiceCreated       = "invoice.created"
	InvoiceLinkIssued    = "invoice.link_issued"
	InvoiceLinkConsumed  = "invoice.link_consumed"
	InvoicePaid          = "invoice.paid"
	InvoicePaymentFailed = "invoice.payment_failed"
	InvoiceExpired       = "invoice.expired"
	InvoiceCancelled     = "invoice.cancelled"
	InvoiceRefunded      = "invoice.refunded"
	InvoiceFlagged       = "invoice.flagged"
)

// published maps an internal event type to the type it is published as.
// Internal events not listed (payment.initiated, payment.processed, link
// expiry, callbacks…) are not published: the merchant learns their effect
// from the invoice events they lead to.
var published = map[string]string{
	invoice.TypeCreated:       InvoiceCreated,
	invoice.TypeLinkIssued:    InvoiceLinkIssued,
	invoice.TypeLinkConsumed:  InvoiceLinkConsumed,
	invoice.TypePaid:          InvoicePaid,
	invoice.TypePaymentFailed: InvoicePaymentFailed,
	invoice.TypeExpired:       InvoiceExpired,
	invoice.TypeCancelled:     InvoiceCancelled,
	invoice.TypeRefunded:      InvoiceRefunded,
	invoice.TypeFlagged:       InvoiceFlagged,
}

// orderUpdates are the published types a WooCommerce endpoint hears about
// as order.updated: the ones that change the order's status, payment or
// refunds. Creation and link events change nothing a WooCommerce order
// carries, so a store built against WooCommerce would see no-op updates.
var orderUpdates = map[string]bool{
	InvoicePaid: true, InvoicePaymentFailed: true, InvoiceExpired: true,
	InvoiceCancelled: true, InvoiceRefunded: true, InvoiceFlagged: true,
}

// PublishedType returns the published type of an internal event type.
func PublishedType(internal string) (string, bool) {
	t, ok := published[internal]
	return t, ok
}

// Types lists every published type (for validating endpoint filters).
func Types() []string {
	return []string{InvoiceCreated, InvoiceLinkIssued, InvoiceLinkConsumed, InvoicePaid,
		InvoicePaymentFailed, InvoiceExpired, InvoiceCancelled, InvoiceRefunded, InvoiceFlagged}
}

// IsType reports whether t is a published type.
func IsType(t string) bool {
	for _, k := range Types() {
		if k == t {
			return true
		}
	}
	return false
}

// EventID is the public id of a recorded event: the same evt_… the events
// API shows, so a receiver can look an event up.
func EventID(recordedID string) string {
	return "evt_" + strings.ReplaceAll(recordedID, "-", "")
}

// Event is the Standard Webhooks payload.
type Event struct {
	ID        string    `json:"id"`
	Type      string    `json:"type"`
	CreatedAt time.Time `json:"created_at"`
	Data      EventData `json:"data"`
}

// EventData holds the object the event is about.
type EventData struct {
	Object any `json:"object"`
}

// standardBody renders the payload of one published event: the invoice
// after the event, or for invoice.refunded the refund it records.
func standardBody(st projections.Step, typ string) ([]byte, error) {
	var obj any = status.FromState(st.After)
	if r, ok := st.Event.(invoice.Refunded); ok {
		for _, rec := range st.After.Refunds {
			if rec.ID == r.RefundID {
				obj = status.RefundFromRecord(st.InvoiceID, rec)
				break
			}
		}
	}
	return json.Marshal(Event{
		ID:        EventID(st.Recorded.ID),
		Type:      typ,
		CreatedAt: st.Event.OccurredAt().UTC(),
		Data:      EventData{Object: obj},
	})
}
