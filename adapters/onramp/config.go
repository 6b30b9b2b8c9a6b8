package onramp

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Name is the provider name invoices use for the on-ramp.
const Name = "onramp"

// Payment types of the document that we drive.
const (
	TypeCheckout = "CHECKOUT"
	TypeExternal = "EXTERNAL"
)

// ErrMissingSetting is wrapped by New when a required setting is empty.
var ErrMissingSetting = errors.New("onramp: missing setting")

// ErrBadSetting is wrapped by New when a setting has an unusable value.
var ErrBadSetting = errors.New("onramp: bad setting")

// Paths are the endpoints relative to BaseURL; empty fields take the
// defaults of DefaultPaths.
type Paths struct {
	Payments string // create or retrieve
	Update   string
	Confirm  string
}

// DefaultPaths are our choice for the paths the document leaves open.
func DefaultPaths() Paths {
	return Paths{Payments: "/invoice-payments", Update: "/invoice-payments/update", Confirm: "/invoice-payments/confirm"}
}

// Config configures the client. BaseURL and APIKey are required.
type Config struct {
	BaseURL string
	// APIKey is sent as a Bearer token.
	APIKey string
	// Type is CHECKOUT (default) or EXTERNAL.
	Type string
	// ExternalData is sent as someData with EXTERNAL payments (update and
	// confirm), when the third-party system needs it.
	ExternalData string
	// Timeout bounds each HTTP attempt. Default 10s.
	Timeout time.Duration
	// MaxRetries is how often a retrieve is repeated. Default 2; NoRetries
	// disables.
	MaxRetries   int
	NoRetries    bool
	RetryBackoff time.Duration // default 250ms, doubled per retry
	Paths        Paths
	HTTPClient   *http.Client
}

// Client talks to the on-ramp. It is safe for concurrent use.
type Client struct {
	cfg  Config
	base string
	http *http.Client
}

// New checks cfg and builds the client. The error names the setting.
func New(cfg Config) (*Client, error) {
	for _, s := range []struct{ name, value string }{{"BaseURL", cfg.BaseURL}, {"APIKey", cfg.APIKey}} {
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
	cfg.Type = strings.ToUpper(strings.TrimSpace(cfg.Type))
	switch cfg.Type {
	case "":
		cfg.Type = TypeCheckout
	case TypeCheckout, TypeExternal:
	default:
		return nil, fmt.Errorf("%w Type: %q, want CHECKOUT or EXTERNAL (PLATFORM pays from an internal account, not by a payer)", ErrBadSetting, cfg.Type)
	}
	if cfg.ExternalData != "" && cfg.Type != TypeExternal {
		return nil, fmt.Errorf("%w ExternalData: only used with Type EXTERNAL", ErrBadSetting)
	}
	if cfg.Timeout < 0 || cfg.RetryBackoff < 0 || cfg.MaxRetries < 0 {
		return nil, fmt.Errorf("%w: Timeout, MaxRetries and RetryBackoff must not be negative", ErrBadSetting)
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
	cfg.MaxRetries = min(cfg.MaxRetries, 5)
	if cfg.RetryBackoff == 0 {
		cfg.RetryBackoff = 250 * time.Millisecond
	}
	def := DefaultPaths()
	for _, p := range []struct {
		dst *string
		def string
	}{{&cfg.Paths.Payments, def.Payments}, {&cfg.Paths.Update, def.Update}, {&cfg.Paths.Confirm, def.Confirm}} {
		if *p.dst == "" {
			*p.dst = p.def
		}
		if !strings.HasPrefix(*p.dst, "/") {
			return nil, fmt.Errorf("%w Paths: %q must start with /", ErrBadSetting, *p.dst)
		}
	}
	hc := cfg.HTTPClient
	if hc == nil {
		// Never follow a redirect with our Bearer token.
		hc = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	return &Client{cfg: cfg, base: base.String(), http: hc}, nil
}

// Name implements provider.Adapter.
func (c *Client) Name() string { return Name }

// Type is the configured payment type.
func (c *Client) Type() string { return c.cfg.Type }
