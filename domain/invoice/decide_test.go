package invoice_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/payledger/payledger/domain/invoice"
	"github.com/payledger/payledger/domain/money"
)

var (
	t0     = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	invExp = t0.Add(24 * time.Hour)
)

func at(d time.Duration) time.Time { return t0.Add(d) }

func amt(t testing.TB, amount, currency string) money.Money {
	t.Helper()
	m, err := money.Parse(amount, currency)
	if err != nil {
		t.Fatalf("money.Parse(%q, %q): %v", amount, currency, err)
	}
	return m
}

// Fixtures: an invoice of 100.00 USD created at t0, expiring a day later.
var (
	created = invoice.Created{
		InvoiceID: "inv_1", Number: 1001, Amount: "100.00", Currency: "USD",
		ReferenceID: "order-1", Provider: "sandbox",
		Metadata:  map[string]string{"account_id": "12345"},
		ExpiresAt: invExp, At: t0,
	}
	link1     = invoice.LinkIssued{LinkID: "lnk_1", TokenHash: "h1", ExpiresAt: at(11 * time.Minute), At: at(time.Minute)}
	link1Used = invoice.LinkConsumed{LinkID: "lnk_1", At: at(2 * time.Minute)}
	link2     = invoice.LinkIssued{LinkID: "lnk_2", TokenHash: "h2", ExpiresAt: at(13 * time.Minute), RevokedLinkID: "lnk_1", At: at(3 * time.Minute)}
	pay1      = invoice.PaymentInitiated{PaymentID: "pay_1", Provider: "sandbox", Attempt: 1, At: at(4 * time.Minute)}
	pay1TDS   = invoice.ActionRequired{PaymentID: "pay_1", Kind: "three_d_secure", URL: "https://3ds.example/x", At: at(5 * time.Minute)}
	pay1Done  = invoice.PaymentProcessed{PaymentID: "pay_1", Provider: "sandbox", Amount: "100.00", Currency: "USD", At: at(6 * time.Minute)}
	pay1Fail  = invoice.PaymentFailed{PaymentID: "pay_1", Provider: "sandbox", Code: "card_declined", At: at(6 * time.Minute)}
	paid1     = invoice.Paid{PaymentID: "pay_1", AmountPaid: "100.00", At: at(6 * time.Minute)}
	expired   = invoice.Expired{At: invExp}
	cancelled = invoice.Cancelled{Reason: "requested", At: at(7 * time.Minute)}
)

func given(events ...invoice.Event) []invoice.Event { return events }

type decideCase struct {
	name      string
	given     []invoice.Event
	cmd       invoice.Command
	now       time.Time
	want      []invoice.Event
	wantErr   error                           // a sentinel, tested with errors.Is
	wantField string                          // a *ValidationError on this field
	check     func(*testing.T, invoice.State) // on Fold(given ++ want)
}

func runDecide(t *testing.T, cases []decideCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := invoice.Fold(tc.given...)
			before := invoice.Fold(tc.given...)
			got, err := invoice.Decide(s, tc.cmd, tc.now)
			if !reflect.DeepEqual(s, before) {
				t.Fatalf("Decide changed its input state:\n got %+v\nwant %+v", s, before)
			}
			switch {
			case tc.wantErr != nil:
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				if err.Error() == tc.wantErr.Error() {
					t.Errorf("err %q carries no detail", err)
				}
			case tc.wantField != "":
				var ve *invoice.ValidationError
				if !errors.As(err, &ve) || ve.Field != tc.wantField {
					t.Fatalf("err = %v, want ValidationError on %q", err, tc.wantField)
				}
			case err != nil:
				t.Fatalf("unexpected error: %v", err)
			}
			if err != nil {
				if got != nil {
					t.Errorf("events %v returned with error", got)
				}
				return
			}
			if len(got) == 0 && len(tc.want) == 0 {
				got = nil
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("events:\n got %#v\nwant %#v", got, tc.want)
			}
			if tc.check != nil {
				tc.check(t, invoice.Fold(append(append([]invoice.Event(nil), tc.given...), got...)...))
			}
		})
	}
}

func wantStatus(st invoice.Status, paid, refunded string) func(*testing.T, invoice.State) {
	return func(t *testing.T, s invoice.State) {
		t.Helper()
		if s.Status != st || s.AmountPaid.String() != paid || s.AmountRefunded.String() != refunded {
			t.Errorf("status %s paid %s refunded %s, want %s %s %s",
				s.Status, s.AmountPaid, s.AmountRefunded, st, paid, refunded)
		}
	}
}

func TestDecideCreate(t *testing.T) {
	t.Parallel()
	ok := invoice.Create{
		InvoiceID: "inv_1", Number: 1001, Amount: amt(t, "100", "usd"), ReferenceID: "order-1",
		Provider: "sandbox", Metadata: map[string]string{"account_id": "12345"}, ExpiresAt: invExp,
	}
	with := func(f func(*invoice.Create)) invoice.Create { c := ok; f(&c); return c }
	runDecide(t, []decideCase{
		{name: "opens an invoice", cmd: ok, now: t0, want: given(created),
			check: func(t *testing.T, s invoice.State) {
				wantStatus(invoice.StatusOpen, "0.00", "0.00")(t, s)
				if s.ID != "inv_1" || s.Version != 1 || s.Amount.String() != "100.00" || !s.ExpiresAt.Equal(invExp) || s.Metadata["account_id"] != "12345" {
					t.Errorf("state %+v", s)
				}
			}},
		{name: "twice", given: given(created), cmd: ok, now: t0, wantErr: invoice.ErrAlreadyExists},
		{name: "no id", cmd: with(func(c *invoice.Create) { c.InvoiceID = "" }), now: t0, wantField: "id"},
		{name: "zero amount", cmd: with(func(c *invoice.Create) { c.Amount = amt(t, "0", "USD") }), now: t0, wantField: "amount"},
		{name: "no currency", cmd: with(func(c *invoice.Create) { c.Amount = money.Money{} }), now: t0, wantField: "currency"},
		{name: "no provider", cmd: with(func(c *invoice.Create) { c.Provider = "" }), now: t0, wantField: "provider"},
		{name: "expires now", cmd: with(func(c *invoice.Create) { c.ExpiresAt = t0 }), now: t0, wantField: "expires_at"},
		{name: "expired before", cmd: with(func(c *invoice.Create) { c.ExpiresAt = at(-time.Second) }), now: t0, wantField: "expires_at"},
	})
}

func TestDecideOnMissingInvoice(t *testing.T) {
	t.Parallel()
	cmds := []invoice.Command{
		invoice.IssueLink{LinkID: "lnk_1", TokenHash: "h", ExpiresAt: at(time.Hour)},
		invoice.ConsumeLink{TokenHash: "h"}, invoice.ExpireLink{LinkID: "lnk_1"},
		invoice.Expire{}, invoice.Cancel{}, invoice.InitiatePayment{PaymentID: "pay_1"},
		invoice.RequireAction{PaymentID: "pay_1"},
		invoice.RecordProcessed{PaymentID: "pay_1", Amount: amt(t, "1", "USD")},
		invoice.RecordFailed{PaymentID: "pay_1"},
		invoice.Refund{RefundID: "re_1", Amount: amt(t, "1", "USD")},
		invoice.RecordCallback{Provider: "sandbox"},
	}
	var cases []decideCase
	for _, c := range cmds {
		cases = append(cases, decideCase{name: reflect.TypeOf(c).Name(), cmd: c, now: t0, wantErr: invoice.ErrNotFound})
	}
	runDecide(t, cases)
}

func TestDecideIssueLink(t *testing.T) {
	t.Parallel()
	issue := func(id, hash string, exp time.Time) invoice.IssueLink {
		return invoice.IssueLink{LinkID: id, TokenHash: hash, ExpiresAt: exp}
	}
	runDecide(t, []decideCase{
		{name: "first link", given: given(created), cmd: issue("lnk_1", "h1", at(11*time.Minute)), now: at(time.Minute),
			want: given(link1),
			check: func(t *testing.T, s invoice.State) {
				if len(s.Links) != 1 || s.Links[0].State != invoice.LinkStateActive || s.Links[0].TokenHash != "h1" {
					t.Errorf("links %+v", s.Links)
				}
			}},
		{name: "revokes the previous unused link", given: given(created, link1),
			cmd: issue("lnk_2", "h2", at(13*time.Minute)), now: at(3 * time.Minute),
			want: given(link2),
			check: func(t *testing.T, s invoice.State) {
				if s.Links[0].State != invoice.LinkStateRevoked || s.Links[1].State != invoice.LinkStateActive {
					t.Errorf("links %+v", s.Links)
				}
			}},
		{name: "a consumed link is not revoked", given: given(created, link1, link1Used),
			cmd: issue("lnk_2", "h2", at(13*time.Minute)), now: at(3 * time.Minute),
			want: given(invoice.LinkIssued{LinkID: "lnk_2", TokenHash: "h2", ExpiresAt: at(13 * time.Minute), At: at(3 * time.Minute)}),
			check: func(t *testing.T, s invoice.State) {
				if s.Links[0].State != invoice.LinkStateConsumed {
					t.Errorf("links %+v", s.Links)
				}
			}},
		{name: "an expired link is not revoked", given: given(created, link1, invoice.LinkExpired{LinkID: "lnk_1", At: at(11 * time.Minute)}),
			cmd: issue("lnk_2", "h2", at(22*time.Minute)), now: at(12 * time.Minute),
			want: given(invoice.LinkIssued{LinkID: "lnk_2", TokenHash: "h2", ExpiresAt: at(22 * time.Minute), At: at(12 * time.Minute)})},
		{name: "expiry clamped to the invoice's", given: given(created),
			cmd: issue("lnk_1", "h1", invExp.Add(time.Hour)), now: invExp.Add(-5 * time.Minute),
			want: given(invoice.LinkIssued{LinkID: "lnk_1", TokenHash: "h1", ExpiresAt: invExp, At: invExp.Add(-5 * time.Minute)})},
		{name: "paid invoice", given: given(created, pay1, pay1Done, paid1), cmd: issue("lnk_2", "h2", at(time.Hour)), now: at(10 * time.Minute), wantErr: invoice.ErrNotOpen},
		{name: "expired invoice", given: given(created, expired), cmd: issue("lnk_2", "h2", invExp.Add(time.Hour)), now: invExp, wantErr: invoice.ErrNotOpen},
		{name: "cancelled invoice", given: given(created, cancelled), cmd: issue("lnk_2", "h2", at(time.Hour)), now: at(10 * time.Minute), wantErr: invoice.ErrNotOpen},
		{name: "open but past its expiry", given: given(created), cmd: issue("lnk_1", "h1", invExp.Add(time.Hour)), now: invExp, wantErr: invoice.ErrNotOpen},
		{name: "link expiry not in the future", given: given(created), cmd: issue("lnk_1", "h1", at(time.Minute)), now: at(time.Minute), wantField: "expires_at"},
		{name: "no token hash", given: given(created), cmd: issue("lnk_1", "", at(time.Hour)), now: t0, wantField: "token_hash"},
		{name: "no link id", given: given(created), cmd: issue("", "h1", at(time.Hour)), now: t0, wantField: "link_id"},
		{name: "token hash reused", given: given(created, link1), cmd: issue("lnk_2", "h1", at(time.Hour)), now: at(3 * time.Minute), wantField: "token_hash"},
		{name: "link id reused", given: given(created, link1), cmd: issue("lnk_1", "h9", at(time.Hour)), now: at(3 * time.Minute), wantField: "link_id"},
	})
}

func TestDecideConsumeLink(t *testing.T) {
	t.Parallel()
	consume := invoice.ConsumeLink{TokenHash: "h1"}
	runDecide(t, []decideCase{
		{name: "first visit", given: given(created, link1), cmd: consume, now: at(2 * time.Minute), want: given(link1Used),
			check: func(t *testing.T, s invoice.State) {
				if s.Links[0].State != invoice.LinkStateConsumed || !s.Links[0].ConsumedAt.Equal(at(2*time.Minute)) {
					t.Errorf("link %+v", s.Links[0])
				}
			}},
		{name: "one nanosecond before expiry", given: given(created, link1), cmd: consume, now: link1.ExpiresAt.Add(-time.Nanosecond),
			want: given(invoice.LinkConsumed{LinkID: "lnk_1", At: link1.ExpiresAt.Add(-time.Nanosecond)})},
		{name: "at its expiry instant", given: given(created, link1), cmd: consume, now: link1.ExpiresAt, wantErr: invoice.ErrLinkExpired},
		{name: "after expiry", given: given(created, link1), cmd: consume, now: link1.ExpiresAt.Add(time.Hour), wantErr: invoice.ErrLinkExpired},
		{name: "expired by event", given: given(created, link1, invoice.LinkExpired{LinkID: "lnk_1", At: link1.ExpiresAt}), cmd: consume, now: link1.ExpiresAt, wantErr: invoice.ErrLinkExpired},
		{name: "second visit", given: given(created, link1, link1Used), cmd: consume, now: at(3 * time.Minute), wantErr: invoice.ErrLinkUsed},
		{name: "second visit after expiry still says used", given: given(created, link1, link1Used), cmd: consume, now: at(time.Hour), wantErr: invoice.ErrLinkUsed},
		{name: "replaced link", given: given(created, link1, link2), cmd: consume, now: at(4 * time.Minute), wantErr: invoice.ErrLinkRevoked},
		{name: "the replacement works", given: given(created, link1, link2), cmd: invoice.ConsumeLink{TokenHash: "h2"}, now: at(4 * time.Minute),
			want: given(invoice.LinkConsumed{LinkID: "lnk_2", At: at(4 * time.Minute)})},
		{name: "unknown token", given: given(created, link1), cmd: invoice.ConsumeLink{TokenHash: "nope"}, now: at(2 * time.Minute), wantErr: invoice.ErrLinkNotFound},
		{name: "empty token", given: given(created, link1), cmd: invoice.ConsumeLink{}, now: at(2 * time.Minute), wantErr: invoice.ErrLinkNotFound},
		{name: "cancelled invoice", given: given(created, link1, cancelled), cmd: consume, now: at(8 * time.Minute), wantErr: invoice.ErrNotOpen},
		{name: "paid invoice", given: given(created, link1, pay1, pay1Done, paid1), cmd: consume, now: at(8 * time.Minute), wantErr: invoice.ErrNotOpen},
	})
}

func TestDecideExpireLink(t *testing.T) {
	t.Parallel()
	runDecide(t, []decideCase{
		{name: "at expiry", given: given(created, link1), cmd: invoice.ExpireLink{LinkID: "lnk_1"}, now: link1.ExpiresAt,
			want: given(invoice.LinkExpired{LinkID: "lnk_1", At: link1.ExpiresAt}),
			check: func(t *testing.T, s invoice.State) {
				if s.Links[0].State != invoice.LinkStateExpired || s.Status != invoice.StatusOpen {
					t.Errorf("state %s link %+v", s.Status, s.Links[0])
				}
			}},
		{name: "not due", given: given(created, link1), cmd: invoice.ExpireLink{LinkID: "lnk_1"}, now: link1.ExpiresAt.Add(-time.Nanosecond), wantErr: invoice.ErrNotDue},
		{name: "consumed: nothing to do", given: given(created, link1, link1Used), cmd: invoice.ExpireLink{LinkID: "lnk_1"}, now: at(time.Hour)},
		{name: "revoked: nothing to do", given: given(created, link1, link2), cmd: invoice.ExpireLink{LinkID: "lnk_1"}, now: at(time.Hour)},
		{name: "twice: nothing to do", given: given(created, link1, invoice.LinkExpired{LinkID: "lnk_1", At: link1.ExpiresAt}), cmd: invoice.ExpireLink{LinkID: "lnk_1"}, now: at(time.Hour)},
		{name: "unknown", given: given(created, link1), cmd: invoice.ExpireLink{LinkID: "lnk_9"}, now: at(time.Hour), wantErr: invoice.ErrLinkNotFound},
	})
}

func TestDecideExpire(t *testing.T) {
	t.Parallel()
	runDecide(t, []decideCase{
		{name: "at expiry", given: given(created), cmd: invoice.Expire{}, now: invExp, want: given(expired),
			check: func(t *testing.T, s invoice.State) {
				wantStatus(invoice.StatusExpired, "0.00", "0.00")(t, s)
				if !s.ClosedAt.Equal(invExp) {
					t.Errorf("closed at %s", s.ClosedAt)
				}
			}},
		{name: "expires the active link too", given: given(created, link1, link2), cmd: invoice.Expire{}, now: invExp,
			want: given(invoice.LinkExpired{LinkID: "lnk_2", At: invExp}, expired)},
		{name: "a consumed link stays consumed", given: given(created, link1, link1Used), cmd: invoice.Expire{}, now: invExp, want: given(expired)},
		{name: "payment in progress does not block", given: given(created, link1, link1Used, pay1, pay1TDS), cmd: invoice.Expire{}, now: invExp, want: given(expired)},
		{name: "not due", given: given(created), cmd: invoice.Expire{}, now: invExp.Add(-time.Nanosecond), wantErr: invoice.ErrNotDue},
		{name: "already expired", given: given(created, expired), cmd: invoice.Expire{}, now: invExp.Add(time.Hour)},
		{name: "paid", given: given(created, pay1, pay1Done, paid1), cmd: invoice.Expire{}, now: invExp},
		{name: "cancelled", given: given(created, cancelled), cmd: invoice.Expire{}, now: invExp},
	})
}

func TestDecideCancel(t *testing.T) {
	t.Parallel()
	runDecide(t, []decideCase{
		{name: "open", given: given(created, link1), cmd: invoice.Cancel{Reason: "requested"}, now: at(7 * time.Minute), want: given(cancelled),
			check: wantStatus(invoice.StatusCancelled, "0.00", "0.00")},
		{name: "payment initiated", given: given(created, pay1), cmd: invoice.Cancel{}, now: at(7 * time.Minute), wantErr: invoice.ErrPaymentInProgress},
		{name: "3-D Secure pending", given: given(created, pay1, pay1TDS), cmd: invoice.Cancel{}, now: at(7 * time.Minute), wantErr: invoice.ErrPaymentInProgress},
		{name: "after a failed payment", given: given(created, pay1, pay1Fail), cmd: invoice.Cancel{Reason: "requested"}, now: at(7 * time.Minute), want: given(cancelled)},
		{name: "expired", given: given(created, expired), cmd: invoice.Cancel{}, now: invExp, wantErr: invoice.ErrNotOpen},
		{name: "paid", given: given(created, pay1, pay1Done, paid1), cmd: invoice.Cancel{}, now: at(7 * time.Minute), wantErr: invoice.ErrNotOpen},
		{name: "twice", given: given(created, cancelled), cmd: invoice.Cancel{}, now: at(8 * time.Minute), wantErr: invoice.ErrNotOpen},
	})
}

func TestDecidePaymentAttempts(t *testing.T) {
	t.Parallel()
	runDecide(t, []decideCase{
		{name: "first attempt, provider from the invoice", given: given(created), cmd: invoice.InitiatePayment{PaymentID: "pay_1"}, now: at(4 * time.Minute),
			want: given(pay1),
			check: func(t *testing.T, s invoice.State) {
				if len(s.Payments) != 1 || s.Payments[0].Status != invoice.PaymentStatusInitiated || s.Payments[0].Attempt != 1 {
					t.Errorf("payments %+v", s.Payments)
				}
			}},
		{name: "retry after decline", given: given(created, pay1, pay1Fail),
			cmd: invoice.InitiatePayment{PaymentID: "pay_2", Provider: "wzrdpay", ProviderRef: "w-1", RedirectURL: "https://pay.example/w-1"}, now: at(8 * time.Minute),
			want: given(invoice.PaymentInitiated{PaymentID: "pay_2", Provider: "wzrdpay", Attempt: 2, ProviderRef: "w-1", RedirectURL: "https://pay.example/w-1", At: at(8 * time.Minute)})},
		{name: "closed invoice", given: given(created, cancelled), cmd: invoice.InitiatePayment{PaymentID: "pay_2"}, now: at(8 * time.Minute), wantErr: invoice.ErrNotOpen},
		{name: "open but past expiry", given: given(created), cmd: invoice.InitiatePayment{PaymentID: "pay_2"}, now: invExp, wantErr: invoice.ErrNotOpen},
		{name: "payment id reused", given: given(created, pay1), cmd: invoice.InitiatePayment{PaymentID: "pay_1"}, now: at(8 * time.Minute), wantField: "payment_id"},
		{name: "no payment id", given: given(created), cmd: invoice.InitiatePayment{}, now: at(8 * time.Minute), wantField: "payment_id"},

		{name: "3-D Secure challenge", given: given(created, pay1), cmd: invoice.RequireAction{PaymentID: "pay_1", URL: "https://3ds.example/x"}, now: at(5 * time.Minute),
			want: given(pay1TDS),
			check: func(t *testing.T, s invoice.State) {
				if s.Payments[0].Status != invoice.PaymentStatusActionRequired {
					t.Errorf("payment %+v", s.Payments[0])
				}
			}},
		{name: "challenge for an unknown payment", given: given(created), cmd: invoice.RequireAction{PaymentID: "pay_1"}, now: at(5 * time.Minute), wantErr: invoice.ErrPaymentNotFound},
		{name: "challenge after processed", given: given(created, pay1, pay1Done, paid1), cmd: invoice.RequireAction{PaymentID: "pay_1"}, now: at(7 * time.Minute), wantErr: invoice.ErrPaymentFinal},

		{name: "declined", given: given(created, pay1, pay1TDS), cmd: invoice.RecordFailed{PaymentID: "pay_1", Code: "card_declined"}, now: at(6 * time.Minute),
			want: given(pay1Fail),
			check: func(t *testing.T, s invoice.State) {
				p := s.Payments[0]
				if p.Status != invoice.PaymentStatusFailed || p.FailureCode != "card_declined" || s.Status != invoice.StatusOpen {
					t.Errorf("payment %+v status %s", p, s.Status)
				}
			}},
		{name: "failure of a payment never initiated", given: given(created), cmd: invoice.RecordFailed{PaymentID: "pay_x", Provider: "payfect", Code: "expired_card"}, now: at(6 * time.Minute),
			want: given(invoice.PaymentFailed{PaymentID: "pay_x", Provider: "payfect", Code: "expired_card", At: at(6 * time.Minute)})},
		{name: "repeated failure: nothing", given: given(created, pay1, pay1Fail), cmd: invoice.RecordFailed{PaymentID: "pay_1", Code: "card_declined"}, now: at(7 * time.Minute)},
		{name: "failure after processed: nothing", given: given(created, pay1, pay1Done, paid1), cmd: invoice.RecordFailed{PaymentID: "pay_1", Code: "card_declined"}, now: at(7 * time.Minute),
			check: wantStatus(invoice.StatusPaid, "100.00", "0.00")},
		{name: "failure without payment id", given: given(created), cmd: invoice.RecordFailed{}, now: at(7 * time.Minute), wantField: "payment_id"},
	})
}

func TestDecideRecordProcessed(t *testing.T) {
	t.Parallel()
	proc := func(id, amount, currency string) invoice.RecordProcessed {
		return invoice.RecordProcessed{PaymentID: id, Amount: amt(t, amount, currency), CardBrand: "visa", CardLast4: "4242"}
	}
	flagged := func(id string, f invoice.Flag, detail string, d time.Duration) invoice.Flagged {
		return invoice.Flagged{PaymentID: id, Flag: f, Detail: detail, At: at(d)}
	}
	paidAt := func(id, total string, d time.Duration) invoice.Paid {
		return invoice.Paid{PaymentID: id, AmountPaid: total, At: at(d)}
	}
	pay1Visa := processed("pay_1", "100.00", "USD", 6*time.Minute)
	late := invExp.Sub(t0) + time.Hour
	runDecide(t, []decideCase{
		{name: "exact amount pays", given: given(created, link1, link1Used, pay1), cmd: proc("pay_1", "100", "USD"), now: at(6 * time.Minute),
			want: given(pay1Visa, paidAt("pay_1", "100.00", 6*time.Minute)),
			check: func(t *testing.T, s invoice.State) {
				wantStatus(invoice.StatusPaid, "100.00", "0.00")(t, s)
				p := s.Payments[0]
				if p.Status != invoice.PaymentStatusProcessed || p.Amount != "100.00" || p.CardLast4 != "4242" || !s.PaidAt.Equal(at(6*time.Minute)) {
					t.Errorf("payment %+v paid at %s", p, s.PaidAt)
				}
			}},
		{name: "payment never initiated is recorded", given: given(created), cmd: proc("pay_cb", "100.00", "USD"), now: at(6 * time.Minute),
			want: given(processed("pay_cb", "100.00", "USD", 6*time.Minute), paidAt("pay_cb", "100.00", 6*time.Minute)),
			check: func(t *testing.T, s invoice.State) {
				if len(s.Payments) != 1 || s.Payments[0].ID != "pay_cb" || s.Payments[0].Attempt != 1 || s.Payments[0].Provider != "sandbox" {
					t.Errorf("payments %+v", s.Payments)
				}
			}},
		{name: "provider truth wins over an earlier failure", given: given(created, pay1, pay1Fail), cmd: proc("pay_1", "100.00", "USD"), now: at(6 * time.Minute),
			want: given(pay1Visa, paidAt("pay_1", "100.00", 6*time.Minute)),
			check: func(t *testing.T, s invoice.State) {
				if p := s.Payments[0]; p.Status != invoice.PaymentStatusProcessed || p.FailureCode != "" {
					t.Errorf("payment %+v", p)
				}
			}},
		{name: "duplicate callback is a no-op", given: given(created, pay1, pay1Done, paid1), cmd: proc("pay_1", "100.00", "USD"), now: at(7 * time.Minute),
			check: wantStatus(invoice.StatusPaid, "100.00", "0.00")},
		{name: "after expiry: recorded and flagged late", given: given(created, link1, link1Used, pay1, expired), cmd: proc("pay_1", "100.00", "USD"), now: at(late),
			want: given(processed("pay_1", "100.00", "USD", late), flagged("pay_1", invoice.FlagLatePayment, "100.00 USD processed after the invoice was expired", late)),
			check: func(t *testing.T, s invoice.State) {
				wantStatus(invoice.StatusExpired, "100.00", "0.00")(t, s)
				if f := s.Payments[0].Flags; len(f) != 1 || f[0] != invoice.FlagLatePayment {
					t.Errorf("flags %v", f)
				}
			}},
		{name: "after cancel: flagged late", given: given(created, cancelled), cmd: proc("pay_2", "100.00", "USD"), now: at(8 * time.Minute),
			want:  given(processed("pay_2", "100.00", "USD", 8*time.Minute), flagged("pay_2", invoice.FlagLatePayment, "100.00 USD processed after the invoice was cancelled", 8*time.Minute)),
			check: wantStatus(invoice.StatusCancelled, "100.00", "0.00")},
		{name: "second payment: duplicate", given: given(created, pay1, pay1Done, paid1), cmd: proc("pay_2", "100.00", "USD"), now: at(9 * time.Minute),
			want: given(processed("pay_2", "100.00", "USD", 9*time.Minute), flagged("pay_2", invoice.FlagDuplicatePayment, "100.00 USD processed after the invoice was paid", 9*time.Minute)),
			check: func(t *testing.T, s invoice.State) {
				wantStatus(invoice.StatusPaid, "200.00", "0.00")(t, s)
				if !s.PaidAt.Equal(at(6 * time.Minute)) {
					t.Errorf("paid at moved to %s", s.PaidAt)
				}
			}},
		{name: "payment after full refund: duplicate", given: given(created, pay1, pay1Done, paid1, invoice.Refunded{RefundID: "re_1", Amount: "100.00", Currency: "USD", At: at(8 * time.Minute)}),
			cmd: proc("pay_2", "100.00", "USD"), now: at(9 * time.Minute),
			want:  given(processed("pay_2", "100.00", "USD", 9*time.Minute), flagged("pay_2", invoice.FlagDuplicatePayment, "100.00 USD processed after the invoice was paid", 9*time.Minute)),
			check: wantStatus(invoice.StatusRefunded, "200.00", "100.00")},
		{name: "underpayment leaves it open", given: given(created), cmd: proc("pay_1", "60.5", "USD"), now: at(6 * time.Minute),
			want:  given(processed("pay_1", "60.50", "USD", 6*time.Minute), flagged("pay_1", invoice.FlagAmountMismatch, "underpaid: 60.50 received, 100.00 due", 6*time.Minute)),
			check: wantStatus(invoice.StatusOpen, "60.50", "0.00")},
		{name: "the rest after an underpayment pays", given: given(created, processed("pay_1", "60.50", "USD", 6*time.Minute)), cmd: proc("pay_2", "39.50", "USD"), now: at(7 * time.Minute),
			want:  given(processed("pay_2", "39.50", "USD", 7*time.Minute), paidAt("pay_2", "100.00", 7*time.Minute)),
			check: wantStatus(invoice.StatusPaid, "100.00", "0.00")},
		{name: "overpayment pays and is flagged", given: given(created), cmd: proc("pay_1", "120.00", "USD"), now: at(6 * time.Minute),
			want:  given(processed("pay_1", "120.00", "USD", 6*time.Minute), paidAt("pay_1", "120.00", 6*time.Minute), flagged("pay_1", invoice.FlagAmountMismatch, "overpaid: 120.00 received, 100.00 due", 6*time.Minute)),
			check: wantStatus(invoice.StatusPaid, "120.00", "0.00")},
		{name: "other currency: flagged, not counted", given: given(created), cmd: proc("pay_1", "100.00", "EUR"), now: at(6 * time.Minute),
			want:  given(processed("pay_1", "100.00", "EUR", 6*time.Minute), flagged("pay_1", invoice.FlagCurrencyMismatch, "processed in EUR, invoice is in USD; not counted towards the amount paid", 6*time.Minute)),
			check: wantStatus(invoice.StatusOpen, "0.00", "0.00")},
		{name: "other currency after expiry: late and mismatched", given: given(created, expired), cmd: proc("pay_1", "5", "JPY"), now: at(late),
			want: given(processed("pay_1", "5", "JPY", late),
				flagged("pay_1", invoice.FlagLatePayment, "5 JPY processed after the invoice was expired", late),
				flagged("pay_1", invoice.FlagCurrencyMismatch, "processed in JPY, invoice is in USD; not counted towards the amount paid", late)),
			check: func(t *testing.T, s invoice.State) {
				wantStatus(invoice.StatusExpired, "0.00", "0.00")(t, s)
				if f := s.Payments[0].Flags; len(f) != 2 {
					t.Errorf("flags %v", f)
				}
			}},
		{name: "open past expiry but not yet expired: still pays", given: given(created, pay1), cmd: proc("pay_1", "100.00", "USD"), now: invExp.Add(time.Minute),
			want: given(invoice.PaymentProcessed{PaymentID: "pay_1", Provider: "sandbox", Amount: "100.00", Currency: "USD", CardBrand: "visa", CardLast4: "4242", At: invExp.Add(time.Minute)},
				invoice.Paid{PaymentID: "pay_1", AmountPaid: "100.00", At: invExp.Add(time.Minute)})},
		{name: "zero amount", given: given(created), cmd: proc("pay_1", "0", "USD"), now: at(6 * time.Minute), wantField: "amount"},
		{name: "no currency", given: given(created), cmd: invoice.RecordProcessed{PaymentID: "pay_1"}, now: at(6 * time.Minute), wantField: "currency"},
		{name: "no payment id", given: given(created), cmd: invoice.RecordProcessed{Amount: amt(t, "100", "USD")}, now: at(6 * time.Minute), wantField: "payment_id"},
	})
}

func TestDecideRefund(t *testing.T) {
	t.Parallel()
	refund := func(id, amount, currency string) invoice.Refund {
		return invoice.Refund{RefundID: id, Amount: amt(t, amount, currency), Reason: "requested_by_customer"}
	}
	refunded := func(id, amount string, d time.Duration) invoice.Refunded {
		return invoice.Refunded{RefundID: id, Amount: amount, Currency: "USD", Reason: "requested_by_customer", At: at(d)}
	}
	paidInv := given(created, pay1, pay1Done, paid1)
	with := func(evs ...invoice.Event) []invoice.Event {
		return append(append([]invoice.Event(nil), paidInv...), evs...)
	}
	runDecide(t, []decideCase{
		{name: "partial", given: paidInv, cmd: refund("re_1", "20", "USD"), now: at(time.Hour), want: given(refunded("re_1", "20.00", time.Hour)),
			check: func(t *testing.T, s invoice.State) {
				wantStatus(invoice.StatusPartiallyRefunded, "100.00", "20.00")(t, s)
				if len(s.Refunds) != 1 || s.Refunds[0].ID != "re_1" || s.Refunds[0].Amount.String() != "20.00" {
					t.Errorf("refunds %+v", s.Refunds)
				}
			}},
		{name: "second partial", given: with(refunded("re_1", "20.00", time.Hour)), cmd: refund("re_2", "30.00", "USD"), now: at(2 * time.Hour),
			want: given(refunded("re_2", "30.00", 2*time.Hour)), check: wantStatus(invoice.StatusPartiallyRefunded, "100.00", "50.00")},
		{name: "partials up to the full amount", given: with(refunded("re_1", "20.00", time.Hour), refunded("re_2", "30.00", 2*time.Hour)), cmd: refund("re_3", "50.00", "USD"), now: at(3 * time.Hour),
			want: given(refunded("re_3", "50.00", 3*time.Hour)), check: wantStatus(invoice.StatusRefunded, "100.00", "100.00")},
		{name: "full at once", given: paidInv, cmd: refund("re_1", "100.00", "USD"), now: at(time.Hour),
			want: given(refunded("re_1", "100.00", time.Hour)), check: wantStatus(invoice.StatusRefunded, "100.00", "100.00")},
		{name: "beyond the paid amount", given: paidInv, cmd: refund("re_1", "100.01", "USD"), now: at(time.Hour), wantErr: invoice.ErrRefundExceedsPayment},
		{name: "beyond what is left", given: with(refunded("re_1", "80.00", time.Hour)), cmd: refund("re_2", "20.01", "USD"), now: at(2 * time.Hour), wantErr: invoice.ErrRefundExceedsPayment},
		{name: "a duplicate payment can be refunded too", given: with(processed("pay_2", "100.00", "USD", 9*time.Minute)), cmd: refund("re_1", "200.00", "USD"), now: at(time.Hour),
			want: given(refunded("re_1", "200.00", time.Hour)), check: wantStatus(invoice.StatusRefunded, "200.00", "200.00")},
		{name: "after full refund", given: with(refunded("re_1", "100.00", time.Hour)), cmd: refund("re_2", "1.00", "USD"), now: at(2 * time.Hour), wantErr: invoice.ErrNotPaid},
		{name: "a duplicate after a full refund stays refundable", given: with(refunded("re_1", "100.00", time.Hour), processed("pay_2", "100.00", "USD", 90*time.Minute)),
			cmd: refund("re_2", "100.00", "USD"), now: at(2 * time.Hour),
			want: given(refunded("re_2", "100.00", 2*time.Hour)), check: wantStatus(invoice.StatusRefunded, "200.00", "200.00")},
		{name: "a late payment on an expired invoice is refundable", given: given(created, expired, processed("pay_1", "100.00", "USD", 25*time.Hour)),
			cmd: refund("re_1", "100.00", "USD"), now: at(26 * time.Hour),
			want: given(refunded("re_1", "100.00", 26*time.Hour)), check: wantStatus(invoice.StatusExpired, "100.00", "100.00")},
		{name: "a late payment on a cancelled invoice, partly", given: given(created, cancelled, processed("pay_1", "100.00", "USD", time.Hour)),
			cmd: refund("re_1", "30.00", "USD"), now: at(2 * time.Hour),
			want: given(refunded("re_1", "30.00", 2*time.Hour)), check: wantStatus(invoice.StatusCancelled, "100.00", "30.00")},
		{name: "beyond a late payment", given: given(created, cancelled, processed("pay_1", "100.00", "USD", time.Hour)),
			cmd: refund("re_1", "100.01", "USD"), now: at(2 * time.Hour), wantErr: invoice.ErrRefundExceedsPayment},
		{name: "underpaid open invoice", given: given(created, processed("pay_1", "60.50", "USD", time.Hour)), cmd: refund("re_1", "1.00", "USD"), now: at(2 * time.Hour), wantErr: invoice.ErrNotPaid},
		{name: "open invoice", given: given(created), cmd: refund("re_1", "1.00", "USD"), now: at(time.Hour), wantErr: invoice.ErrNotPaid},
		{name: "expired invoice", given: given(created, expired), cmd: refund("re_1", "1.00", "USD"), now: invExp, wantErr: invoice.ErrNotPaid},
		{name: "other currency", given: paidInv, cmd: refund("re_1", "20.00", "EUR"), now: at(time.Hour), wantErr: invoice.ErrCurrencyMismatch},
		{name: "zero", given: paidInv, cmd: refund("re_1", "0", "USD"), now: at(time.Hour), wantField: "amount"},
		{name: "no currency", given: paidInv, cmd: invoice.Refund{RefundID: "re_1"}, now: at(time.Hour), wantField: "currency"},
		{name: "no id", given: paidInv, cmd: refund("", "1", "USD"), now: at(time.Hour), wantField: "refund_id"},
		{name: "id reused", given: with(refunded("re_1", "20.00", time.Hour)), cmd: refund("re_1", "20.00", "USD"), now: at(2 * time.Hour), wantField: "refund_id"},
	})
}

func processed(id, amount, currency string, d time.Duration) invoice.PaymentProcessed {
	return invoice.PaymentProcessed{PaymentID: id, Provider: "sandbox", Amount: amount, Currency: currency, CardBrand: "visa", CardLast4: "4242", At: at(d)}
}

func TestDecideRecordCallback(t *testing.T) {
	t.Parallel()
	cb := invoice.RecordCallback{Provider: "wzrdpay", ProviderRef: "w-1", Status: "paid", Verified: true, Body: `{"status":"paid"}`}
	want := invoice.CallbackReceived{Provider: "wzrdpay", ProviderRef: "w-1", Status: "paid", Verified: true, Body: `{"status":"paid"}`}
	wantAt := func(d time.Time) []invoice.Event { w := want; w.At = d; return given(w) }
	counted := func(t *testing.T, s invoice.State) {
		if s.Callbacks != 1 {
			t.Errorf("callbacks %d", s.Callbacks)
		}
	}
	runDecide(t, []decideCase{
		{name: "open", given: given(created), cmd: cb, now: at(time.Minute), want: wantAt(at(time.Minute)), check: counted},
		{name: "expired", given: given(created, expired), cmd: cb, now: invExp.Add(time.Hour), want: wantAt(invExp.Add(time.Hour)), check: counted},
		{name: "paid", given: given(created, pay1, pay1Done, paid1), cmd: cb, now: at(time.Hour), want: wantAt(at(time.Hour)), check: counted},
	})
}

// Times are stored in UTC without a monotonic reading so that an event read
// back from the store equals the one Decide returned.
func TestDecideNormalisesTime(t *testing.T) {
	t.Parallel()
	loc := time.FixedZone("UTC+2", 2*3600)
	now := time.Now().In(loc) // carries a monotonic reading and a zone
	evs, err := invoice.Decide(invoice.State{}, invoice.Create{
		InvoiceID: "inv_1", Amount: amt(t, "1", "USD"), Provider: "sandbox", ExpiresAt: now.Add(time.Hour),
	}, now)
	if err != nil {
		t.Fatal(err)
	}
	c := evs[0].(invoice.Created)
	if c.At != now.UTC().Round(0) || c.ExpiresAt != now.Add(time.Hour).UTC().Round(0) {
		t.Errorf("At %v ExpiresAt %v", c.At, c.ExpiresAt)
	}
	_, data, err := invoice.Encode(c)
	if err != nil {
		t.Fatal(err)
	}
	back, err := invoice.Decode(invoice.TypeCreated, data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, c) {
		t.Errorf("round trip:\n got %#v\nwant %#v", back, c)
	}
}
