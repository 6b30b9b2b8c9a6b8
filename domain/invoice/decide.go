package invoice

import (
	"fmt"
	"time"

	"github.com/payledger/payledger/domain/money"
)

// Decide refuses cmd or returns the events it causes on s. It is pure: it
// never changes s (slices and maps included) and reads the clock only
// through now. An empty result with a nil error means the command is
// already satisfied (a repeated callback, an expiry that already happened):
// callers append nothing and report success.
//
// Errors: ErrNotFound for any command but Create on an invoice that does not
// exist; ErrAlreadyExists for Create on one that does; *ValidationError for
// a malformed field; otherwise one of the sentinel errors of state.go,
// wrapped with detail (test with errors.Is).
func Decide(s State, cmd Command, now time.Time) ([]Event, error) {
	now = now.UTC().Round(0) // events carry wall time only, in UTC, so they round-trip through JSON unchanged
	if c, ok := cmd.(Create); ok {
		return decideCreate(s, c, now)
	}
	if !s.Exists() {
		return nil, fmt.Errorf("%w: %T on an invoice that was never created", ErrNotFound, cmd)
	}
	switch c := cmd.(type) {
	case IssueLink:
		return decideIssueLink(s, c, now)
	case ConsumeLink:
		return decideConsumeLink(s, c, now)
	case ExpireLink:
		return decideExpireLink(s, c, now)
	case Expire:
		return decideExpire(s, now)
	case Cancel:
		return decideCancel(s, c, now)
	case InitiatePayment:
		return decideInitiatePayment(s, c, now)
	case RequireAction:
		return decideRequireAction(s, c, now)
	case RecordProcessed:
		return decideRecordProcessed(s, c, now)
	case RecordFailed:
		return decideRecordFailed(s, c, now)
	case Refund:
		return decideRefund(s, c, now)
	case RecordMismatch:
		return decideRecordMismatch(s, c, now)
	case RecordCallback:
		return []Event{CallbackReceived{
			Provider: c.Provider, ProviderRef: c.ProviderRef, Status: c.Status,
			Verified: c.Verified, Body: c.Body, At: now,
		}}, nil
	default:
		return nil, fmt.Errorf("invoice: unknown command %T", cmd)
	}
}

func invalid(field, msg string) error { return &ValidationError{Field: field, Message: msg} }

func decideCreate(s State, c Create, now time.Time) ([]Event, error) {
	if s.Exists() {
		return nil, fmt.Errorf("%w: %s", ErrAlreadyExists, s.ID)
	}
	if c.InvoiceID == "" {
		return nil, invalid("id", "must not be empty")
	}
	cur, err := money.LookupCurrency(c.Amount.Currency().Code)
	if err != nil {
		return nil, invalid("currency", "unknown or missing currency")
	}
	if c.Amount.IsZero() {
		return nil, invalid("amount", "must be greater than zero")
	}
	if c.Provider == "" {
		return nil, invalid("provider", "must not be empty")
	}
	if !c.ExpiresAt.After(now) {
		return nil, invalid("expires_at", "must be in the future")
	}
	var md map[string]string
	if len(c.Metadata) > 0 {
		md = make(map[string]string, len(c.Metadata))
		for k, v := range c.Metadata {
			md[k] = v
		}
	}
	var items []LineItem
	if len(c.LineItems) > 0 {
		items = append([]LineItem(nil), c.LineItems...)
	}
	return []Event{Created{
		InvoiceID:   c.InvoiceID,
		Number:      c.Number,
		Amount:      c.Amount.String(),
		Currency:    cur.Code,
		ReferenceID: c.ReferenceID,
		Description: c.Description,
		Customer:    cloneCustomer(c.Customer),
		Metadata:    md,
		Provider:    c.Provider,
		LineItems:   items,
		ReturnURLs:  c.ReturnURLs,
		ExpiresAt:   c.ExpiresAt.UTC().Round(0),
		At:          now,
	}}, nil
}

// checkOpen refuses work that needs a live invoice: not open, or open but
// past its expiry while the scheduler has not caught up yet.
func checkOpen(s State, now time.Time) error {
	if s.Status != StatusOpen {
		return fmt.Errorf("%w: status is %s", ErrNotOpen, s.Status)
	}
	if !now.Before(s.ExpiresAt) {
		return fmt.Errorf("%w: expired at %s", ErrNotOpen, s.ExpiresAt.Format(time.RFC3339Nano))
	}
	return nil
}

// activeLink is the one link that may still be consumed, if any. At most one
// exists because issuing a link revokes the previous active one.
func activeLink(s State) (Link, bool) {
	for i := len(s.Links) - 1; i >= 0; i-- {
		if s.Links[i].State == LinkStateActive {
			return s.Links[i], true
		}
	}
	return Link{}, false
}

func decideIssueLink(s State, c IssueLink, now time.Time) ([]Event, error) {
	if err := checkOpen(s, now); err != nil {
		return nil, err
	}
	if c.LinkID == "" {
		return nil, invalid("link_id", "must not be empty")
	}
	if c.TokenHash == "" {
		return nil, invalid("token_hash", "must not be empty")
	}
	for _, l := range s.Links {
		if l.ID == c.LinkID {
			return nil, invalid("link_id", "already used by another link of this invoice")
		}
		if l.TokenHash == c.TokenHash {
			return nil, invalid("token_hash", "already used by another link of this invoice")
		}
	}
	if !c.ExpiresAt.After(now) {
		return nil, invalid("expires_at", "must be in the future")
	}
	// A link never outlives its invoice: clamp rather than refuse, so a
	// default TTL near the end of an invoice's life still yields a link.
	exp := c.ExpiresAt.UTC().Round(0)
	if exp.After(s.ExpiresAt) {
		exp = s.ExpiresAt
	}
	e := LinkIssued{LinkID: c.LinkID, TokenHash: c.TokenHash, ExpiresAt: exp, At: now}
	if prev, ok := activeLink(s); ok {
		e.RevokedLinkID = prev.ID
	}
	return []Event{e}, nil
}

func decideConsumeLink(s State, c ConsumeLink, now time.Time) ([]Event, error) {
	var (
		l     Link
		found bool
	)
	for _, x := range s.Links {
		if c.TokenHash != "" && x.TokenHash == c.TokenHash {
			l, found = x, true
			break
		}
	}
	if !found {
		return nil, fmt.Errorf("%w: no link of invoice %s has this token", ErrLinkNotFound, s.ID)
	}
	switch l.State {
	case LinkStateConsumed:
		return nil, fmt.Errorf("%w: %s at %s", ErrLinkUsed, l.ID, l.ConsumedAt.Format(time.RFC3339Nano))
	case LinkStateRevoked:
		return nil, fmt.Errorf("%w: %s", ErrLinkRevoked, l.ID)
	case LinkStateExpired:
		return nil, fmt.Errorf("%w: %s", ErrLinkExpired, l.ID)
	}
	// The expiry instant itself is already too late: a link is valid on
	// [IssuedAt, ExpiresAt).
	if !now.Before(l.ExpiresAt) {
		return nil, fmt.Errorf("%w: %s expired at %s", ErrLinkExpired, l.ID, l.ExpiresAt.Format(time.RFC3339Nano))
	}
	if s.Status != StatusOpen {
		return nil, fmt.Errorf("%w: status is %s", ErrNotOpen, s.Status)
	}
	return []Event{LinkConsumed{LinkID: l.ID, At: now}}, nil
}

func decideExpireLink(s State, c ExpireLink, now time.Time) ([]Event, error) {
	for _, l := range s.Links {
		if l.ID != c.LinkID {
			continue
		}
		if l.State != LinkStateActive {
			return nil, nil // consumed, revoked or expired already: nothing left to expire
		}
		if now.Before(l.ExpiresAt) {
			return nil, fmt.Errorf("%w: link %s expires at %s", ErrNotDue, l.ID, l.ExpiresAt.Format(time.RFC3339Nano))
		}
		return []Event{LinkExpired{LinkID: l.ID, At: now}}, nil
	}
	return nil, fmt.Errorf("%w: %s", ErrLinkNotFound, c.LinkID)
}

func decideExpire(s State, now time.Time) ([]Event, error) {
	if s.Status != StatusOpen {
		return nil, nil // paid, cancelled or already expired: the deadline no longer applies
	}
	if now.Before(s.ExpiresAt) {
		return nil, fmt.Errorf("%w: invoice expires at %s", ErrNotDue, s.ExpiresAt.Format(time.RFC3339Nano))
	}
	var evs []Event
	if l, ok := activeLink(s); ok {
		evs = append(evs, LinkExpired{LinkID: l.ID, At: now})
	}
	return append(evs, Expired{At: now}), nil
}

func inProgress(p Payment) bool {
	return p.Status == PaymentStatusInitiated || p.Status == PaymentStatusActionRequired
}

func decideCancel(s State, c Cancel, now time.Time) ([]Event, error) {
	if s.Status != StatusOpen {
		return nil, fmt.Errorf("%w: status is %s", ErrNotOpen, s.Status)
	}
	for _, p := range s.Payments {
		if inProgress(p) {
			return nil, fmt.Errorf("%w: %s is %s", ErrPaymentInProgress, p.ID, p.Status)
		}
	}
	return []Event{Cancelled{Reason: c.Reason, At: now}}, nil
}

func findPayment(s State, id string) (Payment, bool) {
	for _, p := range s.Payments {
		if p.ID == id {
			return p, true
		}
	}
	return Payment{}, false
}

func decideInitiatePayment(s State, c InitiatePayment, now time.Time) ([]Event, error) {
	if err := checkOpen(s, now); err != nil {
		return nil, err
	}
	if c.PaymentID == "" {
		return nil, invalid("payment_id", "must not be empty")
	}
	if _, ok := findPayment(s, c.PaymentID); ok {
		return nil, invalid("payment_id", "already used by another payment of this invoice")
	}
	provider := c.Provider
	if provider == "" {
		provider = s.Provider
	}
	return []Event{PaymentInitiated{
		PaymentID: c.PaymentID, Provider: provider, Attempt: len(s.Payments) + 1,
		ProviderRef: c.ProviderRef, RedirectURL: c.RedirectURL, At: now,
	}}, nil
}

func decideRequireAction(s State, c RequireAction, now time.Time) ([]Event, error) {
	p, ok := findPayment(s, c.PaymentID)
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrPaymentNotFound, c.PaymentID)
	}
	if !inProgress(p) {
		return nil, fmt.Errorf("%w: %s is %s", ErrPaymentFinal, p.ID, p.Status)
	}
	kind := c.Kind
	if kind == "" {
		kind = "three_d_secure"
	}
	return []Event{ActionRequired{PaymentID: p.ID, Kind: kind, URL: c.URL, At: now}}, nil
}

func decideRecordProcessed(s State, c RecordProcessed, now time.Time) ([]Event, error) {
	if c.PaymentID == "" {
		return nil, invalid("payment_id", "must not be empty")
	}
	cur, err := money.LookupCurrency(c.Amount.Currency().Code)
	if err != nil {
		return nil, invalid("currency", "unknown or missing currency")
	}
	if c.Amount.IsZero() {
		return nil, invalid("amount", "must be greater than zero")
	}
	prev, known := findPayment(s, c.PaymentID)
	if known && prev.Status == PaymentStatusProcessed {
		return nil, nil // the same callback again: the money was counted once
	}
	// A processed after a failed for the same payment is accepted: the
	// provider's latest word on money moved wins over an earlier decline.
	provider := c.Provider
	if provider == "" {
		provider = prev.Provider
	}
	if provider == "" {
		provider = s.Provider
	}
	ref := c.ProviderRef
	if ref == "" {
		ref = prev.ProviderRef
	}
	evs := []Event{PaymentProcessed{
		PaymentID: c.PaymentID, Provider: provider, ProviderRef: ref,
		Amount: c.Amount.String(), Currency: cur.Code,
		CardBrand: c.CardBrand, CardLast4: c.CardLast4, At: now,
	}}
	flag := func(f Flag, detail string) {
		evs = append(evs, Flagged{PaymentID: c.PaymentID, Flag: f, Detail: detail, At: now})
	}
	invCur := s.Amount.Currency().Code
	switch s.Status {
	case StatusExpired, StatusCancelled:
		flag(FlagLatePayment, fmt.Sprintf("%s %s processed after the invoice was %s", c.Amount, cur.Code, s.Status))
	case StatusPaid, StatusPartiallyRefunded, StatusRefunded:
		flag(FlagDuplicatePayment, fmt.Sprintf("%s %s processed after the invoice was paid", c.Amount, cur.Code))
	}
	if cur.Code != invCur {
		flag(FlagCurrencyMismatch, fmt.Sprintf("processed in %s, invoice is in %s; not counted towards the amount paid", cur.Code, invCur))
		return evs, nil
	}
	if s.Status != StatusOpen {
		return evs, nil
	}
	due, err := s.Amount.Sub(s.AmountPaid)
	if err != nil { // cannot happen while open: an open invoice is not yet covered
		due = money.Zero(cur)
	}
	paid, err := s.AmountPaid.Add(c.Amount)
	if err != nil {
		return nil, fmt.Errorf("invoice %s: %w", s.ID, err)
	}
	if paid.Cmp(s.Amount) >= 0 {
		evs = append(evs, Paid{PaymentID: c.PaymentID, AmountPaid: paid.String(), At: now})
	}
	switch c.Amount.Cmp(due) {
	case -1:
		flag(FlagAmountMismatch, fmt.Sprintf("underpaid: %s received, %s due", c.Amount, due))
	case 1:
		flag(FlagAmountMismatch, fmt.Sprintf("overpaid: %s received, %s due", c.Amount, due))
	}
	return evs, nil
}

func decideRecordFailed(s State, c RecordFailed, now time.Time) ([]Event, error) {
	if c.PaymentID == "" {
		return nil, invalid("payment_id", "must not be empty")
	}
	prev, known := findPayment(s, c.PaymentID)
	if known && !inProgress(prev) {
		return nil, nil // already failed or processed: a late or repeated decline changes nothing
	}
	provider := c.Provider
	if provider == "" {
		provider = prev.Provider
	}
	if provider == "" {
		provider = s.Provider
	}
	ref := c.ProviderRef
	if ref == "" {
		ref = prev.ProviderRef
	}
	code := c.Code
	if code == "" {
		code = "unknown"
	}
	return []Event{PaymentFailed{
		PaymentID: c.PaymentID, Provider: provider, ProviderRef: ref,
		Code: code, Message: c.Message, At: now,
	}}, nil
}

func decideRefund(s State, c Refund, now time.Time) ([]Event, error) {
	switch s.Status {
	case StatusPaid, StatusPartiallyRefunded:
	case StatusExpired, StatusCancelled, StatusRefunded:
		// A late payment, or a duplicate after a full refund, is money we
		// hold and was flagged so someone returns it: it stays refundable,
		// and the status does not change.
		if s.AmountRefunded.Cmp(s.AmountPaid) >= 0 {
			return nil, fmt.Errorf("%w: status is %s and no payment is left to refund", ErrNotPaid, s.Status)
		}
	default:
		return nil, fmt.Errorf("%w: status is %s", ErrNotPaid, s.Status)
	}
	if c.RefundID == "" {
		return nil, invalid("refund_id", "must not be empty")
	}
	for _, r := range s.Refunds {
		if r.ID == c.RefundID {
			return nil, invalid("refund_id", "already used by another refund of this invoice")
		}
	}
	if _, err := money.LookupCurrency(c.Amount.Currency().Code); err != nil {
		return nil, invalid("currency", "unknown or missing currency")
	}
	if c.Amount.Currency().Code != s.Amount.Currency().Code {
		return nil, fmt.Errorf("%w: refund in %s, invoice in %s", ErrCurrencyMismatch, c.Amount.Currency().Code, s.Amount.Currency().Code)
	}
	if c.Amount.IsZero() {
		return nil, invalid("amount", "must be greater than zero")
	}
	total, err := s.AmountRefunded.Add(c.Amount)
	if err != nil {
		return nil, fmt.Errorf("invoice %s: %w", s.ID, err)
	}
	if total.Cmp(s.AmountPaid) > 0 {
		left, _ := s.AmountPaid.Sub(s.AmountRefunded)
		return nil, fmt.Errorf("%w: %s requested, %s %s refundable", ErrRefundExceedsPayment, c.Amount, left, left.Currency().Code)
	}
	return []Event{Refunded{
		RefundID: c.RefundID, Amount: c.Amount.String(), Currency: c.Amount.Currency().Code,
		Reason: c.Reason, At: now,
	}}, nil
}

func decideRecordMismatch(s State, c RecordMismatch, now time.Time) ([]Event, error) {
	p, ok := findPayment(s, c.PaymentID)
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrPaymentNotFound, c.PaymentID)
	}
	for _, f := range p.Flags {
		if f == FlagProviderStatusMismatch {
			return nil, nil // flagged once is enough: the human sees it already
		}
	}
	return []Event{Flagged{PaymentID: p.ID, Flag: FlagProviderStatusMismatch, Detail: c.Detail, At: now}}, nil
}
