package onramp

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/payledger/payledger/adapters/provider"
)

// wirePayment is a payment as the platform describes it: the fields of the
// webhook payload, plus the payer's URL in answers.
type wirePayment struct {
	PaymentID    json.RawMessage `json:"paymentId"`
	InvoiceID    json.RawMessage `json:"invoiceId"`
	Type         string          `json:"type"`
	Status       string          `json:"status"`
	Amount       json.Number     `json:"amount"`
	Currency     string          `json:"currency"`
	PaymentDate  json.Number     `json:"paymentDate"`
	ExternalData string          `json:"externalData"`
	Message      string          `json:"message"`
	CheckoutURL  string          `json:"checkoutUrl"`
	RedirectURL  string          `json:"redirectUrl"`
	PaymentURL   string          `json:"paymentUrl"`
	URL          string          `json:"url"`
}

// ids are the payment's ids as text; a JSON number id is accepted as its
// digits, anything else is refused.
func (w wirePayment) ids() (invoiceID, paymentID string, err error) {
	for _, f := range []struct {
		name string
		raw  json.RawMessage
		dst  *string
	}{{"invoiceId", w.InvoiceID, &invoiceID}, {"paymentId", w.PaymentID, &paymentID}} {
		if len(f.raw) == 0 || string(f.raw) == "null" {
			continue
		}
		s := rawString(f.raw)
		if s == "" {
			return "", "", fmt.Errorf("%s is not a string", f.name)
		}
		if err := checkID(s); err != nil {
			return "", "", fmt.Errorf("%s: %w", f.name, err)
		}
		*f.dst = s
	}
	return invoiceID, paymentID, nil
}

// payerURL is the first URL given, checked.
func (w wirePayment) payerURL() (string, error) {
	for _, s := range []string{w.CheckoutURL, w.RedirectURL, w.PaymentURL, w.URL} {
		if s == "" {
			continue
		}
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
			return "", fmt.Errorf("payer URL %q is not an absolute http(s) URL", clean(s, 100))
		}
		return u.String(), nil
	}
	return "", nil
}

// payment converts the wire payment.
func (w wirePayment) payment() (provider.Payment, error) {
	invoiceID, paymentID, err := w.ids()
	if err != nil {
		return provider.Payment{}, err
	}
	if w.Status == "" {
		return provider.Payment{}, errors.New("no status")
	}
	st, code, err := MapStatus(w.Status)
	if err != nil {
		return provider.Payment{}, err
	}
	p := provider.Payment{Reference: invoiceID, Status: st, Code: code, Raw: clean(w.Status, 40)}
	if invoiceID != "" && paymentID != "" {
		p.Ref = Ref(invoiceID, paymentID)
	}
	if st == provider.StatusFailed {
		p.Message = clean(w.Message, 300)
	}
	if w.Amount != "" {
		if strings.TrimSpace(w.Currency) == "" {
			return provider.Payment{}, fmt.Errorf("amount %s without a currency", clean(w.Amount.String(), 40))
		}
		m, err := Amount(w.Amount.String(), w.Currency)
		if err != nil {
			return provider.Payment{}, err
		}
		p.Amount, p.HasAmount = m, true
	}
	return p, nil
}

// unwrap finds the payment in an answer: top level, or inside "payload"
// or "data".
func unwrap(body []byte) (wirePayment, error) {
	var outer map[string]json.RawMessage
	if err := strictJSON(body, &outer); err != nil {
		return wirePayment{}, err
	}
	inner := body
	if _, flat := outer["paymentId"]; !flat {
		for _, k := range []string{"payload", "data"} {
			if raw, ok := outer[k]; ok && len(raw) > 0 && raw[0] == '{' {
				inner = raw
				break
			}
		}
	}
	var w wirePayment
	if err := strictJSON(inner, &w); err != nil {
		return wirePayment{}, err
	}
	return w, nil
}

// Ref is the Payment.Ref of a platform payment: retrieval needs both the
// invoiceId we sent and the platform's paymentId.
func Ref(invoiceID, paymentID string) string { return invoiceID + "/" + paymentID }

// SplitRef is the inverse of Ref.
func SplitRef(ref string) (invoiceID, paymentID string, err error) {
	invoiceID, paymentID, ok := strings.Cut(ref, "/")
	if !ok || checkID(invoiceID) != nil || checkID(paymentID) != nil {
		return "", "", fmt.Errorf("onramp: ref %q is not <invoiceId>/<paymentId>", clean(ref, 80))
	}
	return invoiceID, paymentID, nil
}

// checkID refuses ids that are not plain tokens; ours are "inv_…~2", the
// platform's are alike, and nothing else should reach a request or a
// ledger event.
func checkID(id string) error {
	if id == "" || len(id) > 200 {
		return fmt.Errorf("bad id %q", clean(id, 40))
	}
	for i := 0; i < len(id); i++ {
		b := id[i]
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || strings.IndexByte("_-.:~", b) >= 0) {
			return fmt.Errorf("bad id %q", clean(id, 40))
		}
	}
	return nil
}
