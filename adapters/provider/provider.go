package provider

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/payledger/payledger/adapters/problem"
	"github.com/payledger/payledger/domain/invoice"
	"github.com/payledger/payledger/domain/money"
)

// Status is a provider's payment status mapped onto the ledger's life of a
// payment.
type Status string

const (
	StatusPending        Status = "pending"         // created, waiting for the payer
	StatusActionRequired Status = "action_required" // 3-D Secure or similar
	StatusProcessed      Status = "processed"       // money moved
	StatusFailed         Status = "failed"          // declined, expired, cancelled
)

// Final reports whether the status can no longer change by itself.
func (s Status) Final() bool { return s == StatusProcessed || s == StatusFailed }

// Payment is the provider's view of one payment.
type Payment struct {
	// Ref is the provider's identifier (cpi_…, checkout id, session id…).
	Ref string
	// Reference is what we sent the provider to find the invoice again
	// (see Reference); empty if the provider did not echo it.
	Reference string
	Status    Status
	// Amount is what the provider reports; HasAmount is false when the
	// message carried none.
	Amount    money.Money
	HasAmount bool
	// Code is the failure code (WZRDPAY resolution, "expired"…).
	Code      string
	Message   string
	ActionURL string
	// CardBrand and CardLast4 describe the card when the provider names
	// it (never more than the last four digits).
	CardBrand string
	CardLast4 string
	// Raw is the provider's own status word, for audit.
	Raw string
}

// Callback is a parsed provider notification.
type Callback struct {
	Payment
	// Verified is true only when the provider signed the body and the
	// signature checked out.
	Verified bool
}

// CreateRequest is a payment to create at the provider.
type CreateRequest struct {
	InvoiceID   string
	PaymentID   string
	Reference   string // Reference(InvoiceID, attempt): echoed back in callbacks
	Amount      money.Money
	Description string
	Customer    invoice.Customer
	SuccessURL  string
	FailURL     string
	CallbackURL string
	ExpiresAt   time.Time
}

// Created is the provider's answer to a create.
type Created struct {
	Ref    string
	Status Status
	// RedirectURL is where the payer goes with GET. Empty when only Form is
	// given.
	RedirectURL string
	Form        *Form
}

// Form is a page the payer's browser submits to the provider (WZRDPAY
// flow_data).
type Form struct {
	Action string
	Method string
	Params [][2]string
}

// Adapter is one external provider.
type Adapter interface {
	Name() string
	// Create creates the payment. Errors wrap ErrUnavailable (safe to try
	// again later), ErrRejected or ErrConflict.
	Create(ctx context.Context, req CreateRequest) (Created, error)
	// Status asks the provider for the payment's current status.
	Status(ctx context.Context, ref string) (Payment, error)
	// ParseCallback checks and parses a callback body; refusals wrap
	// ErrBadCallback.
	ParseCallback(h http.Header, body []byte) (Callback, error)
}

// Refunder is implemented by adapters whose provider documents a refund
// API. None of the current seeds does.
type Refunder interface {
	Refund(ctx context.Context, ref string, amount money.Money) error
}

// Sentinel errors; test with errors.Is.
var (
	ErrBadCallback         = errors.New("provider: callback refused")
	ErrUnavailable         = errors.New("provider: unavailable, try again later")
	ErrRejected            = errors.New("provider: request rejected")
	ErrConflict            = errors.New("provider: conflicting request")
	ErrNotFound            = errors.New("provider: payment not found")
	ErrDisabled            = errors.New("provider: not configured")
	ErrRefundUnsupported   = errors.New("provider: refunds are not supported by this provider")
	ErrBadResponse         = errors.New("provider: unreadable response")
	ErrUnsupportedCurrency = errors.New("provider: currency not supported")
)

// Error is a failed call to a provider.
type Error struct {
	Provider   string
	Op         string
	HTTPStatus int    // 0 when no response arrived
	Code       string // the provider's error code, if any
	Message    string
	Kind       error // one of the sentinels
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: %v", e.Provider, e.Op, e.Kind)
	if e.HTTPStatus != 0 {
		fmt.Fprintf(&b, " (HTTP %d)", e.HTTPStatus)
	}
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Kind }

// Problem turns a provider error into the problem+json our API answers
// with. The provider's message is included; secrets never are, because no
// adapter puts them into an Error.
func Problem(err error) *problem.Problem {
	switch {
	case errors.Is(err, ErrDisabled):
		return problem.New(http.StatusServiceUnavailable, "provider_disabled", err.Error())
	case errors.Is(err, ErrUnavailable):
		return problem.New(http.StatusBadGateway, "provider_unavailable", err.Error())
	case errors.Is(err, ErrRejected), errors.Is(err, ErrConflict), errors.Is(err, ErrUnsupportedCurrency):
		return problem.New(http.StatusBadGateway, "provider_rejected", err.Error())
	case errors.Is(err, ErrNotFound):
		return problem.New(http.StatusNotFound, "provider_payment_not_found", err.Error())
	case errors.Is(err, ErrRefundUnsupported):
		return problem.New(http.StatusConflict, "provider_refund_unsupported", err.Error())
	case errors.Is(err, ErrBadCallback):
		return problem.New(http.StatusBadRequest, "bad_callback", err.Error())
	default:
		return problem.New(http.StatusBadGateway, "provider_error", err.Error())
	}
}

// Reference is what we send a provider to find the invoice again from its
// callbacks: the invoice id, with "~attempt" from the second attempt on so
// that providers that require unique references accept a retry.
func Reference(invoiceID string, attempt int) string {
	if attempt <= 1 {
		return invoiceID
	}
	return invoiceID + "~" + strconv.Itoa(attempt)
}

// InvoiceID is the inverse of Reference.
func InvoiceID(reference string) string {
	id, _, _ := strings.Cut(reference, "~")
	return id
}

// Attempt is the attempt number a Reference carries (1 without "~n"); 0
// when the suffix is not a positive number.
func Attempt(reference string) int {
	_, n, ok := strings.Cut(reference, "~")
	if !ok {
		return 1
	}
	a, err := strconv.Atoi(n)
	if err != nil || a < 1 {
		return 0
	}
	return a
}

// PaymentID is the ledger's payment id of an invoice's attempt at an
// external provider. It is derived, not drawn, so that a callback that
// races ahead of the ledger's own record of the attempt (or follows a
// crash between the provider's create and our append) lands on the same
// payment instead of a second one that could count the money twice.
// Invoice ids are time-ordered, so these ids are too.
func PaymentID(invoiceID string, attempt int) string {
	return "pay_" + strings.TrimPrefix(invoiceID, "inv_") + "_" + strconv.Itoa(attempt)
}

// PaymentIDForReference is PaymentID of the invoice and attempt a
// Reference names; empty when the reference carries no valid attempt.
func PaymentIDForReference(reference string) string {
	n := Attempt(reference)
	id := InvoiceID(reference)
	if n == 0 || id == "" {
		return ""
	}
	return PaymentID(id, n)
}

// PaymentAttempt is the inverse of PaymentID: the attempt number, or 0
// for a payment id of another form (sandbox payments, hand-made ids).
func PaymentAttempt(invoiceID, paymentID string) int {
	rest, ok := strings.CutPrefix(paymentID, "pay_"+strings.TrimPrefix(invoiceID, "inv_")+"_")
	if !ok {
		return 0
	}
	n, err := strconv.Atoi(rest)
	if err != nil || n < 1 || strconv.Itoa(n) != rest {
		return 0
	}
	return n
}

// BadCallback wraps a parse refusal.
func BadCallback(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadCallback, fmt.Sprintf(format, args...))
}

// maxAmountText bounds the text Amount parses, and maxExponent the
// exponent of a JSON number such as 1e2: hostile input like "1e999999999"
// would otherwise make the exact decimal arithmetic build a billion-digit
// number.
const (
	maxAmountText = 64
	maxExponent   = 30
)

// Amount converts a provider's decimal text (a JSON number through
// json.Number, or a decimal string) to Money exactly. A JSON float such as
// 100.55 is read from its text, never through float64, so it stays
// exactly 100.55.
func Amount(text, currency string) (money.Money, error) {
	cur, err := money.LookupCurrency(strings.ToUpper(strings.TrimSpace(currency)))
	if err != nil {
		return money.Money{}, err
	}
	text = strings.TrimSpace(text)
	if len(text) > maxAmountText {
		return money.Money{}, fmt.Errorf("amount: %w: longer than %d characters", money.ErrInvalidAmount, maxAmountText)
	}
	d, err := decimal.NewFromString(text)
	if err != nil {
		return money.Money{}, fmt.Errorf("amount %q: %w", text, money.ErrInvalidAmount)
	}
	if e := d.Exponent(); e > maxExponent || e < -maxExponent {
		return money.Money{}, fmt.Errorf("amount %q: %w: exponent out of range", text, money.ErrInvalidAmount)
	}
	return money.New(d, cur)
}
