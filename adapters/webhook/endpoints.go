package webhook

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/payledger/payledger/ledger"
	"github.com/payledger/payledger/projections"
	"github.com/payledger/payledger/projections/outbox"
)

// Database is where endpoints live: the store's own SQL database (reads
// through DB, writes through WriteTx, which SQLite funnels through its one
// writer).
type Database interface {
	DB() *sqlx.DB
	WriteTx(ctx context.Context, fn func(*sqlx.Tx) error) error
}

// Endpoint statuses.
const (
	EndpointEnabled  = "enabled"
	EndpointDisabled = "disabled"
	endpointDeleted  = "deleted" // kept for its subscription window and delivery history
)

// Reasons an endpoint was disabled.
const (
	ReasonGone    = "gone"    // it answered 410 Gone
	ReasonFailing = "failing" // every attempt failed for DisableAfter
)

// ErrEndpointNotFound is returned for an unknown or deleted endpoint.
var ErrEndpointNotFound = errors.New("webhook: endpoint not found")

// Endpoint is a registered receiver.
type Endpoint struct {
	ID             string
	URL            string
	Format         string
	Events         []string
	Secret         string
	Status         string
	DisabledReason string
	CreatedAt      time.Time
	EndedAt        time.Time // disabled or deleted at; zero while enabled
	FailingSince   time.Time // first failed attempt since the last success
}

// Store keeps webhook endpoints. Endpoints are configuration, not ledger
// facts, so they live in a table of their own rather than in the log; the
// outbox projection reads them through Subscribers.
type Store struct {
	db  Database
	now func() time.Time
}

// NewStore creates the endpoint table if needed. now nil uses time.Now.
func NewStore(ctx context.Context, db Database, now func() time.Time) (*Store, error) {
	if now == nil {
		now = time.Now
	}
	err := db.WriteTx(ctx, func(tx *sqlx.Tx) error {
		return projections.ExecAll(ctx, tx, `CREATE TABLE IF NOT EXISTS webhook_endpoints (
	id              TEXT PRIMARY KEY,
	url             TEXT NOT NULL,
	format          TEXT NOT NULL,
	events          TEXT NOT NULL,
	secret          TEXT NOT NULL,
	status          TEXT NOT NULL,
	disabled_reason TEXT NOT NULL,
	created_at      BIGINT NOT NULL,
	ended_at        BIGINT NOT NULL,
	failing_since   BIGINT NOT NULL
)`)
	})
	if err != nil {
		return nil, fmt.Errorf("webhook: migrate endpoints: %w", err)
	}
	return &Store{db: db, now: now}, nil
}

const endpointCols = `id, url, format, events, secret, status, disabled_reason, created_at, ended_at, failing_since`

func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromMicros(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}

func scanEndpoints(rows *sqlx.Rows) ([]Endpoint, error) {
	defer rows.Close()
	out := []Endpoint{}
	for rows.Next() {
		var e Endpoint
		var events string
		var created, ended, failing int64
		if err := rows.Scan(&e.ID, &e.URL, &e.Format, &events, &e.Secret, &e.Status, &e.DisabledReason, &created, &ended, &failing); err != nil {
			return nil, err
		}
		e.Events = strings.Split(events, ",")
		e.CreatedAt, e.EndedAt, e.FailingSince = fromMicros(created), fromMicros(ended), fromMicros(failing)
		out = append(out, e)
	}
	return out, rows.Err()
}

// NewEndpoint is what Create needs; the caller validated it.
type NewEndpoint struct {
	URL    string
	Format string
	Events []string
}

// Create registers an endpoint with a fresh secret. It receives events
// recorded from now on.
func (s *Store) Create(ctx context.Context, n NewEndpoint) (Endpoint, error) {
	e := Endpoint{
		ID: ledger.NewID("we"), URL: n.URL, Format: n.Format, Events: n.Events,
		Status: EndpointEnabled, CreatedAt: s.now().UTC(),
	}
	if n.Format == outbox.FormatWooCommerce {
		e.Secret = NewWooCommerceSecret()
	} else {
		e.Secret = NewStandardSecret()
	}
	err := s.db.WriteTx(ctx, func(tx *sqlx.Tx) error {
		_, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO webhook_endpoints (`+endpointCols+`) VALUES (?, ?, ?, ?, ?, ?, '', ?, 0, 0)`),
			e.ID, e.URL, e.Format, strings.Join(e.Events, ","), e.Secret, e.Status, micros(e.CreatedAt))
		return err
	})
	if err != nil {
		return Endpoint{}, fmt.Errorf("webhook: create endpoint: %w", err)
	}
	return e, nil
}

// Get returns an endpoint that was not deleted, or ErrEndpointNotFound.
func (s *Store) Get(ctx context.Context, id string) (Endpoint, error) {
	db := s.db.DB()
	rows, err := db.QueryxContext(ctx, db.Rebind(`SELECT `+endpointCols+` FROM webhook_endpoints WHERE id = ? AND status <> 'deleted'`), id)
	if err != nil {
		return Endpoint{}, fmt.Errorf("webhook: get endpoint: %w", err)
	}
	es, err := scanEndpoints(rows)
	if err != nil {
		return Endpoint{}, err
	}
	if len(es) == 0 {
		return Endpoint{}, fmt.Errorf("%w: %s", ErrEndpointNotFound, id)
	}
	return es[0], nil
}

// load returns the endpoints with the given ids, deleted ones included.
func (s *Store) load(ctx context.Context, ids []string) (map[string]Endpoint, error) {
	out := map[string]Endpoint{}
	if len(ids) == 0 {
		return out, nil
	}
	q, args, err := sqlx.In(`SELECT `+endpointCols+` FROM webhook_endpoints WHERE id IN (?)`, ids)
	if err != nil {
		return nil, err
	}
	db := s.db.DB()
	rows, err := db.QueryxContext(ctx, db.Rebind(q), args...)
	if err != nil {
		return nil, err
	}
	es, err := scanEndpoints(rows)
	if err != nil {
		return nil, err
	}
	for _, e := range es {
		out[e.ID] = e
	}
	return out, nil
}

// EndpointPage selects endpoints for List (newest first).
type EndpointPage struct {
	Limit         int
	StartingAfter string
	EndingBefore  string
}

// List returns endpoints that were not deleted, newest first, and whether
// more exist beyond the page.
func (s *Store) List(ctx context.Context, p EndpointPage) ([]Endpoint, bool, error) {
	limit := p.Limit
	if limit <= 0 {
		limit = 20
	}
	limit = min(limit, 100)
	q, args := `SELECT `+endpointCols+` FROM webhook_endpoints WHERE status <> 'deleted'`, []any{}
	asc := false
	switch {
	case p.StartingAfter != "":
		q, args = q+` AND id < ?`, append(args, p.StartingAfter)
	case p.EndingBefore != "":
		q, args, asc = q+` AND id > ?`, append(args, p.EndingBefore), true
	}
	if asc {
		q += ` ORDER BY id ASC`
	} else {
		q += ` ORDER BY id DESC`
	}
	q += fmt.Sprintf(` LIMIT %d`, limit+1)
	db := s.db.DB()
	rows, err := db.QueryxContext(ctx, db.Rebind(q), args...)
	if err != nil {
		return nil, false, fmt.Errorf("webhook: list endpoints: %w", err)
	}
	es, err := scanEndpoints(rows)
	if err != nil {
		return nil, false, err
	}
	more := len(es) > limit
	if more {
		es = es[:limit]
	}
	if asc {
		for i, j := 0, len(es)-1; i < j; i, j = i+1, j-1 {
			es[i], es[j] = es[j], es[i]
		}
	}
	return es, more, nil
}

// Delete removes an endpoint: it stops receiving events and its waiting
// deliveries are cancelled. The row stays (as deleted) so that a replay of
// the outbox still knows which events it had subscribed to.
func (s *Store) Delete(ctx context.Context, id string) error {
	return s.db.WriteTx(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, tx.Rebind(`UPDATE webhook_endpoints SET status = 'deleted',
	ended_at = CASE WHEN ended_at = 0 THEN ? ELSE ended_at END WHERE id = ? AND status <> 'deleted'`), micros(s.now()), id)
		if err != nil {
			return fmt.Errorf("webhook: delete endpoint: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: %s", ErrEndpointNotFound, id)
		}
		return outbox.CancelPending(ctx, tx, id)
	})
}

// disable stops an enabled endpoint inside the caller's transaction.
func disable(ctx context.Context, tx *sqlx.Tx, id, reason string, now time.Time) error {
	res, err := tx.ExecContext(ctx, tx.Rebind(`UPDATE webhook_endpoints SET status = 'disabled', disabled_reason = ?, ended_at = ?
WHERE id = ? AND status = 'enabled'`), reason, micros(now), id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil
	}
	return outbox.CancelPending(ctx, tx, id)
}

// noteSuccess clears the failure streak of the given endpoints.
func noteSuccess(ctx context.Context, tx *sqlx.Tx, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	q, args, err := sqlx.In(`UPDATE webhook_endpoints SET failing_since = 0 WHERE id IN (?) AND failing_since <> 0`, ids)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, tx.Rebind(q), args...)
	return err
}

// noteFailure extends the endpoint's failure streak and disables it once
// the streak is disableAfter long. It reports whether it disabled it.
func noteFailure(ctx context.Context, tx *sqlx.Tx, id string, at time.Time, disableAfter time.Duration) (bool, error) {
	if _, err := tx.ExecContext(ctx, tx.Rebind(`UPDATE webhook_endpoints SET failing_since = ? WHERE id = ? AND failing_since = 0`), micros(at), id); err != nil {
		return false, err
	}
	var since int64
	var st string
	err := tx.QueryRowxContext(ctx, tx.Rebind(`SELECT failing_since, status FROM webhook_endpoints WHERE id = ?`), id).Scan(&since, &st)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if st != EndpointEnabled || since == 0 || at.Sub(fromMicros(since)) < disableAfter {
		return false, nil
	}
	return true, disable(ctx, tx, id, ReasonFailing, at)
}

// Subscribers implements outbox.Subscribers: every endpoint ever created,
// with the window in which it received events.
func (s *Store) Subscribers(ctx context.Context, q sqlx.QueryerContext) ([]outbox.Subscriber, error) {
	rows, err := q.QueryxContext(ctx, `SELECT `+endpointCols+` FROM webhook_endpoints`)
	if err != nil {
		return nil, err
	}
	es, err := scanEndpoints(rows)
	if err != nil {
		return nil, err
	}
	out := make([]outbox.Subscriber, len(es))
	for i, e := range es {
		out[i] = outbox.Subscriber{ID: e.ID, Format: e.Format, Events: e.Events, From: e.CreatedAt, Until: e.EndedAt}
	}
	return out, nil
}
