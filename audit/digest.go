package audit

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"

	"github.com/payledger/payledger/eventstore"
	"github.com/payledger/payledger/projections"
)

// DigestsName is the digest projection's name (checkpoint key).
const DigestsName = "audit_digests"

// DefaultDigestEvery is how many events of $all lie between two recorded
// digests unless configured otherwise.
const DefaultDigestEvery = 10_000

// ZeroDigest is the digest of the empty history, the start of the fold.
var ZeroDigest = make([]byte, sha256.Size)

// NextDigest extends the digest of the first n events of $all with the hash
// of event n+1: SHA-256(prev ‖ hash), both 32 raw bytes. Each event hash
// already commits to its stream's whole chain, so the digest commits to
// every byte of every event and to their global order.
func NextDigest(prev, eventHash []byte) []byte {
	h := sha256.New()
	h.Write(prev)
	h.Write(eventHash)
	return h.Sum(nil)
}

// eventHash is the stored chain hash of e, or 32 zero bytes when the
// metadata has no chain fields. A digest never stops the projection (that
// would hold back every read-your-writes wait); the verifier reports such
// an event as a broken chain instead.
func eventHash(e eventstore.RecordedEvent) []byte {
	h, err := eventstore.LastHash(e.Metadata)
	if err != nil || len(h) != sha256.Size {
		return ZeroDigest
	}
	return h
}

// Digest is one recorded commitment: the digest over the first Events
// events of $all, the last of which is EventID at Position.
type Digest struct {
	Events   uint64              `json:"events"`
	Position eventstore.Position `json:"-"`
	EventID  string              `json:"event_id"`
	Digest   string              `json:"digest"`
	// Head marks the running digest of the projection's checkpoint, which
	// is kept after every batch (the periodic ones have Head false).
	Head bool `json:"head,omitempty"`
}

// Digests is the projection that records a digest over the $all prefix
// every Every events, plus the running digest at its checkpoint.
//
// It is deliberately not a cache: Reset keeps the recorded rows, and Apply
// skips events at or before the position it already covers, so a
// "projections rebuild" of everything replays over it without rewriting a
// single commitment. Digests computed from a log that was edited later
// would otherwise silently agree with the edit.
type Digests struct {
	every uint64
}

var _ projections.Projection = (*Digests)(nil)

// NewDigests records a digest every `every` events (DefaultDigestEvery
// when every <= 0).
func NewDigests(every int) *Digests {
	if every <= 0 {
		every = DefaultDigestEvery
	}
	return &Digests{every: uint64(every)}
}

// Every is the interval between recorded digests.
func (d *Digests) Every() int { return int(d.every) }

func (d *Digests) Name() string { return DigestsName }

func (d *Digests) Clone() projections.Projection { return &Digests{every: d.every} }

func (d *Digests) Migrate(ctx context.Context, tx *sqlx.Tx, _ projections.Dialect) error {
	return projections.ExecAll(ctx, tx,
		`CREATE TABLE IF NOT EXISTS audit_digest_head (
	id          INTEGER PRIMARY KEY CHECK (id = 1),
	events      BIGINT NOT NULL,
	commit_pos  BIGINT NOT NULL,
	prepare_pos BIGINT NOT NULL,
	event_id    TEXT NOT NULL,
	digest      TEXT NOT NULL
)`,
		`CREATE TABLE IF NOT EXISTS audit_digests (
	events      BIGINT PRIMARY KEY,
	commit_pos  BIGINT NOT NULL,
	prepare_pos BIGINT NOT NULL,
	event_id    TEXT NOT NULL,
	digest      TEXT NOT NULL
)`)
}

// Reset keeps every row: see the type's documentation.
func (d *Digests) Reset(context.Context, *sqlx.Tx) error { return nil }

func (d *Digests) Apply(ctx context.Context, tx *sqlx.Tx, batch []eventstore.RecordedEvent) error {
	head, err := loadHead(ctx, tx)
	if err != nil {
		return err
	}
	cur, err := hex.DecodeString(head.Digest)
	if err != nil || len(cur) != sha256.Size {
		return fmt.Errorf("audit: digest head is not 64 hex digits: %q", head.Digest)
	}
	n := head.Events
	last := head
	for _, e := range batch {
		if n > 0 && !head.Position.Less(e.Position) {
			continue // already covered (a replay after Reset)
		}
		cur = NextDigest(cur, eventHash(e))
		n++
		last = Digest{Events: n, Position: e.Position, EventID: e.ID, Digest: hex.EncodeToString(cur)}
		if n%d.every == 0 {
			if err := projections.Exec(ctx, tx, tx.Rebind(`INSERT INTO audit_digests (events, commit_pos, prepare_pos, event_id, digest) VALUES (?, ?, ?, ?, ?)`),
				int64(n), int64(e.Position.Commit), int64(e.Position.Prepare), e.ID, last.Digest); err != nil {
				return fmt.Errorf("audit: record digest %d: %w", n, err)
			}
		}
	}
	if n == head.Events {
		return nil
	}
	err = projections.Exec(ctx, tx, tx.Rebind(`INSERT INTO audit_digest_head (id, events, commit_pos, prepare_pos, event_id, digest) VALUES (1, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET events = excluded.events, commit_pos = excluded.commit_pos, prepare_pos = excluded.prepare_pos, event_id = excluded.event_id, digest = excluded.digest`),
		int64(last.Events), int64(last.Position.Commit), int64(last.Position.Prepare), last.EventID, last.Digest)
	if err != nil {
		return fmt.Errorf("audit: digest head: %w", err)
	}
	return nil
}

func loadHead(ctx context.Context, q sqlx.QueryerContext) (Digest, error) {
	var (
		h       Digest
		n, c, p int64
	)
	err := q.QueryRowxContext(ctx, `SELECT events, commit_pos, prepare_pos, event_id, digest FROM audit_digest_head WHERE id = 1`).
		Scan(&n, &c, &p, &h.EventID, &h.Digest)
	if errors.Is(err, sql.ErrNoRows) {
		return Digest{Digest: hex.EncodeToString(ZeroDigest), Head: true}, nil
	}
	if err != nil {
		return Digest{}, fmt.Errorf("audit: digest head: %w", err)
	}
	h.Events, h.Position, h.Head = uint64(n), eventstore.Position{Commit: uint64(c), Prepare: uint64(p)}, true
	return h, nil
}

// RecordedDigests returns the periodic digests in order, then the running
// head (when any event was digested). A database without the digest
// tables gives none and no error, so verify works where digests were never
// wired.
func RecordedDigests(ctx context.Context, db *sqlx.DB) ([]Digest, error) {
	rows, err := db.QueryxContext(ctx, `SELECT events, commit_pos, prepare_pos, event_id, digest FROM audit_digests ORDER BY events`)
	if err != nil {
		if missingTable(ctx, db, "audit_digests") {
			return nil, nil
		}
		return nil, fmt.Errorf("audit: read digests: %w", err)
	}
	defer rows.Close()
	var out []Digest
	for rows.Next() {
		var d Digest
		var n, c, p int64
		if err := rows.Scan(&n, &c, &p, &d.EventID, &d.Digest); err != nil {
			return nil, fmt.Errorf("audit: read digests: %w", err)
		}
		d.Events, d.Position = uint64(n), eventstore.Position{Commit: uint64(c), Prepare: uint64(p)}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit: read digests: %w", err)
	}
	rows.Close()
	h, err := loadHead(ctx, db)
	if err != nil {
		return nil, err
	}
	if h.Events > 0 {
		out = append(out, h)
	}
	return out, nil
}

// missingTable tells "no such table" apart from a real failure without
// matching driver error texts.
func missingTable(ctx context.Context, db *sqlx.DB, name string) bool {
	var n int
	var err error
	switch db.DriverName() {
	case "sqlite", "sqlite3":
		err = db.QueryRowxContext(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?`, name).Scan(&n)
	default:
		err = db.QueryRowxContext(ctx, `SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = $1`, name).Scan(&n)
	}
	return err == nil && n == 0
}
