package callbacks

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/payledger/payledger/adapters/pay"
	"github.com/payledger/payledger/adapters/provider"
	"github.com/payledger/payledger/domain/invoice"
)

// payer is the pay.Provider of one adapter.
type payer struct {
	s *Service
	a provider.Adapter
}

// Begin implements pay.Provider: the link was just consumed.
func (p payer) Begin(w http.ResponseWriter, r *http.Request, inv invoice.State) {
	l, ok := lastConsumed(inv)
	if !ok {
		p.s.failPage(w, "begin", errors.New("no consumed link on "+inv.ID))
		return
	}
	p.s.start(w, r, p.a, inv, l.ID)
}

func lastConsumed(inv invoice.State) (invoice.Link, bool) {
	var out invoice.Link
	found := false
	for _, l := range inv.Links {
		if l.State == invoice.LinkStateConsumed && (!found || !l.ConsumedAt.Before(out.ConsumedAt)) {
			out, found = l, true
		}
	}
	return out, found
}

func inProgress(p invoice.Payment) bool {
	return p.Status == invoice.PaymentStatusInitiated || p.Status == invoice.PaymentStatusActionRequired
}

func findPayment(st invoice.State, id string) (invoice.Payment, bool) {
	for _, p := range st.Payments {
		if p.ID == id {
			return p, true
		}
	}
	return invoice.Payment{}, false
}

// running is the latest attempt at this provider that has not settled.
func running(st invoice.State, name string) (invoice.Payment, bool) {
	for i := len(st.Payments) - 1; i >= 0; i-- {
		if p := st.Payments[i]; p.Provider == name && inProgress(p) && p.ProviderRef != "" {
			return p, true
		}
	}
	return invoice.Payment{}, false
}

// start sends the payer to the provider: the attempt still running there
// if there is one, else a new one.
func (s *Service) start(w http.ResponseWriter, r *http.Request, a provider.Adapter, st invoice.State, linkID string) {
	ctx := r.Context()
	if s.closedPage(w, st, linkID) {
		return
	}
	if pm, ok := running(st, a.Name()); ok {
		if s.reuse(w, r, a, st, linkID, pm) {
			return
		}
		// That attempt turned out to have failed: start another.
		var err error
		if st, err = s.opt.Ledger.Load(ctx, st.ID); err != nil {
			s.failPage(w, "reload", err)
			return
		}
		if s.closedPage(w, st, linkID) {
			return
		}
	}
	s.create(w, r, a, st, linkID, true)
}

// reuse answers with the running attempt's page and reports true, or
// reports false when the provider says the attempt failed.
func (s *Service) reuse(w http.ResponseWriter, r *http.Request, a provider.Adapter, st invoice.State, linkID string, pm invoice.Payment) bool {
	ctx := r.Context()
	sctx, cancel := context.WithTimeout(ctx, s.opt.StatusTimeout)
	p, err := a.Status(sctx, pm.ProviderRef)
	cancel()
	if err == nil {
		res, aerr := s.apply(ctx, a.Name(), st.ID, pm.ID, p, true)
		if aerr != nil {
			s.failPage(w, "settle", aerr)
			return true
		}
		switch res.status {
		case invoice.PaymentStatusProcessed:
			s.resultPage(w, res.state, linkID, pm.ID, "success")
			return true
		case invoice.PaymentStatusFailed:
			return false
		}
	}
	if u, herr := s.redirectOf(ctx, st.ID, pm.ID); herr == nil && u != "" {
		http.Redirect(w, r, u, http.StatusFound)
		return true
	}
	if err == nil && safeURL(p.ActionURL) {
		http.Redirect(w, r, p.ActionURL, http.StatusFound)
		return true
	}
	// No page was kept (a provider form posted by the browser): ask the
	// provider again under the same reference. Providers that deduplicate
	// references (WZRDPAY answers 409 with the earlier invoice) hand back
	// the same payment.
	n := provider.PaymentAttempt(st.ID, pm.ID)
	if n == 0 {
		s.providerPage(w, st, linkID, fmt.Errorf("%w: no page kept for %s", provider.ErrUnavailable, pm.ID))
		return true
	}
	req := s.request(a, st, linkID, n)
	cctx, cancel := context.WithTimeout(ctx, s.opt.CreateTimeout)
	created, cerr := a.Create(cctx, req)
	cancel()
	if cerr != nil {
		s.providerPage(w, st, linkID, cerr)
		return true
	}
	if created.Ref != pm.ProviderRef {
		s.providerPage(w, st, linkID, fmt.Errorf("%w: %s answered with %s for the reference of %s", provider.ErrBadResponse, a.Name(), created.Ref, pm.ProviderRef))
		return true
	}
	s.send(w, r, st, linkID, created)
	return true
}

// nextAttempt is the first attempt number whose derived payment id the
// invoice does not use yet.
func nextAttempt(st invoice.State) int {
	n := len(st.Payments) + 1
	for {
		if _, used := findPayment(st, provider.PaymentID(st.ID, n)); !used {
			return n
		}
		n++
	}
}

func (s *Service) request(a provider.Adapter, st invoice.State, linkID string, n int) provider.CreateRequest {
	payID := provider.PaymentID(st.ID, n)
	due, err := st.Amount.Sub(st.AmountPaid)
	if err != nil || due.IsZero() {
		due = st.Amount
	}
	desc := st.Description
	if desc == "" {
		desc = fmt.Sprintf("Invoice %d", st.Number)
	}
	return provider.CreateRequest{
		InvoiceID:   st.ID,
		PaymentID:   payID,
		Reference:   provider.Reference(st.ID, n),
		Amount:      due,
		Description: desc,
		Customer:    st.Customer,
		SuccessURL:  s.ReturnURL(st.ID, linkID, payID, "success"),
		FailURL:     s.ReturnURL(st.ID, linkID, payID, "fail"),
		CallbackURL: s.CallbackURL(a.Name(), provider.Reference(st.ID, n)),
		ExpiresAt:   st.ExpiresAt,
	}
}

// create makes a new attempt at the provider and records it. On any
// provider failure nothing is written. again allows one more attempt
// when the provider hands back a finished payment (see finished).
func (s *Service) create(w http.ResponseWriter, r *http.Request, a provider.Adapter, st invoice.State, linkID string, again bool) {
	ctx := r.Context()
	req := s.request(a, st, linkID, nextAttempt(st))
	cctx, cancel := context.WithTimeout(ctx, s.opt.CreateTimeout)
	created, err := a.Create(cctx, req)
	cancel()
	if err == nil && created.Ref == "" {
		err = fmt.Errorf("%w: %s created a payment without an id", provider.ErrBadResponse, a.Name())
	}
	if err == nil && created.Status.Final() && again {
		s.finished(w, r, a, st, linkID, req.PaymentID, created.Ref)
		return
	}
	if err == nil && target(created) == "" && created.Form == nil {
		err = fmt.Errorf("%w: %s gave no usable payment page", provider.ErrBadResponse, a.Name())
	}
	if err != nil {
		s.providerPage(w, st, linkID, err)
		return
	}
	res, err := s.opt.Ledger.Execute(ctx, st.ID, invoice.InitiatePayment{
		PaymentID: req.PaymentID, Provider: a.Name(), ProviderRef: created.Ref, RedirectURL: target(created),
	})
	var verr *invoice.ValidationError
	switch {
	case err == nil:
	case errors.Is(err, invoice.ErrNotOpen):
		s.resultPage(w, res.State, linkID, req.PaymentID, "")
		return
	case errors.As(err, &verr) && verr.Field == "payment_id":
		// A callback for this very payment got here first and recorded
		// it; the payer still goes to the page.
		if pm, ok := findPayment(res.State, req.PaymentID); ok && !inProgress(pm) {
			s.resultPage(w, res.State, linkID, req.PaymentID, "")
			return
		}
	default:
		// The provider payment exists but our record of it does not: the
		// payer retries, the same reference finds it again, and a
		// callback for it lands on the same derived payment id.
		s.failPage(w, "initiate", err)
		return
	}
	s.send(w, r, st, linkID, created)
}

// finished handles a create answered with a payment that is already
// settled: providers that create-or-retrieve by reference (the on-ramp)
// or answer a repeat with the earlier payment (WZRDPAY's 409) hand back
// what an earlier create, whose answer was lost, started under the same
// reference. Sending the payer to its page is useless and refusing it
// would leave the payer on a retry page for ever, because the reference
// never changes while nothing is recorded. So the attempt is recorded,
// settled from the provider's status, and after a failure one new attempt
// (under the next reference) is made.
func (s *Service) finished(w http.ResponseWriter, r *http.Request, a provider.Adapter, st invoice.State, linkID, payID, ref string) {
	ctx := r.Context()
	res, err := s.opt.Ledger.Execute(ctx, st.ID, invoice.InitiatePayment{PaymentID: payID, Provider: a.Name(), ProviderRef: ref})
	var verr *invoice.ValidationError
	switch {
	case err == nil:
	case errors.Is(err, invoice.ErrNotOpen):
		s.resultPage(w, res.State, linkID, payID, "")
		return
	case errors.As(err, &verr) && verr.Field == "payment_id":
		// A callback for it got here first.
	default:
		s.failPage(w, "initiate", err)
		return
	}
	sctx, cancel := context.WithTimeout(ctx, s.opt.StatusTimeout)
	p, err := a.Status(sctx, ref)
	cancel()
	if err != nil {
		// Recorded and unsettled: the janitor or a callback settles it;
		// the payer may retry meanwhile.
		s.providerPage(w, st, linkID, err)
		return
	}
	if p.Ref == "" {
		p.Ref = ref
	}
	ap, err := s.apply(ctx, a.Name(), st.ID, payID, p, true)
	if err != nil {
		s.failPage(w, "settle", err)
		return
	}
	if ap.status == invoice.PaymentStatusFailed {
		if !s.closedPage(w, ap.state, linkID) {
			s.create(w, r, a, ap.state, linkID, false)
		}
		return
	}
	s.resultPage(w, ap.state, linkID, payID, "success")
}

// target is the GET address of the provider's page: its redirect URL, or
// a GET form folded into a URL. Empty for a POST form.
func target(c provider.Created) string {
	if safeURL(c.RedirectURL) {
		return c.RedirectURL
	}
	if c.Form == nil || !strings.EqualFold(c.Form.Method, http.MethodGet) || !safeURL(c.Form.Action) {
		return ""
	}
	if len(c.Form.Params) == 0 {
		return c.Form.Action
	}
	u, err := url.Parse(c.Form.Action)
	if err != nil {
		return ""
	}
	q := u.Query()
	for _, p := range c.Form.Params {
		q.Add(p[0], p[1])
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// safeURL accepts absolute http(s) URLs only: a provider's answer must
// not be able to send the payer to javascript: or a relative path of ours.
func safeURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}

func (s *Service) send(w http.ResponseWriter, r *http.Request, st invoice.State, linkID string, c provider.Created) {
	if u := target(c); u != "" {
		http.Redirect(w, r, u, http.StatusFound)
		return
	}
	if c.Form != nil && safeURL(c.Form.Action) {
		f := *c.Form
		f.Method = strings.ToLower(f.Method)
		if f.Method != "get" {
			f.Method = "post"
		}
		writeForm(w, f)
		return
	}
	s.providerPage(w, st, linkID, fmt.Errorf("%w: no usable payment page", provider.ErrBadResponse))
}

// redirectOf is the page the provider gave for a payment, from the
// payment.initiated event.
func (s *Service) redirectOf(ctx context.Context, invoiceID, paymentID string) (string, error) {
	_, evs, err := s.opt.Ledger.History(ctx, invoiceID)
	if err != nil {
		return "", err
	}
	for _, e := range evs {
		if pi, ok := e.(invoice.PaymentInitiated); ok && pi.PaymentID == paymentID && safeURL(pi.RedirectURL) {
			return pi.RedirectURL, nil
		}
	}
	return "", nil
}

// closedPage answers when the invoice can no longer be paid.
func (s *Service) closedPage(w http.ResponseWriter, st invoice.State, linkID string) bool {
	if st.Status == invoice.StatusOpen && s.opt.Ledger.Now().Before(st.ExpiresAt) {
		return false
	}
	s.resultPage(w, st, linkID, "", "")
	return true
}

// providerPage explains a provider failure. Nothing was written, so the
// payer may simply try again; a refusal gets the same button, because the
// merchant may fix the setup while the payer waits.
func (s *Service) providerPage(w http.ResponseWriter, st invoice.State, linkID string, err error) {
	s.opt.Logger.Warn("callbacks: provider failed", "invoice", st.ID, "err", err)
	p := page{
		Title:   "The payment provider is not responding",
		Message: "We could not reach the payment provider. No payment was started and no money was taken.",
		Detail:  "Please try again in a moment.",
		Tone:    "error",
		Button:  "Try again",
		Action:  s.startURL(st.ID, linkID),
	}
	status := http.StatusServiceUnavailable
	switch {
	case errors.Is(err, provider.ErrRejected), errors.Is(err, provider.ErrConflict), errors.Is(err, provider.ErrUnsupportedCurrency):
		status = http.StatusBadGateway
		p.Title = "This payment could not be started"
		p.Message = "The payment provider did not accept this payment. No money was taken."
		p.Detail = "Please try again later or contact the merchant."
	case errors.Is(err, provider.ErrDisabled):
		p.Title = "Payment temporarily unavailable"
		p.Message = "This payment method is not available right now. No money was taken."
	}
	if u := st.ReturnURLs.Fail; safeURL(u) {
		p.LinkURL, p.LinkText = u, "Back to the merchant"
	}
	writePage(w, status, p)
}

func (s *Service) failPage(w http.ResponseWriter, step string, err error) {
	s.opt.Logger.Error("callbacks: "+step, "err", err)
	writePage(w, http.StatusInternalServerError, page{
		Title:   "Something went wrong",
		Message: "We could not open the payment page. Please try again in a moment.",
	})
}

// retry is the retry button: POST /pay/start/{invoice}/{link}?sig=…
func (s *Service) retry(w http.ResponseWriter, r *http.Request) {
	pay.NoStore(w)
	invID, linkID := r.PathValue("invoice"), r.PathValue("link")
	if !s.verify(r.URL.Query().Get("sig"), "start", invID, linkID) {
		notFound(w)
		return
	}
	st, err := s.opt.Ledger.Load(r.Context(), invID)
	if errors.Is(err, invoice.ErrNotFound) {
		notFound(w)
		return
	}
	if err != nil {
		s.failPage(w, "load", err)
		return
	}
	consumed := false
	for _, l := range st.Links {
		consumed = consumed || (l.ID == linkID && l.State == invoice.LinkStateConsumed)
	}
	if !consumed {
		notFound(w)
		return
	}
	a, ok := s.adapters[st.Provider]
	if !ok {
		s.providerPage(w, st, linkID, fmt.Errorf("%w: %s", provider.ErrDisabled, st.Provider))
		return
	}
	s.start(w, r, a, st, linkID)
}

func notFound(w http.ResponseWriter) {
	writePage(w, http.StatusNotFound, page{
		Title:   "Payment page not found",
		Message: "This payment page does not exist. Please ask the merchant for a new payment link.",
	})
}

// returned is where the provider sends the payer back:
// GET /pay/return/{invoice}/{link}/{payment}?outcome=success|fail&sig=…
// Extra query parameters (the on-ramp's cko-* ids) are ignored: the path
// names the payment. An unsettled payment is confirmed with the provider
// first, so the page usually shows the outcome at once.
func (s *Service) returned(w http.ResponseWriter, r *http.Request) {
	pay.NoStore(w)
	ctx := r.Context()
	invID, linkID, payID := r.PathValue("invoice"), r.PathValue("link"), r.PathValue("payment")
	if !s.verify(r.URL.Query().Get("sig"), "return", invID, linkID, payID) {
		notFound(w)
		return
	}
	st, err := s.opt.Ledger.Load(ctx, invID)
	if errors.Is(err, invoice.ErrNotFound) {
		notFound(w)
		return
	}
	if err != nil {
		s.failPage(w, "load", err)
		return
	}
	if pm, ok := findPayment(st, payID); ok && inProgress(pm) {
		if a, ok := s.adapters[pm.Provider]; ok && pm.ProviderRef != "" {
			sctx, cancel := context.WithTimeout(ctx, s.opt.StatusTimeout)
			p, err := a.Status(sctx, pm.ProviderRef)
			cancel()
			if err == nil {
				if res, err := s.apply(ctx, a.Name(), invID, payID, p, true); err == nil {
					st = res.state
				} else {
					s.opt.Logger.Error("callbacks: settle on return", "invoice", invID, "err", err)
				}
			} else {
				s.opt.Logger.Warn("callbacks: status on return", "invoice", invID, "err", err)
			}
		}
	}
	outcome := r.URL.Query().Get("outcome")
	if outcome != "fail" {
		outcome = "success"
	}
	s.resultPage(w, st, linkID, payID, outcome)
}

// resultPage shows the ledger's view of a payment (paymentID may be empty:
// the invoice's latest).
func (s *Service) resultPage(w http.ResponseWriter, st invoice.State, linkID, paymentID, outcome string) {
	var pm invoice.Payment
	found := false
	if paymentID != "" {
		pm, found = findPayment(st, paymentID)
	}
	if !found && len(st.Payments) > 0 {
		pm, found = st.Payments[len(st.Payments)-1], true
	}
	open := st.Status == invoice.StatusOpen && s.opt.Ledger.Now().Before(st.ExpiresAt)
	back := func(p *page, u string) {
		if safeURL(u) {
			p.LinkURL, p.LinkText = u, "Back to the merchant"
		}
	}
	switch {
	case found && pm.Status == invoice.PaymentStatusProcessed:
		p := page{Title: "Payment received", Tone: "ok", Message: "Thank you, your payment of " + pm.Amount + " " + pm.Currency + " has been received."}
		back(&p, st.ReturnURLs.Success)
		writePage(w, http.StatusOK, p)
	case st.Status == invoice.StatusPaid || st.Status == invoice.StatusPartiallyRefunded || st.Status == invoice.StatusRefunded:
		p := page{Title: "This invoice is paid", Tone: "ok", Message: "This invoice has already been paid. Nothing more is due."}
		back(&p, st.ReturnURLs.Success)
		writePage(w, http.StatusOK, p)
	case found && inProgress(pm) && outcome == "success":
		writePage(w, http.StatusOK, page{
			Title: "Confirming your payment", Refresh: 5,
			Message: "The payment provider has not confirmed your payment yet. This page updates by itself; you do not need to pay again.",
		})
	case !open:
		p := page{Title: "This payment is no longer available", Message: "The time to pay this invoice has run out or the merchant closed it. No money was taken."}
		if st.Status == invoice.StatusCancelled {
			p.Message = "The merchant cancelled this invoice. No money was taken."
		}
		back(&p, st.ReturnURLs.Fail)
		writePage(w, http.StatusGone, p)
	default:
		p := page{
			Title: "Payment not completed", Tone: "error",
			Message: "Your payment did not go through. No money was taken.",
			Button:  "Try again", Action: s.startURL(st.ID, linkID),
		}
		if found && pm.Status == invoice.PaymentStatusFailed {
			p.Detail = failureText(pm.FailureCode)
		}
		back(&p, st.ReturnURLs.Fail)
		writePage(w, http.StatusOK, p)
	}
}

func failureText(code string) string {
	switch code {
	case "expired":
		return "The payment session expired before the payment was made."
	case "cancelled", "canceled":
		return "The payment was cancelled."
	}
	return "The payment was declined or not completed."
}
