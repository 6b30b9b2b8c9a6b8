package payfect

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/payledger/payledger/adapters/provider"
)

// Name is the provider name invoices use.
const Name = "payfect"

// DefaultBaseURL is the API root of the seed's example.
const DefaultBaseURL = "https://api.payfect.finance/api/v1"

// Config is the adapter's configuration, passed in by the composition root.
type Config struct {
	APIKey string
	// BaseURL is the API root (default DefaultBaseURL).
	BaseURL string
	// Network, when set, asks for a crypto payment on that network
	// (payment_method_data, e.g. "tron"); empty lets the payer choose.
	Network string
	// Timeout bounds one HTTP attempt (default 10 s).
	Timeout    time.Duration
	HTTPClient *http.Client
}

// Client talks to Payfect.
type Client struct {
	cfg  Config
	base string
	hc   *http.Client
}

var _ provider.Adapter = (*Client)(nil)

// maxAttempts bounds GET retries.
const maxAttempts = 3

// New checks cfg. A missing API key gives provider.ErrDisabled.
func New(cfg Config) (*Client, error) {
	if cfg.APIKey == "" {
		return nil, fmt.Errorf("%w: payfect needs an API key", provider.ErrDisabled)
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: payfect base URL %q is not an http(s) URL", provider.ErrDisabled, cfg.BaseURL)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	return &Client{cfg: cfg, base: strings.TrimRight(cfg.BaseURL, "/"), hc: hc}, nil
}

// Name implements provider.Adapter.
func (c *Client) Name() string { return Name }

type createBody struct {
	ClientReferenceID string         `json:"client_reference_id"`
	Currency          string         `json:"currency"`
	InvoiceItems      []invoiceItem  `json:"invoice_items"`
	SuccessURL        string         `json:"success_url,omitempty"`
	CancelURL         string         `json:"cancel_url,omitempty"`
	CallbackURL       string         `json:"callback_url,omitempty"`
	PaymentMethodData *paymentMethod `json:"payment_method_data,omitempty"`
}

type invoiceItem struct {
	PriceData priceData `json:"price_data"`
	Quantity  int       `json:"quantity"`
}

type priceData struct {
	ProductData productData `json:"product_data"`
	Currency    string      `json:"currency"`
	UnitAmount  string      `json:"unit_amount"`
}

type productData struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
}

type paymentMethod struct {
	Type   string `json:"type"`
	Detail struct {
		Currency string `json:"currency"`
		Network  string `json:"network"`
	} `json:"paymentMethodDetail"`
}

// Create implements provider.Adapter. The whole amount due is one item of
// quantity 1, so that the checkout's total is exactly the ledger's amount
// (line items of the invoice are descriptive and may not divide evenly).
func (c *Client) Create(ctx context.Context, req provider.CreateRequest) (provider.Created, error) {
	cur := strings.ToLower(req.Amount.Currency().Code)
	name := req.Description
	if name == "" {
		name = "Invoice " + req.InvoiceID
	}
	body := createBody{
		ClientReferenceID: req.Reference,
		Currency:          cur,
		InvoiceItems: []invoiceItem{{
			PriceData: priceData{ProductData: productData{Name: name}, Currency: cur, UnitAmount: req.Amount.Amount().String()},
			Quantity:  1,
		}},
		SuccessURL:  req.SuccessURL,
		CancelURL:   req.FailURL,
		CallbackURL: req.CallbackURL,
	}
	if c.cfg.Network != "" {
		pm := &paymentMethod{Type: "cryptopaymentmethoddetail"}
		pm.Detail.Currency, pm.Detail.Network = cur, c.cfg.Network
		body.PaymentMethodData = pm
	}
	b, err := json.Marshal(body)
	if err != nil {
		return provider.Created{}, err
	}
	status, resp, err := c.do(ctx, http.MethodPost, "/checkouts/", b)
	switch {
	case err != nil || status >= 500 || status == http.StatusTooManyRequests:
		return provider.Created{}, c.fail("create", status, resp, err, provider.ErrUnavailable)
	case status == http.StatusOK || status == http.StatusCreated:
	case status == http.StatusConflict:
		return provider.Created{}, c.fail("create", status, resp, nil, provider.ErrConflict)
	default:
		return provider.Created{}, c.fail("create", status, resp, nil, provider.ErrRejected)
	}
	co, err := parseCheckout(resp)
	if err == nil && !safeURL(co.URL) {
		err = fmt.Errorf("checkout url %q is not an http(s) URL", clip(co.URL))
	}
	if err != nil {
		return provider.Created{}, &provider.Error{Provider: Name, Op: "create", HTTPStatus: status, Message: err.Error(), Kind: provider.ErrBadResponse}
	}
	p, err := co.payment()
	if err != nil {
		return provider.Created{}, &provider.Error{Provider: Name, Op: "create", HTTPStatus: status, Message: err.Error(), Kind: provider.ErrBadResponse}
	}
	return provider.Created{Ref: co.ID, Status: p.Status, RedirectURL: co.URL}, nil
}

func safeURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}

// Status implements provider.Adapter.
func (c *Client) Status(ctx context.Context, ref string) (provider.Payment, error) {
	if ref == "" || !checkoutID(ref) {
		return provider.Payment{}, &provider.Error{Provider: Name, Op: "status", Message: "malformed checkout id", Kind: provider.ErrNotFound}
	}
	var last error
	for attempt := 0; attempt < maxAttempts; attempt++ {
		if attempt > 0 {
			if err := pause(ctx, attempt); err != nil {
				return provider.Payment{}, last
			}
		}
		status, b, err := c.do(ctx, http.MethodGet, "/checkouts/"+url.PathEscape(ref)+"/", nil)
		switch {
		case err != nil || status >= 500 || status == http.StatusTooManyRequests:
			last = c.fail("status", status, b, err, provider.ErrUnavailable)
			if ctx.Err() != nil {
				return provider.Payment{}, last
			}
			continue
		case status == http.StatusNotFound:
			return provider.Payment{}, c.fail("status", status, b, nil, provider.ErrNotFound)
		case status != http.StatusOK:
			return provider.Payment{}, c.fail("status", status, b, nil, provider.ErrRejected)
		}
		co, err := parseCheckout(b)
		if err != nil {
			return provider.Payment{}, &provider.Error{Provider: Name, Op: "status", HTTPStatus: status, Message: err.Error(), Kind: provider.ErrBadResponse}
		}
		if co.ID != ref {
			return provider.Payment{}, &provider.Error{Provider: Name, Op: "status", HTTPStatus: status, Message: "asked for " + ref + ", got " + clip(co.ID), Kind: provider.ErrBadResponse}
		}
		p, err := co.payment()
		if err != nil {
			return provider.Payment{}, &provider.Error{Provider: Name, Op: "status", HTTPStatus: status, Message: err.Error(), Kind: provider.ErrBadResponse}
		}
		return p, nil
	}
	return provider.Payment{}, last
}

func pause(ctx context.Context, attempt int) error {
	t := time.NewTimer(time.Duration(attempt) * 100 * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// maxResponse bounds what we read from the provider.
const maxResponse = 1 << 20

func (c *Client) do(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Api-Key "+c.cfg.APIKey)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return resp.StatusCode, nil, err
	}
	return resp.StatusCode, b, nil
}

// fail builds the error, with the provider's message when its body is of
// the {"detail": "…"} or {"field": ["…"]} kind. The API key is never in
// it.
func (c *Client) fail(op string, status int, body []byte, err error, kind error) error {
	e := &provider.Error{Provider: Name, Op: op, HTTPStatus: status, Kind: kind}
	if err != nil {
		e.Message = err.Error()
		if errors.Is(err, context.DeadlineExceeded) {
			e.Message = "no answer within " + c.cfg.Timeout.String()
		}
		return e
	}
	var doc map[string]json.RawMessage
	if json.Unmarshal(body, &doc) != nil {
		return e
	}
	var detail string
	if raw, ok := doc["detail"]; ok && json.Unmarshal(raw, &detail) == nil {
		e.Message = clip(detail)
		return e
	}
	var parts []string
	for field, raw := range doc {
		var msgs []string
		var msg string
		switch {
		case json.Unmarshal(raw, &msgs) == nil && len(msgs) > 0:
			parts = append(parts, field+": "+clip(strings.Join(msgs, " ")))
		case json.Unmarshal(raw, &msg) == nil:
			parts = append(parts, field+": "+clip(msg))
		}
	}
	sort.Strings(parts)
	if len(parts) > 0 {
		e.Code = "validation"
	}
	e.Message = strings.Join(parts, "; ")
	return e
}
