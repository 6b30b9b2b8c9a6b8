package onramp

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/payledger/payledger/adapters/provider"
	"github.com/payledger/payledger/domain/money"
)

var _ provider.Adapter = (*Client)(nil)

// paymentRequest is the documented body of create-or-retrieve, update and
// confirm (paymentId, invoiceId, type, someData), and the fields we add on
// create (see the package doc). discountCode and accountId are never sent.
type paymentRequest struct {
	PaymentID string `json:"paymentId,omitempty"`
	InvoiceID string `json:"invoiceId"`
	Type      string `json:"type"`
	SomeData  string `json:"someData,omitempty"`

	Amount      json.Number `json:"amount,omitempty"`
	Currency    string      `json:"currency,omitempty"`
	Description string      `json:"description,omitempty"`
	SuccessURL  string      `json:"successUrl,omitempty"`
	FailureURL  string      `json:"failureUrl,omitempty"`
	WebhookURL  string      `json:"webhookUrl,omitempty"`
}

// Create creates the platform payment for the invoice (reference) and
// returns where to send the payer. It is sent once. With type EXTERNAL and
// ExternalData configured, the payment is then updated with someData.
//
// If the platform already has a finished payment for this invoiceId
// (create-or-retrieve returns it), Created.Status is final and
// RedirectURL may be empty: the caller books that outcome after Status
// confirms it, instead of redirecting.
func (c *Client) Create(ctx context.Context, req provider.CreateRequest) (provider.Created, error) {
	const op = "create payment"
	if err := checkID(req.Reference); err != nil {
		return provider.Created{}, c.fail(op, 0, "", "reference: "+err.Error(), provider.ErrRejected)
	}
	if req.Amount.Currency().Code == "" {
		return provider.Created{}, c.fail(op, 0, "", "no amount", provider.ErrRejected)
	}
	body := paymentRequest{
		InvoiceID:   req.Reference,
		Type:        c.cfg.Type,
		Amount:      AmountNumber(req.Amount),
		Currency:    req.Amount.Currency().Code,
		Description: strings.TrimSpace(req.Description),
		SuccessURL:  req.SuccessURL,
		FailureURL:  req.FailURL,
		WebhookURL:  req.CallbackURL,
	}
	p, url, err := c.write(ctx, op, c.cfg.Paths.Payments, body, req.Reference, "", req.Amount)
	if err != nil {
		return provider.Created{}, err
	}
	if c.cfg.Type == TypeExternal && c.cfg.ExternalData != "" && !p.Status.Final() {
		_, paymentID, _ := SplitRef(p.Ref)
		up, upURL, err := c.write(ctx, "update payment", c.cfg.Paths.Update,
			paymentRequest{PaymentID: paymentID, InvoiceID: req.Reference, Type: c.cfg.Type, SomeData: c.cfg.ExternalData},
			req.Reference, paymentID, req.Amount)
		if err != nil {
			return provider.Created{}, err
		}
		p = up
		if upURL != "" {
			url = upURL
		}
	}
	if url == "" && !p.Status.Final() {
		return provider.Created{}, c.fail(op, 0, "", "answer names no checkout URL for the payer", provider.ErrBadResponse)
	}
	return provider.Created{Ref: p.Ref, Status: p.Status, RedirectURL: url}, nil
}

// write sends a create, update or confirm and reads the payment it
// answers with, which must be the invoice's (and, when known, the
// payment's) and carry the invoice's amount if it carries one.
func (c *Client) write(ctx context.Context, op, path string, body paymentRequest, reference, paymentID string, want money.Money) (provider.Payment, string, error) {
	resp, err := c.do(ctx, call{op: op, path: path, body: body})
	if err != nil {
		return provider.Payment{}, "", err
	}
	if resp.status/100 != 2 {
		return provider.Payment{}, "", c.writeError(op, resp)
	}
	p, url, err := c.readPayment(op, resp, reference, paymentID, want)
	if err != nil {
		// The platform accepted the request; what it did is not readable.
		return provider.Payment{}, "", fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
	}
	return p, url, nil
}

// readPayment parses a 2xx answer and checks it against what we asked.
func (c *Client) readPayment(op string, resp response, reference, paymentID string, want money.Money) (provider.Payment, string, error) {
	bad := func(msg string) error { return c.fail(op, resp.status, "", msg, provider.ErrBadResponse) }
	w, err := unwrap(resp.body)
	if err != nil {
		return provider.Payment{}, "", bad("unreadable answer: " + clean(err.Error(), 200))
	}
	if len(w.InvoiceID) == 0 || string(w.InvoiceID) == "null" {
		// Echoing the invoice is not documented for answers; we know it.
		w.InvoiceID = json.RawMessage(mustQuote(reference))
	}
	p, err := w.payment()
	if err != nil {
		return provider.Payment{}, "", bad(err.Error())
	}
	if p.Reference != reference {
		return provider.Payment{}, "", bad(fmt.Sprintf("answer is for invoice %q, not %q", p.Reference, reference))
	}
	gotInvoice, gotPayment, err := SplitRef(p.Ref)
	if err != nil || gotInvoice != reference {
		return provider.Payment{}, "", bad("answer has no paymentId")
	}
	if paymentID != "" && gotPayment != paymentID {
		return provider.Payment{}, "", bad(fmt.Sprintf("answer is for payment %q, not %q", gotPayment, paymentID))
	}
	if p.HasAmount && want.Currency().Code != "" &&
		(p.Amount.Currency().Code != want.Currency().Code || !p.Amount.Amount().Equal(want.Amount())) {
		return provider.Payment{}, "", bad(fmt.Sprintf("platform reports %s %s for an invoice of %s %s", p.Amount, p.Amount.Currency().Code, want, want.Currency().Code))
	}
	url, err := w.payerURL()
	if err != nil {
		return provider.Payment{}, "", bad(err.Error())
	}
	return p, url, nil
}

func mustQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// Status retrieves the payment (create-or-retrieve with its paymentId),
// retrying a bounded number of times. ref is a Ref.
func (c *Client) Status(ctx context.Context, ref string) (provider.Payment, error) {
	const op = "retrieve payment"
	invoiceID, paymentID, err := SplitRef(ref)
	if err != nil {
		return provider.Payment{}, c.fail(op, 0, "", err.Error(), provider.ErrNotFound)
	}
	resp, err := c.do(ctx, call{op: op, path: c.cfg.Paths.Payments, read: true,
		body: paymentRequest{PaymentID: paymentID, InvoiceID: invoiceID, Type: c.cfg.Type}})
	if err != nil {
		return provider.Payment{}, err
	}
	if resp.status/100 != 2 {
		return provider.Payment{}, c.apiError(op, resp)
	}
	p, _, err := c.readPayment(op, resp, invoiceID, paymentID, money.Money{})
	return p, err
}

// Update sends someData for an EXTERNAL payment and returns its state.
func (c *Client) Update(ctx context.Context, ref, someData string) (provider.Payment, error) {
	invoiceID, paymentID, err := SplitRef(ref)
	if err != nil {
		return provider.Payment{}, c.fail("update payment", 0, "", err.Error(), provider.ErrNotFound)
	}
	p, _, err := c.write(ctx, "update payment", c.cfg.Paths.Update,
		paymentRequest{PaymentID: paymentID, InvoiceID: invoiceID, Type: c.cfg.Type, SomeData: someData}, invoiceID, paymentID, money.Money{})
	return p, err
}

// Confirm asks the platform to confirm the payment (1.3 of the document)
// and returns the state it answers with. Call it after the payer came
// back through the success redirect if the platform requires an explicit
// confirmation; its answer, like Status's, comes from the platform over
// our authenticated request and may be booked.
func (c *Client) Confirm(ctx context.Context, ref string) (provider.Payment, error) {
	invoiceID, paymentID, err := SplitRef(ref)
	if err != nil {
		return provider.Payment{}, c.fail("confirm payment", 0, "", err.Error(), provider.ErrNotFound)
	}
	body := paymentRequest{PaymentID: paymentID, InvoiceID: invoiceID, Type: c.cfg.Type}
	if c.cfg.Type == TypeExternal {
		body.SomeData = c.cfg.ExternalData
	}
	p, _, err := c.write(ctx, "confirm payment", c.cfg.Paths.Confirm, body, invoiceID, paymentID, money.Money{})
	return p, err
}
