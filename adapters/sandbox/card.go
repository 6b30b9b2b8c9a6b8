package sandbox

import (
	"strconv"
	"strings"
	"time"
)

// Test cards with a fixed outcome; every other Luhn-valid number is
// processed.
const (
	CardSuccess           = "4242424242424242"
	CardDeclined          = "4000000000000002"
	CardInsufficientFunds = "4000000000009995"
	CardThreeDSecure      = "4000000000003220"
)

// outcome is what the sandbox does with a valid card.
type outcome int

const (
	outcomeProcessed outcome = iota
	outcomeDeclined
	outcomeInsufficient
	outcomeChallenge
)

func outcomeOf(number string) outcome {
	switch number {
	case CardDeclined:
		return outcomeDeclined
	case CardInsufficientFunds:
		return outcomeInsufficient
	case CardThreeDSecure:
		return outcomeChallenge
	}
	return outcomeProcessed
}

// Card is a validated card entry. Number stays in memory for the one
// request; only Brand and Last4 leave this package.
type Card struct {
	Number     string
	Brand      string
	Last4      string
	Cardholder string
}

// CardInput is the form as posted.
type CardInput struct {
	Number, Expiry, CVC, Cardholder string
}

// FieldErrors maps form field names to messages.
type FieldErrors map[string]string

// ParseCard validates the form at now (expiry is checked against now's
// month). It never echoes the card number in a message.
func ParseCard(in CardInput, now time.Time) (Card, FieldErrors) {
	errs := FieldErrors{}
	var c Card

	digits, ok := cardDigits(in.Number)
	switch {
	case strings.TrimSpace(in.Number) == "":
		errs["card_number"] = "Enter your card number."
	case !ok || len(digits) < 12 || len(digits) > 19:
		errs["card_number"] = "The card number must be 12 to 19 digits."
	case !Luhn(digits):
		errs["card_number"] = "This card number is not valid. Please check it and try again."
	default:
		c.Number = digits
		c.Brand = Brand(digits)
		c.Last4 = digits[len(digits)-4:]
	}

	if msg := checkExpiry(in.Expiry, now); msg != "" {
		errs["expiry"] = msg
	}

	cvc := strings.TrimSpace(in.CVC)
	want := 3
	if c.Brand == "amex" {
		want = 4
	}
	if len(cvc) != want || !allDigits(cvc) {
		errs["cvc"] = "The security code is the " + strconv.Itoa(want) + " digits on the back of your card."
	}

	c.Cardholder = strings.TrimSpace(in.Cardholder)
	switch {
	case c.Cardholder == "":
		errs["cardholder"] = "Enter the name on the card."
	case len(c.Cardholder) > 100:
		errs["cardholder"] = "The name is too long."
	}
	if len(errs) > 0 {
		return Card{}, errs
	}
	return c, nil
}

// cardDigits strips the spaces and dashes people type between groups.
func cardDigits(s string) (string, bool) {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == ' ' || r == '-' || r == '\u00a0':
		default:
			return "", false
		}
	}
	return b.String(), b.Len() > 0
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// Luhn reports whether digits (only '0'–'9') pass the Luhn checksum.
func Luhn(digits string) bool {
	sum := 0
	double := false
	for i := len(digits) - 1; i >= 0; i-- {
		d := int(digits[i] - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return len(digits) > 0 && sum%10 == 0
}

// Brand names the card network from the number's prefix.
func Brand(digits string) string {
	p := func(n int) int {
		if len(digits) < n {
			return -1
		}
		v, _ := strconv.Atoi(digits[:n])
		return v
	}
	switch {
	case strings.HasPrefix(digits, "4"):
		return "visa"
	case p(2) >= 51 && p(2) <= 55, p(4) >= 2221 && p(4) <= 2720:
		return "mastercard"
	case p(2) == 34 || p(2) == 37:
		return "amex"
	case p(4) == 6011 || p(2) == 65 || p(3) >= 644 && p(3) <= 649:
		return "discover"
	case p(2) == 35:
		return "jcb"
	}
	return "card"
}

// checkExpiry accepts MM/YY (and MM/YYYY, with optional spaces); a card is
// valid through the last day of its month.
func checkExpiry(s string, now time.Time) string {
	s = strings.ReplaceAll(strings.TrimSpace(s), " ", "")
	if s == "" {
		return "Enter the expiry date as MM/YY."
	}
	mm, yy, ok := strings.Cut(s, "/")
	if !ok || len(mm) < 1 || len(mm) > 2 || (len(yy) != 2 && len(yy) != 4) || !allDigits(mm) || !allDigits(yy) {
		return "Enter the expiry date as MM/YY."
	}
	m, _ := strconv.Atoi(mm)
	y, _ := strconv.Atoi(yy)
	if len(yy) == 2 {
		y += 2000
	}
	if m < 1 || m > 12 {
		return "The expiry month must be between 01 and 12."
	}
	now = now.UTC()
	if y < now.Year() || y == now.Year() && time.Month(m) < now.Month() {
		return "This card has expired."
	}
	if y > now.Year()+20 {
		return "The expiry year is too far in the future."
	}
	return ""
}
