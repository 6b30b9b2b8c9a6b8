package circoflows

import (
	"fmt"
	"net/url"
)

// Return is what CircoFlows appends to our return_url when it sends the
// payer back: after the bank's 3-D Secure page (transaction_id, status,
// gateway_id, as the 3-D Secure confirmation documents them), or after a
// hosted session (session_id or transaction_id). It comes from the payer's
// browser and proves nothing; use it to pick the payment to ask about.
type Return struct {
	TransactionID string
	SessionID     string
	Status        string
	GatewayID     string
}

// ThreeDS is the confirmation to send with Confirm3DS.
func (r Return) ThreeDS() ThreeDSConfirmation {
	return ThreeDSConfirmation{TransactionID: r.TransactionID, Status: r.Status, GatewayID: r.GatewayID}
}

// ParseReturn reads the return URL's query. It needs a transaction_id or
// a session_id; each value must be a single id-like token. Unknown
// parameters are ignored.
func ParseReturn(q url.Values) (Return, error) {
	var r Return
	for _, f := range []struct {
		key string
		dst *string
	}{
		{"transaction_id", &r.TransactionID}, {"session_id", &r.SessionID},
		{"status", &r.Status}, {"gateway_id", &r.GatewayID},
	} {
		vals, ok := q[f.key]
		if !ok {
			continue
		}
		if len(vals) != 1 {
			return Return{}, fmt.Errorf("circoflows return: %s given %d times", f.key, len(vals))
		}
		if err := checkID(vals[0]); err != nil {
			return Return{}, fmt.Errorf("circoflows return: %s: %w", f.key, err)
		}
		*f.dst = vals[0]
	}
	if r.TransactionID == "" && r.SessionID == "" {
		return Return{}, fmt.Errorf("circoflows return: no transaction_id or session_id")
	}
	return r, nil
}
