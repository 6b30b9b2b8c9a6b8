package wzrdpay

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/payledger/payledger/adapters/provider"
)

// invoiceData is one payment invoice in either of the seed's shapes: the
// private JSON:API resource {"type","id","attributes":{…}} or the public
// API's flat object {"id", "status", …}. A is the attributes in both
// cases.
type invoiceData struct {
	ID string
	A  attributes
}

type attributes struct {
	ID              string      `json:"id"` // the public, flat shape only
	Status          string      `json:"status"`
	Resolution      string      `json:"resolution"`
	Amount          json.Number `json:"amount"`
	ProcessedAmount json.Number `json:"processed_amount"`
	Currency        string      `json:"currency"`
	ReferenceID     string      `json:"reference_id"`
	HPPURL          string      `json:"hpp_url"`
	FlowData        *flowData   `json:"flow_data"`
	ActivePayment   *struct {
		Payload *flowData `json:"payload"`
	} `json:"active_payment"`
	Payload *struct {
		PaymentCard *struct {
			Brand string `json:"brand"`
			Last  string `json:"last"`
		} `json:"payment_card"`
	} `json:"payload"`
}

// flowData is the form the payer's browser submits to reach the payment
// page: "form action => action, form method => method, form hidden
// parameters => params (if present)".
type flowData struct {
	Action string          `json:"action"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
}

// Limits on identifiers we accept from the wire; real ones are ~20 and ~40
// characters.
const (
	maxIDLen        = 64
	maxReferenceLen = 128
)

// decodeStrict decodes with json.Number so that amounts keep their text.
func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after the JSON document")
	}
	return nil
}

// decodeInvoice reads one resource object.
func decodeInvoice(raw json.RawMessage) (invoiceData, error) {
	var res struct {
		Type       string          `json:"type"`
		ID         string          `json:"id"`
		Attributes json.RawMessage `json:"attributes"`
	}
	if err := decodeStrict(raw, &res); err != nil {
		return invoiceData{}, fmt.Errorf("invoice: %w", err)
	}
	src := []byte(raw)
	if len(res.Attributes) > 0 && string(res.Attributes) != "null" {
		if res.Type != "" && res.Type != "payment-invoices" {
			return invoiceData{}, fmt.Errorf("invoice: resource type %q", res.Type)
		}
		src = res.Attributes
	}
	var a attributes
	if err := decodeStrict(src, &a); err != nil {
		return invoiceData{}, fmt.Errorf("invoice attributes: %w", err)
	}
	id := res.ID
	if id == "" {
		id = a.ID
	}
	if id == "" || len(id) > maxIDLen || !token(id) {
		return invoiceData{}, fmt.Errorf("invoice: missing or malformed id %q", clip(id))
	}
	if len(a.ReferenceID) > maxReferenceLen {
		return invoiceData{}, errors.New("invoice: reference_id too long")
	}
	return invoiceData{ID: id, A: a}, nil
}

// token reports whether s is made of the characters WZRDPAY ids use.
func token(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// parseInvoice reads a {"data": resource} document (create, status,
// callback).
func parseInvoice(b []byte) (invoiceData, error) {
	var doc struct {
		Data json.RawMessage `json:"data"`
	}
	if err := decodeStrict(b, &doc); err != nil {
		return invoiceData{}, err
	}
	if len(doc.Data) == 0 || string(doc.Data) == "null" {
		return invoiceData{}, errors.New(`no "data" in the document`)
	}
	return decodeInvoice(doc.Data)
}

// parseList reads a {"data": [resource, …]} document (the invoice list and
// the reference_id filter).
func parseList(b []byte) ([]invoiceData, error) {
	var doc struct {
		Data []json.RawMessage `json:"data"`
	}
	if err := decodeStrict(b, &doc); err != nil {
		return nil, err
	}
	out := make([]invoiceData, 0, len(doc.Data))
	for _, raw := range doc.Data {
		d, err := decodeInvoice(raw)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// mapStatus covers the seed's statuses. A failed invoice's reason is its
// resolution ("expired", a decline code…).
func mapStatus(s string) (provider.Status, bool) {
	switch strings.ToLower(s) {
	case "process_pending":
		return provider.StatusPending, true
	case "processed":
		return provider.StatusProcessed, true
	case "process_failed":
		return provider.StatusFailed, true
	}
	return "", false
}

// payment is the provider-neutral view of the invoice. Amounts come from
// json.Number text, so 123.45 is exactly 123.45.
func (d invoiceData) payment() (provider.Payment, error) {
	a := d.A
	st, ok := mapStatus(a.Status)
	if !ok {
		return provider.Payment{}, fmt.Errorf("unknown invoice status %q", clip(a.Status))
	}
	p := provider.Payment{Ref: d.ID, Reference: a.ReferenceID, Status: st, Raw: strings.ToLower(a.Status)}
	if err := d.amount(&p); err != nil {
		return provider.Payment{}, err
	}
	switch st {
	case provider.StatusFailed:
		p.Code = strings.ToLower(strings.TrimSpace(a.Resolution))
		if p.Code == "" || p.Code == "ok" {
			p.Code = "process_failed"
		}
		p.Message = failureMessage(p.Code)
	case provider.StatusPending:
		p.ActionURL = d.hppURL()
	}
	if a.Payload != nil && a.Payload.PaymentCard != nil {
		p.CardBrand = clip(a.Payload.PaymentCard.Brand)
		if l := a.Payload.PaymentCard.Last; len(l) == 4 && digits(l) {
			p.CardLast4 = l
		}
	}
	return p, nil
}

// amount fills the reported amount: processed_amount once processed
// (what actually moved), the invoice amount otherwise.
func (d invoiceData) amount(p *provider.Payment) error {
	text := d.A.Amount.String()
	if p.Status == provider.StatusProcessed && d.A.ProcessedAmount != "" {
		text = d.A.ProcessedAmount.String()
	}
	if text == "" {
		return nil
	}
	m, err := provider.Amount(text, d.A.Currency)
	if err != nil {
		return fmt.Errorf("amount %q %q: %w", clip(text), clip(d.A.Currency), err)
	}
	p.Amount, p.HasAmount = m, true
	return nil
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func failureMessage(code string) string {
	if code == "expired" {
		return "the WZRDPAY invoice expired before it was paid"
	}
	return "WZRDPAY reported the payment as failed (" + code + ")"
}

func (d invoiceData) hppURL() string { return d.A.HPPURL }

// flowData is the private API's flow_data or the public API's
// active_payment.payload.
func (d invoiceData) flowData() *flowData {
	if d.A.FlowData != nil {
		return d.A.FlowData
	}
	if d.A.ActivePayment != nil {
		return d.A.ActivePayment.Payload
	}
	return nil
}

// params reads the hidden fields. The seed only shows an empty list, so
// both plausible shapes are accepted: an object of name → value, or a
// list of {"name","value"} objects. Anything else yields no fields.
func (f *flowData) params() [][2]string {
	if len(f.Params) == 0 {
		return nil
	}
	var obj map[string]json.RawMessage
	if decodeStrict(f.Params, &obj) == nil {
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		out := make([][2]string, 0, len(keys))
		for _, k := range keys {
			out = append(out, [2]string{k, scalar(obj[k])})
		}
		return out
	}
	var list []struct {
		Name  string          `json:"name"`
		Key   string          `json:"key"`
		Value json.RawMessage `json:"value"`
	}
	if decodeStrict(f.Params, &list) == nil {
		out := make([][2]string, 0, len(list))
		for _, p := range list {
			name := p.Name
			if name == "" {
				name = p.Key
			}
			if name != "" {
				out = append(out, [2]string{name, scalar(p.Value)})
			}
		}
		return out
	}
	return nil
}

// scalar renders a JSON string or number as form text.
func scalar(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if decodeStrict(raw, &n) == nil {
		return n.String()
	}
	return ""
}

// ParseCallback implements provider.Adapter. WZRDPAY documents no
// signature, so a callback is never Verified: it is a hint that the
// callbacks package confirms with Status before any money is recorded.
// The body is the invoice document in either API shape, bare or under
// "data". A status word the seed does not list is passed on as a pending
// hint (Raw keeps it): confirmation decides what happened.
func (c *Client) ParseCallback(_ http.Header, body []byte) (provider.Callback, error) {
	return parseCallback(body)
}

func parseCallback(body []byte) (provider.Callback, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return provider.Callback{}, provider.BadCallback("empty body")
	}
	var doc struct {
		Data json.RawMessage `json:"data"`
	}
	if err := decodeStrict(body, &doc); err != nil {
		return provider.Callback{}, provider.BadCallback("not a JSON object: %v", err)
	}
	raw := json.RawMessage(body)
	if len(doc.Data) > 0 && string(doc.Data) != "null" {
		raw = doc.Data
	}
	d, err := decodeInvoice(raw)
	if err != nil {
		return provider.Callback{}, provider.BadCallback("%v", err)
	}
	p, err := d.payment()
	if err != nil {
		if _, known := mapStatus(d.A.Status); known {
			return provider.Callback{}, provider.BadCallback("%v", err)
		}
		p = provider.Payment{Ref: d.ID, Reference: d.A.ReferenceID, Status: provider.StatusPending, Raw: clip(strings.ToLower(d.A.Status))}
	}
	return provider.Callback{Payment: p}, nil
}
