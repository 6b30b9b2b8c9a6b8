package main

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// config is every setting of the process, read once from the environment.
type config struct {
	DataDir        string
	DatabaseURL    string
	EventStoreURL  string
	HTTPAddr       string
	PublicURL      string
	LinkTTLMin     time.Duration
	LinkTTLMax     time.Duration
	LinkTTLDefault time.Duration
	AllowPrivate   bool
	// WebhookTimeout bounds one delivery attempt (API.md: 15 s; tests may
	// lower it, which also shortens the lease a crash leaves behind).
	WebhookTimeout time.Duration
	Catalog        string
	ResetSecrets   string
	SandboxSecret  string
	MerchantName   string
	RelayTopic     string
	// AuditDigestEvery is how many events lie between two recorded
	// digests of the whole history.
	AuditDigestEvery int
}

// configError names the one setting that stops startup.
type configError struct{ name, msg string }

func (e *configError) Error() string { return e.name + ": " + e.msg }

func loadConfig(getenv func(string) string) (config, error) {
	c := config{
		DataDir:       or(getenv("PAYLEDGER_DATA_DIR"), "./payledger-data"),
		DatabaseURL:   getenv("PAYLEDGER_DATABASE_URL"),
		EventStoreURL: getenv("PAYLEDGER_EVENTSTORE_URL"),
		HTTPAddr:      or(getenv("PAYLEDGER_HTTP_ADDR"), "127.0.0.1:8080"),
		Catalog:       getenv("PAYLEDGER_CATALOG"),
		ResetSecrets:  getenv("PAYLEDGER_RESET_FEE_SECRET"),
		SandboxSecret: getenv("PAYLEDGER_SANDBOX_SECRET"),
		MerchantName:  or(getenv("PAYLEDGER_MERCHANT_NAME"), "payledger merchant"),
		RelayTopic:    or(getenv("PAYLEDGER_RELAY_TOPIC"), "payledger_events"),
	}
	c.PublicURL = strings.TrimRight(or(getenv("PAYLEDGER_PUBLIC_URL"), "http://"+c.HTTPAddr), "/")
	if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return c, &configError{"PAYLEDGER_PUBLIC_URL", fmt.Sprintf("%q is not an absolute http(s) URL", c.PublicURL)}
	}
	if c.DatabaseURL != "" && !strings.HasPrefix(c.DatabaseURL, "postgres://") && !strings.HasPrefix(c.DatabaseURL, "postgresql://") {
		return c, &configError{"PAYLEDGER_DATABASE_URL", "must start with postgres:// or postgresql://"}
	}
	if c.EventStoreURL != "" {
		if !hasAnyPrefix(c.EventStoreURL, "esdb://", "esdb+discover://", "kurrentdb://", "kurrent://") {
			return c, &configError{"PAYLEDGER_EVENTSTORE_URL", "must start with esdb:// or kurrentdb://"}
		}
		if c.DatabaseURL == "" {
			return c, &configError{"PAYLEDGER_DATABASE_URL", "is required when PAYLEDGER_EVENTSTORE_URL is set (read models live in PostgreSQL)"}
		}
	}
	var err error
	if c.LinkTTLMin, err = duration(getenv, "PAYLEDGER_LINK_TTL_MIN", 5*time.Minute); err != nil {
		return c, err
	}
	if c.LinkTTLMax, err = duration(getenv, "PAYLEDGER_LINK_TTL_MAX", 10*time.Minute); err != nil {
		return c, err
	}
	if c.LinkTTLDefault, err = duration(getenv, "PAYLEDGER_LINK_TTL_DEFAULT", 10*time.Minute); err != nil {
		return c, err
	}
	if c.LinkTTLMin > c.LinkTTLMax {
		return c, &configError{"PAYLEDGER_LINK_TTL_MIN", "is greater than PAYLEDGER_LINK_TTL_MAX"}
	}
	if c.LinkTTLDefault < c.LinkTTLMin || c.LinkTTLDefault > c.LinkTTLMax {
		return c, &configError{"PAYLEDGER_LINK_TTL_DEFAULT", "must lie between PAYLEDGER_LINK_TTL_MIN and PAYLEDGER_LINK_TTL_MAX"}
	}
	if v := getenv("PAYLEDGER_WEBHOOK_ALLOW_PRIVATE"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return c, &configError{"PAYLEDGER_WEBHOOK_ALLOW_PRIVATE", fmt.Sprintf("%q is not true or false", v)}
		}
		c.AllowPrivate = b
	}
	if c.WebhookTimeout, err = duration(getenv, "PAYLEDGER_WEBHOOK_TIMEOUT", 15*time.Second); err != nil {
		return c, err
	}
	if !validTopic(c.RelayTopic) {
		return c, &configError{"PAYLEDGER_RELAY_TOPIC", fmt.Sprintf("%q: use letters, digits and _ only", c.RelayTopic)}
	}
	c.AuditDigestEvery = 10_000
	if v := getenv("PAYLEDGER_AUDIT_DIGEST_EVERY"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return c, &configError{"PAYLEDGER_AUDIT_DIGEST_EVERY", fmt.Sprintf("%q is not a positive number of events", v)}
		}
		c.AuditDigestEvery = n
	}
	if c.Catalog != "" && c.ResetSecrets == "" {
		return c, &configError{"PAYLEDGER_RESET_FEE_SECRET", "is required when PAYLEDGER_CATALOG is set"}
	}
	return c, nil
}

func duration(getenv func(string) string, name string, def time.Duration) (time.Duration, error) {
	v := getenv(name)
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, &configError{name, fmt.Sprintf("%q is not a positive duration such as 5m", v)}
	}
	return d, nil
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func hasAnyPrefix(s string, ps ...string) bool {
	for _, p := range ps {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// validTopic keeps the relay topic usable as a table name suffix.
func validTopic(t string) bool {
	if t == "" || len(t) > 48 {
		return false
	}
	for _, r := range t {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}
