package circoflows

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"

	"github.com/payledger/payledger/adapters/provider"
)

// SignatureHeader carries the webhook's HMAC.
const SignatureHeader = "X-Webhook-Signature"

// Webhook events.
const (
	EventSucceeded = "payment.succeeded"
	EventFailed    = "payment.failed"
	EventPending   = "payment.pending"
)

// maxCallback bounds the body we verify; the HTTP endpoint applies the
// same 1 MB limit before it calls us.
const maxCallback = 1 << 20

// Sign is the X-Webhook-Signature of body under secret: lower-case hex
// HMAC-SHA256, as PHP's hash_hmac('sha256', …) in the document prints it.
// Fake CircoFlows servers in tests use it to sign what they send.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// verify checks the signature header in constant time. Upper-case hex is
// the same signature; anything that is not exactly one 64-digit hex value
// is refused.
func verify(secret string, h http.Header, body []byte) error {
	vals := h.Values(SignatureHeader)
	switch {
	case len(vals) == 0 || strings.TrimSpace(vals[0]) == "":
		return provider.BadCallback("no %s header", SignatureHeader)
	case len(vals) > 1:
		return provider.BadCallback("more than one %s header", SignatureHeader)
	}
	got, err := hex.DecodeString(strings.TrimSpace(vals[0]))
	if err != nil || len(got) != sha256.Size {
		return provider.BadCallback("%s is not a hex HMAC-SHA256", SignatureHeader)
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	if !hmac.Equal(got, m.Sum(nil)) {
		return provider.BadCallback("%s does not match the body", SignatureHeader)
	}
	return nil
}

type webhook struct {
	Event string  `json:"event"`
	Type  string  `json:"type"`
	Data  *txData `json:"data"`
}

// ParseCallback verifies X-Webhook-Signature over the raw body, then maps
// the event: payment.succeeded → processed, payment.failed → failed (with
// the decline code), payment.pending → pending, or action_required when
// the data says 3-D Secure is required. Refusals wrap
// provider.ErrBadCallback; a returned Callback is always Verified.
//
// A data.status that contradicts the event is refused: one of the two is
// wrong and money must not be booked on a guess.
func (c *Client) ParseCallback(h http.Header, body []byte) (provider.Callback, error) {
	if len(body) > maxCallback {
		return provider.Callback{}, provider.BadCallback("body larger than %d bytes", maxCallback)
	}
	if err := verify(c.cfg.WebhookSecret, h, body); err != nil {
		return provider.Callback{}, err
	}
	var wh webhook
	if err := strictJSON(body, &wh); err != nil {
		return provider.Callback{}, provider.BadCallback("body is not a CircoFlows webhook: %s", clean(err.Error(), 200))
	}
	event := wh.Event
	if event == "" {
		event = wh.Type
	}
	if wh.Data == nil {
		return provider.Callback{}, provider.BadCallback("webhook %q has no data", clean(event, 40))
	}
	d := *wh.Data
	var want provider.Status
	switch event {
	case EventSucceeded:
		want = provider.StatusProcessed
	case EventFailed:
		want = provider.StatusFailed
	case EventPending:
		want = provider.StatusPending
		if d.RequiresAction {
			want = provider.StatusActionRequired
		}
	default:
		return provider.Callback{}, provider.BadCallback("unknown event %q", clean(event, 40))
	}
	if d.Status == "" {
		d.Status = map[provider.Status]string{
			provider.StatusProcessed:      "completed",
			provider.StatusFailed:         "failed",
			provider.StatusPending:        "pending",
			provider.StatusActionRequired: "pending",
		}[want]
	}
	p, err := d.payment("")
	if err != nil {
		return provider.Callback{}, provider.BadCallback("%s: %s", event, err.Error())
	}
	if p.Status != want {
		return provider.Callback{}, provider.BadCallback("event %s with status %q", event, p.Raw)
	}
	if p.Ref == "" && p.Reference == "" {
		return provider.Callback{}, provider.BadCallback("%s names no session, transaction or reference", event)
	}
	p.Raw = event
	return provider.Callback{Payment: p, Verified: true}, nil
}
