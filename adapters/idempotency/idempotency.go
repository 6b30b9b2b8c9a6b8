package idempotency

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/payledger/payledger/adapters/problem"
)

// Header is the request header carrying the key.
const Header = "Idempotency-Key"

// Retention is how long keys are kept at least.
const Retention = 7 * 24 * time.Hour

// DefaultLease is how long a first request may run before a retry may take
// it over; it must exceed the server's request timeout.
const DefaultLease = time.Minute

const maxKeyLen = 255

// Database is what the store needs from the event store's SQL database;
// eventstore/postgres and eventstore/sqlite both provide it. Writes go
// through WriteTx because SQLite has a single writer connection.
type Database interface {
	DB() *sqlx.DB
	WriteTx(ctx context.Context, fn func(*sqlx.Tx) error) error
}

// Store is the idempotency table.
type Store struct {
	db       Database
	postgres bool
	now      func() time.Time
	lease    time.Duration
}

// New migrates the table and returns the store.
func New(ctx context.Context, db Database, now func() time.Time) (*Store, error) {
	d := db.DB().DriverName()
	s := &Store{
		db:       db,
		postgres: strings.Contains(d, "postgres") || strings.Contains(d, "pgx"),
		now:      now,
		lease:    DefaultLease,
	}
	if err := s.Migrate(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// SetLease changes the in-flight lease (tests shorten it).
func (s *Store) SetLease(d time.Duration) { s.lease = d }

// Migrate creates the table if missing.
func (s *Store) Migrate(ctx context.Context) error {
	blob := "BLOB"
	if s.postgres {
		blob = "BYTEA"
	}
	stmts := []string{
		`CREATE TABLE IF NOT EXISTS payledger_idempotency (
			scoped_key TEXT PRIMARY KEY,
			request_hash TEXT NOT NULL,
			status INTEGER NOT NULL DEFAULT 0,
			content_type TEXT NOT NULL DEFAULT '',
			location TEXT NOT NULL DEFAULT '',
			body ` + blob + `,
			created_at BIGINT NOT NULL,
			locked_until BIGINT NOT NULL)`,
		`CREATE INDEX IF NOT EXISTS payledger_idempotency_created ON payledger_idempotency (created_at)`,
	}
	return s.db.WriteTx(ctx, func(tx *sqlx.Tx) error {
		for _, q := range stmts {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("idempotency: migrate: %w", err)
			}
		}
		return nil
	})
}

// write runs fn in a write transaction. On PostgreSQL the transaction
// commits asynchronously: see the package doc for why a lost row is safe.
func (s *Store) write(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	return s.db.WriteTx(ctx, func(tx *sqlx.Tx) error {
		if s.postgres {
			if _, err := tx.ExecContext(ctx, `SET LOCAL synchronous_commit TO OFF`); err != nil {
				return err
			}
		}
		return fn(tx)
	})
}

func (s *Store) q(query string) string {
	if s.postgres {
		return sqlx.Rebind(sqlx.DOLLAR, query)
	}
	return query
}

type ctxKey struct{}

// FromContext returns the scoped idempotency key of the request being
// served ("" when the client sent none). Pass it to ledger.Idempotent.
func FromContext(ctx context.Context) string {
	k, _ := ctx.Value(ctxKey{}).(string)
	return k
}

// WithKey returns ctx carrying a scoped key (for callers outside HTTP, and
// tests).
func WithKey(ctx context.Context, scopedKey string) context.Context {
	return context.WithValue(ctx, ctxKey{}, scopedKey)
}

// Stored is a completed response.
type Stored struct {
	Status      int
	ContentType string
	Location    string
	Body        []byte
}

// outcome of Begin.
type outcome int

const (
	proceed outcome = iota
	replay
	mismatch
	inFlight
)

type storedRow struct {
	RequestHash string `db:"request_hash"`
	Status      int    `db:"status"`
	ContentType string `db:"content_type"`
	Location    string `db:"location"`
	Body        []byte `db:"body"`
	LockedUntil int64  `db:"locked_until"`
}

func (s *Store) begin(ctx context.Context, key, hash string) (outcome, Stored, error) {
	now := s.now()
	row := RowKey(key)
	var (
		out outcome
		st  Stored
	)
	err := s.write(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, s.q(`INSERT INTO payledger_idempotency (scoped_key, request_hash, created_at, locked_until) VALUES (?, ?, ?, ?) ON CONFLICT (scoped_key) DO NOTHING`),
			row, hash, now.UnixMicro(), now.Add(s.lease).UnixMicro())
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 1 {
			out = proceed
			return nil
		}
		var r storedRow
		if err := tx.GetContext(ctx, &r, s.q(`SELECT request_hash, status, content_type, location, body, locked_until FROM payledger_idempotency WHERE scoped_key = ?`), row); err != nil {
			return err
		}
		switch {
		case r.RequestHash != hash:
			out = mismatch
		case r.Status != 0:
			body, err := open(key, r.Body)
			if err != nil {
				return err
			}
			out, st = replay, Stored{Status: r.Status, ContentType: r.ContentType, Location: r.Location, Body: body}
		case r.LockedUntil > now.UnixMicro():
			out = inFlight
		default:
			// The first request's process died: take the key over.
			res, err := tx.ExecContext(ctx, s.q(`UPDATE payledger_idempotency SET locked_until = ? WHERE scoped_key = ? AND status = 0 AND locked_until = ?`),
				now.Add(s.lease).UnixMicro(), row, r.LockedUntil)
			if err != nil {
				return err
			}
			out = inFlight
			if n, _ := res.RowsAffected(); n == 1 {
				out = proceed
			}
		}
		return nil
	})
	if err != nil {
		return 0, Stored{}, fmt.Errorf("idempotency: begin: %w", err)
	}
	return out, st, nil
}

// transient reports whether a response asks to be retried rather than
// remembered: a 5xx, or any answer carrying Retry-After (a concurrent
// modification, a timeout). Replaying it for the key's whole retention
// would turn a passing condition into a permanent one.
func transient(st Stored, h http.Header) bool {
	return st.Status >= 500 || h.Get("Retry-After") != ""
}

// finish stores the response of a completed request, or forgets the key
// when forget is set so that a retry runs again.
func (s *Store) finish(ctx context.Context, key string, st Stored, forget bool) error {
	row := RowKey(key)
	var sealed []byte
	if !forget {
		var err error
		if sealed, err = seal(key, st.Body); err != nil {
			return fmt.Errorf("idempotency: finish: %w", err)
		}
	}
	err := s.write(ctx, func(tx *sqlx.Tx) error {
		var err error
		if forget {
			_, err = tx.ExecContext(ctx, s.q(`DELETE FROM payledger_idempotency WHERE scoped_key = ? AND status = 0`), row)
		} else {
			_, err = tx.ExecContext(ctx, s.q(`UPDATE payledger_idempotency SET status = ?, content_type = ?, location = ?, body = ? WHERE scoped_key = ?`),
				st.Status, st.ContentType, st.Location, sealed, row)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("idempotency: finish: %w", err)
	}
	return nil
}

// Purge deletes keys older than Retention (and in-flight leftovers of the
// same age). serve calls it periodically.
func (s *Store) Purge(ctx context.Context) (int64, error) {
	cut := s.now().Add(-Retention - time.Hour).UnixMicro()
	var n int64
	err := s.write(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, s.q(`DELETE FROM payledger_idempotency WHERE created_at < ?`), cut)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("idempotency: purge: %w", err)
	}
	return n, nil
}

// Middleware applies the contract to POST requests carrying the header.
// scope names the caller (the API key id) so that two clients never share
// keys; it must not be empty for authenticated routes.
func (s *Store) Middleware(scope func(*http.Request) string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw := r.Header.Get(Header)
		if r.Method != http.MethodPost || raw == "" {
			next.ServeHTTP(w, r)
			return
		}
		if len(raw) > maxKeyLen || !printableASCII(raw) {
			problem.Respond(w, http.StatusBadRequest, "invalid_idempotency_key", fmt.Sprintf("%s must be 1 to %d printable ASCII characters", Header, maxKeyLen),
				problem.FieldError{Field: Header, Message: "invalid"})
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				problem.Respond(w, http.StatusRequestEntityTooLarge, "request_too_large", fmt.Sprintf("request body exceeds %d bytes", mbe.Limit))
				return
			}
			problem.Respond(w, http.StatusBadRequest, "invalid_body", "could not read the request body")
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		h := sha256.New()
		fmt.Fprintf(h, "%s %s?%s\n", r.Method, r.URL.Path, r.URL.RawQuery)
		h.Write(body)
		hash := hex.EncodeToString(h.Sum(nil))
		key := scope(r) + ":" + raw

		out, st, err := s.begin(r.Context(), key, hash)
		if err != nil {
			problem.Respond(w, http.StatusServiceUnavailable, "idempotency_unavailable", "the idempotency store is unavailable; retry with the same key")
			return
		}
		switch out {
		case mismatch:
			problem.Respond(w, http.StatusUnprocessableEntity, "idempotency_key_reused",
				"this Idempotency-Key was used with a different request; use a new key for a new request")
			return
		case inFlight:
			w.Header().Set("Retry-After", "1")
			problem.Respond(w, http.StatusConflict, "idempotency_request_in_progress",
				"a request with this Idempotency-Key is still being processed; retry later")
			return
		case replay:
			if st.ContentType != "" {
				w.Header().Set("Content-Type", st.ContentType)
			}
			if st.Location != "" {
				w.Header().Set("Location", st.Location)
			}
			w.Header().Set("Idempotent-Replayed", "true")
			w.WriteHeader(st.Status)
			_, _ = w.Write(st.Body)
			return
		}

		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		finished := false
		defer func() {
			if !finished {
				// The handler panicked: forget the key so a retry runs
				// again, then let the recovery middleware answer.
				_ = s.finish(context.WithoutCancel(r.Context()), key, Stored{Status: http.StatusInternalServerError}, true)
			}
		}()
		next.ServeHTTP(rec, r.WithContext(WithKey(r.Context(), key)))
		finished = true
		done := Stored{
			Status:      rec.status,
			ContentType: rec.Header().Get("Content-Type"),
			Location:    rec.Header().Get("Location"),
			Body:        rec.body.Bytes(),
		}
		_ = s.finish(context.WithoutCancel(r.Context()), key, done, transient(done, rec.Header()))
	})
}

// RowKey is how a scoped key is stored: its SHA-256, hex. The clear key
// never reaches the table; it is also what opens the stored response.
func RowKey(scopedKey string) string {
	sum := sha256.Sum256([]byte("payledger/idempotency/row\x00" + scopedKey))
	return hex.EncodeToString(sum[:])
}

// Stored responses are sealed with AES-256-GCM under a key derived from
// the scoped key. A response can hold secrets that are otherwise only
// stored hashed (the token inside a payment link's URL) and the payer's
// personal data; sealed, a copy of the table reveals neither without the
// client's Idempotency-Key, which is stored nowhere.
func aead(scopedKey string) (cipher.AEAD, error) {
	k := sha256.Sum256([]byte("payledger/idempotency/body\x00" + scopedKey))
	block, err := aes.NewCipher(k[:])
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func seal(scopedKey string, body []byte) ([]byte, error) {
	g, err := aead(scopedKey)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, g.NonceSize(), g.NonceSize()+len(body)+g.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return g.Seal(nonce, nonce, body, []byte(RowKey(scopedKey))), nil
}

func open(scopedKey string, sealed []byte) ([]byte, error) {
	g, err := aead(scopedKey)
	if err != nil {
		return nil, err
	}
	if len(sealed) < g.NonceSize() {
		return nil, errors.New("idempotency: stored response is truncated")
	}
	body, err := g.Open(nil, sealed[:g.NonceSize()], sealed[g.NonceSize():], []byte(RowKey(scopedKey)))
	if err != nil {
		return nil, fmt.Errorf("idempotency: stored response does not open: %w", err)
	}
	return body, nil
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// recorder passes the response through and keeps a copy for replays.
type recorder struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
	body        bytes.Buffer
}

func (r *recorder) WriteHeader(code int) {
	if !r.wroteHeader {
		r.status = code
		r.wroteHeader = true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if !r.wroteHeader {
		r.WriteHeader(http.StatusOK)
	}
	r.body.Write(b)
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the real writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
