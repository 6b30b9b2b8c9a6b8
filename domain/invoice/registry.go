package invoice

import (
	"encoding/json"
	"fmt"
)

// Types lists every event name the registry knows, in lifecycle order.
func Types() []string {
	return []string{
		TypeCreated, TypeLinkIssued, TypeLinkConsumed, TypeLinkExpired,
		TypeExpired, TypeCancelled, TypePaid, TypeFlagged,
		TypePaymentInitiated, TypeActionRequired, TypePaymentProcessed,
		TypePaymentFailed, TypeRefunded, TypeCallbackReceived,
	}
}

// Encode returns the stable name and JSON body of an event. Only the event
// types of this package (as values, not pointers) are accepted, so nothing
// reaches the store that Decode could not read back.
func Encode(e Event) (typ string, data []byte, err error) {
	switch e.(type) {
	case Created, LinkIssued, LinkConsumed, LinkExpired, Expired, Cancelled,
		Paid, Flagged, PaymentInitiated, ActionRequired, PaymentProcessed,
		PaymentFailed, Refunded, CallbackReceived:
	default:
		return "", nil, fmt.Errorf("invoice: cannot encode %T: not an invoice event", e)
	}
	data, err = json.Marshal(e)
	if err != nil {
		return "", nil, fmt.Errorf("invoice: encode %s: %w", e.EventType(), err)
	}
	return e.EventType(), data, nil
}

// Decode reads an event stored under its stable name. Unknown JSON fields
// are ignored on purpose: history written by a newer version that added a
// field must stay readable. An unknown type name is an error naming it.
func Decode(typ string, data []byte) (Event, error) {
	if e, ok := fastDecode(typ, data); ok {
		return e, nil
	}
	return decodeJSON(typ, data)
}

// decodeJSON is Decode through encoding/json alone: the reference the
// short path must agree with, and what reads every input it declines.
func decodeJSON(typ string, data []byte) (Event, error) {
	switch typ {
	case TypeCreated:
		return decodeAs[Created](typ, data)
	case TypeLinkIssued:
		return decodeAs[LinkIssued](typ, data)
	case TypeLinkConsumed:
		return decodeAs[LinkConsumed](typ, data)
	case TypeLinkExpired:
		return decodeAs[LinkExpired](typ, data)
	case TypeExpired:
		return decodeAs[Expired](typ, data)
	case TypeCancelled:
		return decodeAs[Cancelled](typ, data)
	case TypePaid:
		return decodeAs[Paid](typ, data)
	case TypeFlagged:
		return decodeAs[Flagged](typ, data)
	case TypePaymentInitiated:
		return decodeAs[PaymentInitiated](typ, data)
	case TypeActionRequired:
		return decodeAs[ActionRequired](typ, data)
	case TypePaymentProcessed:
		return decodeAs[PaymentProcessed](typ, data)
	case TypePaymentFailed:
		return decodeAs[PaymentFailed](typ, data)
	case TypeRefunded:
		return decodeAs[Refunded](typ, data)
	case TypeCallbackReceived:
		return decodeAs[CallbackReceived](typ, data)
	default:
		return nil, fmt.Errorf("invoice: unknown event type %q", typ)
	}
}

func decodeAs[T Event](typ string, data []byte) (Event, error) {
	var e T
	if err := json.Unmarshal(data, &e); err != nil {
		return nil, fmt.Errorf("invoice: decode %s: %w", typ, err)
	}
	return e, nil
}
