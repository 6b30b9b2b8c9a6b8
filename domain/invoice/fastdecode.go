package invoice

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
)

// Replays (rebuilds, audit verify, stream loads) spend about half their
// CPU decoding event bodies, and encoding/json's reflection is most of
// that. fastDecode reads the bodies Encode writes — one JSON object, known
// keys, each at most once — straight into the structs. It gives up (ok
// false) on anything else: an unknown or repeated key, a null, a number
// that is not a plain integer, a string with escapes it cannot copy, any
// syntax it does not expect. Decode then uses encoding/json, so the result
// and the error for every input stay exactly encoding/json's; only the
// inputs that are safe to read without it take the short path. The tests
// compare both decoders on every event type and on fuzzed inputs.
func fastDecode(typ string, data []byte) (Event, bool) {
	// One copy of the body backs every string field (they are substrings
	// of it): one allocation per event instead of one per field. The body
	// then lives as long as any of its fields, about twice their size.
	d := decoder{data: data, text: string(data)}
	var (
		e  Event
		ok bool
	)
	switch typ {
	case TypeCreated:
		e, ok = d.created()
	case TypeLinkIssued:
		var v LinkIssued
		ok = d.fields(linkIssuedKeys, &v.LinkID, &v.TokenHash, &v.ExpiresAt, &v.RevokedLinkID, &v.At)
		e = v
	case TypeLinkConsumed:
		var v LinkConsumed
		ok = d.fields(linkKeys, &v.LinkID, &v.At)
		e = v
	case TypeLinkExpired:
		var v LinkExpired
		ok = d.fields(linkKeys, &v.LinkID, &v.At)
		e = v
	case TypeExpired:
		var v Expired
		ok = d.fields(atKeys, &v.At)
		e = v
	case TypeCancelled:
		var v Cancelled
		ok = d.fields(cancelledKeys, &v.Reason, &v.At)
		e = v
	case TypePaid:
		var v Paid
		ok = d.fields(paidKeys, &v.PaymentID, &v.AmountPaid, &v.At)
		e = v
	case TypeFlagged:
		var v Flagged
		ok = d.fields(flaggedKeys, &v.PaymentID, &v.Flag, &v.Detail, &v.At)
		e = v
	case TypePaymentInitiated:
		var v PaymentInitiated
		ok = d.fields(initiatedKeys, &v.PaymentID, &v.Provider, &v.Attempt, &v.ProviderRef, &v.RedirectURL, &v.At)
		e = v
	case TypeActionRequired:
		var v ActionRequired
		ok = d.fields(actionKeys, &v.PaymentID, &v.Kind, &v.URL, &v.At)
		e = v
	case TypePaymentProcessed:
		var v PaymentProcessed
		ok = d.fields(processedKeys, &v.PaymentID, &v.Provider, &v.ProviderRef, &v.Amount, &v.Currency, &v.CardBrand, &v.CardLast4, &v.At)
		e = v
	case TypePaymentFailed:
		var v PaymentFailed
		ok = d.fields(failedKeys, &v.PaymentID, &v.Provider, &v.ProviderRef, &v.Code, &v.Message, &v.At)
		e = v
	case TypeRefunded:
		var v Refunded
		ok = d.fields(refundedKeys, &v.RefundID, &v.Amount, &v.Currency, &v.Reason, &v.At)
		e = v
	case TypeCallbackReceived:
		var v CallbackReceived
		ok = d.fields(callbackKeys, &v.Provider, &v.ProviderRef, &v.Status, &v.Verified, &v.Body, &v.At)
		e = v
	default:
		return nil, false
	}
	if !ok || !d.end() {
		return nil, false
	}
	return e, true
}

// The JSON names of each struct's fields, in the order the calls of
// fields (and the switches of the nested objects) list them. They must match the struct tags exactly; the tests check
// every one through the round trip of fully populated samples.
var (
	createdKeys    = []string{"invoice_id", "number", "amount", "currency", "reference_id", "description", "customer", "metadata", "provider", "line_items", "return_urls", "expires_at", "at"}
	customerKeys   = []string{"email", "name", "phone", "address"}
	addressKeys    = []string{"line1", "line2", "city", "postcode", "country"}
	returnKeys     = []string{"success", "fail"}
	lineItemKeys   = []string{"product_id", "variation_id", "name", "quantity", "total"}
	linkIssuedKeys = []string{"link_id", "token_hash", "expires_at", "revoked_link_id", "at"}
	linkKeys       = []string{"link_id", "at"}
	atKeys         = []string{"at"}
	cancelledKeys  = []string{"reason", "at"}
	paidKeys       = []string{"payment_id", "amount_paid", "at"}
	flaggedKeys    = []string{"payment_id", "flag", "detail", "at"}
	initiatedKeys  = []string{"payment_id", "provider", "attempt", "provider_ref", "redirect_url", "at"}
	actionKeys     = []string{"payment_id", "kind", "url", "at"}
	processedKeys  = []string{"payment_id", "provider", "provider_ref", "amount", "currency", "card_brand", "card_last4", "at"}
	failedKeys     = []string{"payment_id", "provider", "provider_ref", "code", "message", "at"}
	refundedKeys   = []string{"refund_id", "amount", "currency", "reason", "at"}
	callbackKeys   = []string{"provider", "provider_ref", "status", "verified", "body", "at"}
)

func (d *decoder) created() (Event, bool) {
	var v Created
	ok := d.object(createdKeys, func(i int) bool {
		switch i {
		case 0:
			return d.str(&v.InvoiceID)
		case 1:
			return d.int64Value(&v.Number)
		case 2:
			return d.str(&v.Amount)
		case 3:
			return d.str(&v.Currency)
		case 4:
			return d.str(&v.ReferenceID)
		case 5:
			return d.str(&v.Description)
		case 6:
			return d.customer(&v.Customer)
		case 7:
			return d.stringMap(&v.Metadata)
		case 8:
			return d.str(&v.Provider)
		case 9:
			return d.lineItems(&v.LineItems)
		case 10:
			return d.fields(returnKeys, &v.ReturnURLs.Success, &v.ReturnURLs.Fail)
		case 11:
			return d.timestamp(&v.ExpiresAt)
		default:
			return d.timestamp(&v.At)
		}
	})
	return v, ok
}

func (d *decoder) customer(c *Customer) bool {
	return d.object(customerKeys, func(i int) bool {
		switch i {
		case 0:
			return d.str(&c.Email)
		case 1:
			return d.str(&c.Name)
		case 2:
			return d.str(&c.Phone)
		default:
			// encoding/json allocates a fresh Address for a nil pointer,
			// also for an empty object.
			a := &Address{}
			c.Address = a
			return d.fields(addressKeys, &a.Line1, &a.Line2, &a.City, &a.Postcode, &a.Country)
		}
	})
}

// lineItems reads an array of line items; like encoding/json, an empty
// array gives an empty, non-nil slice.
func (d *decoder) lineItems(out *[]LineItem) bool {
	if !d.consume('[') {
		return false
	}
	items := []LineItem{}
	d.ws()
	if d.peek() == ']' {
		d.i++
		*out = items
		return true
	}
	for {
		var li LineItem
		if !d.fields(lineItemKeys, &li.ProductID, &li.VariationID, &li.Name, &li.Quantity, &li.Total) {
			return false
		}
		items = append(items, li)
		d.ws()
		switch d.peek() {
		case ',':
			d.i++
		case ']':
			d.i++
			*out = items
			return true
		default:
			return false
		}
	}
}

// stringMap reads an object of strings; a repeated key overwrites, as in
// encoding/json, and an empty object gives an empty, non-nil map.
func (d *decoder) stringMap(out *map[string]string) bool {
	if !d.consume('{') {
		return false
	}
	m := map[string]string{}
	d.ws()
	if d.peek() == '}' {
		d.i++
		*out = m
		return true
	}
	for {
		var k, v string
		if !d.str(&k) || !d.consume(':') || !d.str(&v) {
			return false
		}
		m[k] = v
		d.ws()
		switch d.peek() {
		case ',':
			d.i++
		case '}':
			d.i++
			*out = m
			return true
		default:
			return false
		}
	}
}

// fields reads an object whose keys[i] goes into ptrs[i]: a *string,
// *Flag, *time.Time, *bool, *int or *int64.
func (d *decoder) fields(keys []string, ptrs ...any) bool {
	return d.object(keys, func(i int) bool {
		switch p := ptrs[i].(type) {
		case *string:
			return d.str(p)
		case *Flag:
			var s string
			ok := d.str(&s)
			*p = Flag(s)
			return ok
		case *time.Time:
			return d.timestamp(p)
		case *bool:
			return d.boolean(p)
		case *int:
			return d.intValue(p)
		case *int64:
			return d.int64Value(p)
		}
		panic(fmt.Sprintf("invoice: fields: no decoder for %T", ptrs[i]))
	})
}

// decoder is a cursor over one JSON text. Every method skips leading
// whitespace and returns false for input it does not handle.
type decoder struct {
	data []byte
	text string // string(data)
	i    int
}

func (d *decoder) ws() {
	for d.i < len(d.data) {
		switch d.data[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *decoder) peek() byte {
	if d.i < len(d.data) {
		return d.data[d.i]
	}
	return 0
}

// consume reads c after optional whitespace.
func (d *decoder) consume(c byte) bool {
	d.ws()
	if d.peek() != c {
		return false
	}
	d.i++
	return true
}

// end reports whether only whitespace is left.
func (d *decoder) end() bool {
	d.ws()
	return d.i == len(d.data)
}

// object reads an object whose keys are all in keys, each at most once,
// calling value(index of the key) to read each value. An unknown key is a
// give-up rather than a skip: encoding/json matches keys case-insensitively
// too, and only it knows which field such a key lands in.
func (d *decoder) object(keys []string, value func(int) bool) bool {
	if !d.consume('{') {
		return false
	}
	d.ws()
	if d.peek() == '}' {
		d.i++
		return true
	}
	var seen uint64
	for {
		start, end, ok := d.rawString()
		if !ok || !d.consume(':') {
			return false
		}
		k := d.text[start:end]
		idx := -1
		for j, name := range keys {
			if k == name {
				idx = j
				break
			}
		}
		if idx < 0 || seen&(1<<idx) != 0 {
			return false
		}
		seen |= 1 << idx
		if !value(idx) {
			return false
		}
		d.ws()
		switch d.peek() {
		case ',':
			d.i++
		case '}':
			d.i++
			return true
		default:
			return false
		}
	}
}

// rawString returns where the text between the quotes of a string that
// needs no unescaping starts and ends: no backslash, no control character,
// valid UTF-8.
func (d *decoder) rawString() (start, end int, ok bool) {
	if !d.consume('"') {
		return 0, 0, false
	}
	start = d.i
	ascii := true
	for d.i < len(d.data) {
		c := d.data[d.i]
		switch {
		case c == '"':
			end = d.i
			d.i++
			if !ascii && !utf8.Valid(d.data[start:end]) {
				return 0, 0, false
			}
			return start, end, true
		case c == '\\' || c < 0x20:
			return 0, 0, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
		d.i++
	}
	return 0, 0, false
}

// str reads a string value. One with escapes is unquoted by encoding/json
// itself (a string alone is cheap for it); callback bodies carry them.
func (d *decoder) str(out *string) bool {
	save := d.i
	if start, end, ok := d.rawString(); ok {
		*out = d.text[start:end]
		return true
	}
	d.i = save
	d.ws()
	if d.peek() != '"' {
		return false
	}
	start := d.i
	d.i++
	for d.i < len(d.data) {
		switch d.data[d.i] {
		case '\\':
			d.i += 2
			continue
		case '"':
			d.i++
			return json.Unmarshal(d.data[start:d.i], out) == nil
		}
		d.i++
	}
	return false
}

// timestamp reads an RFC 3339 string through time.Time's own UnmarshalJSON,
// which is what encoding/json calls for it.
func (d *decoder) timestamp(out *time.Time) bool {
	d.ws()
	start := d.i
	if _, _, ok := d.rawString(); !ok {
		return false
	}
	return out.UnmarshalJSON(d.data[start:d.i]) == nil
}

// integer returns the digits of a JSON integer: an optional minus, no
// leading zero, no fraction or exponent (encoding/json refuses those for
// integer fields, with an error only it should phrase).
func (d *decoder) integer() (string, bool) {
	d.ws()
	start := d.i
	if d.peek() == '-' {
		d.i++
	}
	digits := d.i
	for d.i < len(d.data) && d.data[d.i] >= '0' && d.data[d.i] <= '9' {
		d.i++
	}
	n := d.i - digits
	if n == 0 || (n > 1 && d.data[digits] == '0') {
		return "", false
	}
	switch d.peek() {
	case '.', 'e', 'E':
		return "", false
	}
	return d.text[start:d.i], true
}

func (d *decoder) int64Value(out *int64) bool {
	s, ok := d.integer()
	if !ok {
		return false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	*out = n
	return err == nil
}

func (d *decoder) intValue(out *int) bool {
	s, ok := d.integer()
	if !ok {
		return false
	}
	n, err := strconv.ParseInt(s, 10, strconv.IntSize)
	*out = int(n)
	return err == nil
}

func (d *decoder) boolean(out *bool) bool {
	d.ws()
	rest := d.data[d.i:]
	switch {
	case len(rest) >= 4 && string(rest[:4]) == "true":
		*out = true
		d.i += 4
	case len(rest) >= 5 && string(rest[:5]) == "false":
		*out = false
		d.i += 5
	default:
		return false
	}
	return true
}
