package invoice

import (
	"time"

	"github.com/payledger/payledger/domain/money"
)

// Command is a request to change an invoice. Decide turns it into events or
// refuses it with an error.
type Command interface{ isCommand() }

// Create opens the invoice. The caller allocates ID and Number.
type Create struct {
	InvoiceID   string
	Number      int64
	Amount      money.Money
	ReferenceID string
	Description string
	Customer    Customer
	Metadata    map[string]string
	Provider    string
	LineItems   []LineItem
	ReturnURLs  ReturnURLs
	ExpiresAt   time.Time
}

// IssueLink issues a one-time link; any earlier unused link is revoked.
type IssueLink struct {
	LinkID    string
	TokenHash string // hex SHA-256 of the token
	ExpiresAt time.Time
}

// ConsumeLink spends the link whose token hashes to TokenHash.
type ConsumeLink struct{ TokenHash string }

// ExpireLink expires a link that is past its expiry and unused.
type ExpireLink struct{ LinkID string }

// Expire closes the invoice when its expiry has passed.
type Expire struct{}

// Cancel closes an open invoice with no payment in progress.
type Cancel struct{ Reason string }

// InitiatePayment starts an attempt at a provider.
type InitiatePayment struct {
	PaymentID   string
	Provider    string
	ProviderRef string
	RedirectURL string
}

// RequireAction records a 3-D Secure (or similar) challenge.
type RequireAction struct {
	PaymentID string
	Kind      string
	URL       string
}

// RecordProcessed records money received. It is never refused for the
// invoice's state (late or duplicate payments are flagged), only for
// malformed input or a repeat of the same PaymentID (then no events).
type RecordProcessed struct {
	PaymentID   string
	Provider    string
	ProviderRef string
	Amount      money.Money
	CardBrand   string
	CardLast4   string
}

// RecordFailed records a failed attempt.
type RecordFailed struct {
	PaymentID   string
	Provider    string
	ProviderRef string
	Code        string
	Message     string
}

// Refund returns part or all of the paid amount.
type Refund struct {
	RefundID string
	Amount   money.Money
	Reason   string
}

// RecordCallback keeps a provider callback verbatim.
type RecordCallback struct {
	Provider    string
	ProviderRef string
	Status      string
	Verified    bool
	Body        string
}

// RecordMismatch flags a payment whose status at the provider contradicts
// the ledger. It never changes the payment: a human decides. Repeating it
// for an already flagged payment changes nothing.
type RecordMismatch struct {
	PaymentID string
	Detail    string
}

func (RecordMismatch) isCommand() {}

func (Create) isCommand()          {}
func (IssueLink) isCommand()       {}
func (ConsumeLink) isCommand()     {}
func (ExpireLink) isCommand()      {}
func (Expire) isCommand()          {}
func (Cancel) isCommand()          {}
func (InitiatePayment) isCommand() {}
func (RequireAction) isCommand()   {}
func (RecordProcessed) isCommand() {}
func (RecordFailed) isCommand()    {}
func (Refund) isCommand()          {}
func (RecordCallback) isCommand()  {}
