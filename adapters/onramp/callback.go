package onramp

import (
	"encoding/json"
	"net/http"

	"github.com/payledger/payledger/adapters/provider"
)

const maxCallback = 1 << 20

// ParseCallback parses the platform and external payment webhooks
// ({"payload": {paymentId, invoiceId, status, amount, currency,
// paymentDate, externalData?}}). The platform does not sign them, so the
// Callback is never Verified: it is a hint, and the caller confirms it
// with Status(cb.Ref) before any money event. A callback without a
// paymentId has an empty Ref and cannot be confirmed. Refusals wrap
// provider.ErrBadCallback.
func (c *Client) ParseCallback(_ http.Header, body []byte) (provider.Callback, error) {
	return parseCallback(body)
}

func parseCallback(body []byte) (provider.Callback, error) {
	if len(body) > maxCallback {
		return provider.Callback{}, provider.BadCallback("body larger than %d bytes", maxCallback)
	}
	var env struct {
		Payload json.RawMessage `json:"payload"`
	}
	if err := strictJSON(body, &env); err != nil {
		return provider.Callback{}, provider.BadCallback("body is not an on-ramp webhook: %s", clean(err.Error(), 200))
	}
	if len(env.Payload) == 0 || env.Payload[0] != '{' {
		return provider.Callback{}, provider.BadCallback("webhook has no payload object")
	}
	var w wirePayment
	if err := strictJSON(env.Payload, &w); err != nil {
		return provider.Callback{}, provider.BadCallback("payload: %s", clean(err.Error(), 200))
	}
	p, err := w.payment()
	if err != nil {
		return provider.Callback{}, provider.BadCallback("payload: %s", err.Error())
	}
	if p.Reference == "" {
		return provider.Callback{}, provider.BadCallback("payload has no invoiceId")
	}
	return provider.Callback{Payment: p, Verified: false}, nil
}
