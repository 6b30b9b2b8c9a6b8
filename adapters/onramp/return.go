package onramp

import (
	"fmt"
	"net/url"
)

// The documented redirect parameters.
const (
	ParamPaymentSessionID = "cko-payment-session-id"
	ParamSessionID        = "cko-session-id"
	ParamPaymentID        = "cko-payment-id"
)

// Return is what the success and failure redirects carry: the checkout
// gateway's ids, not the platform's paymentId. They come from the payer's
// browser and prove nothing — which route the payer landed on does not
// either. Show a result page from Status, and keep the ids for audit.
type Return struct {
	PaymentSessionID string
	SessionID        string
	PaymentID        string
}

// ParseReturn reads the redirect's query. All three parameters are
// required by the document; each must be given once, as an id-like token.
// Other parameters are ignored.
func ParseReturn(q url.Values) (Return, error) {
	var r Return
	for _, f := range []struct {
		key string
		dst *string
	}{
		{ParamPaymentSessionID, &r.PaymentSessionID}, {ParamSessionID, &r.SessionID}, {ParamPaymentID, &r.PaymentID},
	} {
		vals := q[f.key]
		switch {
		case len(vals) == 0 || vals[0] == "":
			return Return{}, fmt.Errorf("onramp return: %s is missing", f.key)
		case len(vals) > 1:
			return Return{}, fmt.Errorf("onramp return: %s given %d times", f.key, len(vals))
		}
		if err := checkID(vals[0]); err != nil {
			return Return{}, fmt.Errorf("onramp return: %s: %w", f.key, err)
		}
		*f.dst = vals[0]
	}
	return r, nil
}
