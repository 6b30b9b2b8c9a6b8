package invoice

import (
	"errors"
	"fmt"
	"time"

	"github.com/payledger/payledger/domain/money"
)

// Status is the invoice status of the public API.
type Status string

const (
	StatusOpen              Status = "open"
	StatusPaid              Status = "paid"
	StatusExpired           Status = "expired"
	StatusCancelled         Status = "cancelled"
	StatusPartiallyRefunded Status = "partially_refunded"
	StatusRefunded          Status = "refunded"
)

// LinkState is the life of a one-time link.
type LinkState string

const (
	LinkStateActive   LinkState = "active"
	LinkStateConsumed LinkState = "consumed"
	LinkStateExpired  LinkState = "expired"
	LinkStateRevoked  LinkState = "revoked"
)

// PaymentStatus is the life of one payment attempt.
type PaymentStatus string

const (
	PaymentStatusInitiated      PaymentStatus = "initiated"
	PaymentStatusActionRequired PaymentStatus = "action_required"
	PaymentStatusProcessed      PaymentStatus = "processed"
	PaymentStatusFailed         PaymentStatus = "failed"
)

// Link is a one-time payment link as the invoice knows it.
type Link struct {
	ID         string
	TokenHash  string
	ExpiresAt  time.Time
	State      LinkState
	IssuedAt   time.Time
	ConsumedAt time.Time
}

// Payment is one attempt at a provider.
type Payment struct {
	ID          string
	Provider    string
	ProviderRef string
	Attempt     int
	Status      PaymentStatus
	Amount      string // as processed, in Currency; empty until processed
	Currency    string
	CardBrand   string
	CardLast4   string
	FailureCode string
	FailureMsg  string
	Flags       []Flag
	StartedAt   time.Time
	UpdatedAt   time.Time
}

// RefundRecord is one refund.
type RefundRecord struct {
	ID     string
	Amount money.Money
	Reason string
	At     time.Time
}

// State is an invoice folded from its events. The zero State is an invoice
// that does not exist yet. Fields are exported for read models; only Evolve
// changes them.
type State struct {
	ID             string
	Version        uint64 // number of events applied
	Number         int64
	Status         Status
	Amount         money.Money
	AmountPaid     money.Money // processed payments counted towards the invoice
	AmountRefunded money.Money
	ReferenceID    string
	Description    string
	Customer       Customer
	Metadata       map[string]string
	Provider       string
	LineItems      []LineItem
	ReturnURLs     ReturnURLs
	CreatedAt      time.Time
	ExpiresAt      time.Time
	PaidAt         time.Time // zero until paid
	ClosedAt       time.Time // when expired or cancelled
	UpdatedAt      time.Time // time of the last event
	Links          []Link
	Payments       []Payment
	Refunds        []RefundRecord
	Callbacks      int
}

// Exists reports whether the invoice was created.
func (s State) Exists() bool { return s.ID != "" }

// Fixed conditions a command can be refused for. Decide wraps them with
// details; test with errors.Is.
var (
	ErrNotFound             = errors.New("invoice not found")
	ErrAlreadyExists        = errors.New("invoice already exists")
	ErrNotOpen              = errors.New("invoice is not open")
	ErrPaymentInProgress    = errors.New("a payment is in progress")
	ErrLinkNotFound         = errors.New("payment link not found")
	ErrLinkUsed             = errors.New("payment link has already been used")
	ErrLinkExpired          = errors.New("payment link has expired")
	ErrLinkRevoked          = errors.New("payment link was replaced by a newer one")
	ErrNotDue               = errors.New("deadline has not passed yet")
	ErrPaymentNotFound      = errors.New("payment not found")
	ErrPaymentFinal         = errors.New("payment already settled")
	ErrNotPaid              = errors.New("invoice is not paid")
	ErrRefundExceedsPayment = errors.New("refund exceeds the amount paid")
	ErrCurrencyMismatch     = errors.New("currency differs from the invoice")
)

// ValidationError is a refused field value.
type ValidationError struct {
	Field   string
	Message string
}

func (e *ValidationError) Error() string { return fmt.Sprintf("%s: %s", e.Field, e.Message) }

// The functions below are the aggregate's whole behaviour. They are pure:
// time, ids and tokens come in through the command and now.
//
//	Decide(s, cmd, now) ([]Event, error)  refuses or returns the new events
//	Evolve(s, e) State                    applies one event
//	Fold(events...) State                 Evolve from the zero State
//
// and the registry (registry.go): Encode(Event) (type, json, error) and
// Decode(type, json) (Event, error) over the stable names above.
