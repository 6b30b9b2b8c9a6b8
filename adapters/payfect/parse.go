package payfect

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/payledger/payledger/adapters/provider"
)

// checkout is the part of a checkout object we read. The seed's response
// is camelCase; the snake_case spellings of the request are accepted too,
// since a callback body is not documented.
type checkout struct {
	ID                     string      `json:"id"`
	Status                 string      `json:"status"`
	AmountTotal            json.Number `json:"amountTotal"`
	AmountTotalSnake       json.Number `json:"amount_total"`
	Currency               string      `json:"currency"`
	ClientReferenceID      *string     `json:"clientReferenceId"`
	ClientReferenceIDSnake *string     `json:"client_reference_id"`
	URL                    string      `json:"url"`
}

const (
	maxIDLen        = 64
	maxReferenceLen = 128
)

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

// checkoutID reports whether s looks like Payfect's ids (UUIDs).
func checkoutID(s string) bool {
	if s == "" || len(s) > maxIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// parseCheckout reads a checkout object, bare or under "data".
func parseCheckout(b []byte) (checkout, error) {
	var wrap struct {
		Data json.RawMessage `json:"data"`
	}
	if err := decodeStrict(b, &wrap); err != nil {
		return checkout{}, err
	}
	if len(wrap.Data) > 0 && string(wrap.Data) != "null" {
		b = wrap.Data
	}
	var co checkout
	if err := decodeStrict(b, &co); err != nil {
		return checkout{}, err
	}
	if !checkoutID(co.ID) {
		return checkout{}, fmt.Errorf("missing or malformed checkout id %q", clip(co.ID))
	}
	if len(co.reference()) > maxReferenceLen {
		return checkout{}, errors.New("client reference too long")
	}
	return co, nil
}

func (co checkout) reference() string {
	switch {
	case co.ClientReferenceID != nil:
		return *co.ClientReferenceID
	case co.ClientReferenceIDSnake != nil:
		return *co.ClientReferenceIDSnake
	}
	return ""
}

// mapStatus covers the seed's three status values.
func mapStatus(s string) (provider.Status, bool) {
	switch strings.ToLower(s) {
	case "open":
		return provider.StatusPending, true
	case "complete":
		return provider.StatusProcessed, true
	case "expired":
		return provider.StatusFailed, true
	}
	return "", false
}

func (co checkout) payment() (provider.Payment, error) {
	st, ok := mapStatus(co.Status)
	if !ok {
		return provider.Payment{}, fmt.Errorf("unknown checkout status %q", clip(co.Status))
	}
	p := provider.Payment{Ref: co.ID, Reference: co.reference(), Status: st, Raw: strings.ToLower(co.Status)}
	total := co.AmountTotal
	if total == "" {
		total = co.AmountTotalSnake
	}
	if total != "" {
		m, err := provider.Amount(total.String(), co.Currency)
		if err != nil {
			return provider.Payment{}, fmt.Errorf("amountTotal %q %q: %w", clip(total.String()), clip(co.Currency), err)
		}
		p.Amount, p.HasAmount = m, true
	}
	switch st {
	case provider.StatusFailed:
		p.Code, p.Message = "expired", "the Payfect checkout expired before it was paid"
	case provider.StatusPending:
		if safeURL(co.URL) {
			p.ActionURL = co.URL
		}
	}
	return p, nil
}

// ParseCallback implements provider.Adapter. Payfect documents no
// signature: a callback is never Verified, and the callbacks package
// confirms it through Status. An unknown status word is passed on as a
// pending hint.
func (c *Client) ParseCallback(_ http.Header, body []byte) (provider.Callback, error) {
	return parseCallback(body)
}

func parseCallback(body []byte) (provider.Callback, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return provider.Callback{}, provider.BadCallback("empty body")
	}
	co, err := parseCheckout(body)
	if err != nil {
		return provider.Callback{}, provider.BadCallback("%v", err)
	}
	p, err := co.payment()
	if err != nil {
		if _, known := mapStatus(co.Status); known {
			return provider.Callback{}, provider.BadCallback("%v", err)
		}
		p = provider.Payment{Ref: co.ID, Reference: co.reference(), Status: provider.StatusPending, Raw: clip(strings.ToLower(co.Status))}
	}
	return provider.Callback{Payment: p}, nil
}
