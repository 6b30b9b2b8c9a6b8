package apikey

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
)

// Scope is what a key may do.
type Scope string

const (
	// ScopeFull allows reads and writes.
	ScopeFull Scope = "full"
	// ScopeRead allows reads only.
	ScopeRead Scope = "read"
)

// ParseScope accepts "full" or "read".
func ParseScope(s string) (Scope, error) {
	switch Scope(s) {
	case ScopeFull, ScopeRead:
		return Scope(s), nil
	}
	return "", fmt.Errorf("apikey: unknown scope %q (want full or read)", s)
}

// Allows reports whether the scope permits a request; write is true for
// every method other than GET and HEAD.
func (s Scope) Allows(write bool) bool {
	return s == ScopeFull || (s == ScopeRead && !write)
}

// Errors of Authenticate and Revoke.
var (
	ErrInvalid  = errors.New("apikey: invalid API key")
	ErrRevoked  = errors.New("apikey: API key revoked")
	ErrNotFound = errors.New("apikey: no such key")
)

// Key is a stored key (never its secret).
type Key struct {
	ID         string     `db:"id" json:"id"`
	Name       string     `db:"name" json:"name"`
	Scope      Scope      `db:"scope" json:"scope"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
}

// row is the table's shape; times are unix microseconds so that one schema
// and one code path serve PostgreSQL and SQLite.
type row struct {
	ID         string        `db:"id"`
	Name       string        `db:"name"`
	Scope      string        `db:"scope"`
	SecretHash string        `db:"secret_hash"`
	CreatedAt  int64         `db:"created_at"`
	LastUsedAt sql.NullInt64 `db:"last_used_at"`
	RevokedAt  sql.NullInt64 `db:"revoked_at"`
}

func (r row) key() Key {
	k := Key{ID: r.ID, Name: r.Name, Scope: Scope(r.Scope), CreatedAt: time.UnixMicro(r.CreatedAt).UTC()}
	if r.LastUsedAt.Valid {
		t := time.UnixMicro(r.LastUsedAt.Int64).UTC()
		k.LastUsedAt = &t
	}
	if r.RevokedAt.Valid {
		t := time.UnixMicro(r.RevokedAt.Int64).UTC()
		k.RevokedAt = &t
	}
	return k
}

const (
	cacheTTL      = time.Second
	touchInterval = time.Minute
	prefix        = "plk_"
)

// Database is what the store needs from the event store's SQL database;
// eventstore/postgres and eventstore/sqlite both provide it. Writes go
// through WriteTx because SQLite has a single writer connection.
type Database interface {
	DB() *sqlx.DB
	WriteTx(ctx context.Context, fn func(*sqlx.Tx) error) error
}

// Store is the key table.
type Store struct {
	db       *sqlx.DB
	w        Database
	postgres bool
	now      func() time.Time

	mu    sync.Mutex
	cache map[string]*cached
}

type cached struct {
	row     row
	fetched time.Time
	touched time.Time
}

// New migrates the table and returns the store. now is the clock for
// created/last-used times and the cache.
func New(ctx context.Context, database Database, now func() time.Time) (*Store, error) {
	db := database.DB()
	s := &Store{
		db:       db,
		w:        database,
		postgres: strings.Contains(db.DriverName(), "postgres") || strings.Contains(db.DriverName(), "pgx"),
		now:      now,
		cache:    map[string]*cached{},
	}
	if err := s.Migrate(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Migrate creates the table if missing.
func (s *Store) Migrate(ctx context.Context) error {
	err := s.exec(ctx, `CREATE TABLE IF NOT EXISTS payledger_api_keys (
		id TEXT PRIMARY KEY,
		name TEXT NOT NULL,
		scope TEXT NOT NULL,
		secret_hash TEXT NOT NULL,
		created_at BIGINT NOT NULL,
		last_used_at BIGINT,
		revoked_at BIGINT)`)
	if err != nil {
		return fmt.Errorf("apikey: migrate: %w", err)
	}
	return nil
}

func (s *Store) q(query string) string {
	if s.postgres {
		return sqlx.Rebind(sqlx.DOLLAR, query)
	}
	return query
}

func hashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// Create stores a new key and returns it with its token, the only time the
// token exists in clear.
func (s *Store) Create(ctx context.Context, name string, scope Scope) (Key, string, error) {
	if strings.TrimSpace(name) == "" {
		return Key{}, "", errors.New("apikey: a key needs a name")
	}
	if _, err := ParseScope(string(scope)); err != nil {
		return Key{}, "", err
	}
	var idb [8]byte
	var sec [32]byte
	if _, err := rand.Read(idb[:]); err != nil {
		return Key{}, "", err
	}
	if _, err := rand.Read(sec[:]); err != nil {
		return Key{}, "", err
	}
	id := hex.EncodeToString(idb[:])
	secret := base64.RawURLEncoding.EncodeToString(sec[:])
	r := row{ID: id, Name: name, Scope: string(scope), SecretHash: hashSecret(secret), CreatedAt: s.now().UnixMicro()}
	err := s.exec(ctx, s.q(`INSERT INTO payledger_api_keys (id, name, scope, secret_hash, created_at) VALUES (?, ?, ?, ?, ?)`),
		r.ID, r.Name, r.Scope, r.SecretHash, r.CreatedAt)
	if err != nil {
		return Key{}, "", fmt.Errorf("apikey: create: %w", err)
	}
	return r.key(), prefix + id + "_" + secret, nil
}

// List returns every key, newest first.
func (s *Store) List(ctx context.Context) ([]Key, error) {
	var rows []row
	if err := s.db.SelectContext(ctx, &rows, `SELECT id, name, scope, secret_hash, created_at, last_used_at, revoked_at FROM payledger_api_keys ORDER BY created_at DESC, id`); err != nil {
		return nil, fmt.Errorf("apikey: list: %w", err)
	}
	keys := make([]Key, len(rows))
	for i, r := range rows {
		keys[i] = r.key()
	}
	return keys, nil
}

// CountActive returns how many keys are not revoked (serve prints a hint
// when there are none).
func (s *Store) CountActive(ctx context.Context) (int, error) {
	var n int
	err := s.db.GetContext(ctx, &n, `SELECT COUNT(*) FROM payledger_api_keys WHERE revoked_at IS NULL`)
	return n, err
}

// Revoke disables a key for good. Revoking a revoked key is not an error.
func (s *Store) Revoke(ctx context.Context, id string) error {
	var n int64
	err := s.w.WriteTx(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, s.q(`UPDATE payledger_api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?`), s.now().UnixMicro(), id)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return fmt.Errorf("apikey: revoke: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	s.mu.Lock()
	delete(s.cache, id)
	s.mu.Unlock()
	return nil
}

// Authenticate checks a bearer token and returns its key. Errors:
// ErrInvalid (malformed, unknown or wrong secret), ErrRevoked, or a store
// error (wrapped) that callers answer with 5xx.
func (s *Store) Authenticate(ctx context.Context, token string) (Key, error) {
	rest, ok := strings.CutPrefix(token, prefix)
	if !ok {
		return Key{}, ErrInvalid
	}
	id, secret, ok := strings.Cut(rest, "_")
	if !ok || len(id) != 16 || secret == "" || len(secret) > 128 {
		return Key{}, ErrInvalid
	}
	now := s.now()
	s.mu.Lock()
	c := s.cache[id]
	s.mu.Unlock()
	if c == nil || now.Sub(c.fetched) > cacheTTL {
		var r row
		err := s.db.GetContext(ctx, &r, s.q(`SELECT id, name, scope, secret_hash, created_at, last_used_at, revoked_at FROM payledger_api_keys WHERE id = ?`), id)
		if errors.Is(err, sql.ErrNoRows) {
			return Key{}, ErrInvalid
		}
		if err != nil {
			return Key{}, fmt.Errorf("apikey: lookup: %w", err)
		}
		nc := &cached{row: r, fetched: now}
		if c != nil {
			nc.touched = c.touched
		}
		if r.LastUsedAt.Valid && time.UnixMicro(r.LastUsedAt.Int64).After(nc.touched) {
			nc.touched = time.UnixMicro(r.LastUsedAt.Int64)
		}
		c = nc
		s.mu.Lock()
		s.cache[id] = c
		s.mu.Unlock()
	}
	want := c.row.SecretHash
	if subtle.ConstantTimeCompare([]byte(hashSecret(secret)), []byte(want)) != 1 {
		return Key{}, ErrInvalid
	}
	if c.row.RevokedAt.Valid {
		return Key{}, ErrRevoked
	}
	s.touch(ctx, c, now)
	return c.row.key(), nil
}

// touch records last use at most once per touchInterval per key, so that
// authentication does not turn every request into a write.
func (s *Store) touch(ctx context.Context, c *cached, now time.Time) {
	s.mu.Lock()
	due := now.Sub(c.touched) >= touchInterval
	if due {
		c.touched = now
	}
	s.mu.Unlock()
	if !due {
		return
	}
	// A failed touch only loses a timestamp; never fail the request for it.
	_ = s.exec(ctx, s.q(`UPDATE payledger_api_keys SET last_used_at = ? WHERE id = ?`), now.UnixMicro(), c.row.ID)
}

func (s *Store) exec(ctx context.Context, query string, args ...any) error {
	return s.w.WriteTx(ctx, func(tx *sqlx.Tx) error {
		_, err := tx.ExecContext(ctx, query, args...)
		return err
	})
}
