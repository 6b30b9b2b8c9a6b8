package callbacks

import (
	"context"
	"fmt"

	"github.com/payledger/payledger/adapters/provider"
	"github.com/payledger/payledger/domain/invoice"
)

// applied is what apply did.
type applied struct {
	state   invoice.State
	status  invoice.PaymentStatus // the payment's status afterwards; "" if it does not exist
	settled bool                  // a money event (processed or failed) was written
	flagged bool                  // provider_status_mismatch was written
}

// bind finds the payment of st that a trusted provider answer is about: the
// one this provider started with the same provider reference, or the one
// the provider's echo of our reference derives. It is what stops a real
// provider payment of one invoice from settling another.
func bind(st invoice.State, name string, p provider.Payment) (string, bool) {
	if p.Ref != "" {
		for _, pm := range st.Payments {
			if pm.Provider == name && pm.ProviderRef == p.Ref {
				return pm.ID, true
			}
		}
	}
	if p.Reference == "" || provider.InvoiceID(p.Reference) != st.ID {
		return "", false
	}
	id := provider.PaymentIDForReference(p.Reference)
	if id == "" {
		return "", false
	}
	if pm, ok := findPayment(st, id); ok && (pm.Provider != name || (pm.ProviderRef != "" && pm.ProviderRef != p.Ref)) {
		return "", false
	}
	return id, true
}

// apply brings payment payID of the invoice in line with the provider's
// word p, which must be trustworthy (a status query, or a verified
// callback). current is true when p is the provider's present status (a
// status query): only then can it contradict a settled payment. A
// callback may be stale (delivered out of order), so a pending or failed
// message after a processed one is ignored, not flagged.
func (s *Service) apply(ctx context.Context, name, invID, payID string, p provider.Payment, current bool) (applied, error) {
	svc := s.opt.Ledger
	st, err := svc.Load(ctx, invID)
	if err != nil {
		return applied{}, err
	}
	out := applied{state: st}
	pm, known := findPayment(st, payID)
	if known && pm.Provider != "" && pm.Provider != name {
		return out, fmt.Errorf("callbacks: payment %s of %s belongs to %s, not %s", payID, invID, pm.Provider, name)
	}
	if known {
		out.status = pm.Status
	}
	run := func(cmd invoice.Command) (bool, error) {
		res, err := svc.Execute(ctx, invID, cmd)
		if err != nil {
			return false, fmt.Errorf("callbacks: %T on %s: %w", cmd, invID, err)
		}
		out.state = res.State
		if p, ok := findPayment(res.State, payID); ok {
			out.status = p.Status
		}
		return len(res.Events) > 0, nil
	}
	processed := func() error {
		if !p.HasAmount {
			return fmt.Errorf("callbacks: %s reports %s processed without an amount", name, p.Ref)
		}
		changed, err := run(invoice.RecordProcessed{
			PaymentID: payID, Provider: name, ProviderRef: p.Ref, Amount: p.Amount,
			CardBrand: p.CardBrand, CardLast4: p.CardLast4,
		})
		out.settled = out.settled || changed
		return err
	}
	mismatch := func(detail string) error {
		changed, err := run(invoice.RecordMismatch{PaymentID: payID, Detail: detail})
		out.flagged = out.flagged || changed
		return err
	}
	word := p.Raw
	if word == "" {
		word = string(p.Status)
	}

	switch {
	case !known || inProgress(pm):
		switch p.Status {
		case provider.StatusProcessed:
			err = processed()
		case provider.StatusFailed:
			var changed bool
			changed, err = run(invoice.RecordFailed{PaymentID: payID, Provider: name, ProviderRef: p.Ref, Code: p.Code, Message: p.Message})
			out.settled = changed
		case provider.StatusActionRequired:
			if known && pm.Status == invoice.PaymentStatusInitiated {
				_, err = run(invoice.RequireAction{PaymentID: payID, Kind: "three_d_secure", URL: p.ActionURL})
			}
		}
	case pm.Status == invoice.PaymentStatusProcessed:
		if !current {
			break
		}
		switch {
		case p.Status != provider.StatusProcessed:
			err = mismatch(fmt.Sprintf("the ledger has %s processed (%s %s); %s reports %s", payID, pm.Amount, pm.Currency, name, word))
		case p.HasAmount && (p.Amount.String() != pm.Amount || p.Amount.Currency().Code != pm.Currency):
			err = mismatch(fmt.Sprintf("the ledger has %s %s processed; %s reports %s %s", pm.Amount, pm.Currency, name, p.Amount, p.Amount.Currency().Code))
		}
	case pm.Status == invoice.PaymentStatusFailed:
		switch p.Status {
		case provider.StatusProcessed:
			// Money moved after all: record it (the domain accepts a
			// processed after a failed). A callback saying so is the
			// ordinary retry-after-decline; the status API reversing a
			// failure it reported is a contradiction worth a human.
			if err = processed(); err == nil && current {
				err = mismatch(fmt.Sprintf("the ledger had %s failed (%s); %s reports it processed", payID, pm.FailureCode, name))
			}
		case provider.StatusPending, provider.StatusActionRequired:
			if current {
				err = mismatch(fmt.Sprintf("the ledger has %s failed (%s); %s reports %s", payID, pm.FailureCode, name, word))
			}
		}
	}
	return out, err
}
