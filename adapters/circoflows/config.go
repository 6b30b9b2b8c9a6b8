package circoflows

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Name is the provider name invoices use for CircoFlows.
const Name = "circoflows"

// ErrMissingSetting is wrapped by New when a required setting is empty.
var ErrMissingSetting = errors.New("circoflows: missing setting")

// ErrBadSetting is wrapped by New when a setting has an unusable value.
var ErrBadSetting = errors.New("circoflows: bad setting")

// Paths are the API's endpoints relative to BaseURL. Empty fields take the
// defaults of DefaultPaths.
type Paths struct {
	DirectPayment  string // POST
	ConfirmThreeDS string // POST
	Transaction    string // GET Transaction/{id}
	Sessions       string // POST Sessions; GET Sessions/{id}; POST Sessions/{id}/cancel
	Health         string // GET
}

// DefaultPaths are the documented paths (direct payment, health) and our
// choice for the undocumented ones (see the package doc).
func DefaultPaths() Paths {
	return Paths{
		DirectPayment:  "/api/direct-payment",
		ConfirmThreeDS: "/api/direct-payment/confirm-3ds",
		Transaction:    "/api/transaction",
		Sessions:       "/api/payment-session",
		Health:         "/api/health",
	}
}

// Config configures the client. BaseURL, APIKey and WebhookSecret are
// required.
type Config struct {
	// BaseURL is the API root, e.g. https://api-test.example.com for the
	// test environment.
	BaseURL string
	// APIKey is sent as a Bearer token.
	APIKey string
	// WebhookSecret keys the X-Webhook-Signature HMAC.
	WebhookSecret string
	// Timeout bounds each HTTP attempt. Default 10s.
	Timeout time.Duration
	// MaxRetries is how often a read is repeated after a network error,
	// 429 or 5xx. Default 2; set NoRetries to disable.
	MaxRetries int
	NoRetries  bool
	// RetryBackoff is the wait before the first retry, doubled each time.
	// Default 250ms.
	RetryBackoff time.Duration
	// MaxRateLimitWait is the longest we wait for X-RateLimit-Reset before
	// a retried read; a later reset gives up with ErrUnavailable. Default 5s.
	MaxRateLimitWait time.Duration
	Paths            Paths
	// HTTPClient is optional; its own Timeout is left alone, Timeout above
	// applies per attempt through the request context.
	HTTPClient *http.Client
	// Now is the clock for rate-limit resets. Default time.Now.
	Now func() time.Time
}

// Client talks to CircoFlows. It is safe for concurrent use.
type Client struct {
	cfg  Config
	base *url.URL
	http *http.Client
}

// New checks cfg and builds the client. The error names the setting.
func New(cfg Config) (*Client, error) {
	for _, s := range []struct{ name, value string }{
		{"BaseURL", cfg.BaseURL}, {"APIKey", cfg.APIKey}, {"WebhookSecret", cfg.WebhookSecret},
	} {
		if strings.TrimSpace(s.value) == "" {
			return nil, fmt.Errorf("%w %s", ErrMissingSetting, s.name)
		}
	}
	base, err := url.Parse(strings.TrimRight(strings.TrimSpace(cfg.BaseURL), "/"))
	if err != nil || (base.Scheme != "https" && base.Scheme != "http") || base.Host == "" || base.RawQuery != "" || base.Fragment != "" {
		return nil, fmt.Errorf("%w BaseURL: want an absolute http(s) URL without query, got %q", ErrBadSetting, cfg.BaseURL)
	}
	if strings.ContainsAny(cfg.APIKey, "\r\n") {
		return nil, fmt.Errorf("%w APIKey: contains a line break", ErrBadSetting)
	}
	if cfg.Timeout < 0 || cfg.RetryBackoff < 0 || cfg.MaxRetries < 0 || cfg.MaxRateLimitWait < 0 {
		return nil, fmt.Errorf("%w: Timeout, MaxRetries, RetryBackoff and MaxRateLimitWait must not be negative", ErrBadSetting)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	switch {
	case cfg.NoRetries:
		cfg.MaxRetries = 0
	case cfg.MaxRetries == 0:
		cfg.MaxRetries = 2
	}
	if cfg.MaxRetries > 5 {
		cfg.MaxRetries = 5
	}
	if cfg.RetryBackoff == 0 {
		cfg.RetryBackoff = 250 * time.Millisecond
	}
	if cfg.MaxRateLimitWait == 0 {
		cfg.MaxRateLimitWait = 5 * time.Second
	}
	def := DefaultPaths()
	for _, p := range []struct {
		dst *string
		def string
	}{
		{&cfg.Paths.DirectPayment, def.DirectPayment},
		{&cfg.Paths.ConfirmThreeDS, def.ConfirmThreeDS},
		{&cfg.Paths.Transaction, def.Transaction},
		{&cfg.Paths.Sessions, def.Sessions},
		{&cfg.Paths.Health, def.Health},
	} {
		if *p.dst == "" {
			*p.dst = p.def
		}
		if !strings.HasPrefix(*p.dst, "/") {
			return nil, fmt.Errorf("%w Paths: %q must start with /", ErrBadSetting, *p.dst)
		}
		*p.dst = strings.TrimRight(*p.dst, "/")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{
			// A provider has no business redirecting an API call; following
			// one would resend the Bearer token to wherever it points.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return &Client{cfg: cfg, base: base, http: hc}, nil
}

// Name implements provider.Adapter.
func (c *Client) Name() string { return Name }
