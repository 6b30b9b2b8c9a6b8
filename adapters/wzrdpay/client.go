package wzrdpay

import (
	"bytes"
	"context"
	"encoding/json"
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
const Name = "wzrdpay"

// Config is the adapter's configuration, passed in by the composition root.
type Config struct {
	// PublicKey and PrivateKey are the account's keys; the private API is
	// called with BasicAuth PublicKey:PrivateKey.
	PublicKey  string
	PrivateKey string
	// BaseURL is the API root; the private API lives under BaseURL+"/api".
	BaseURL string
	// Service overrides the service code; default payment_card_<cur>_hpp.
	Service  string
	TestMode bool
	// Timeout bounds one HTTP attempt (default 10s).
	Timeout time.Duration
	// HTTPClient defaults to a client without a global timeout (Timeout
	// applies per attempt).
	HTTPClient *http.Client
	// Now is the clock of the expiry bounds (default time.Now).
	Now func() time.Time
}

// Client talks to WZRDPAY.
type Client struct {
	cfg  Config
	base string
	hc   *http.Client
}

var _ provider.Adapter = (*Client)(nil)

// maxAttempts bounds retries of the requests the seed's table allows.
const maxAttempts = 3

// New checks cfg. A missing key or base URL gives provider.ErrDisabled.
func New(cfg Config) (*Client, error) {
	var missing []string
	if cfg.PublicKey == "" {
		missing = append(missing, "public key")
	}
	if cfg.PrivateKey == "" {
		missing = append(missing, "private key")
	}
	if cfg.BaseURL == "" {
		missing = append(missing, "base URL")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: wzrdpay needs %s", provider.ErrDisabled, strings.Join(missing, ", "))
	}
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: wzrdpay base URL %q is not an http(s) URL", provider.ErrDisabled, cfg.BaseURL)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	return &Client{cfg: cfg, base: strings.TrimRight(cfg.BaseURL, "/"), hc: hc}, nil
}

// Name implements provider.Adapter.
func (c *Client) Name() string { return Name }

type createAttrs struct {
	ReferenceID string            `json:"reference_id"`
	Amount      json.Number       `json:"amount"`
	Currency    string            `json:"currency"`
	Service     string            `json:"service"`
	Flow        string            `json:"flow"`
	TestMode    bool              `json:"test_mode"`
	Description string            `json:"description,omitempty"`
	Customer    *customer         `json:"customer,omitempty"`
	Metadata    map[string]string `json:"metadata"`
	ReturnURL   string            `json:"return_url,omitempty"`
	ReturnURLs  *returnURLs       `json:"return_urls,omitempty"`
	CallbackURL string            `json:"callback_url,omitempty"`
	Expires     string            `json:"expires,omitempty"`
}

type customer struct {
	ReferenceID string `json:"reference_id"`
	Email       string `json:"email,omitempty"`
	Name        string `json:"name,omitempty"`
	Phone       string `json:"phone,omitempty"`
}

type returnURLs struct {
	Success string `json:"success"`
	Pending string `json:"pending"`
	Fail    string `json:"fail"`
}

// expiry limits of the seed: 14 minutes to 2 days after creation.
const (
	minExpiry = 15 * time.Minute
	maxExpiry = 47 * time.Hour
)

// Create implements provider.Adapter through the private API.
func (c *Client) Create(ctx context.Context, req provider.CreateRequest) (provider.Created, error) {
	cur := req.Amount.Currency().Code
	svc := c.cfg.Service
	if svc == "" {
		svc = "payment_card_" + strings.ToLower(cur) + "_hpp"
	}
	attrs := createAttrs{
		ReferenceID: req.Reference,
		Amount:      json.Number(req.Amount.Amount().String()), // exact decimal text; JSON carries it as the number the seed asks for
		Currency:    cur,
		Service:     svc,
		Flow:        "charge",
		TestMode:    c.cfg.TestMode,
		Description: req.Description,
		Metadata:    map[string]string{"invoice_id": req.InvoiceID, "payment_id": req.PaymentID},
		ReturnURL:   req.SuccessURL,
		CallbackURL: req.CallbackURL,
	}
	if req.SuccessURL != "" || req.FailURL != "" {
		attrs.ReturnURLs = &returnURLs{Success: req.SuccessURL, Pending: req.SuccessURL, Fail: req.FailURL}
	}
	if req.Customer.Email != "" || req.Customer.Name != "" || req.Customer.Phone != "" {
		attrs.Customer = &customer{ReferenceID: req.InvoiceID, Email: req.Customer.Email, Name: req.Customer.Name, Phone: req.Customer.Phone}
	}
	if !req.ExpiresAt.IsZero() {
		now := c.cfg.Now()
		exp := req.ExpiresAt
		if exp.Before(now.Add(minExpiry)) {
			exp = now.Add(minExpiry)
		}
		if exp.After(now.Add(maxExpiry)) {
			exp = now.Add(maxExpiry)
		}
		attrs.Expires = exp.UTC().Format("2006-01-02T15:04:05-07:00") // the seed's form: +00:00, not Z
	}
	body, err := json.Marshal(map[string]any{"data": map[string]any{"type": "payment-invoices", "attributes": attrs}})
	if err != nil {
		return provider.Created{}, err
	}
	var last error
	for attempt := 0; attempt < maxAttempts; attempt++ {
		if attempt > 0 {
			if err := pause(ctx, attempt); err != nil {
				return provider.Created{}, last
			}
		}
		status, b, err := c.do(ctx, http.MethodPost, "/api/payment-invoices", body)
		switch {
		case err != nil || status >= 500:
			// "Check the transaction status. If there is no transaction
			// with this ID on the server, you can request the creation
			// method again." When the check itself fails we do not know,
			// so we stop rather than risk a second transaction; the next
			// try (same reference) lands on the first one.
			last = c.fail("create", status, b, err)
			if ctx.Err() != nil {
				return provider.Created{}, last
			}
			inv, found, lerr := c.findByReference(ctx, req.Reference)
			if lerr != nil {
				return provider.Created{}, last
			}
			if found {
				return created(inv)
			}
			continue
		case status == http.StatusOK || status == http.StatusCreated:
			inv, err := parseInvoice(b)
			if err != nil {
				return provider.Created{}, &provider.Error{Provider: Name, Op: "create", HTTPStatus: status, Message: err.Error(), Kind: provider.ErrBadResponse}
			}
			return created(inv)
		case status == http.StatusConflict:
			// "Process the response body with the previously created
			// transaction."
			if inv, err := parseInvoice(b); err == nil {
				return created(inv)
			}
			if inv, found, lerr := c.findByReference(ctx, req.Reference); lerr == nil && found {
				return created(inv)
			}
			return provider.Created{}, c.failKind("create", status, b, provider.ErrConflict)
		case status == http.StatusBadRequest:
			// "Request the transaction status (… 404: consider the request
			// unsuccessful)."
			if inv, found, lerr := c.findByReference(ctx, req.Reference); lerr == nil && found {
				return created(inv)
			}
			return provider.Created{}, c.failKind("create", status, b, provider.ErrRejected)
		default: // 401, 403, 404, 405, 422: nothing was created
			return provider.Created{}, c.failKind("create", status, b, provider.ErrRejected)
		}
	}
	return provider.Created{}, last
}

// pause waits before retry number attempt (100 ms, 200 ms, …) unless ctx
// ends first.
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

func created(inv invoiceData) (provider.Created, error) {
	p, err := inv.payment()
	if err != nil {
		return provider.Created{}, &provider.Error{Provider: Name, Op: "create", Message: err.Error(), Kind: provider.ErrBadResponse}
	}
	out := provider.Created{Ref: p.Ref, Status: p.Status, RedirectURL: inv.hppURL()}
	if fd := inv.flowData(); fd != nil && fd.Action != "" {
		out.Form = &provider.Form{Action: fd.Action, Method: strings.ToUpper(fd.Method), Params: fd.params()}
	}
	if out.RedirectURL == "" && out.Form == nil {
		return provider.Created{}, &provider.Error{Provider: Name, Op: "create", Message: "neither hpp_url nor flow_data in the response", Kind: provider.ErrBadResponse}
	}
	return out, nil
}

// Status implements provider.Adapter (private reconciliation by id).
func (c *Client) Status(ctx context.Context, ref string) (provider.Payment, error) {
	if ref == "" {
		return provider.Payment{}, &provider.Error{Provider: Name, Op: "status", Message: "empty reference", Kind: provider.ErrNotFound}
	}
	b, err := c.get(ctx, "status", "/api/payment-invoices/"+url.PathEscape(ref))
	if err != nil {
		return provider.Payment{}, err
	}
	inv, err := parseInvoice(b)
	if err != nil {
		return provider.Payment{}, &provider.Error{Provider: Name, Op: "status", Message: err.Error(), Kind: provider.ErrBadResponse}
	}
	p, err := inv.payment()
	if err != nil {
		return provider.Payment{}, &provider.Error{Provider: Name, Op: "status", Message: err.Error(), Kind: provider.ErrBadResponse}
	}
	if p.Ref != ref {
		return provider.Payment{}, &provider.Error{Provider: Name, Op: "status", Message: fmt.Sprintf("asked for %s, got %s", ref, p.Ref), Kind: provider.ErrBadResponse}
	}
	return p, nil
}

// findByReference is the seed's "check by Reference ID". It makes one
// request: it runs inside Create's own bounded loop.
func (c *Client) findByReference(ctx context.Context, ref string) (invoiceData, bool, error) {
	status, b, err := c.do(ctx, http.MethodGet, "/api/payment-invoices?filter[reference_id]="+url.QueryEscape(ref), nil)
	switch {
	case err != nil || status >= 500:
		return invoiceData{}, false, c.fail("lookup", status, b, err)
	case status == http.StatusNotFound:
		return invoiceData{}, false, nil
	case status != http.StatusOK:
		return invoiceData{}, false, c.failKind("lookup", status, b, provider.ErrRejected)
	}
	list, err := parseList(b)
	if err != nil {
		return invoiceData{}, false, &provider.Error{Provider: Name, Op: "lookup", HTTPStatus: status, Message: err.Error(), Kind: provider.ErrBadResponse}
	}
	for _, d := range list {
		if d.A.ReferenceID == ref {
			return d, true, nil
		}
	}
	return invoiceData{}, false, nil
}

// get is a GET with bounded retries on 5xx and transport errors: reading
// is always safe to repeat.
func (c *Client) get(ctx context.Context, op, path string) ([]byte, error) {
	var last error
	for attempt := 0; attempt < maxAttempts; attempt++ {
		if attempt > 0 {
			if err := pause(ctx, attempt); err != nil {
				return nil, last
			}
		}
		status, b, err := c.do(ctx, http.MethodGet, path, nil)
		switch {
		case err != nil || status >= 500:
			last = c.fail(op, status, b, err)
			if ctx.Err() != nil {
				return nil, last
			}
			continue
		case status == http.StatusOK:
			return b, nil
		case status == http.StatusNotFound:
			return nil, c.failKind(op, status, b, provider.ErrNotFound)
		default:
			return nil, c.failKind(op, status, b, provider.ErrRejected)
		}
	}
	return nil, last
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
	req.SetBasicAuth(c.cfg.PublicKey, c.cfg.PrivateKey)
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

func (c *Client) fail(op string, status int, body []byte, err error) *provider.Error {
	e := c.failKind(op, status, body, provider.ErrUnavailable)
	if err != nil {
		e.Message = err.Error()
	}
	return e
}

// failKind builds the error from the provider's error document:
// {"errors":[{"status","code","title","detail"}]} or {"errors":{"field":"msg"}}.
func (c *Client) failKind(op string, status int, body []byte, kind error) *provider.Error {
	e := &provider.Error{Provider: Name, Op: op, HTTPStatus: status, Kind: kind}
	var doc struct {
		Errors json.RawMessage `json:"errors"`
	}
	if json.Unmarshal(body, &doc) == nil && len(doc.Errors) > 0 {
		var list []struct {
			Status string `json:"status"`
			Code   string `json:"code"`
			Title  string `json:"title"`
			Detail string `json:"detail"`
		}
		var fields map[string]string
		switch {
		case json.Unmarshal(doc.Errors, &list) == nil && len(list) > 0:
			e.Code = list[0].Status
			e.Message = list[0].Detail
			if e.Message == "" {
				e.Message = list[0].Title
			}
		case json.Unmarshal(doc.Errors, &fields) == nil:
			parts := make([]string, 0, len(fields))
			for k, v := range fields {
				parts = append(parts, k+": "+v)
			}
			sort.Strings(parts)
			e.Code = "validation"
			e.Message = strings.Join(parts, "; ")
		}
	}
	return e
}
