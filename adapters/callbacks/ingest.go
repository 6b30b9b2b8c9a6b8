package callbacks

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/payledger/payledger/adapters/problem"
	"github.com/payledger/payledger/adapters/provider"
	"github.com/payledger/payledger/domain/invoice"
	"github.com/payledger/payledger/eventstore"
	"github.com/payledger/payledger/ledger"
)

// MaxCallback bounds a callback body (ARCHITECTURE.md: 1 MB).
const MaxCallback = 1 << 20

// Outcome is what one callback did, for tests and logs.
type Outcome struct {
	InvoiceID string // empty for an unmatched callback
	Stream    string // where the body was kept
	Duplicate bool   // the same body was kept before
	Settled   bool   // a money event was written
	Flagged   bool
}

// callback is POST /callbacks/{provider}.
func (s *Service) callback(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("provider")
	a, ok := s.adapters[name]
	if !ok {
		problem.Respond(w, http.StatusNotFound, "unknown_provider", fmt.Sprintf("no provider %q is configured", name))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxCallback))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		problem.Respond(w, http.StatusRequestEntityTooLarge, "body_too_large", "callback bodies are limited to 1 MB")
		return
	case err != nil:
		problem.Respond(w, http.StatusBadRequest, "bad_callback", "the body could not be read")
		return
	}
	out, err := s.Ingest(r.Context(), a, r.Header, body, r.URL.Query().Get("ref"))
	if err != nil {
		if errors.Is(err, provider.ErrBadCallback) {
			s.opt.Logger.Warn("callbacks: refused", "provider", name, "err", err)
			problem.Write(w, provider.Problem(err))
			return
		}
		// The callback may be kept but not yet confirmed; a 5xx makes the
		// provider deliver it again, and the repeat is cheap.
		s.opt.Logger.Error("callbacks: ingest", "provider", name, "err", err)
		if errors.Is(err, provider.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
			problem.Respond(w, http.StatusServiceUnavailable, "provider_unavailable", "the payment could not be confirmed with the provider yet; deliver the callback again")
			return
		}
		problem.Respond(w, http.StatusInternalServerError, "internal_error", "the callback could not be recorded; deliver it again")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(map[string]any{"received": true, "duplicate": out.Duplicate})
}

// Ingest keeps a callback body and acts on it; the HTTP handler calls it
// after reading the body. hint is the reference we put into the callback
// URL (?ref=), used to find the invoice when the body does not echo our
// reference (Payfect's sample answers clientReferenceId null). It only
// chooses where the body is kept and which invoice's payments are looked
// at: money still needs a payment of that invoice with the provider's
// reference, or the provider's own echo. A nil error means everything
// Ingest wrote is committed.
func (s *Service) Ingest(ctx context.Context, a provider.Adapter, h http.Header, body []byte, hint string) (Outcome, error) {
	name := a.Name()
	if !utf8.Valid(body) {
		// Kept bodies must be byte for byte what arrived; JSON text that
		// is not UTF-8 cannot be (RFC 8259 requires UTF-8).
		return Outcome{}, provider.BadCallback("body is not UTF-8")
	}
	cb, err := a.ParseCallback(h, body)
	if err != nil {
		if !errors.Is(err, provider.ErrBadCallback) {
			err = fmt.Errorf("%w: %v", provider.ErrBadCallback, err)
		}
		return Outcome{}, err
	}
	ref := cb.Reference
	if ref == "" && len(hint) <= 128 {
		ref = hint
	}
	invID := provider.InvoiceID(ref)
	if invID != "" {
		if _, err := s.opt.Ledger.Load(ctx, invID); errors.Is(err, invoice.ErrNotFound) {
			invID = ""
		} else if err != nil {
			return Outcome{}, err
		}
	}
	if invID == "" {
		return s.unmatched(ctx, name, cb, body)
	}
	out := Outcome{InvoiceID: invID, Stream: ledger.StreamName(invID)}
	sum := sha256.Sum256(body)
	res, err := s.opt.Ledger.Execute(ctx, invID, invoice.RecordCallback{
		Provider: name, ProviderRef: cb.Ref, Status: cb.Raw, Verified: cb.Verified, Body: string(body),
	}, ledger.Idempotent("callback/"+name+"/"+hex.EncodeToString(sum[:])))
	if err != nil {
		return out, err
	}
	out.Duplicate = res.Replayed
	// A duplicate still goes on: the first delivery may have been kept and
	// then lost its confirmation. Settled payments make this cheap.
	st := res.State

	p, current := cb.Payment, false
	if !cb.Verified || (cb.Status == provider.StatusProcessed && !cb.HasAmount) {
		if cb.Ref == "" {
			return out, nil // nothing to ask the provider about; kept for audit
		}
		if pm, ok := findPayment(st, cbPayment(st, name, cb)); ok && !inProgress(pm) && cb.Status == provider.Status(pm.Status) {
			return out, nil // already settled as the hint says: no need to ask
		}
		sctx, cancel := context.WithTimeout(ctx, s.opt.StatusTimeout)
		p, err = a.Status(sctx, cb.Ref)
		cancel()
		if errors.Is(err, provider.ErrNotFound) {
			s.opt.Logger.Warn("callbacks: provider does not know the payment a callback names", "provider", name, "ref", cb.Ref, "invoice", invID)
			return out, nil
		}
		if err != nil {
			return out, err
		}
		if p.Ref == "" {
			p.Ref = cb.Ref
		}
		current = true
	}
	payID, ok := bind(st, name, p)
	if !ok {
		s.opt.Logger.Warn("callbacks: callback names a payment this invoice did not start", "provider", name, "ref", p.Ref, "invoice", invID)
		return out, nil
	}
	ap, err := s.apply(ctx, name, invID, payID, p, current)
	out.Settled, out.Flagged = ap.settled, ap.flagged
	return out, err
}

// cbPayment guesses the payment a hint is about, only to skip a needless
// status query; it is never used to write.
func cbPayment(st invoice.State, name string, cb provider.Callback) string {
	id, _ := bind(st, name, cb.Payment)
	return id
}

// unmatched keeps a callback that names no invoice on its own stream. The
// same body twice is kept once.
func (s *Service) unmatched(ctx context.Context, name string, cb provider.Callback, body []byte) (Outcome, error) {
	key := cb.Ref
	if key == "" {
		key = cb.Reference
	}
	stream := "callback-" + name + "-" + streamKey(key, body)
	out := Outcome{Stream: stream}
	store := s.opt.Ledger.Store()
	for attempt := 0; attempt < 8; attempt++ {
		recs, err := store.ReadStream(ctx, stream, 1)
		if err != nil {
			return out, err
		}
		for _, r := range recs {
			if e, err := invoice.Decode(r.Type, r.Data); err == nil {
				if c, ok := e.(invoice.CallbackReceived); ok && c.Body == string(body) {
					out.Duplicate = true
					return out, nil
				}
			}
		}
		typ, data, err := invoice.Encode(invoice.CallbackReceived{
			Provider: name, ProviderRef: cb.Ref, Status: cb.Raw, Verified: cb.Verified, Body: string(body),
			At: s.opt.Ledger.Now().UTC().Round(0),
		})
		if err != nil {
			return out, err
		}
		_, err = store.Append(ctx, stream, eventstore.Exact(uint64(len(recs))), eventstore.EventData{
			ID: uuid.Must(uuid.NewV7()).String(), Type: typ, Data: data,
		})
		if errors.Is(err, eventstore.ErrWrongVersion) {
			continue
		}
		if err == nil {
			s.opt.Logger.Warn("callbacks: unmatched callback kept", "provider", name, "stream", stream)
		}
		return out, err
	}
	return out, fmt.Errorf("callbacks: %s kept changing", stream)
}

// streamKey makes a provider's reference safe as part of a stream name;
// anything unusual (or nothing) is replaced by a digest.
func streamKey(ref string, body []byte) string {
	ok := ref != "" && len(ref) <= 64
	for i := 0; ok && i < len(ref); i++ {
		c := ref[i]
		ok = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' || c == '~'
	}
	if ok {
		return ref
	}
	src := []byte(ref)
	if ref == "" {
		src = body
	}
	sum := sha256.Sum256(src)
	return "h" + hex.EncodeToString(sum[:12])
}
