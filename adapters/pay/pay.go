package pay

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/payledger/payledger/domain/invoice"
	"github.com/payledger/payledger/ledger"
)

// ErrUnknownLink is what a LinkIndex returns for a token hash it does not
// know.
var ErrUnknownLink = errors.New("pay: unknown payment link")

// LinkIndex finds the invoice a link token belongs to. The links
// projection implements it (see FromLinks-style adapters in the
// composition root): it must return ErrUnknownLink (possibly wrapped) for
// an unknown hash.
type LinkIndex interface {
	Lookup(ctx context.Context, tokenHash string) (invoiceID, linkID string, err error)
}

// Syncer waits until the LinkIndex has caught up with the store's head
// (projections.Set.WaitFor of the store's Head). A link issued a
// millisecond ago may not be in the read model yet; on a miss the handler
// calls Sync and looks again, repeatedly, until Options.SyncTimeout, before
// it answers 404. Sync may return early; it only saves polling.
type Syncer interface {
	Sync(ctx context.Context) error
}

// SyncFunc adapts a function to Syncer.
type SyncFunc func(ctx context.Context) error

// Sync calls f.
func (f SyncFunc) Sync(ctx context.Context) error { return f(ctx) }

// Provider starts the payer's journey at a payment provider once the link
// has been consumed. inv is the invoice after the link_consumed event.
type Provider interface {
	Begin(w http.ResponseWriter, r *http.Request, inv invoice.State)
}

// Options configure the handler. Ledger, Links and Providers are required.
type Options struct {
	Ledger    *ledger.Service
	Links     LinkIndex
	Sync      Syncer              // optional
	Providers map[string]Provider // by invoice provider name
	// SyncTimeout bounds the wait for the read model on a miss (default
	// 1 s): long enough for a loaded projection, short enough that an
	// unknown token is answered promptly.
	SyncTimeout time.Duration
	Logger      *slog.Logger
}

// Handler serves GET /pay/{token}.
type Handler struct {
	opt Options
}

// New builds the handler.
func New(opt Options) *Handler {
	if opt.SyncTimeout == 0 {
		opt.SyncTimeout = time.Second
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Providers == nil {
		opt.Providers = map[string]Provider{}
	}
	return &Handler{opt: opt}
}

// Routes mounts GET /pay/{token}.
func (h *Handler) Routes(mux *http.ServeMux) {
	mux.Handle("GET /pay/{token}", h)
}

// tokenLen is the length of 32 bytes in unpadded base64url.
const tokenLen = 43

func wellFormed(token string) bool {
	if len(token) != tokenLen {
		return false
	}
	for i := 0; i < len(token); i++ {
		c := token[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// NoStore sets the headers every payer-facing page carries: the page (and
// the URL with its token or session signature) must neither be cached nor
// leak through the Referer header to another site.
func NoStore(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	NoStore(w)
	ctx := r.Context()
	token := r.PathValue("token")
	if !wellFormed(token) {
		notFound(w)
		return
	}
	hash := ledger.TokenHash(token)
	invID, _, err := h.lookup(ctx, hash)
	if errors.Is(err, ErrUnknownLink) {
		notFound(w)
		return
	}
	if err != nil {
		h.fail(w, "lookup", err)
		return
	}

	svc := h.opt.Ledger
	st, err := svc.Load(ctx, invID)
	if errors.Is(err, invoice.ErrNotFound) {
		notFound(w)
		return
	}
	if err != nil {
		h.fail(w, "load", err)
		return
	}
	// Refuse before consuming anything when the link is already spent or
	// past its expiry by our clock (even if no link_expired event exists
	// yet), so that these common cases need no write.
	if refused(w, st, hash, svc.Now()) {
		return
	}
	prov, ok := h.opt.Providers[st.Provider]
	if !ok {
		// Consuming now would burn the payer's only link on a page we
		// cannot show; the merchant can retry after fixing the setup.
		WritePage(w, http.StatusServiceUnavailable, Page{
			Title:   "Payment temporarily unavailable",
			Message: "This payment method is not available right now. Your payment link has not been used; please try again later.",
		})
		return
	}
	res, err := svc.Execute(ctx, invID, invoice.ConsumeLink{TokenHash: hash})
	switch {
	case err == nil:
	case errors.Is(err, invoice.ErrLinkUsed):
		used(w)
		return
	case errors.Is(err, invoice.ErrLinkExpired):
		expired(w)
		return
	case errors.Is(err, invoice.ErrLinkRevoked):
		revoked(w)
		return
	case errors.Is(err, invoice.ErrNotOpen):
		closed(w, res.State)
		return
	case errors.Is(err, invoice.ErrLinkNotFound):
		notFound(w)
		return
	default:
		h.fail(w, "consume", err)
		return
	}
	prov.Begin(w, r, res.State)
}

// refused answers the cases that need no write and reports whether it did.
func refused(w http.ResponseWriter, st invoice.State, hash string, now time.Time) bool {
	var l *invoice.Link
	for i := range st.Links {
		if st.Links[i].TokenHash == hash {
			l = &st.Links[i]
		}
	}
	switch {
	case l == nil:
		notFound(w)
	case l.State == invoice.LinkStateConsumed:
		used(w)
	case l.State == invoice.LinkStateExpired || !now.Before(l.ExpiresAt):
		expired(w)
	case l.State == invoice.LinkStateRevoked:
		revoked(w)
	case st.Status != invoice.StatusOpen:
		closed(w, st)
	case !now.Before(st.ExpiresAt):
		expired(w)
	default:
		return false
	}
	return true
}

func (h *Handler) lookup(ctx context.Context, hash string) (string, string, error) {
	inv, link, err := h.opt.Links.Lookup(ctx, hash)
	if !errors.Is(err, ErrUnknownLink) {
		return inv, link, err
	}
	// A miss may be a link issued a moment ago that the read model has not
	// seen yet (on PostgreSQL an event can also be held back while older
	// transactions are open), so look again until SyncTimeout before
	// calling it unknown. Probing random tokens is slowed down by the same
	// wait, which costs an attacker and not a payer.
	deadline := time.Now().Add(h.opt.SyncTimeout)
	backoff := 5 * time.Millisecond
	for time.Now().Before(deadline) {
		wctx, cancel := context.WithDeadline(ctx, deadline)
		if h.opt.Sync != nil {
			_ = h.opt.Sync.Sync(wctx)
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-wctx.Done():
		}
		t.Stop()
		cancel()
		if ctx.Err() != nil {
			return "", "", ctx.Err()
		}
		inv, link, err = h.opt.Links.Lookup(ctx, hash)
		if !errors.Is(err, ErrUnknownLink) {
			return inv, link, err
		}
		backoff = min(2*backoff, 100*time.Millisecond)
	}
	return "", "", ErrUnknownLink
}

func (h *Handler) fail(w http.ResponseWriter, step string, err error) {
	h.opt.Logger.Error("pay: "+step, "err", err)
	WritePage(w, http.StatusInternalServerError, Page{
		Title:   "Something went wrong",
		Message: "We could not open this payment page. Please try again in a moment.",
	})
}

func notFound(w http.ResponseWriter) {
	WritePage(w, http.StatusNotFound, Page{
		Title:   "Payment link not found",
		Message: "This payment link does not exist. Please check the address or ask the merchant for a new link.",
	})
}

func used(w http.ResponseWriter) {
	WritePage(w, http.StatusGone, Page{
		Title:   "This payment link has already been used",
		Message: "For your security each payment link works only once. Please ask the merchant for a new link.",
	})
}

func expired(w http.ResponseWriter) {
	WritePage(w, http.StatusGone, Page{
		Title:   "This payment link has expired",
		Message: "Payment links are valid for a few minutes only. Please ask the merchant for a new link.",
	})
}

func revoked(w http.ResponseWriter) {
	WritePage(w, http.StatusGone, Page{
		Title:   "This payment link is no longer valid",
		Message: "A newer payment link was issued for this payment. Please use the most recent link.",
	})
}

func closed(w http.ResponseWriter, st invoice.State) {
	msg := "This payment can no longer be made."
	switch st.Status {
	case invoice.StatusPaid, invoice.StatusPartiallyRefunded, invoice.StatusRefunded:
		msg = "This invoice has already been paid. Nothing more is due."
	case invoice.StatusExpired:
		msg = "This invoice has expired. Please ask the merchant for a new one."
	case invoice.StatusCancelled:
		msg = "This invoice was cancelled by the merchant."
	}
	WritePage(w, http.StatusGone, Page{Title: "This payment link is no longer valid", Message: msg})
}
