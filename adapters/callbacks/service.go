package callbacks

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/payledger/payledger/adapters/pay"
	"github.com/payledger/payledger/adapters/provider"
	"github.com/payledger/payledger/ledger"
)

// Options configure the Service. Ledger is required.
type Options struct {
	Ledger *ledger.Service
	// Adapters are the configured external providers, by their Name().
	Adapters []provider.Adapter
	// PublicURL is the base of the ledger's public pages (no trailing
	// slash): return and callback URLs sent to providers are built on it.
	PublicURL string
	// Secret keys the signatures of the retry and return URLs. Keep it
	// stable across restarts; empty means a random one for this process.
	Secret []byte
	// CreateTimeout bounds creating the provider payment, retries
	// included, while the payer waits (default 30 s).
	CreateTimeout time.Duration
	// StatusTimeout bounds one status query made while someone waits (a
	// payer's return page, a provider's callback; default 10 s).
	StatusTimeout time.Duration
	Logger        *slog.Logger
}

// Service is the bridge between the ledger and the provider adapters.
type Service struct {
	opt      Options
	adapters map[string]provider.Adapter
	names    []string
}

// New builds the service.
func New(opt Options) *Service {
	if len(opt.Secret) == 0 {
		opt.Secret = make([]byte, 32)
		_, _ = rand.Read(opt.Secret)
	}
	if opt.CreateTimeout <= 0 {
		opt.CreateTimeout = 30 * time.Second
	}
	if opt.StatusTimeout <= 0 {
		opt.StatusTimeout = 10 * time.Second
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	opt.PublicURL = strings.TrimRight(opt.PublicURL, "/")
	s := &Service{opt: opt, adapters: map[string]provider.Adapter{}}
	for _, a := range opt.Adapters {
		s.adapters[a.Name()] = a
		s.names = append(s.names, a.Name())
	}
	sort.Strings(s.names)
	return s
}

// Names lists the configured providers.
func (s *Service) Names() []string { return append([]string(nil), s.names...) }

// Provider is the pay.Provider of one configured adapter, for the
// GET /pay/{token} handler's map.
func (s *Service) Provider(name string) (pay.Provider, bool) {
	a, ok := s.adapters[name]
	if !ok {
		return nil, false
	}
	return payer{s: s, a: a}, true
}

// Providers returns every configured adapter's pay.Provider by name.
func (s *Service) Providers() map[string]pay.Provider {
	out := make(map[string]pay.Provider, len(s.adapters))
	for name, a := range s.adapters {
		out[name] = payer{s: s, a: a}
	}
	return out
}

// Routes mounts the callback endpoint and the payer's retry and return
// pages.
func (s *Service) Routes(mux *http.ServeMux) {
	mux.HandleFunc("POST /callbacks/{provider}", s.callback)
	mux.HandleFunc("POST /pay/start/{invoice}/{link}", s.retry)
	mux.HandleFunc("GET /pay/return/{invoice}/{link}/{payment}", s.returned)
}

func (s *Service) sign(parts ...string) string {
	m := hmac.New(sha256.New, s.opt.Secret)
	m.Write([]byte(strings.Join(parts, "\x00")))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (s *Service) verify(sig string, parts ...string) bool {
	return hmac.Equal([]byte(sig), []byte(s.sign(parts...)))
}

// startURL is the retry button's target for an invoice whose link was
// consumed.
func (s *Service) startURL(invoiceID, linkID string) string {
	return s.opt.PublicURL + "/pay/start/" + url.PathEscape(invoiceID) + "/" + url.PathEscape(linkID) +
		"?sig=" + s.sign("start", invoiceID, linkID)
}

// ReturnURL is where the provider sends the payer back after payment
// paymentID of the invoice, opened through link linkID. outcome only
// chooses wording while the payment is unsettled; the page always shows
// the ledger's state.
func (s *Service) ReturnURL(invoiceID, linkID, paymentID, outcome string) string {
	q := url.Values{"outcome": {outcome}, "sig": {s.sign("return", invoiceID, linkID, paymentID)}}
	return s.opt.PublicURL + "/pay/return/" + url.PathEscape(invoiceID) + "/" + url.PathEscape(linkID) + "/" +
		url.PathEscape(paymentID) + "?" + q.Encode()
}

// CallbackURL is where a provider posts its notifications about the
// payment with reference (empty: the provider-wide address). The
// reference rides along as ?ref= for providers whose callbacks do not
// echo it.
func (s *Service) CallbackURL(name, reference string) string {
	u := s.opt.PublicURL + "/callbacks/" + url.PathEscape(name)
	if reference != "" {
		u += "?ref=" + url.QueryEscape(reference)
	}
	return u
}
