package cardpage

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/payledger/payledger/adapters/circoflows"
	"github.com/payledger/payledger/adapters/pay"
	"github.com/payledger/payledger/adapters/provider"
	"github.com/payledger/payledger/adapters/sandbox"
	"github.com/payledger/payledger/domain/invoice"
	"github.com/payledger/payledger/ledger"
)

// Name is the invoice provider the page serves.
const Name = circoflows.DirectName

// Charger is what the page needs of CircoFlows; *circoflows.Client and
// *circoflows.Direct have it.
type Charger interface {
	ChargeCard(ctx context.Context, req circoflows.ChargeRequest) (circoflows.Charge, error)
	Confirm3DS(ctx context.Context, in circoflows.ThreeDSConfirmation) (circoflows.Charge, error)
	TransactionStatus(ctx context.Context, transactionID string) (provider.Payment, error)
}

// Options configure the page. Ledger and Charger are required.
type Options struct {
	Ledger  *ledger.Service
	Charger Charger
	// PublicURL is the base of the ledger's public pages (no trailing
	// slash): the form action and the 3-D Secure return URL are built on it.
	PublicURL string
	// Secret keys the session signatures; keep it stable across restarts.
	// Empty: a random one for this process.
	Secret []byte
	// CallbackURL is the webhook_url sent with a charge of the reference
	// (default PublicURL + "/callbacks/circoflows_direct?ref=…", the
	// bridge's address for the direct adapter).
	CallbackURL func(reference string) string
	// StatusTimeout bounds a status query or 3-D Secure confirmation made
	// while the payer waits (default 10 s). A charge is bounded by the
	// client's own timeout and never repeated.
	StatusTimeout time.Duration
	// MerchantName is shown at the top of every page.
	MerchantName string
	Logger       *slog.Logger
}

// Page is the card page: pay.Provider for GET /pay/{token} plus its
// routes.
type Page struct {
	opt Options
}

var _ pay.Provider = (*Page)(nil)

// New builds the page.
func New(opt Options) *Page {
	if len(opt.Secret) == 0 {
		opt.Secret = make([]byte, 32)
		_, _ = rand.Read(opt.Secret)
	}
	opt.PublicURL = strings.TrimRight(opt.PublicURL, "/")
	if opt.CallbackURL == nil {
		base := opt.PublicURL
		opt.CallbackURL = func(ref string) string {
			return base + "/callbacks/" + Name + "?ref=" + url.QueryEscape(ref)
		}
	}
	if opt.StatusTimeout <= 0 {
		opt.StatusTimeout = 10 * time.Second
	}
	if opt.MerchantName == "" {
		opt.MerchantName = "payledger"
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	return &Page{opt: opt}
}

// Routes mounts the card session and the 3-D Secure return.
func (p *Page) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /pay/card/{invoice}/{link}", p.show)
	mux.HandleFunc("POST /pay/card/{invoice}/{link}", p.submit)
	mux.HandleFunc("GET /pay/card/{invoice}/{link}/3ds/{payment}", p.threeDS)
}

func (p *Page) sign(parts ...string) string {
	m := hmac.New(sha256.New, p.opt.Secret)
	m.Write([]byte(strings.Join(parts, "\x00")))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (p *Page) verify(sig string, parts ...string) bool {
	return hmac.Equal([]byte(sig), []byte(p.sign(parts...)))
}

// SessionURL is the card page of a consumed link.
func (p *Page) SessionURL(invoiceID, linkID string) string {
	return p.opt.PublicURL + "/pay/card/" + url.PathEscape(invoiceID) + "/" + url.PathEscape(linkID) +
		"?sig=" + p.sign("card", invoiceID, linkID)
}

// returnURL is where the bank sends the payer back after 3-D Secure. The
// brand and last four ride along, signed, because nothing else keeps them
// until the payment is booked.
func (p *Page) returnURL(invoiceID, linkID, paymentID, brand, last4 string) string {
	q := url.Values{"brand": {brand}, "last4": {last4}, "sig": {p.sign("card-3ds", invoiceID, linkID, paymentID, brand, last4)}}
	return p.opt.PublicURL + "/pay/card/" + url.PathEscape(invoiceID) + "/" + url.PathEscape(linkID) +
		"/3ds/" + url.PathEscape(paymentID) + "?" + q.Encode()
}

// Begin implements pay.Provider: the link was just consumed.
func (p *Page) Begin(w http.ResponseWriter, r *http.Request, inv invoice.State) {
	l, ok := lastConsumed(inv)
	if !ok {
		p.fail(w, "begin", errors.New("no consumed link on "+inv.ID))
		return
	}
	p.renderForm(w, http.StatusOK, inv, l.ID, formView{})
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

// session authorises a request on the card session: a valid signature
// over the invoice and link, and that link consumed in the invoice's
// events.
func (p *Page) session(w http.ResponseWriter, r *http.Request) (invoice.State, string, bool) {
	pay.NoStore(w)
	invID, linkID := r.PathValue("invoice"), r.PathValue("link")
	if !p.verify(r.URL.Query().Get("sig"), "card", invID, linkID) {
		notFound(w)
		return invoice.State{}, "", false
	}
	return p.load(w, r.Context(), invID, linkID)
}

func (p *Page) load(w http.ResponseWriter, ctx context.Context, invID, linkID string) (invoice.State, string, bool) {
	st, err := p.opt.Ledger.Load(ctx, invID)
	if errors.Is(err, invoice.ErrNotFound) {
		notFound(w)
		return st, "", false
	}
	if err != nil {
		p.fail(w, "load", err)
		return st, "", false
	}
	for _, l := range st.Links {
		if l.ID == linkID && l.State == invoice.LinkStateConsumed {
			return st, linkID, true
		}
	}
	notFound(w)
	return st, "", false
}

// show is the session page: the result once paid, a closed page when the
// invoice can no longer be paid, else the form (naming the reason of the
// failed attempt in ?failed=).
func (p *Page) show(w http.ResponseWriter, r *http.Request) {
	st, linkID, ok := p.session(w, r)
	if !ok {
		return
	}
	st, waiting, err := p.settleRunning(r.Context(), st)
	if err != nil {
		p.fail(w, "settle", err)
		return
	}
	if p.finished(w, st) {
		return
	}
	var v formView
	if id := r.URL.Query().Get("failed"); id != "" {
		if pm, ok := findPayment(st, id); ok && pm.Status == invoice.PaymentStatusFailed {
			v.Error = declineMessage(pm.FailureCode)
		}
	}
	if waiting {
		v.Notice = "An earlier payment is still waiting for your bank. If you completed it, this page shows the result in a moment; paying again may charge you twice."
	}
	p.renderForm(w, http.StatusOK, st, linkID, v)
}

// maxForm bounds a posted form; the real one is a few hundred bytes.
const maxForm = 16 << 10

func (p *Page) submit(w http.ResponseWriter, r *http.Request) {
	st, linkID, ok := p.session(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	st, _, err := p.settleRunning(ctx, st)
	if err != nil {
		p.fail(w, "settle", err)
		return
	}
	if p.finished(w, st) {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		p.renderForm(w, http.StatusBadRequest, st, linkID, formView{Error: "The form could not be read. Please try again."})
		return
	}
	in := sandbox.CardInput{
		Number:     r.PostForm.Get("card_number"),
		Expiry:     r.PostForm.Get("expiry"),
		CVC:        r.PostForm.Get("cvc"),
		Cardholder: r.PostForm.Get("cardholder"),
	}
	again := formView{Expiry: in.Expiry, Cardholder: in.Cardholder}
	parsed, ferrs := sandbox.ParseCard(in, p.opt.Ledger.Now())
	var card circoflows.Card
	if ferrs == nil {
		if card, err = circoflows.CardFromForm(parsed.Number, in.Expiry, in.CVC); err != nil {
			ferrs = sandbox.FieldErrors{"expiry": "Enter the expiry date as MM/YY."}
		}
	}
	if ferrs != nil {
		again.Error, again.Fields = "Please correct the highlighted fields.", ferrs
		p.renderForm(w, http.StatusUnprocessableEntity, st, linkID, again)
		return
	}

	n := nextAttempt(st)
	payID, ref := provider.PaymentID(st.ID, n), provider.Reference(st.ID, n)
	due, err := st.Amount.Sub(st.AmountPaid)
	if err != nil || due.IsZero() || due.Amount().IsNegative() {
		due = st.Amount
	}
	desc := st.Description
	if desc == "" {
		desc = fmt.Sprintf("Invoice %d", st.Number)
	}
	ch, err := p.opt.Charger.ChargeCard(ctx, circoflows.ChargeRequest{
		InvoiceID: st.ID, PaymentID: payID, Reference: ref, Amount: due, Card: card, Customer: st.Customer,
		WebhookURL: p.opt.CallbackURL(ref), ReturnURL: p.returnURL(st.ID, linkID, payID, parsed.Brand, parsed.Last4),
		Description: desc,
	})
	if err != nil {
		p.chargeFailed(w, r, st, linkID, payID, again, err)
		return
	}
	if ch.CardLast4 == "" {
		ch.CardLast4 = parsed.Last4
	}
	ch.CardBrand = parsed.Brand
	payID, st, err = p.initiate(ctx, st, payID, ch.Ref, ch.ActionURL)
	if err != nil {
		p.fail(w, "initiate", err)
		return
	}
	p.booked(w, r, st, linkID, payID, ch.Payment)
}

// chargeFailed answers a charge that came back with an error instead of
// an outcome.
func (p *Page) chargeFailed(w http.ResponseWriter, r *http.Request, st invoice.State, linkID, payID string, v formView, err error) {
	p.opt.Logger.Warn("cardpage: charge", "invoice", st.ID, "payment", payID, "err", err)
	if errors.Is(err, circoflows.ErrOutcomeUnknown) {
		// The card may have been charged. Keep the attempt, without a
		// transaction id, so that its webhook finds it and its number is
		// not used again.
		if _, _, ierr := p.initiate(r.Context(), st, payID, "", ""); ierr != nil {
			p.fail(w, "initiate", ierr)
			return
		}
		v.Error = "We could not get an answer from the card processor, so we do not know whether your card was charged. Please wait a few minutes and reload this page before you try again."
		p.renderForm(w, http.StatusServiceUnavailable, st, linkID, v)
		return
	}
	status := http.StatusServiceUnavailable
	v.Error = "The card processor is not responding. No money was taken. Please try again in a moment."
	switch {
	case errors.Is(err, provider.ErrUnsupportedCurrency):
		status = http.StatusBadGateway
		v.Error = "Card payments are not available in this currency. No money was taken."
	case errors.Is(err, provider.ErrRejected), errors.Is(err, provider.ErrConflict), errors.Is(err, provider.ErrBadResponse):
		status = http.StatusBadGateway
		v.Error = "The card processor did not accept this payment. No money was taken. Please try again later or contact the merchant."
	}
	p.renderForm(w, status, st, linkID, v)
}

// initiate records the attempt payID with the transaction ref. When a
// concurrent charge of the same invoice took that payment id first (a
// double submit), the attempt moves to the next free one: both charges
// are CircoFlows transactions and both must be booked.
func (p *Page) initiate(ctx context.Context, st invoice.State, payID, ref, actionURL string) (string, invoice.State, error) {
	for range 8 {
		res, err := p.opt.Ledger.Execute(ctx, st.ID, invoice.InitiatePayment{PaymentID: payID, Provider: Name, ProviderRef: ref, RedirectURL: actionURL})
		var verr *invoice.ValidationError
		switch {
		case err == nil:
			return payID, res.State, nil
		case errors.Is(err, invoice.ErrNotOpen):
			// Closed meanwhile (paid by a concurrent charge, expired):
			// money that moved is still booked, as a duplicate or late
			// payment, by what follows, on a payment id of its own.
			if pm, used := findPayment(res.State, payID); used && (ref == "" || pm.ProviderRef != ref) {
				payID = provider.PaymentID(res.State.ID, nextAttempt(res.State))
			}
			return payID, res.State, nil
		case errors.As(err, &verr) && verr.Field == "payment_id":
			// The transaction's own webhook got here first (it carries
			// the reference of this attempt): that payment is this one.
			// Anything else, an attempt without a transaction id
			// included, belongs to another charge.
			if pm, _ := findPayment(res.State, payID); ref != "" && pm.Provider == Name && pm.ProviderRef == ref {
				return payID, res.State, nil
			}
			st = res.State
			payID = provider.PaymentID(st.ID, nextAttempt(st))
		default:
			return payID, res.State, err
		}
	}
	return payID, st, fmt.Errorf("cardpage: no free payment id on %s", st.ID)
}

// booked records CircoFlows' answer about payment payID and sends the
// payer on: to the bank for 3-D Secure, to the result, or back to the form
// with the reason.
func (p *Page) booked(w http.ResponseWriter, r *http.Request, st invoice.State, linkID, payID string, pm provider.Payment) {
	st, err := p.record(r.Context(), st, payID, pm)
	if err != nil {
		p.fail(w, "record", err)
		return
	}
	switch pm.Status {
	case provider.StatusActionRequired:
		http.Redirect(w, r, pm.ActionURL, http.StatusSeeOther)
	case provider.StatusFailed:
		http.Redirect(w, r, p.SessionURL(st.ID, linkID)+"&failed="+url.QueryEscape(payID), http.StatusSeeOther)
	default:
		http.Redirect(w, r, p.SessionURL(st.ID, linkID), http.StatusSeeOther)
	}
}

// record books a trusted answer (a charge, a confirmation, a status
// query) about payment payID. A processed answer without an amount is
// completed by a status query; if that fails the payment stays in
// progress for the webhook or the reconciler.
func (p *Page) record(ctx context.Context, st invoice.State, payID string, pm provider.Payment) (invoice.State, error) {
	svc := p.opt.Ledger
	cur, _ := findPayment(st, payID)
	run := func(cmd invoice.Command) (invoice.State, error) {
		res, err := svc.Execute(ctx, st.ID, cmd)
		if err != nil {
			return st, fmt.Errorf("cardpage: %T on %s: %w", cmd, st.ID, err)
		}
		return res.State, nil
	}
	switch pm.Status {
	case provider.StatusProcessed:
		if !pm.HasAmount && pm.Ref != "" {
			sctx, cancel := context.WithTimeout(ctx, p.opt.StatusTimeout)
			sp, err := p.opt.Charger.TransactionStatus(sctx, pm.Ref)
			cancel()
			if err != nil || sp.Status != provider.StatusProcessed || !sp.HasAmount {
				p.opt.Logger.Warn("cardpage: processed without an amount; left to the reconciler", "invoice", st.ID, "payment", payID, "err", err)
				return st, nil
			}
			pm.Amount, pm.HasAmount = sp.Amount, true
		}
		if !pm.HasAmount {
			return st, nil
		}
		for range 8 {
			next, err := run(invoice.RecordProcessed{
				PaymentID: payID, Provider: Name, ProviderRef: pm.Ref, Amount: pm.Amount,
				CardBrand: pm.CardBrand, CardLast4: pm.CardLast4,
			})
			if err != nil {
				return next, err
			}
			// A repeat for a processed payment is a no-op, so a payment
			// id that another transaction took meanwhile (two late
			// charges racing) would swallow this one's money: it moves
			// on to a free id instead.
			if got, _ := findPayment(next, payID); pm.Ref == "" || got.ProviderRef == pm.Ref {
				return next, nil
			}
			st, payID = next, provider.PaymentID(next.ID, nextAttempt(next))
		}
		return st, fmt.Errorf("cardpage: no free payment id on %s for %s", st.ID, pm.Ref)
	case provider.StatusFailed:
		return run(invoice.RecordFailed{PaymentID: payID, Provider: Name, ProviderRef: pm.Ref, Code: pm.Code, Message: pm.Message})
	case provider.StatusActionRequired:
		if cur.Status == invoice.PaymentStatusInitiated {
			return run(invoice.RequireAction{PaymentID: payID, Kind: "three_d_secure", URL: pm.ActionURL})
		}
	}
	return st, nil
}

// settleRunning asks CircoFlows about this page's attempts still in
// progress and books what it says. waiting reports an attempt that is
// still unsettled afterwards. A status query that fails leaves the
// attempt as it is: the reconciler will ask again.
func (p *Page) settleRunning(ctx context.Context, st invoice.State) (invoice.State, bool, error) {
	waiting := false
	for _, pm := range st.Payments {
		if pm.Provider != Name || !inProgress(pm) || pm.ProviderRef == "" {
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, p.opt.StatusTimeout)
		sp, err := p.opt.Charger.TransactionStatus(sctx, pm.ProviderRef)
		cancel()
		if err != nil {
			p.opt.Logger.Warn("cardpage: status", "invoice", st.ID, "payment", pm.ID, "err", err)
			waiting = true
			continue
		}
		sp.Ref, sp.CardBrand, sp.CardLast4 = pm.ProviderRef, pm.CardBrand, pm.CardLast4
		if st, err = p.record(ctx, st, pm.ID, sp); err != nil {
			return st, waiting, err
		}
		if now, ok := findPayment(st, pm.ID); ok && inProgress(now) {
			waiting = true
		}
	}
	return st, waiting, nil
}

// threeDS is the bank's return: the signed path names the payment; the
// bank's transaction_id must be that payment's, and its status and
// gateway_id are handed to Confirm3DS. What is booked is the transaction's
// status afterwards.
func (p *Page) threeDS(w http.ResponseWriter, r *http.Request) {
	pay.NoStore(w)
	ctx := r.Context()
	q := r.URL.Query()
	invID, linkID, payID := r.PathValue("invoice"), r.PathValue("link"), r.PathValue("payment")
	brand, last4 := q.Get("brand"), q.Get("last4")
	if !p.verify(q.Get("sig"), "card-3ds", invID, linkID, payID, brand, last4) {
		notFound(w)
		return
	}
	st, linkID, ok := p.load(w, ctx, invID, linkID)
	if !ok {
		return
	}
	pm, ok := findPayment(st, payID)
	if !ok || pm.Provider != Name {
		notFound(w)
		return
	}
	if inProgress(pm) && pm.ProviderRef != "" {
		if ret, err := circoflows.ParseReturn(q); err == nil && ret.TransactionID != "" {
			if ret.TransactionID != pm.ProviderRef {
				p.opt.Logger.Warn("cardpage: 3-D Secure return names another transaction", "invoice", invID, "payment", payID, "got", ret.TransactionID)
				p.page(w, http.StatusBadRequest, st, "We could not verify this payment", "The bank's answer does not belong to this payment. No money was taken by this page; please try again.", p.SessionURL(invID, linkID), "Back to the payment page")
				return
			}
			if ret.GatewayID != "" && ret.Status != "" {
				cctx, cancel := context.WithTimeout(ctx, p.opt.StatusTimeout)
				_, err := p.opt.Charger.Confirm3DS(cctx, ret.ThreeDS())
				cancel()
				if err != nil {
					// The status query below tells what happened.
					p.opt.Logger.Warn("cardpage: confirm 3-D Secure", "invoice", invID, "payment", payID, "err", err)
				}
			}
		}
		sctx, cancel := context.WithTimeout(ctx, p.opt.StatusTimeout)
		sp, err := p.opt.Charger.TransactionStatus(sctx, pm.ProviderRef)
		cancel()
		if err == nil {
			sp.Ref, sp.CardBrand, sp.CardLast4 = pm.ProviderRef, brand, last4
			if st, err = p.record(ctx, st, payID, sp); err != nil {
				p.fail(w, "record", err)
				return
			}
		} else {
			p.opt.Logger.Warn("cardpage: status after 3-D Secure", "invoice", invID, "payment", payID, "err", err)
		}
		pm, _ = findPayment(st, payID)
	}
	switch {
	case pm.Status == invoice.PaymentStatusFailed:
		http.Redirect(w, r, p.SessionURL(invID, linkID)+"&failed="+url.QueryEscape(payID), http.StatusSeeOther)
	case inProgress(pm):
		p.page(w, http.StatusOK, st, "Confirming your payment", "Your bank has not confirmed the payment yet. You do not need to pay again: check again in a moment.", p.SessionURL(invID, linkID), "Check again")
	default:
		http.Redirect(w, r, p.SessionURL(invID, linkID), http.StatusSeeOther)
	}
}

// finished answers when the invoice is no longer payable.
func (p *Page) finished(w http.ResponseWriter, st invoice.State) bool {
	switch st.Status {
	case invoice.StatusOpen:
		if p.opt.Ledger.Now().Before(st.ExpiresAt) {
			return false
		}
		p.page(w, http.StatusGone, st, "This payment has expired", "The time to pay this invoice has run out. Please ask the merchant for a new payment link.", st.ReturnURLs.Fail, "Back to the merchant")
	case invoice.StatusPaid, invoice.StatusPartiallyRefunded, invoice.StatusRefunded:
		p.renderResult(w, st)
	case invoice.StatusExpired:
		p.page(w, http.StatusGone, st, "This payment has expired", "The time to pay this invoice has run out. Please ask the merchant for a new payment link.", st.ReturnURLs.Fail, "Back to the merchant")
	default:
		p.page(w, http.StatusGone, st, "This payment is no longer available", "The merchant cancelled this invoice. No money was taken.", st.ReturnURLs.Fail, "Back to the merchant")
	}
	return true
}

func declineMessage(code string) string {
	switch code {
	case "card_declined", "do_not_honor", "generic_decline":
		return "Your card was declined. Please use another card."
	case "insufficient_funds":
		return "Your card has insufficient funds. Please use another card."
	case "expired_card":
		return "Your card has expired. Please use another card."
	case "invalid_cvv", "incorrect_cvc":
		return "The security code is not correct. Please check it and try again."
	case "invalid_card":
		return "The card number is not valid. Please check it and try again."
	case "failed", "authentication_failed":
		return "The payment or its 3-D Secure verification did not go through. Please try again or use another card."
	}
	return "The payment did not go through. Please try again."
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

func notFound(w http.ResponseWriter) {
	pay.WritePage(w, http.StatusNotFound, pay.Page{
		Title:   "Payment page not found",
		Message: "This payment page does not exist or has been closed. Please ask the merchant for a new payment link.",
	})
}

func (p *Page) fail(w http.ResponseWriter, step string, err error) {
	p.opt.Logger.Error("cardpage: "+step, "err", err)
	pay.WritePage(w, http.StatusInternalServerError, pay.Page{
		Title:   "Something went wrong",
		Message: "Your payment could not be completed. Please wait a moment and reload this page before you try again.",
	})
}
