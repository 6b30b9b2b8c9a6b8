package invoice

import "time"

// Event names are part of the stored history: never rename one. They are
// stable strings, not Go type names; Registry maps them to types.
const (
	TypeCreated          = "invoice.created"
	TypeLinkIssued       = "invoice.link_issued"
	TypeLinkConsumed     = "invoice.link_consumed"
	TypeLinkExpired      = "invoice.link_expired"
	TypeExpired          = "invoice.expired"
	TypeCancelled        = "invoice.cancelled"
	TypePaid             = "invoice.paid"
	TypeFlagged          = "invoice.flagged"
	TypePaymentInitiated = "payment.initiated"
	TypeActionRequired   = "payment.action_required"
	TypePaymentProcessed = "payment.processed"
	TypePaymentFailed    = "payment.failed"
	TypeRefunded         = "payment.refunded"
	TypeCallbackReceived = "provider.callback_received"
)

// Event is one fact in an invoice's stream. Amounts are decimal strings in
// the invoice's currency unless the event says otherwise.
type Event interface {
	EventType() string
	OccurredAt() time.Time
}

// Customer is the payer as the merchant described them.
type Customer struct {
	Email   string   `json:"email,omitempty"`
	Name    string   `json:"name,omitempty"`
	Phone   string   `json:"phone,omitempty"`
	Address *Address `json:"address,omitempty"`
}

// Address is a postal address.
type Address struct {
	Line1    string `json:"line1,omitempty"`
	Line2    string `json:"line2,omitempty"`
	City     string `json:"city,omitempty"`
	Postcode string `json:"postcode,omitempty"`
	Country  string `json:"country,omitempty"`
}

// ReturnURLs are where the payer goes after the hosted page.
type ReturnURLs struct {
	Success string `json:"success,omitempty"`
	Fail    string `json:"fail,omitempty"`
}

// LineItem is what is being sold (the reset-fee endpoint fills it from the
// catalog).
type LineItem struct {
	ProductID   int64  `json:"product_id,omitempty"`
	VariationID int64  `json:"variation_id,omitempty"`
	Name        string `json:"name"`
	Quantity    int    `json:"quantity"`
	Total       string `json:"total"`
}

// Flag names a payment that needs a human (usually a refund).
type Flag string

const (
	FlagLatePayment      Flag = "late_payment"      // processed after the invoice expired or was cancelled
	FlagDuplicatePayment Flag = "duplicate_payment" // processed after the invoice was already paid
	FlagAmountMismatch   Flag = "amount_mismatch"   // processed amount differs from what was due
	FlagCurrencyMismatch Flag = "currency_mismatch" // processed in another currency
	// FlagProviderStatusMismatch: the provider's status API contradicts the
	// ledger (e.g. processed here, failed there).
	FlagProviderStatusMismatch Flag = "provider_status_mismatch"
	// FlagUnmatchedCallback: a provider callback named no known invoice or
	// payment; it is kept on the stream "callbacks-<provider>".
	FlagUnmatchedCallback Flag = "unmatched_callback"
)

// Created opens an invoice.
type Created struct {
	InvoiceID   string            `json:"invoice_id"`
	Number      int64             `json:"number"`
	Amount      string            `json:"amount"`
	Currency    string            `json:"currency"`
	ReferenceID string            `json:"reference_id,omitempty"`
	Description string            `json:"description,omitempty"`
	Customer    Customer          `json:"customer"`
	Metadata    map[string]string `json:"metadata,omitempty"`
	Provider    string            `json:"provider"`
	LineItems   []LineItem        `json:"line_items,omitempty"`
	ReturnURLs  ReturnURLs        `json:"return_urls"`
	ExpiresAt   time.Time         `json:"expires_at"`
	At          time.Time         `json:"at"`
}

// LinkIssued records a one-time payment link. Only the SHA-256 of the token
// (hex) is kept. RevokedLinkID names an earlier unused link it replaces.
type LinkIssued struct {
	LinkID        string    `json:"link_id"`
	TokenHash     string    `json:"token_hash"`
	ExpiresAt     time.Time `json:"expires_at"`
	RevokedLinkID string    `json:"revoked_link_id,omitempty"`
	At            time.Time `json:"at"`
}

// LinkConsumed records the one visit a link allows.
type LinkConsumed struct {
	LinkID string    `json:"link_id"`
	At     time.Time `json:"at"`
}

// LinkExpired records that an unused link passed its expiry.
type LinkExpired struct {
	LinkID string    `json:"link_id"`
	At     time.Time `json:"at"`
}

// Expired closes an open invoice whose expiry passed.
type Expired struct {
	At time.Time `json:"at"`
}

// Cancelled closes an open invoice on the merchant's request.
type Cancelled struct {
	Reason string    `json:"reason,omitempty"`
	At     time.Time `json:"at"`
}

// Paid records that the processed payments cover the amount due.
type Paid struct {
	PaymentID  string    `json:"payment_id"`
	AmountPaid string    `json:"amount_paid"`
	At         time.Time `json:"at"`
}

// Flagged marks a processed payment for attention. It never undoes the
// payment: money moved.
type Flagged struct {
	PaymentID string    `json:"payment_id"`
	Flag      Flag      `json:"flag"`
	Detail    string    `json:"detail,omitempty"`
	At        time.Time `json:"at"`
}

// PaymentInitiated records an attempt at a provider.
type PaymentInitiated struct {
	PaymentID   string    `json:"payment_id"`
	Provider    string    `json:"provider"`
	Attempt     int       `json:"attempt"`
	ProviderRef string    `json:"provider_ref,omitempty"`
	RedirectURL string    `json:"redirect_url,omitempty"`
	At          time.Time `json:"at"`
}

// ActionRequired records that the payer must act (3-D Secure).
type ActionRequired struct {
	PaymentID string    `json:"payment_id"`
	Kind      string    `json:"kind"` // "three_d_secure"
	URL       string    `json:"url,omitempty"`
	At        time.Time `json:"at"`
}

// PaymentProcessed is money received. Amount and Currency are what the
// provider reports, which may differ from the invoice (then it is flagged).
type PaymentProcessed struct {
	PaymentID   string    `json:"payment_id"`
	Provider    string    `json:"provider"`
	ProviderRef string    `json:"provider_ref,omitempty"`
	Amount      string    `json:"amount"`
	Currency    string    `json:"currency"`
	CardBrand   string    `json:"card_brand,omitempty"`
	CardLast4   string    `json:"card_last4,omitempty"`
	At          time.Time `json:"at"`
}

// PaymentFailed records a declined or abandoned attempt.
type PaymentFailed struct {
	PaymentID   string    `json:"payment_id"`
	Provider    string    `json:"provider"`
	ProviderRef string    `json:"provider_ref,omitempty"`
	Code        string    `json:"code"`
	Message     string    `json:"message,omitempty"`
	At          time.Time `json:"at"`
}

// Refunded records money returned to the payer.
type Refunded struct {
	RefundID string    `json:"refund_id"`
	Amount   string    `json:"amount"`
	Currency string    `json:"currency"`
	Reason   string    `json:"reason,omitempty"`
	At       time.Time `json:"at"`
}

// CallbackReceived keeps a provider callback verbatim for audit, whether or
// not it changed anything.
type CallbackReceived struct {
	Provider    string    `json:"provider"`
	ProviderRef string    `json:"provider_ref,omitempty"`
	Status      string    `json:"status,omitempty"`
	Verified    bool      `json:"verified"`
	Body        string    `json:"body"`
	At          time.Time `json:"at"`
}

func (Created) EventType() string          { return TypeCreated }
func (LinkIssued) EventType() string       { return TypeLinkIssued }
func (LinkConsumed) EventType() string     { return TypeLinkConsumed }
func (LinkExpired) EventType() string      { return TypeLinkExpired }
func (Expired) EventType() string          { return TypeExpired }
func (Cancelled) EventType() string        { return TypeCancelled }
func (Paid) EventType() string             { return TypePaid }
func (Flagged) EventType() string          { return TypeFlagged }
func (PaymentInitiated) EventType() string { return TypePaymentInitiated }
func (ActionRequired) EventType() string   { return TypeActionRequired }
func (PaymentProcessed) EventType() string { return TypePaymentProcessed }
func (PaymentFailed) EventType() string    { return TypePaymentFailed }
func (Refunded) EventType() string         { return TypeRefunded }
func (CallbackReceived) EventType() string { return TypeCallbackReceived }

func (e Created) OccurredAt() time.Time          { return e.At }
func (e LinkIssued) OccurredAt() time.Time       { return e.At }
func (e LinkConsumed) OccurredAt() time.Time     { return e.At }
func (e LinkExpired) OccurredAt() time.Time      { return e.At }
func (e Expired) OccurredAt() time.Time          { return e.At }
func (e Cancelled) OccurredAt() time.Time        { return e.At }
func (e Paid) OccurredAt() time.Time             { return e.At }
func (e Flagged) OccurredAt() time.Time          { return e.At }
func (e PaymentInitiated) OccurredAt() time.Time { return e.At }
func (e ActionRequired) OccurredAt() time.Time   { return e.At }
func (e PaymentProcessed) OccurredAt() time.Time { return e.At }
func (e PaymentFailed) OccurredAt() time.Time    { return e.At }
func (e Refunded) OccurredAt() time.Time         { return e.At }
func (e CallbackReceived) OccurredAt() time.Time { return e.At }
