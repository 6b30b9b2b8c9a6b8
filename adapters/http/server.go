package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/payledger/payledger/adapters/apikey"
	"github.com/payledger/payledger/adapters/idempotency"
	"github.com/payledger/payledger/adapters/problem"
	"github.com/payledger/payledger/eventstore"
	"github.com/payledger/payledger/ledger"
)

// ReadyCheck is one condition of /readyz. It returns nil when ready.
type ReadyCheck struct {
	Name  string
	Check func(ctx context.Context) error
}

// Options configure a Server. Invoices, Keys and Idempotency are required.
type Options struct {
	Invoices    *ledger.Invoices
	Keys        *apikey.Store
	Idempotency *idempotency.Store
	// Lister serves GET /v1/invoices; nil answers 503 until one is set.
	Lister InvoiceLister
	// WaitFor blocks until the read models include pos (projections.Set
	// WaitFor); lists use it so that a client sees its own writes. Nil:
	// lists may lag.
	WaitFor func(ctx context.Context, pos eventstore.Position) error
	// PublicURL is the base of payment-link URLs (no trailing slash).
	PublicURL string
	// KeyLimit is the token bucket per API key on /v1; PayLimit per client
	// IP on /pay/. A zero Rate disables the limit.
	KeyLimit Limit
	PayLimit Limit
	// Ready are the checks of /readyz.
	Ready []ReadyCheck
	// Logger receives one line per request; nil discards.
	Logger *slog.Logger
	// Registry receives the server's metrics and is served at /metrics;
	// nil creates one with the Go and process collectors.
	Registry *prometheus.Registry
	// Now is the clock of the rate limiter (nil: time.Now).
	Now func() time.Time
}

// DefaultKeyLimit is generous: it exists to stop a runaway client, not to
// meter a normal one.
var DefaultKeyLimit = Limit{Rate: 1000, Burst: 2000}

// DefaultPayLimit bounds how fast one IP may probe payment-link tokens.
var DefaultPayLimit = Limit{Rate: 20, Burst: 200}

// Server is the HTTP server's handler tree.
type Server struct {
	opt      Options
	mux      *http.ServeMux
	keyLim   *limiter
	payLim   *limiter
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	log      *slog.Logger
	v1       http.Handler
	last     lastWrites
}

// New builds the server and registers the native API, /healthz, /readyz
// and /metrics.
func New(opt Options) *Server {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	opt.PublicURL = strings.TrimRight(opt.PublicURL, "/")
	reg := opt.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	s := &Server{
		opt:    opt,
		mux:    http.NewServeMux(),
		keyLim: newLimiter(opt.KeyLimit, opt.Now),
		payLim: newLimiter(opt.PayLimit, opt.Now),
		reg:    reg,
		log:    opt.Logger,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "payledger_http_requests_total",
			Help: "HTTP requests by method, route pattern and status code.",
		}, []string{"method", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "payledger_http_request_duration_seconds",
			Help:    "HTTP request latency by method and route pattern.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"method", "route"}),
	}
	reg.MustRegister(s.requests, s.duration)
	s.v1 = s.authenticate(s.rateLimit(opt.Idempotency.Middleware(scopeOf, s.mux)))

	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	s.routes(s.mux)
	return s
}

// Mount lets another area register its routes (anything under /v1/ gets
// the API middleware).
func (s *Server) Mount(routes func(mux *http.ServeMux)) { routes(s.mux) }

// SetLister installs the invoice list read model (the status projection).
func (s *Server) SetLister(l InvoiceLister) { s.opt.Lister = l }

// Registry is the metrics registry, for other areas' collectors.
func (s *Server) Registry() *prometheus.Registry { return s.reg }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	_, route := s.mux.Handler(r)
	if route == "" {
		route = "unmatched"
	}
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("panic serving request", "method", r.Method, "path", r.URL.Path, "panic", v)
			if !sw.wrote {
				problem.Respond(sw, http.StatusInternalServerError, "internal_error", "the server failed to handle the request")
			}
		}
		d := time.Since(start)
		s.requests.WithLabelValues(r.Method, route, strconv.Itoa(sw.status)).Inc()
		s.duration.WithLabelValues(r.Method, route).Observe(d.Seconds())
		level := slog.LevelInfo
		if sw.status >= 500 {
			level = slog.LevelError
		}
		s.log.Log(r.Context(), level, "http", "method", r.Method, "route", route, "status", sw.status, "duration_ms", float64(d.Microseconds())/1000)
	}()
	if r.Body != nil {
		r.Body = http.MaxBytesReader(sw, r.Body, MaxBody)
	}
	switch {
	case strings.HasPrefix(r.URL.Path, "/v1/") && r.URL.Path != "/v1/openapi.yaml":
		s.v1.ServeHTTP(sw, r)
	case strings.HasPrefix(r.URL.Path, "/pay/"):
		s.limitByIP(s.mux).ServeHTTP(sw, r)
	default:
		s.mux.ServeHTTP(sw, r)
	}
}

type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

type keyCtx struct{}

// KeyFrom returns the API key that authenticated the request.
func KeyFrom(ctx context.Context) (apikey.Key, bool) {
	k, ok := ctx.Value(keyCtx{}).(apikey.Key)
	return k, ok
}

func scopeOf(r *http.Request) string {
	k, _ := KeyFrom(r.Context())
	return k.ID
}

func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := bearer(r.Header.Get("Authorization"))
		if !ok {
			if !s.limitUnauthenticated(w, r) {
				return
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="payledger"`)
			problem.Respond(w, http.StatusUnauthorized, "unauthorized", "send an API key as Authorization: Bearer plk_…")
			return
		}
		key, err := s.opt.Keys.Authenticate(r.Context(), token)
		switch {
		case errors.Is(err, apikey.ErrInvalid), errors.Is(err, apikey.ErrRevoked):
			if !s.limitUnauthenticated(w, r) {
				return
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="payledger", error="invalid_token"`)
			problem.Respond(w, http.StatusUnauthorized, "invalid_api_key", "the API key is invalid or revoked")
			return
		case err != nil:
			s.log.Error("api key lookup", "err", err)
			problem.Respond(w, http.StatusServiceUnavailable, "unavailable", "the key store is unavailable; retry")
			return
		}
		write := r.Method != http.MethodGet && r.Method != http.MethodHead
		if !key.Scope.Allows(write) {
			problem.Respond(w, http.StatusForbidden, "insufficient_scope", "this API key has scope "+string(key.Scope)+" and cannot "+r.Method)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), keyCtx{}, key)))
	})
}

// bearer extracts the token of an Authorization header; the scheme name
// is case-insensitive (RFC 9110 §11.1).
func bearer(h string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	failed := map[string]string{}
	for _, c := range s.opt.Ready {
		if err := c.Check(ctx); err != nil {
			failed[c.Name] = err.Error()
		}
	}
	if len(failed) > 0 {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "failed": failed})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		problem.Respond(w, http.StatusInternalServerError, "internal_error", "could not encode the response")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
