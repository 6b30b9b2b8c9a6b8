package sandbox_test

import (
	"strings"
	"testing"
	"time"

	"github.com/payledger/payledger/adapters/sandbox"
)

func TestParseCard(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	ok := sandbox.CardInput{Number: "4242 4242 4242 4242", Expiry: "12/26", CVC: "123", Cardholder: "Jane Smith"}
	tests := []struct {
		name  string
		edit  func(*sandbox.CardInput)
		field string // "" = accepted
	}{
		{"valid, spaces", func(*sandbox.CardInput) {}, ""},
		{"valid, dashes", func(c *sandbox.CardInput) { c.Number = "4242-4242-4242-4242" }, ""},
		{"expiry this month", func(c *sandbox.CardInput) { c.Expiry = "12/26" }, ""},
		{"expiry four-digit year", func(c *sandbox.CardInput) { c.Expiry = "01/2030" }, ""},
		{"luhn invalid", func(c *sandbox.CardInput) { c.Number = "4242424242424241" }, "card_number"},
		{"letters", func(c *sandbox.CardInput) { c.Number = "4242abcd42424242" }, "card_number"},
		{"too short", func(c *sandbox.CardInput) { c.Number = "42424" }, "card_number"},
		{"empty number", func(c *sandbox.CardInput) { c.Number = "" }, "card_number"},
		{"expired last month", func(c *sandbox.CardInput) { c.Expiry = "11/26" }, "expiry"},
		{"expired last year", func(c *sandbox.CardInput) { c.Expiry = "12/25" }, "expiry"},
		{"month 13", func(c *sandbox.CardInput) { c.Expiry = "13/27" }, "expiry"},
		{"no slash", func(c *sandbox.CardInput) { c.Expiry = "1227" }, "expiry"},
		{"cvc letters", func(c *sandbox.CardInput) { c.CVC = "12a" }, "cvc"},
		{"cvc short", func(c *sandbox.CardInput) { c.CVC = "12" }, "cvc"},
		{"amex needs 4", func(c *sandbox.CardInput) { c.Number = "378282246310005" }, "cvc"},
		{"no name", func(c *sandbox.CardInput) { c.Cardholder = "  " }, "cardholder"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := ok
			tc.edit(&in)
			card, errs := sandbox.ParseCard(in, now)
			if tc.field == "" {
				if errs != nil {
					t.Fatalf("refused: %v", errs)
				}
				if card.Last4 != in.Number[len(in.Number)-4:] {
					t.Fatalf("last4 %q", card.Last4)
				}
				return
			}
			if _, bad := errs[tc.field]; !bad {
				t.Fatalf("want an error on %s, got %v", tc.field, errs)
			}
			for _, msg := range errs {
				if strings.Contains(msg, strings.ReplaceAll(in.Number, " ", "")) && in.Number != "" {
					t.Fatalf("message echoes the card number: %q", msg)
				}
			}
		})
	}
}

func TestBrand(t *testing.T) {
	t.Parallel()
	for num, want := range map[string]string{
		"4242424242424242": "visa", "5555555555554444": "mastercard", "2223003122003222": "mastercard",
		"378282246310005": "amex", "6011111111111117": "discover", "3566002020360505": "jcb", "9999999999999995": "card",
	} {
		if got := sandbox.Brand(num); got != want {
			t.Errorf("Brand(%s) = %s, want %s", num, got, want)
		}
		if !sandbox.Luhn(num) {
			t.Errorf("%s should pass Luhn", num)
		}
	}
}

func FuzzParseCard(f *testing.F) {
	f.Add("4242 4242 4242 4242", "12/30", "123", "J")
	f.Add("", "", "", "")
	f.Add("4000-0000-0000-3220", "1/2030", "9999", "x")
	now := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, num, exp, cvc, name string) {
		card, errs := sandbox.ParseCard(sandbox.CardInput{Number: num, Expiry: exp, CVC: cvc, Cardholder: name}, now)
		if errs == nil {
			if !sandbox.Luhn(card.Number) || len(card.Last4) != 4 {
				t.Fatalf("accepted bad card %+v", card)
			}
		}
	})
}
