package sandbox

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/payledger/payledger/adapters/pay"
	"github.com/payledger/payledger/domain/invoice"
	"github.com/payledger/payledger/ledger"
)

// Name is the provider name invoices use for the sandbox.
const Name = "sandbox"

// Options configure the sandbox provider. Ledger is required.
type Options struct {
	Ledger *ledger.Service
	// PublicURL is the base of the ledger's public pages (no trailing
	// slash); form actions and redirects are built on it. Empty means
	// paths relative to the host the payer used.
	PublicURL string
	// Secret keys the session signatures. Keep it stable across restarts
	// (a new secret invalidates open checkout pages; the payer then needs
	// a new link). Empty: a random secret for this process.
	Secret []byte
	// MerchantName is shown at the top of every page.
	MerchantName string
	Logger       *slog.Logger
}

// Provider is the sandbox: pay.Provider for GET /pay/{token} plus the
// checkout routes.
type Provider struct {
	opt Options
}

// New builds the sandbox provider.
func New(opt Options) *Provider {
	if len(opt.Secret) == 0 {
		opt.Secret = make([]byte, 32)
		_, _ = rand.Read(opt.Secret)
	}
	if opt.MerchantName == "" {
		opt.MerchantName = "payledger"
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	opt.PublicURL = strings.TrimRight(opt.PublicURL, "/")
	return &Provider{opt: opt}
}

// Routes mounts the checkout session pages.
func (p *Provider) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /sandbox/checkout/{invoice}/{link}", p.checkout)
	mux.HandleFunc("POST /sandbox/checkout/{invoice}/{link}", p.submit)
	mux.HandleFunc("GET /sandbox/checkout/{invoice}/{link}/3ds/{payment}", p.challenge)
	mux.HandleFunc("POST /sandbox/checkout/{invoice}/{link}/3ds/{payment}", p.challengeDone)
}

func (p *Provider) sign(parts ...string) string {
	m := hmac.New(sha256.New, p.opt.Secret)
	m.Write([]byte(strings.Join(parts, "\x00")))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (p *Provider) verify(sig string, parts ...string) bool {
	return hmac.Equal([]byte(sig), []byte(p.sign(parts...)))
}

// SessionURL is the checkout page of a consumed link.
func (p *Provider) SessionURL(invoiceID, linkID string) string {
	return p.opt.PublicURL + "/sandbox/checkout/" + url.PathEscape(invoiceID) + "/" + url.PathEscape(linkID) +
		"?sig=" + p.sign("checkout", invoiceID, linkID)
}

func (p *Provider) challengeURL(invoiceID, linkID, paymentID, brand, last4 string) string {
	q := url.Values{"brand": {brand}, "last4": {last4}, "sig": {p.sign("3ds", invoiceID, linkID, paymentID, brand, last4)}}
	return p.opt.PublicURL + "/sandbox/checkout/" + url.PathEscape(invoiceID) + "/" + url.PathEscape(linkID) +
		"/3ds/" + url.PathEscape(paymentID) + "?" + q.Encode()
}

// Begin renders the card form for an invoice whose link was just consumed.
func (p *Provider) Begin(w http.ResponseWriter, r *http.Request, inv invoice.State) {
	l, ok := lastConsumed(inv)
	if !ok {
		pay.WritePage(w, http.StatusInternalServerError, pay.Page{Title: "Something went wrong", Message: "This payment page could not be opened."})
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

// session authorises a checkout request: a valid signature over the
// invoice and link, and that link consumed in the invoice's events.
func (p *Provider) session(w http.ResponseWriter, r *http.Request) (invoice.State, string, bool) {
	pay.NoStore(w)
	invID, linkID := r.PathValue("invoice"), r.PathValue("link")
	if !p.verify(r.URL.Query().Get("sig"), "checkout", invID, linkID) {
		notFound(w)
		return invoice.State{}, "", false
	}
	st, err := p.opt.Ledger.Load(r.Context(), invID)
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

func notFound(w http.ResponseWriter) {
	pay.WritePage(w, http.StatusNotFound, pay.Page{
		Title:   "Checkout session not found",
		Message: "This payment page does not exist or has been closed. Please ask the merchant for a new payment link.",
	})
}

func (p *Provider) fail(w http.ResponseWriter, step string, err error) {
	p.opt.Logger.Error("sandbox: "+step, "err", err)
	pay.WritePage(w, http.StatusInternalServerError, pay.Page{
		Title:   "Something went wrong",
		Message: "Your payment could not be processed. No money was taken. Please try again in a moment.",
	})
}

// checkout shows the page for the session's current state: the result
// once paid, a closed page when the invoice can no longer be paid, else
// the form (with the reason of a failed attempt named in ?failed=).
func (p *Provider) checkout(w http.ResponseWriter, r *http.Request) {
	st, linkID, ok := p.session(w, r)
	if !ok {
		return
	}
	if p.finished(w, st) {
		return
	}
	var v formView
	if id := r.URL.Query().Get("failed"); id != "" {
		for _, pm := range st.Payments {
			if pm.ID == id && pm.Status == invoice.PaymentStatusFailed {
				v.Error = declineMessage(pm.FailureCode)
			}
		}
	}
	p.renderForm(w, http.StatusOK, st, linkID, v)
}

// finished answers when the invoice is no longer payable.
func (p *Provider) finished(w http.ResponseWriter, st invoice.State) bool {
	switch st.Status {
	case invoice.StatusOpen:
		if p.opt.Ledger.Now().Before(st.ExpiresAt) {
			return false
		}
		pay.WritePage(w, http.StatusGone, pay.Page{Title: "This payment has expired", Message: "The time to pay this invoice has run out. Please ask the merchant for a new payment link."})
	case invoice.StatusPaid, invoice.StatusPartiallyRefunded, invoice.StatusRefunded:
		p.renderResult(w, st)
	case invoice.StatusExpired:
		pay.WritePage(w, http.StatusGone, pay.Page{Title: "This payment has expired", Message: "The time to pay this invoice has run out. Please ask the merchant for a new payment link."})
	default:
		pay.WritePage(w, http.StatusGone, pay.Page{Title: "This payment is no longer available", Message: "The merchant cancelled this invoice. No money was taken."})
	}
	return true
}

// maxForm bounds a posted form; the real one is a few hundred bytes.
const maxForm = 16 << 10

func (p *Provider) submit(w http.ResponseWriter, r *http.Request) {
	st, linkID, ok := p.session(w, r)
	if !ok {
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
	in := CardInput{
		Number:     r.PostForm.Get("card_number"),
		Expiry:     r.PostForm.Get("expiry"),
		CVC:        r.PostForm.Get("cvc"),
		Cardholder: r.PostForm.Get("cardholder"),
	}
	svc := p.opt.Ledger
	card, ferrs := ParseCard(in, svc.Now())
	if ferrs != nil {
		p.renderForm(w, http.StatusUnprocessableEntity, st, linkID, formView{
			Error:      "Please correct the highlighted fields.",
			Fields:     ferrs,
			Expiry:     in.Expiry,
			Cardholder: in.Cardholder,
		})
		return
	}

	ctx := r.Context()
	// An attempt left waiting (a 3-D Secure page the payer walked away
	// from) is closed first, so that it does not count as a payment in
	// progress for ever.
	for _, pm := range st.Payments {
		if pm.Provider == Name && (pm.Status == invoice.PaymentStatusInitiated || pm.Status == invoice.PaymentStatusActionRequired) {
			if _, err := svc.Execute(ctx, st.ID, invoice.RecordFailed{PaymentID: pm.ID, Provider: Name, Code: "abandoned", Message: "replaced by a new attempt"}); err != nil {
				p.fail(w, "abandon", err)
				return
			}
		}
	}
	payID := ledger.NewID("pay")
	ref := "sbx_" + strings.TrimPrefix(payID, "pay_")
	res, err := svc.Execute(ctx, st.ID, invoice.InitiatePayment{PaymentID: payID, Provider: Name, ProviderRef: ref})
	if errors.Is(err, invoice.ErrNotOpen) {
		p.finished(w, res.State)
		return
	}
	if err != nil {
		p.fail(w, "initiate", err)
		return
	}
	st = res.State

	switch outcomeOf(card.Number) {
	case outcomeChallenge:
		u := p.challengeURL(st.ID, linkID, payID, card.Brand, card.Last4)
		if _, err := svc.Execute(ctx, st.ID, invoice.RequireAction{PaymentID: payID, Kind: "three_d_secure", URL: u}); err != nil {
			p.fail(w, "require action", err)
			return
		}
		http.Redirect(w, r, u, http.StatusSeeOther)
	case outcomeDeclined:
		p.decline(w, r, st, linkID, payID, "card_declined")
	case outcomeInsufficient:
		p.decline(w, r, st, linkID, payID, "insufficient_funds")
	default:
		p.process(w, r, st, linkID, payID, card.Brand, card.Last4)
	}
}

func (p *Provider) process(w http.ResponseWriter, r *http.Request, st invoice.State, linkID, payID, brand, last4 string) {
	due, err := st.Amount.Sub(st.AmountPaid)
	if err != nil || due.IsZero() || due.Amount().IsNegative() {
		due = st.Amount
	}
	if _, err := p.opt.Ledger.Execute(r.Context(), st.ID, invoice.RecordProcessed{
		PaymentID: payID, Provider: Name, Amount: due, CardBrand: brand, CardLast4: last4,
	}); err != nil {
		p.fail(w, "processed", err)
		return
	}
	http.Redirect(w, r, p.SessionURL(st.ID, linkID), http.StatusSeeOther)
}

func (p *Provider) decline(w http.ResponseWriter, r *http.Request, st invoice.State, linkID, payID, code string) {
	if _, err := p.opt.Ledger.Execute(r.Context(), st.ID, invoice.RecordFailed{
		PaymentID: payID, Provider: Name, Code: code, Message: declineMessage(code),
	}); err != nil {
		p.fail(w, "failed", err)
		return
	}
	http.Redirect(w, r, p.SessionURL(st.ID, linkID)+"&failed="+url.QueryEscape(payID), http.StatusSeeOther)
}

func declineMessage(code string) string {
	switch code {
	case "card_declined":
		return "Your card was declined. Please use another card."
	case "insufficient_funds":
		return "Your card has insufficient funds. Please use another card."
	case "authentication_failed":
		return "The 3-D Secure authentication failed. Please try again or use another card."
	}
	return "The payment did not go through. Please try again."
}

// challengePayment authorises a 3-D Secure page: the session, the
// challenge signature, and the payment waiting for action.
func (p *Provider) challengePayment(w http.ResponseWriter, r *http.Request) (invoice.State, string, invoice.Payment, bool) {
	pay.NoStore(w)
	q := r.URL.Query()
	invID, linkID, payID := r.PathValue("invoice"), r.PathValue("link"), r.PathValue("payment")
	brand, last4 := q.Get("brand"), q.Get("last4")
	if !p.verify(q.Get("sig"), "3ds", invID, linkID, payID, brand, last4) {
		notFound(w)
		return invoice.State{}, "", invoice.Payment{}, false
	}
	st, err := p.opt.Ledger.Load(r.Context(), invID)
	if err != nil {
		notFound(w)
		return st, "", invoice.Payment{}, false
	}
	for _, pm := range st.Payments {
		if pm.ID == payID {
			return st, linkID, pm, true
		}
	}
	notFound(w)
	return st, "", invoice.Payment{}, false
}

func (p *Provider) challenge(w http.ResponseWriter, r *http.Request) {
	st, linkID, pm, ok := p.challengePayment(w, r)
	if !ok {
		return
	}
	if pm.Status != invoice.PaymentStatusActionRequired {
		http.Redirect(w, r, p.SessionURL(st.ID, linkID), http.StatusSeeOther)
		return
	}
	p.render(w, http.StatusOK, challengeTmpl, p.baseView(st, "3-D Secure verification", p.opt.PublicURL+r.URL.RequestURI()))
}

func (p *Provider) challengeDone(w http.ResponseWriter, r *http.Request) {
	st, linkID, pm, ok := p.challengePayment(w, r)
	if !ok {
		return
	}
	if pm.Status != invoice.PaymentStatusActionRequired {
		http.Redirect(w, r, p.SessionURL(st.ID, linkID), http.StatusSeeOther)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	_ = r.ParseForm()
	q := r.URL.Query()
	if r.PostForm.Get("outcome") == "complete" {
		p.process(w, r, st, linkID, pm.ID, q.Get("brand"), q.Get("last4"))
		return
	}
	p.decline(w, r, st, linkID, pm.ID, "authentication_failed")
}
