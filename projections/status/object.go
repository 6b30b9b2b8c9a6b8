package status

import (
	"time"

	"github.com/payledger/payledger/domain/invoice"
)

// Invoice is the public invoice object of the API (and of webhook payloads,
// where it is data.object). Its JSON shape is a contract: see API.md.
type Invoice struct {
	ID             string             `json:"id"`
	Object         string             `json:"object"` // "invoice"
	Number         int64              `json:"number"`
	Status         invoice.Status     `json:"status"`
	Amount         string             `json:"amount"`
	Currency       string             `json:"currency"`
	AmountPaid     string             `json:"amount_paid"`
	AmountRefunded string             `json:"amount_refunded"`
	ReferenceID    string             `json:"reference_id,omitempty"`
	Description    string             `json:"description,omitempty"`
	Provider       string             `json:"provider"`
	Customer       invoice.Customer   `json:"customer"`
	Metadata       map[string]string  `json:"metadata"`
	LineItems      []invoice.LineItem `json:"line_items,omitempty"`
	ReturnURLs     invoice.ReturnURLs `json:"return_urls"`
	Flags          []invoice.Flag     `json:"flags"`
	CreatedAt      time.Time          `json:"created_at"`
	ExpiresAt      time.Time          `json:"expires_at"`
	PaidAt         *time.Time         `json:"paid_at"`
	UpdatedAt      time.Time          `json:"updated_at"`
	Version        uint64             `json:"version"`
}

// Refund is the public refund object.
type Refund struct {
	ID        string    `json:"id"`
	Object    string    `json:"object"` // "refund"
	InvoiceID string    `json:"invoice_id"`
	Status    string    `json:"status"` // "succeeded"
	Amount    string    `json:"amount"`
	Currency  string    `json:"currency"`
	Reason    string    `json:"reason,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// FromState renders an invoice state as the public object. Every reader of
// invoices (status projection, point-in-time reads, webhook payloads) goes
// through it, so the shapes cannot drift apart.
func FromState(s invoice.State) Invoice {
	inv := Invoice{
		ID:          s.ID,
		Object:      "invoice",
		Number:      s.Number,
		Status:      s.Status,
		Amount:      s.Amount.String(),
		Currency:    s.Amount.Currency().Code,
		AmountPaid:  s.AmountPaid.String(),
		ReferenceID: s.ReferenceID,
		Description: s.Description,
		Provider:    s.Provider,
		Customer:    s.Customer,
		Metadata:    s.Metadata,
		LineItems:   s.LineItems,
		ReturnURLs:  s.ReturnURLs,
		Flags:       []invoice.Flag{},
		CreatedAt:   s.CreatedAt.UTC(),
		ExpiresAt:   s.ExpiresAt.UTC(),
		UpdatedAt:   s.UpdatedAt.UTC(),
		Version:     s.Version,
	}
	inv.AmountRefunded = s.AmountRefunded.String()
	if inv.Metadata == nil {
		inv.Metadata = map[string]string{}
	}
	if !s.PaidAt.IsZero() {
		t := s.PaidAt.UTC()
		inv.PaidAt = &t
	}
	for _, p := range s.Payments {
		inv.Flags = append(inv.Flags, p.Flags...)
	}
	return inv
}

// RefundFromRecord renders one refund of an invoice.
func RefundFromRecord(invoiceID string, r invoice.RefundRecord) Refund {
	return Refund{
		ID: r.ID, Object: "refund", InvoiceID: invoiceID, Status: "succeeded",
		Amount: r.Amount.String(), Currency: r.Amount.Currency().Code,
		Reason: r.Reason, CreatedAt: r.At.UTC(),
	}
}
