package circoflows

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/payledger/payledger/adapters/provider"
	"github.com/payledger/payledger/domain/invoice"
	"github.com/payledger/payledger/domain/money"
)

// Card is what the payer typed on our card page. It lives for one request:
// nothing in this package stores, logs or returns it.
type Card struct {
	Number string // digits only, as validated by the card page
	// ExpiryMonth is 1–12 ("1", "01" or "12"); ExpiryYear is four digits
	// or two (taken as 20YY).
	ExpiryMonth string
	ExpiryYear  string
	CVV         string
}

// String hides the card so that a stray %v cannot print it.
func (c Card) String() string {
	if len(c.Number) >= 4 {
		return "card ending " + c.Number[len(c.Number)-4:]
	}
	return "card"
}

// GoString hides the card from %#v as well.
func (c Card) GoString() string { return c.String() }

// ChargeRequest is a direct card payment.
type ChargeRequest struct {
	InvoiceID   string
	PaymentID   string
	Reference   string // provider.Reference(InvoiceID, attempt)
	Amount      money.Money
	Card        Card
	Customer    invoice.Customer
	WebhookURL  string // our POST /callbacks/circoflows
	ReturnURL   string // where the bank's 3-D Secure page sends the payer back
	Description string
}

// Charge is the outcome of a direct payment or a 3-D Secure confirmation.
type Charge struct {
	provider.Payment
	// GatewayID is the gateway_transaction_id that Confirm3DS needs.
	GatewayID string
}

// cardErrors are the documented card error codes: a declined charge, not
// a failed call.
var cardErrors = map[string]bool{
	"invalid_card": true, "card_declined": true, "insufficient_funds": true,
	"expired_card": true, "invalid_cvv": true,
}

type directRequest struct {
	Amount        int64             `json:"amount"`
	Currency      string            `json:"currency"`
	PaymentMethod string            `json:"payment_method"`
	CardNumber    string            `json:"card_number"`
	ExpiryMonth   string            `json:"expiry_month"`
	ExpiryYear    string            `json:"expiry_year"`
	CVV           string            `json:"cvv"`
	CustomerInfo  *customerInfo     `json:"customer_info,omitempty"`
	Metadata      map[string]string `json:"metadata,omitempty"`
	WebhookURL    string            `json:"webhook_url,omitempty"`
	ReturnURL     string            `json:"return_url,omitempty"`
}

// ChargeCard charges a card with the direct payment API. The Charge's
// Status is
//
//   - StatusProcessed: the money moved;
//   - StatusActionRequired: send the payer to ActionURL (the bank's 3-D
//     Secure page); they come back to ReturnURL, see ParseReturn and
//     Confirm3DS;
//   - StatusFailed: declined, with the card error code in Code
//     (card_declined, insufficient_funds, expired_card, invalid_cvv,
//     invalid_card) and the provider's message for the payer.
//
// Errors wrap provider.ErrRejected (a bad request), ErrUnavailable, and
// also ErrOutcomeUnknown when the charge was sent and no usable answer
// came back — the card may have been charged; reconcile through the
// webhook or TransactionStatus, never charge again blindly. It is never
// retried.
func (c *Client) ChargeCard(ctx context.Context, req ChargeRequest) (Charge, error) {
	const op = "direct payment"
	cents, err := Cents(req.Amount)
	if err != nil {
		return Charge{}, c.amountError(op, err)
	}
	month, year, err := req.Card.check()
	if err != nil {
		return Charge{}, c.fail(op, 0, "invalid_card", err.Error(), provider.ErrRejected)
	}
	md := metadataOf(req.Reference, req.InvoiceID, req.PaymentID)
	if d := strings.TrimSpace(req.Description); d != "" {
		md["description"] = d
	}
	body := directRequest{
		Amount:        cents,
		Currency:      req.Amount.Currency().Code,
		PaymentMethod: "card",
		CardNumber:    req.Card.Number,
		ExpiryMonth:   month,
		ExpiryYear:    year,
		CVV:           req.Card.CVV,
		CustomerInfo:  customerOf(req.Customer),
		Metadata:      md,
		WebhookURL:    req.WebhookURL,
		ReturnURL:     req.ReturnURL,
	}
	resp, err := c.do(ctx, call{op: op, method: http.MethodPost, path: c.cfg.Paths.DirectPayment, body: body})
	if err != nil {
		return Charge{}, err
	}
	last4 := req.Card.Number[len(req.Card.Number)-4:]
	if resp.status == http.StatusBadRequest || resp.status == http.StatusPaymentRequired {
		if ch, ok := declined(resp); ok {
			ch.Reference, ch.CardLast4 = req.Reference, last4
			return ch, nil
		}
	}
	if resp.status/100 != 2 {
		return Charge{}, c.writeError(op, resp)
	}
	ch, err := c.readCharge(op, resp, "")
	if err != nil {
		return Charge{}, unknownIfUnreadable(err)
	}
	if ch.Reference == "" {
		ch.Reference = req.Reference
	}
	ch.CardLast4 = last4
	if err := sameAmount(ch.Payment, req.Amount); err != nil {
		return Charge{}, fmt.Errorf("%w: %w", ErrOutcomeUnknown, c.fail(op, resp.status, "", err.Error(), provider.ErrBadResponse))
	}
	return ch, nil
}

// unknownIfUnreadable marks a 2xx answer we could not read: the provider
// accepted the request, so it may have acted on it. A success:false answer
// is a plain refusal.
func unknownIfUnreadable(err error) error {
	if errors.Is(err, provider.ErrBadResponse) {
		return fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
	}
	return err
}

// declined reads a card error answer.
func declined(resp response) (Charge, bool) {
	var env envelope
	if json.Unmarshal(resp.body, &env) != nil {
		return Charge{}, false
	}
	e, ok := errorOf(env.Error)
	if !ok || (!cardErrors[e.Code] && e.Type != "card_error") {
		return Charge{}, false
	}
	code := e.Code
	if e.DeclineCode != "" {
		code = e.DeclineCode
	}
	return Charge{Payment: provider.Payment{
		Status:  provider.StatusFailed,
		Code:    clean(code, 64),
		Message: clean(e.Message, 300),
		Raw:     clean(e.Code, 64),
	}}, true
}

func (c *Client) readCharge(op string, resp response, ref string) (Charge, error) {
	var d txData
	if err := c.decodeData(op, resp, &d); err != nil {
		return Charge{}, err
	}
	if d.TransactionID == "" {
		return Charge{}, c.fail(op, resp.status, "", "answer has no transaction_id", provider.ErrBadResponse)
	}
	if ref == "" {
		ref = d.TransactionID
	}
	p, err := d.payment(ref)
	if err != nil {
		return Charge{}, c.fail(op, resp.status, "", err.Error(), provider.ErrBadResponse)
	}
	if p.Status == provider.StatusActionRequired && p.ActionURL == "" {
		return Charge{}, c.fail(op, resp.status, "", "3-D Secure required but no 3ds_url given", provider.ErrBadResponse)
	}
	return Charge{Payment: p, GatewayID: clean(d.GatewayTransactionID, 200)}, nil
}

// ThreeDSConfirmation is what the payer's browser brings back from the
// bank's 3-D Secure page (see ParseReturn). It is untrusted: CircoFlows
// decides, and the caller must check that TransactionID is the one it
// charged for this invoice.
type ThreeDSConfirmation struct {
	TransactionID string
	Status        string // success, failed or pending
	GatewayID     string
}

// Confirm3DS confirms 3-D Secure for a pending transaction and returns the
// resulting state (the documented answer carries no amount). It is never
// retried; an error wrapping ErrOutcomeUnknown means the state must be
// read with TransactionStatus.
func (c *Client) Confirm3DS(ctx context.Context, in ThreeDSConfirmation) (Charge, error) {
	const op = "confirm 3ds"
	if err := checkID(in.TransactionID); err != nil {
		return Charge{}, c.fail(op, 0, "", "transaction_id: "+err.Error(), provider.ErrRejected)
	}
	if err := checkID(in.GatewayID); err != nil {
		return Charge{}, c.fail(op, 0, "", "gateway_id: "+err.Error(), provider.ErrRejected)
	}
	switch in.Status {
	case "success", "failed", "pending":
	default:
		return Charge{}, c.fail(op, 0, "", fmt.Sprintf("3-D Secure status %q: want success, failed or pending", clean(in.Status, 40)), provider.ErrRejected)
	}
	body := map[string]string{"transaction_id": in.TransactionID, "status": in.Status, "gateway_id": in.GatewayID}
	resp, err := c.do(ctx, call{op: op, method: http.MethodPost, path: c.cfg.Paths.ConfirmThreeDS, body: body})
	if err != nil {
		return Charge{}, err
	}
	if resp.status/100 != 2 {
		return Charge{}, c.writeError(op, resp)
	}
	ch, err := c.readCharge(op, resp, in.TransactionID)
	if err != nil {
		return Charge{}, unknownIfUnreadable(err)
	}
	return ch, nil
}

// check validates the card's shape (the card page has done Luhn and
// expiry-date checks) and normalises the expiry to the documented "12" and
// "2025".
func (c Card) check() (month, year string, err error) {
	if n := len(c.Number); n < 12 || n > 19 || !digits(c.Number) {
		return "", "", fmt.Errorf("card number must be 12 to 19 digits")
	}
	if n := len(c.CVV); n < 3 || n > 4 || !digits(c.CVV) {
		return "", "", fmt.Errorf("CVV must be 3 or 4 digits")
	}
	m := strings.TrimSpace(c.ExpiryMonth)
	if len(m) == 1 {
		m = "0" + m
	}
	if len(m) != 2 || !digits(m) || m < "01" || m > "12" {
		return "", "", fmt.Errorf("expiry month must be 1 to 12")
	}
	y := strings.TrimSpace(c.ExpiryYear)
	if len(y) == 2 {
		y = "20" + y
	}
	if len(y) != 4 || !digits(y) {
		return "", "", fmt.Errorf("expiry year must be two or four digits")
	}
	return m, y, nil
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// CardFromForm builds a Card from what a card form posts: the number with
// or without spaces, the expiry as "MM/YY" or "MM/YYYY" (spaces around the
// slash allowed) and the CVV. The card page has already checked Luhn and
// the date; this only reshapes, and never echoes the number in an error.
func CardFromForm(number, expiry, cvv string) (Card, error) {
	n := strings.NewReplacer(" ", "", "-", "", "\u00a0", "").Replace(number)
	month, year, ok := strings.Cut(strings.ReplaceAll(expiry, " ", ""), "/")
	if !ok {
		return Card{}, fmt.Errorf("expiry must be MM/YY")
	}
	c := Card{Number: n, ExpiryMonth: month, ExpiryYear: year, CVV: strings.TrimSpace(cvv)}
	m, y, err := c.check()
	if err != nil {
		return Card{}, err
	}
	c.ExpiryMonth, c.ExpiryYear = m, y
	return c, nil
}

// DirectName is the provider name of invoices paid by card on the
// ledger's own card page, charged through the direct payment API. It is a
// provider of its own beside Name (hosted sessions) because the payer's
// journey differs: the ledger collects the card instead of redirecting.
const DirectName = "circoflows_direct"

// Direct is the provider.Adapter of direct card payments, for the
// callbacks bridge: webhooks about them arrive at POST
// /callbacks/circoflows_direct and are verified like any CircoFlows
// webhook, and the reconciler asks TransactionStatus. There is nothing to
// create and redirect to, so Create refuses: the card page charges with
// ChargeCard.
type Direct struct{ *Client }

var _ provider.Adapter = (*Direct)(nil)

// Direct is the client as the direct-payment adapter.
func (c *Client) Direct() *Direct { return &Direct{c} }

// Name implements provider.Adapter.
func (d *Direct) Name() string { return DirectName }

// Create implements provider.Adapter; a direct payment starts on the card
// page, never with a redirect.
func (d *Direct) Create(context.Context, provider.CreateRequest) (provider.Created, error) {
	return provider.Created{}, d.fail("create", 0, "", "direct card payments are charged on the card page", provider.ErrRejected)
}

// Status implements provider.Adapter: the transaction's state.
func (d *Direct) Status(ctx context.Context, ref string) (provider.Payment, error) {
	return d.TransactionStatus(ctx, ref)
}
