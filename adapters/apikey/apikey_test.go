package apikey_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payledger/payledger/adapters/apikey"
	"github.com/payledger/payledger/projections"
	"github.com/payledger/payledger/projections/projectiontest"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

var tokenShape = regexp.MustCompile(`^plk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$`)

// TestKeys: a key is shown once, stored only as its SHA-256, authenticates,
// and is refused when malformed, wrong or revoked.
func TestKeys(t *testing.T) {
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		ctx := context.Background()
		clk := &clock{t: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
		s, err := apikey.New(ctx, b, clk.now)
		if err != nil {
			t.Fatal(err)
		}
		k, tok, err := s.Create(ctx, "backend", apikey.ScopeFull)
		if err != nil {
			t.Fatal(err)
		}
		if !tokenShape.MatchString(tok) || !strings.Contains(tok, k.ID) || k.Scope != apikey.ScopeFull || !k.CreatedAt.Equal(clk.now()) {
			t.Fatalf("key %+v token %q", k, tok)
		}
		// Only the hash is stored.
		var stored string
		if err := b.DB().QueryRowContext(ctx, b.DB().Rebind(`SELECT secret_hash FROM payledger_api_keys WHERE id = ?`), k.ID).Scan(&stored); err != nil {
			t.Fatal(err)
		}
		secret := tok[len("plk_")+16+1:]
		sum := sha256.Sum256([]byte(secret))
		if stored != hex.EncodeToString(sum[:]) || strings.Contains(stored, secret) {
			t.Fatalf("stored %q is not the SHA-256 of the secret", stored)
		}

		got, err := s.Authenticate(ctx, tok)
		if err != nil || got.ID != k.ID || got.Name != "backend" {
			t.Fatalf("Authenticate: %+v, %v", got, err)
		}
		for name, bad := range map[string]string{
			"empty":        "",
			"no prefix":    strings.TrimPrefix(tok, "plk_"),
			"short id":     "plk_abc_" + secret,
			"no secret":    "plk_" + k.ID + "_",
			"wrong secret": "plk_" + k.ID + "_" + strings.Repeat("x", 43),
			"unknown id":   "plk_ffffffffffffffff_" + secret,
			"huge":         "plk_" + k.ID + "_" + strings.Repeat("x", 10000),
			"extra":        tok + "x",
		} {
			if _, err := s.Authenticate(ctx, bad); !errors.Is(err, apikey.ErrInvalid) {
				t.Errorf("%s: %v, want ErrInvalid", name, err)
			}
		}

		clk.advance(time.Second)
		rk, _, err := s.Create(ctx, "reports", apikey.ScopeRead)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Create(ctx, "  ", apikey.ScopeRead); err == nil {
			t.Fatal("a key without a name was created")
		}
		if _, _, err := s.Create(ctx, "x", apikey.Scope("admin")); err == nil {
			t.Fatal("a key with an unknown scope was created")
		}
		clk.advance(time.Second)
		if n, err := s.CountActive(ctx); err != nil || n != 2 {
			t.Fatalf("CountActive = %d, %v", n, err)
		}

		// Revocation: this process sees it at once; another process (a
		// second Store on the same database) within the one-second cache.
		other, err := apikey.New(ctx, b, clk.now)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := other.Authenticate(ctx, tok); err != nil {
			t.Fatal(err)
		}
		if err := s.Revoke(ctx, k.ID); err != nil {
			t.Fatal(err)
		}
		if err := s.Revoke(ctx, k.ID); err != nil {
			t.Fatalf("revoking twice: %v", err)
		}
		if err := s.Revoke(ctx, "0000000000000000"); !errors.Is(err, apikey.ErrNotFound) {
			t.Fatalf("revoking an unknown key: %v", err)
		}
		if _, err := s.Authenticate(ctx, tok); !errors.Is(err, apikey.ErrRevoked) {
			t.Fatalf("revoked key: %v", err)
		}
		clk.advance(1100 * time.Millisecond)
		if _, err := other.Authenticate(ctx, tok); !errors.Is(err, apikey.ErrRevoked) {
			t.Fatalf("revoked key in another process after the cache TTL: %v", err)
		}
		if n, _ := s.CountActive(ctx); n != 1 {
			t.Fatalf("CountActive after revoke = %d", n)
		}

		keys, err := s.List(ctx)
		if err != nil || len(keys) != 2 {
			t.Fatalf("List: %v, %v", keys, err)
		}
		if keys[0].ID != rk.ID || keys[1].ID != k.ID || keys[1].RevokedAt == nil || keys[0].RevokedAt != nil {
			t.Fatalf("List (newest first, revocation shown): %+v", keys)
		}
		if keys[1].LastUsedAt == nil {
			t.Fatal("a used key has no last_used_at")
		}
	})
}

func TestScopes(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		scope        apikey.Scope
		read, write  bool
		parseable    bool
		parsedString string
	}{
		{apikey.ScopeFull, true, true, true, "full"},
		{apikey.ScopeRead, true, false, true, "read"},
		{apikey.Scope("admin"), false, false, false, ""},
		{apikey.Scope(""), false, false, false, ""},
	} {
		if got := c.scope.Allows(false); got != c.read {
			t.Errorf("%q read: %v", c.scope, got)
		}
		if got := c.scope.Allows(true); got != c.write {
			t.Errorf("%q write: %v", c.scope, got)
		}
		sc, err := apikey.ParseScope(string(c.scope))
		if (err == nil) != c.parseable || string(sc) != c.parsedString {
			t.Errorf("ParseScope(%q) = %q, %v", c.scope, sc, err)
		}
	}
}

// FuzzAuthenticate: no bearer token, however malformed, authenticates or
// fails with anything but ErrInvalid (never a store error or a panic).
func FuzzAuthenticate(f *testing.F) {
	b := projectiontest.SQLite(f)
	s, err := apikey.New(context.Background(), b, time.Now)
	if err != nil {
		f.Fatal(err)
	}
	_, tok, err := s.Create(context.Background(), "fuzz", apikey.ScopeFull)
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{"", "plk_", "plk_0123456789abcdef_", tok[:len(tok)-1], "plk_' OR 1=1 --_x", "plk_" + strings.Repeat("_", 20)} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, token string) {
		if token == tok {
			return
		}
		if _, err := s.Authenticate(context.Background(), token); !errors.Is(err, apikey.ErrInvalid) {
			t.Fatalf("Authenticate(%q) = %v, want ErrInvalid", token, err)
		}
	})
}
