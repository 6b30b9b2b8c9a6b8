package circoflows

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/payledger/payledger/adapters/provider"
	"github.com/payledger/payledger/domain/invoice"
	"github.com/payledger/payledger/domain/money"
)

var _ provider.Adapter = (*Client)(nil)

// customerInfo is the documented customer_info object.
type customerInfo struct {
	Name    string   `json:"name,omitempty"`
	Email   string   `json:"email,omitempty"`
	Phone   string   `json:"phone,omitempty"`
	Address *address `json:"address,omitempty"`
}

type address struct {
	Line1      string `json:"line1,omitempty"`
	City       string `json:"city,omitempty"`
	State      string `json:"state,omitempty"`
	PostalCode string `json:"postal_code,omitempty"`
	Country    string `json:"country,omitempty"`
}

func customerOf(c invoice.Customer) *customerInfo {
	ci := &customerInfo{Name: c.Name, Email: c.Email, Phone: c.Phone}
	if a := c.Address; a != nil {
		// The document's address has one street line.
		line := a.Line1
		if a.Line2 != "" {
			line = strings.TrimSpace(line + ", " + a.Line2)
		}
		ci.Address = &address{Line1: line, City: a.City, PostalCode: a.Postcode, Country: a.Country}
	}
	if *ci == (customerInfo{}) {
		return nil
	}
	return ci
}

func metadataOf(reference, invoiceID, paymentID string) map[string]string {
	md := map[string]string{}
	for k, v := range map[string]string{"reference": reference, "invoice_id": invoiceID, "payment_id": paymentID} {
		if v != "" {
			md[k] = v
		}
	}
	return md
}

// sessionRequest is the documented body of a hosted session create.
type sessionRequest struct {
	Amount       int64             `json:"amount"`
	Currency     string            `json:"currency"`
	Description  string            `json:"description"`
	CustomerInfo *customerInfo     `json:"customer_info,omitempty"`
	Metadata     map[string]string `json:"metadata,omitempty"`
	WebhookURL   string            `json:"webhook_url,omitempty"`
	ReturnURL    string            `json:"return_url,omitempty"`
	ExpiresAt    string            `json:"expires_at,omitempty"`
}

// Create creates a hosted payment session and returns its payment_url.
// It is not retried (see the package doc).
func (c *Client) Create(ctx context.Context, req provider.CreateRequest) (provider.Created, error) {
	const op = "create session"
	cents, err := Cents(req.Amount)
	if err != nil {
		return provider.Created{}, c.amountError(op, err)
	}
	desc := strings.TrimSpace(req.Description)
	if desc == "" {
		// description is required and shown to the payer.
		desc = "Invoice " + req.InvoiceID
	}
	body := sessionRequest{
		Amount:       cents,
		Currency:     req.Amount.Currency().Code,
		Description:  desc,
		CustomerInfo: customerOf(req.Customer),
		Metadata:     metadataOf(req.Reference, req.InvoiceID, req.PaymentID),
		WebhookURL:   req.CallbackURL,
		ReturnURL:    req.SuccessURL,
	}
	if !req.ExpiresAt.IsZero() {
		body.ExpiresAt = req.ExpiresAt.UTC().Format(time.RFC3339)
	}
	resp, err := c.do(ctx, call{op: op, method: http.MethodPost, path: c.cfg.Paths.Sessions, body: body})
	if err != nil {
		return provider.Created{}, err
	}
	if resp.status/100 != 2 {
		return provider.Created{}, c.writeError(op, resp)
	}
	var d txData
	if err := c.decodeData(op, resp, &d); err != nil {
		return provider.Created{}, err
	}
	if d.SessionID == "" {
		return provider.Created{}, c.fail(op, resp.status, "", "answer has no session_id", provider.ErrBadResponse)
	}
	if d.Status == "" {
		d.Status = "pending"
	}
	p, err := d.payment(d.SessionID)
	if err != nil {
		return provider.Created{}, c.fail(op, resp.status, "", err.Error(), provider.ErrBadResponse)
	}
	if err := sameAmount(p, req.Amount); err != nil {
		return provider.Created{}, c.fail(op, resp.status, "", err.Error(), provider.ErrBadResponse)
	}
	u, err := payerURL(d.PaymentURL)
	if err != nil {
		return provider.Created{}, c.fail(op, resp.status, "", "payment_url: "+err.Error(), provider.ErrBadResponse)
	}
	return provider.Created{Ref: p.Ref, Status: p.Status, RedirectURL: u}, nil
}

// sameAmount refuses an answer that echoes another amount than we asked
// for: the payer would be charged something the invoice does not say.
func sameAmount(p provider.Payment, want money.Money) error {
	if !p.HasAmount {
		return nil
	}
	if p.Amount.Currency().Code != want.Currency().Code || !p.Amount.Amount().Equal(want.Amount()) {
		return fmt.Errorf("provider answered %s %s for %s %s", p.Amount, p.Amount.Currency().Code, want, want.Currency().Code)
	}
	return nil
}

// Status asks for a payment's current state: a direct-payment transaction
// when ref starts with "txn_", a hosted session otherwise.
func (c *Client) Status(ctx context.Context, ref string) (provider.Payment, error) {
	if strings.HasPrefix(ref, "txn_") {
		return c.TransactionStatus(ctx, ref)
	}
	return c.SessionStatus(ctx, ref)
}

// SessionStatus asks for a hosted session. An expired session (410
// session_expired) is a failed payment with code "expired", not an error,
// so the reconciler can settle it.
func (c *Client) SessionStatus(ctx context.Context, sessionID string) (provider.Payment, error) {
	const op = "session status"
	if err := checkID(sessionID); err != nil {
		return provider.Payment{}, c.fail(op, 0, "", err.Error(), provider.ErrNotFound)
	}
	resp, err := c.do(ctx, call{op: op, method: http.MethodGet, path: c.cfg.Paths.Sessions + "/" + url.PathEscape(sessionID), read: true})
	if err != nil {
		return provider.Payment{}, err
	}
	if resp.status == http.StatusGone {
		return provider.Payment{Ref: sessionID, Status: provider.StatusFailed, Code: "expired", Message: "the payment session has expired", Raw: "session_expired"}, nil
	}
	if resp.status/100 != 2 {
		return provider.Payment{}, c.apiError(op, resp)
	}
	return c.readPayment(op, resp, sessionID)
}

// TransactionStatus asks for a direct-payment transaction.
func (c *Client) TransactionStatus(ctx context.Context, transactionID string) (provider.Payment, error) {
	const op = "transaction status"
	if err := checkID(transactionID); err != nil {
		return provider.Payment{}, c.fail(op, 0, "", err.Error(), provider.ErrNotFound)
	}
	resp, err := c.do(ctx, call{op: op, method: http.MethodGet, path: c.cfg.Paths.Transaction + "/" + url.PathEscape(transactionID), read: true})
	if err != nil {
		return provider.Payment{}, err
	}
	if resp.status/100 != 2 {
		return provider.Payment{}, c.apiError(op, resp)
	}
	return c.readPayment(op, resp, transactionID)
}

func (c *Client) readPayment(op string, resp response, ref string) (provider.Payment, error) {
	var d txData
	if err := c.decodeData(op, resp, &d); err != nil {
		return provider.Payment{}, err
	}
	p, err := d.payment(ref)
	if err != nil {
		return provider.Payment{}, c.fail(op, resp.status, "", err.Error(), provider.ErrBadResponse)
	}
	return p, nil
}

// Cancel cancels an open hosted session so that it can no longer be paid
// (before a new attempt, or when the invoice is voided). A session that
// has already expired counts as cancelled; one that is completed fails
// with provider.ErrConflict — the payer has paid and the money must be
// booked, not forgotten.
func (c *Client) Cancel(ctx context.Context, sessionID string) error {
	const op = "cancel session"
	if err := checkID(sessionID); err != nil {
		return c.fail(op, 0, "", err.Error(), provider.ErrNotFound)
	}
	resp, err := c.do(ctx, call{op: op, method: http.MethodPost, path: c.cfg.Paths.Sessions + "/" + url.PathEscape(sessionID) + "/cancel"})
	if err != nil {
		return err
	}
	switch {
	case resp.status == http.StatusGone:
		return nil
	case resp.status/100 != 2:
		return c.apiError(op, resp)
	}
	var d txData
	if err := c.decodeData(op, resp, &d); err != nil {
		return err
	}
	if st := strings.ToLower(d.Status); st != "" && st != "cancelled" && st != "canceled" {
		return c.fail(op, resp.status, "", "session is "+clean(d.Status, 40)+" after cancel", provider.ErrConflict)
	}
	return nil
}

// Health calls the documented health check; use it at start-up to find a
// wrong base URL or API key before a payer does.
func (c *Client) Health(ctx context.Context) error {
	const op = "health"
	resp, err := c.do(ctx, call{op: op, method: http.MethodGet, path: c.cfg.Paths.Health, read: true})
	if err != nil {
		return err
	}
	if resp.status != http.StatusOK {
		return c.apiError(op, resp)
	}
	return nil
}

// writeError maps the error answer of a request that changes something.
// A 5xx other than 503 may come after the provider acted, so it also wraps
// ErrOutcomeUnknown.
func (c *Client) writeError(op string, resp response) error {
	err := c.apiError(op, resp)
	if resp.status >= 500 && resp.status != http.StatusServiceUnavailable {
		return fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
	}
	return err
}

func (c *Client) amountError(op string, err error) error {
	kind := provider.ErrRejected
	if errors.Is(err, provider.ErrUnsupportedCurrency) {
		kind = provider.ErrUnsupportedCurrency
	}
	return c.fail(op, 0, "", err.Error(), kind)
}

// checkID refuses ids that cannot be one of CircoFlows' (sess_…, txn_…)
// before they reach a URL path.
func checkID(id string) error {
	if id == "" || len(id) > 200 {
		return fmt.Errorf("bad id %q", clean(id, 40))
	}
	for i := 0; i < len(id); i++ {
		if !tokenByte(id[i]) {
			return fmt.Errorf("bad id %q", clean(id, 40))
		}
	}
	return nil
}

func tokenByte(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '_' || b == '-' || b == '.' || b == ':'
}
