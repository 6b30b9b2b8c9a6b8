package onramp

import (
	"fmt"
	"strings"

	"github.com/payledger/payledger/adapters/provider"
)

// statuses is the vocabulary MapStatus accepts. The document names a
// status field but no values, so this is the closed list of the words
// payment platforms (and the checkout gateway behind the cko-* redirects)
// use for the four outcomes the ledger knows:
//
//   - pending: the payment exists, the payer has not finished. An
//     authorization is pending too: the money is reserved, not moved.
//   - action_required: the payer has a step to do (3-D Secure, KYC).
//   - processed: the money moved.
//   - failed, with the word as Code: declined, cancelled, expired ….
//
// Refund words are deliberately absent: they are not a payment outcome,
// and booking a refunded payment as paid would be wrong.
var statuses = map[string]provider.Status{
	"pending":          provider.StatusPending,
	"created":          provider.StatusPending,
	"new":              provider.StatusPending,
	"initiated":        provider.StatusPending,
	"open":             provider.StatusPending,
	"processing":       provider.StatusPending,
	"in_progress":      provider.StatusPending,
	"awaiting_payment": provider.StatusPending,
	"authorized":       provider.StatusPending,
	"authorised":       provider.StatusPending,

	"requires_action": provider.StatusActionRequired,
	"action_required": provider.StatusActionRequired,

	"paid":       provider.StatusProcessed,
	"completed":  provider.StatusProcessed,
	"complete":   provider.StatusProcessed,
	"succeeded":  provider.StatusProcessed,
	"success":    provider.StatusProcessed,
	"successful": provider.StatusProcessed,
	"confirmed":  provider.StatusProcessed,
	"captured":   provider.StatusProcessed,
	"settled":    provider.StatusProcessed,

	"failed":    provider.StatusFailed,
	"failure":   provider.StatusFailed,
	"declined":  provider.StatusFailed,
	"rejected":  provider.StatusFailed,
	"error":     provider.StatusFailed,
	"cancelled": provider.StatusFailed,
	"canceled":  provider.StatusFailed,
	"voided":    provider.StatusFailed,
	"expired":   provider.StatusFailed,
}

// Statuses lists the accepted words (normalised), for documentation and
// tests.
func Statuses() map[string]provider.Status {
	out := make(map[string]provider.Status, len(statuses))
	for k, v := range statuses {
		out[k] = v
	}
	return out
}

// normalise folds case and the separators platforms disagree on
// ("In Progress", "in-progress", "IN_PROGRESS").
func normalise(word string) string {
	w := strings.ToLower(strings.TrimSpace(word))
	return strings.NewReplacer(" ", "_", "-", "_").Replace(w)
}

// MapStatus maps a status word; the second result is the failure code
// ("cancelled" for both spellings, otherwise the word itself).
func MapStatus(word string) (provider.Status, string, error) {
	w := normalise(word)
	st, ok := statuses[w]
	if !ok {
		return "", "", fmt.Errorf("unknown status %q", clean(word, 40))
	}
	if st != provider.StatusFailed {
		return st, "", nil
	}
	if w == "canceled" {
		w = "cancelled"
	}
	return st, w, nil
}
