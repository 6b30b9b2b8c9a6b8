package invoice

import (
	"github.com/payledger/payledger/domain/money"
)

// Evolve returns s with e applied. It never fails: events are facts, and an
// event that does not fit the state (which Decide never produces) still
// counts as a version. The result shares no slice or map with s, so a State
// handed out earlier never changes under its holder.
func Evolve(s State, e Event) State {
	s = s.clone()
	apply(&s, e)
	return s
}

// Fold replays events from the zero State (an invoice that does not exist).
func Fold(events ...Event) State {
	var s State
	for _, e := range events {
		apply(&s, e) // s is private here, so no copy per event is needed
	}
	return s
}

func (s State) clone() State {
	s.Customer = cloneCustomer(s.Customer)
	if s.Metadata != nil {
		md := make(map[string]string, len(s.Metadata))
		for k, v := range s.Metadata {
			md[k] = v
		}
		s.Metadata = md
	}
	if s.LineItems != nil {
		s.LineItems = append([]LineItem(nil), s.LineItems...)
	}
	if s.Links != nil {
		s.Links = append([]Link(nil), s.Links...)
	}
	if s.Payments != nil {
		ps := make([]Payment, len(s.Payments))
		for i, p := range s.Payments {
			if p.Flags != nil {
				p.Flags = append([]Flag(nil), p.Flags...)
			}
			ps[i] = p
		}
		s.Payments = ps
	}
	if s.Refunds != nil {
		s.Refunds = append([]RefundRecord(nil), s.Refunds...)
	}
	return s
}

func cloneCustomer(c Customer) Customer {
	if c.Address != nil {
		a := *c.Address
		c.Address = &a
	}
	return c
}

// parseMoney reads an amount from a stored event. Decide only writes valid
// amounts, so a failure means a hand-edited history; the amount then counts
// as zero rather than making the stream unreadable.
func parseMoney(amount, currency string) money.Money {
	m, err := money.Parse(amount, currency)
	if err != nil {
		cur, cerr := money.LookupCurrency(currency)
		if cerr != nil {
			return money.Money{}
		}
		return money.Zero(cur)
	}
	return m
}

// apply changes *s in place. Callers make sure *s owns its slices and maps.
func apply(s *State, e Event) {
	s.Version++
	s.UpdatedAt = e.OccurredAt()
	switch e := e.(type) {
	case Created:
		s.ID = e.InvoiceID
		s.Number = e.Number
		s.Status = StatusOpen
		s.Amount = parseMoney(e.Amount, e.Currency)
		s.AmountPaid = money.Zero(s.Amount.Currency())
		s.AmountRefunded = money.Zero(s.Amount.Currency())
		s.ReferenceID = e.ReferenceID
		s.Description = e.Description
		s.Customer = cloneCustomer(e.Customer)
		s.Metadata = nil
		if len(e.Metadata) > 0 {
			s.Metadata = make(map[string]string, len(e.Metadata))
			for k, v := range e.Metadata {
				s.Metadata[k] = v
			}
		}
		s.Provider = e.Provider
		s.LineItems = nil
		if len(e.LineItems) > 0 {
			s.LineItems = append([]LineItem(nil), e.LineItems...)
		}
		s.ReturnURLs = e.ReturnURLs
		s.CreatedAt = e.At
		s.ExpiresAt = e.ExpiresAt
	case LinkIssued:
		if e.RevokedLinkID != "" {
			if l := s.link(e.RevokedLinkID); l != nil && l.State == LinkStateActive {
				l.State = LinkStateRevoked
			}
		}
		s.Links = append(s.Links, Link{
			ID: e.LinkID, TokenHash: e.TokenHash, ExpiresAt: e.ExpiresAt,
			State: LinkStateActive, IssuedAt: e.At,
		})
	case LinkConsumed:
		if l := s.link(e.LinkID); l != nil {
			l.State = LinkStateConsumed
			l.ConsumedAt = e.At
		}
	case LinkExpired:
		if l := s.link(e.LinkID); l != nil && l.State == LinkStateActive {
			l.State = LinkStateExpired
		}
	case Expired:
		if s.Status == StatusOpen {
			s.Status = StatusExpired
			s.ClosedAt = e.At
		}
	case Cancelled:
		if s.Status == StatusOpen {
			s.Status = StatusCancelled
			s.ClosedAt = e.At
		}
	case Paid:
		if s.Status == StatusOpen {
			s.Status = StatusPaid
			s.PaidAt = e.At
		}
	case Flagged:
		if p := s.payment(e.PaymentID); p != nil {
			p.Flags = append(p.Flags, e.Flag)
			p.UpdatedAt = e.At
		}
	case PaymentInitiated:
		s.Payments = append(s.Payments, Payment{
			ID: e.PaymentID, Provider: e.Provider, ProviderRef: e.ProviderRef,
			Attempt: e.Attempt, Status: PaymentStatusInitiated,
			StartedAt: e.At, UpdatedAt: e.At,
		})
	case ActionRequired:
		if p := s.payment(e.PaymentID); p != nil {
			p.Status = PaymentStatusActionRequired
			p.UpdatedAt = e.At
		}
	case PaymentProcessed:
		p := s.payment(e.PaymentID)
		if p == nil {
			// Money can arrive for an attempt we never started (a provider
			// callback, a payer paying outside the hosted page).
			s.Payments = append(s.Payments, Payment{
				ID: e.PaymentID, Attempt: len(s.Payments) + 1, StartedAt: e.At,
			})
			p = &s.Payments[len(s.Payments)-1]
		}
		p.Provider = e.Provider
		p.ProviderRef = e.ProviderRef
		p.Status = PaymentStatusProcessed
		p.Amount = e.Amount
		p.Currency = e.Currency
		p.CardBrand = e.CardBrand
		p.CardLast4 = e.CardLast4
		p.FailureCode, p.FailureMsg = "", ""
		p.UpdatedAt = e.At
		// Every processed payment in the invoice's currency counts, late and
		// duplicate ones included: amount_paid is the money we hold.
		if e.Currency == s.Amount.Currency().Code {
			if sum, err := s.AmountPaid.Add(parseMoney(e.Amount, e.Currency)); err == nil {
				s.AmountPaid = sum
			}
		}
	case PaymentFailed:
		p := s.payment(e.PaymentID)
		if p == nil {
			s.Payments = append(s.Payments, Payment{
				ID: e.PaymentID, Attempt: len(s.Payments) + 1, StartedAt: e.At,
			})
			p = &s.Payments[len(s.Payments)-1]
		}
		p.Provider = e.Provider
		p.ProviderRef = e.ProviderRef
		p.Status = PaymentStatusFailed
		p.FailureCode = e.Code
		p.FailureMsg = e.Message
		p.UpdatedAt = e.At
	case Refunded:
		amt := parseMoney(e.Amount, e.Currency)
		s.Refunds = append(s.Refunds, RefundRecord{ID: e.RefundID, Amount: amt, Reason: e.Reason, At: e.At})
		if sum, err := s.AmountRefunded.Add(amt); err == nil {
			s.AmountRefunded = sum
		}
		if s.Status == StatusPaid || s.Status == StatusPartiallyRefunded {
			if s.AmountRefunded.Cmp(s.AmountPaid) >= 0 {
				s.Status = StatusRefunded
			} else {
				s.Status = StatusPartiallyRefunded
			}
		}
	case CallbackReceived:
		s.Callbacks++
	}
}

func (s *State) link(id string) *Link {
	for i := range s.Links {
		if s.Links[i].ID == id {
			return &s.Links[i]
		}
	}
	return nil
}

func (s *State) payment(id string) *Payment {
	for i := range s.Payments {
		if s.Payments[i].ID == id {
			return &s.Payments[i]
		}
	}
	return nil
}
