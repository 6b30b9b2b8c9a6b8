package httpapi

import (
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/payledger/payledger/adapters/problem"
)

// Limit is a token bucket: Rate tokens per second, at most Burst saved.
type Limit struct {
	Rate  float64
	Burst int
}

type bucket struct {
	tokens float64
	last   time.Time
}

// limiter keeps one bucket per client key in memory. Limits are per
// process: they protect this server, they are not a billing meter.
type limiter struct {
	lim   Limit
	now   func() time.Time
	mu    sync.Mutex
	b     map[string]*bucket
	calls int
}

func newLimiter(l Limit, now func() time.Time) *limiter {
	if l.Burst < 1 {
		l.Burst = int(math.Max(1, math.Ceil(l.Rate)))
	}
	return &limiter{lim: l, now: now, b: map[string]*bucket{}}
}

// take spends one token. It reports whether the request may pass, the
// tokens left, the wait until the next token and until the bucket is full.
func (l *limiter) take(key string) (ok bool, remaining int, retry, reset time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls++
	if l.calls%4096 == 0 {
		l.sweep(now)
	}
	b := l.b[key]
	if b == nil {
		b = &bucket{tokens: float64(l.lim.Burst), last: now}
		l.b[key] = b
	}
	b.tokens = math.Min(float64(l.lim.Burst), b.tokens+now.Sub(b.last).Seconds()*l.lim.Rate)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		ok = true
	} else {
		retry = time.Duration((1 - b.tokens) / l.lim.Rate * float64(time.Second))
	}
	reset = time.Duration((float64(l.lim.Burst) - b.tokens) / l.lim.Rate * float64(time.Second))
	return ok, int(b.tokens), retry, reset
}

// sweep forgets buckets that have refilled: they hold no information.
func (l *limiter) sweep(now time.Time) {
	for k, b := range l.b {
		if b.tokens+now.Sub(b.last).Seconds()*l.lim.Rate >= float64(l.lim.Burst) {
			delete(l.b, k)
		}
	}
}

func ceilSeconds(d time.Duration) int {
	return int(math.Ceil(d.Seconds()))
}

func (l *limiter) handle(w http.ResponseWriter, key string) bool {
	if l.lim.Rate <= 0 {
		return true
	}
	ok, remaining, retry, reset := l.take(key)
	h := w.Header()
	h.Set("X-RateLimit-Limit", strconv.Itoa(l.lim.Burst))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
	h.Set("X-RateLimit-Reset", strconv.Itoa(ceilSeconds(reset)))
	if !ok {
		h.Set("Retry-After", strconv.Itoa(max(1, ceilSeconds(retry))))
		problem.Respond(w, http.StatusTooManyRequests, "rate_limited", "too many requests; retry after the number of seconds in Retry-After")
	}
	return ok
}

func (s *Server) rateLimit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.keyLim.handle(w, scopeOf(r)) {
			next.ServeHTTP(w, r)
		}
	})
}

func clientIP(r *http.Request) string {
	ip, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return ip
}

// limitUnauthenticated spends a token of the client IP's bucket (with the
// per-key limit) for a request without a valid key, so that refusals
// carry the X-RateLimit-* headers too and key guessing is throttled. It
// reports whether the caller may still answer (false: 429 was written).
func (s *Server) limitUnauthenticated(w http.ResponseWriter, r *http.Request) bool {
	return s.keyLim.handle(w, "ip:"+clientIP(r))
}

func (s *Server) limitByIP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.payLim.handle(w, clientIP(r)) {
			next.ServeHTTP(w, r)
		}
	})
}
