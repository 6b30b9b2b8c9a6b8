package circoflows

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"github.com/payledger/payledger/adapters/provider"
)

// statuses maps the status words of transactions and sessions. The
// document shows completed, pending, cancelled and (as 410 session_expired)
// expired, and the 3-D Secure statuses success, failed and pending; the
// rest are the obvious spellings of the same outcomes. Any other word is
// refused rather than guessed.
var statuses = map[string]struct {
	status provider.Status
	code   string
}{
	"completed":       {provider.StatusProcessed, ""},
	"succeeded":       {provider.StatusProcessed, ""},
	"success":         {provider.StatusProcessed, ""},
	"pending":         {provider.StatusPending, ""},
	"processing":      {provider.StatusPending, ""},
	"requires_action": {provider.StatusActionRequired, ""},
	"failed":          {provider.StatusFailed, "failed"},
	"declined":        {provider.StatusFailed, "card_declined"},
	"cancelled":       {provider.StatusFailed, "cancelled"},
	"canceled":        {provider.StatusFailed, "cancelled"},
	"expired":         {provider.StatusFailed, "expired"},
}

// MapStatus maps a CircoFlows status word. requiresAction is the
// requires_action flag that turns a pending 3-D Secure payment into
// provider.StatusActionRequired. The second result is the failure code.
func MapStatus(word string, requiresAction bool) (provider.Status, string, error) {
	m, ok := statuses[strings.ToLower(strings.TrimSpace(word))]
	if !ok {
		return "", "", fmt.Errorf("unknown status %q", clean(word, 40))
	}
	if m.status == provider.StatusPending && requiresAction {
		return provider.StatusActionRequired, "", nil
	}
	return m.status, m.code, nil
}

// txData is a transaction or session as CircoFlows returns it in data, and
// in webhooks.
type txData struct {
	TransactionID        string                     `json:"transaction_id"`
	SessionID            string                     `json:"session_id"`
	PaymentURL           string                     `json:"payment_url"`
	Amount               json.Number                `json:"amount"`
	Currency             string                     `json:"currency"`
	Status               string                     `json:"status"`
	GatewayTransactionID string                     `json:"gateway_transaction_id"`
	RequiresAction       bool                       `json:"requires_action"`
	ActionType           string                     `json:"action_type"`
	ActionData           *actionData                `json:"action_data"`
	Metadata             map[string]json.RawMessage `json:"metadata"`
	Error                json.RawMessage            `json:"error"`
	FailureReason        string                     `json:"failure_reason"`
	ExpiresAt            string                     `json:"expires_at"`
}

type actionData struct {
	ThreeDSURL string `json:"3ds_url"`
}

// metaString is a string metadata value; other JSON types are ignored.
func (d txData) metaString(key string) string {
	raw, ok := d.Metadata[key]
	if !ok {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

// reference is what we sent as metadata.reference; order_id is the key of
// the document's own example, read for payments created elsewhere.
func (d txData) reference() string {
	if r := d.metaString("reference"); r != "" {
		return r
	}
	return d.metaString("order_id")
}

// payment converts data. ref is the id the caller asked about (session or
// transaction); when empty the session id wins over the transaction id,
// because the session is what we created.
func (d txData) payment(ref string) (provider.Payment, error) {
	st, code, err := MapStatus(d.Status, d.RequiresAction)
	if err != nil {
		return provider.Payment{}, err
	}
	p := provider.Payment{
		Ref:       ref,
		Reference: clean(d.reference(), 200),
		Status:    st,
		Code:      code,
		Raw:       clean(d.Status, 40),
	}
	if p.Ref == "" {
		p.Ref = d.SessionID
	}
	if p.Ref == "" {
		p.Ref = d.TransactionID
	}
	p.Ref = clean(p.Ref, 200)
	if d.Amount != "" {
		if d.Currency == "" {
			return provider.Payment{}, fmt.Errorf("amount %s without a currency", clean(d.Amount.String(), 40))
		}
		m, err := FromCents(d.Amount.String(), d.Currency)
		if err != nil {
			return provider.Payment{}, err
		}
		p.Amount, p.HasAmount = m, true
	}
	if st == provider.StatusFailed {
		if e, ok := errorOf(d.Error); ok {
			if e.DeclineCode != "" {
				p.Code = clean(e.DeclineCode, 64)
			} else if e.Code != "" {
				p.Code = clean(e.Code, 64)
			}
			p.Message = clean(e.Message, 300)
		}
		if p.Message == "" {
			p.Message = clean(d.FailureReason, 300)
		}
	}
	if st == provider.StatusActionRequired && d.ActionData != nil && d.ActionData.ThreeDSURL != "" {
		u, err := payerURL(d.ActionData.ThreeDSURL)
		if err != nil {
			return provider.Payment{}, fmt.Errorf("3ds_url: %w", err)
		}
		p.ActionURL = u
	}
	return p, nil
}

// payerURL checks a URL we are about to send the payer's browser to.
func payerURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return "", fmt.Errorf("%q is not an absolute http(s) URL", clean(s, 100))
	}
	return u.String(), nil
}
