package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/payledger/payledger/projections"
)

// Delivery statuses.
const (
	StatusPending   = "pending"   // waiting for its next attempt (or in flight)
	StatusSucceeded = "succeeded" // a 2xx answered an attempt
	StatusFailed    = "failed"    // the retry schedule ran out, or the endpoint answered 410
	StatusCancelled = "cancelled" // the endpoint was disabled or deleted before success
)

// ErrNotFound is returned for an unknown delivery.
var ErrNotFound = errors.New("outbox: delivery not found")

// Job is one attempt to make: what the sender needs to POST.
type Job struct {
	DeliveryID string
	EndpointID string
	EventID    string
	EventType  string
	Format     string
	Attempt    int  // 1 for the first attempt
	Manual     bool // requested through the retry API
	RecordedAt time.Time
	Body       []byte
}

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

// Writer is the database the queue lives in: reads through DB, writes
// through WriteTx (SQLite funnels them through its one writer).
type Writer interface {
	DB() *sqlx.DB
	WriteTx(ctx context.Context, fn func(*sqlx.Tx) error) error
}

// Claim takes up to limit pending deliveries due at now and leases them
// until leaseUntil (their next_attempt_at moves there), so no other poll
// takes them meanwhile. A sender that dies mid-attempt loses only the
// lease: the delivery is due again once it passes. Deliveries whose
// message is missing (a rebuild in progress) are left alone.
func Claim(ctx context.Context, w Writer, now, leaseUntil time.Time, limit int) ([]Job, error) {
	if d, _ := projections.DialectOf(w.DB().DriverName()); d == projections.Postgres {
		return claimPostgres(ctx, w.DB(), now, leaseUntil, limit)
	}
	var jobs []Job
	err := w.WriteTx(ctx, func(tx *sqlx.Tx) error {
		var err error
		jobs, err = claimTx(ctx, tx, now, leaseUntil, limit)
		return err
	})
	return jobs, err
}

// claimPostgres is Claim in one statement, outside an explicit
// transaction: on PostgreSQL the round trips of a transaction (begin,
// select, select, update, commit), not the work, were what bounded the
// sender. SKIP LOCKED lets several servers claim side by side.
func claimPostgres(ctx context.Context, db *sqlx.DB, now, leaseUntil time.Time, limit int) ([]Job, error) {
	rows, err := db.QueryxContext(ctx, `WITH due AS (
	SELECT id FROM webhook_deliveries
	WHERE status = 'pending' AND next_attempt_at <= $1
	ORDER BY next_attempt_at, id
	LIMIT $2
	FOR UPDATE SKIP LOCKED
), taken AS (
	UPDATE webhook_deliveries d SET next_attempt_at = $3
	FROM due, webhook_messages m
	WHERE d.id = due.id AND m.event_id = d.event_id
	RETURNING d.id, d.endpoint_id, d.event_id, d.event_type, d.format, d.attempts, d.manual, d.created_at,
		CASE WHEN d.format = 'woocommerce' THEN m.woocommerce_body ELSE m.standard_body END AS body
)
SELECT id, endpoint_id, event_id, event_type, format, attempts, manual, created_at, body FROM taken ORDER BY id`,
		micros(now), limit, micros(leaseUntil))
	if err != nil {
		return nil, fmt.Errorf("outbox: claim: %w", err)
	}
	defer rows.Close()
	var jobs []Job
	for rows.Next() {
		var j Job
		var attempts, manual int
		var at int64
		var body string
		if err := rows.Scan(&j.DeliveryID, &j.EndpointID, &j.EventID, &j.EventType, &j.Format, &attempts, &manual, &at, &body); err != nil {
			return nil, err
		}
		j.Attempt, j.Manual, j.RecordedAt, j.Body = attempts+1, manual != 0, fromMicros(at), []byte(body)
		jobs = append(jobs, j)
	}
	return jobs, rows.Err()
}

// claimTx is Claim inside the caller's transaction. The queue is read on
// its own, in index order, and the bodies fetched by key afterwards: a
// join would let the planner of a freshly filled table (no statistics
// yet) visit every message before the LIMIT applies.
func claimTx(ctx context.Context, tx *sqlx.Tx, now, leaseUntil time.Time, limit int) ([]Job, error) {
	q := `SELECT id, endpoint_id, event_id, event_type, format, attempts, manual, created_at
FROM webhook_deliveries
WHERE status = 'pending' AND next_attempt_at <= ?
ORDER BY next_attempt_at, id
LIMIT ?`
	rows, err := tx.QueryxContext(ctx, tx.Rebind(q), micros(now), limit)
	if err != nil {
		return nil, fmt.Errorf("outbox: claim: %w", err)
	}
	var jobs []Job
	events := map[string]bool{}
	var eventIDs []string
	for rows.Next() {
		var j Job
		var attempts, manual int
		var at int64
		if err := rows.Scan(&j.DeliveryID, &j.EndpointID, &j.EventID, &j.EventType, &j.Format, &attempts, &manual, &at); err != nil {
			rows.Close()
			return nil, err
		}
		j.Attempt, j.Manual, j.RecordedAt = attempts+1, manual != 0, fromMicros(at)
		jobs = append(jobs, j)
		if !events[j.EventID] {
			events[j.EventID] = true
			eventIDs = append(eventIDs, j.EventID)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(jobs) == 0 {
		return nil, nil
	}
	mq, margs, err := sqlx.In(`SELECT event_id, standard_body, woocommerce_body FROM webhook_messages WHERE event_id IN (?)`, eventIDs)
	if err != nil {
		return nil, err
	}
	mrows, err := tx.QueryxContext(ctx, tx.Rebind(mq), margs...)
	if err != nil {
		return nil, fmt.Errorf("outbox: claim bodies: %w", err)
	}
	type bodies struct{ std, woo string }
	found := map[string]bodies{}
	for mrows.Next() {
		var id string
		var b bodies
		if err := mrows.Scan(&id, &b.std, &b.woo); err != nil {
			mrows.Close()
			return nil, err
		}
		found[id] = b
	}
	mrows.Close()
	if err := mrows.Err(); err != nil {
		return nil, err
	}
	out := jobs[:0]
	ids := make([]any, 0, len(jobs))
	for _, j := range jobs {
		b, ok := found[j.EventID]
		if !ok {
			continue
		}
		j.Body = []byte(b.std)
		if j.Format == FormatWooCommerce {
			j.Body = []byte(b.woo)
		}
		out = append(out, j)
		ids = append(ids, j.DeliveryID)
	}
	if len(out) == 0 {
		return nil, nil
	}
	upd := `UPDATE webhook_deliveries SET next_attempt_at = ? WHERE id IN (?` + strings.Repeat(",?", len(ids)-1) + `)`
	if _, err := tx.ExecContext(ctx, tx.Rebind(upd), append([]any{micros(leaseUntil)}, ids...)...); err != nil {
		return nil, fmt.Errorf("outbox: lease: %w", err)
	}
	return out, nil
}

// Attempt is one recorded attempt.
type Attempt struct {
	DeliveryID string
	Attempt    int
	Manual     bool
	StartedAt  time.Time
	Duration   time.Duration
	StatusCode int    // 0 when no response arrived
	Error      string // transport error, empty when a response arrived
	Excerpt    string // the start of the response body
}

// Outcome is an attempt and the delivery state it leads to.
type Outcome struct {
	Attempt
	Status        string    // StatusPending (retry at NextAttemptAt), StatusSucceeded or StatusFailed
	NextAttemptAt time.Time // when Status is StatusPending
}

// Record stores an attempt and moves its delivery on. It returns false,
// changing nothing, when that attempt number was already recorded (a
// sender whose lease ran out while another one retried).
func Record(ctx context.Context, tx *sqlx.Tx, o Outcome) (bool, error) {
	fresh, err := RecordAll(ctx, tx, []Outcome{o})
	if err != nil {
		return false, err
	}
	return fresh[0], nil
}

// RecordAll is Record for many outcomes in two statements, whatever their
// number: a statement costs a round trip, and the sender records outcomes
// in groups. fresh[i] tells whether outs[i] was new.
func RecordAll(ctx context.Context, tx *sqlx.Tx, outs []Outcome) ([]bool, error) {
	fresh := make([]bool, len(outs))
	if len(outs) == 0 {
		return fresh, nil
	}
	var ins strings.Builder
	ins.WriteString(`INSERT INTO webhook_attempts (delivery_id, attempt, manual, started_at, duration_us, status_code, error, response_excerpt) VALUES `)
	args := make([]any, 0, 8*len(outs))
	for i, o := range outs {
		if i > 0 {
			ins.WriteByte(',')
		}
		ins.WriteString(`(?, ?, ?, ?, ?, ?, ?, ?)`)
		manual := 0
		if o.Manual {
			manual = 1
		}
		args = append(args, o.DeliveryID, o.Attempt.Attempt, manual, micros(o.StartedAt), o.Duration.Microseconds(), o.StatusCode, o.Error, o.Excerpt)
	}
	ins.WriteString(` ON CONFLICT (delivery_id, attempt) DO NOTHING RETURNING delivery_id, attempt`)
	rows, err := tx.QueryxContext(ctx, tx.Rebind(ins.String()), args...)
	if err != nil {
		return nil, fmt.Errorf("outbox: record attempts: %w", err)
	}
	type key struct {
		id string
		n  int
	}
	inserted := map[key]bool{}
	for rows.Next() {
		var k key
		if err := rows.Scan(&k.id, &k.n); err != nil {
			rows.Close()
			return nil, err
		}
		inserted[k] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var upd strings.Builder
	args = args[:0]
	for i, o := range outs {
		if !inserted[key{o.DeliveryID, o.Attempt.Attempt}] {
			continue
		}
		fresh[i] = true
		if len(args) > 0 {
			upd.WriteByte(',')
		}
		// Typed placeholders: PostgreSQL types a VALUES list from its rows.
		upd.WriteString(`(?, ?, CAST(? AS INTEGER), CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS INTEGER), ?)`)
		next := int64(0)
		if o.Status == StatusPending {
			next = micros(o.NextAttemptAt)
		}
		lastErr := o.Error
		if lastErr == "" && (o.StatusCode < 200 || o.StatusCode > 299) {
			lastErr = fmt.Sprintf("HTTP %d", o.StatusCode)
		}
		args = append(args, o.DeliveryID, o.Status, o.Attempt.Attempt, next, micros(o.StartedAt), o.StatusCode, lastErr)
	}
	if len(args) == 0 {
		return fresh, nil
	}
	// A delivery cancelled while its attempt was in flight stays cancelled
	// unless the attempt succeeded anyway; an older attempt never
	// overwrites a newer one.
	q := `UPDATE webhook_deliveries SET
	status = CASE WHEN webhook_deliveries.status = 'cancelled' AND v.column2 <> 'succeeded' THEN webhook_deliveries.status ELSE v.column2 END,
	attempts = v.column3, next_attempt_at = v.column4, last_attempt_at = v.column5, last_status_code = v.column6,
	last_error = v.column7, manual = 0
FROM (VALUES ` + upd.String() + `) AS v
WHERE webhook_deliveries.id = v.column1 AND webhook_deliveries.attempts < v.column3`
	if _, err := tx.ExecContext(ctx, tx.Rebind(q), args...); err != nil {
		return nil, fmt.Errorf("outbox: update deliveries: %w", err)
	}
	return fresh, nil
}

// CancelPending cancels the endpoint's deliveries that are still waiting
// (the endpoint was disabled or deleted).
func CancelPending(ctx context.Context, tx *sqlx.Tx, endpointID string) error {
	_, err := tx.ExecContext(ctx, tx.Rebind(`UPDATE webhook_deliveries SET status = 'cancelled', next_attempt_at = 0
WHERE endpoint_id = ? AND status = 'pending'`), endpointID)
	return err
}

// Requeue makes a delivery due at now for one more attempt (manual retry),
// whatever its status. It returns ErrNotFound for an unknown id.
func Requeue(ctx context.Context, tx *sqlx.Tx, id string, now time.Time) error {
	res, err := tx.ExecContext(ctx, tx.Rebind(`UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = ?, manual = 1 WHERE id = ?`),
		micros(now), id)
	if err != nil {
		return fmt.Errorf("outbox: requeue: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return nil
}

// NextDue returns when the earliest pending delivery is due (ok false when
// none is pending).
func NextDue(ctx context.Context, q sqlx.QueryerContext) (time.Time, bool, error) {
	var us sql.NullInt64
	if err := q.QueryRowxContext(ctx, `SELECT MIN(next_attempt_at) FROM webhook_deliveries WHERE status = 'pending'`).Scan(&us); err != nil {
		return time.Time{}, false, err
	}
	if !us.Valid {
		return time.Time{}, false, nil
	}
	return time.UnixMicro(us.Int64).UTC(), true, nil
}

// Delivery is a delivery with its attempts, oldest first.
type Delivery struct {
	ID             string
	EndpointID     string
	EventID        string
	EventType      string
	Format         string
	CreatedAt      time.Time
	Status         string
	AttemptCount   int
	NextAttemptAt  time.Time // zero unless pending
	LastAttemptAt  time.Time
	LastStatusCode int
	LastError      string
	Attempts       []Attempt
}

// Page selects deliveries for List; ids are time-ordered, newest first.
type Page struct {
	Status        string
	Limit         int
	StartingAfter string
	EndingBefore  string
}

const deliverySelect = `SELECT id, endpoint_id, event_id, event_type, format, created_at, status, attempts,
	next_attempt_at, last_attempt_at, last_status_code, last_error FROM webhook_deliveries`

// Get returns one delivery with its attempts, or ErrNotFound.
func Get(ctx context.Context, q projections.Queryer, id string) (Delivery, error) {
	ds, err := scanDeliveries(ctx, q, deliverySelect+` WHERE id = ?`, id)
	if err != nil {
		return Delivery{}, err
	}
	if len(ds) == 0 {
		return Delivery{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return ds[0], nil
}

// List returns an endpoint's deliveries, newest first, with their
// attempts, and whether more match beyond the page.
func List(ctx context.Context, q projections.Queryer, endpointID string, p Page) ([]Delivery, bool, error) {
	limit := p.Limit
	if limit <= 0 {
		limit = 20
	}
	limit = min(limit, 100)
	where, args := []string{"endpoint_id = ?"}, []any{endpointID}
	if p.Status != "" {
		where, args = append(where, "status = ?"), append(args, p.Status)
	}
	asc := false
	switch {
	case p.StartingAfter != "":
		where, args = append(where, "id < ?"), append(args, p.StartingAfter)
	case p.EndingBefore != "":
		where, args = append(where, "id > ?"), append(args, p.EndingBefore)
		asc = true
	}
	order := " ORDER BY id DESC"
	if asc {
		order = " ORDER BY id ASC"
	}
	ds, err := scanDeliveries(ctx, q, deliverySelect+" WHERE "+strings.Join(where, " AND ")+order+fmt.Sprintf(" LIMIT %d", limit+1), args...)
	if err != nil {
		return nil, false, err
	}
	more := len(ds) > limit
	if more {
		ds = ds[:limit]
	}
	if asc {
		for i, j := 0, len(ds)-1; i < j; i, j = i+1, j-1 {
			ds[i], ds[j] = ds[j], ds[i]
		}
	}
	return ds, more, nil
}

func scanDeliveries(ctx context.Context, q projections.Queryer, query string, args ...any) ([]Delivery, error) {
	rows, err := q.QueryxContext(ctx, q.Rebind(query), args...)
	if err != nil {
		return nil, fmt.Errorf("outbox: list deliveries: %w", err)
	}
	out := []Delivery{}
	index := map[string]int{}
	for rows.Next() {
		var d Delivery
		var created, next, last int64
		if err := rows.Scan(&d.ID, &d.EndpointID, &d.EventID, &d.EventType, &d.Format, &created, &d.Status, &d.AttemptCount,
			&next, &last, &d.LastStatusCode, &d.LastError); err != nil {
			rows.Close()
			return nil, err
		}
		d.CreatedAt, d.LastAttemptAt = fromMicros(created), fromMicros(last)
		if d.Status == StatusPending {
			d.NextAttemptAt = fromMicros(next)
		}
		d.Attempts = []Attempt{}
		index[d.ID] = len(out)
		out = append(out, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return out, nil
	}
	ids := make([]string, len(out))
	for i, d := range out {
		ids[i] = d.ID
	}
	aq, aargs, err := sqlx.In(`SELECT delivery_id, attempt, manual, started_at, duration_us, status_code, error, response_excerpt
FROM webhook_attempts WHERE delivery_id IN (?) ORDER BY delivery_id, attempt`, ids)
	if err != nil {
		return nil, err
	}
	arows, err := q.QueryxContext(ctx, q.Rebind(aq), aargs...)
	if err != nil {
		return nil, fmt.Errorf("outbox: list attempts: %w", err)
	}
	defer arows.Close()
	for arows.Next() {
		var a Attempt
		var manual int
		var started, dur int64
		if err := arows.Scan(&a.DeliveryID, &a.Attempt, &manual, &started, &dur, &a.StatusCode, &a.Error, &a.Excerpt); err != nil {
			return nil, err
		}
		a.Manual, a.StartedAt, a.Duration = manual != 0, fromMicros(started), time.Duration(dur)*time.Microsecond
		i := index[a.DeliveryID]
		out[i].Attempts = append(out[i].Attempts, a)
	}
	return out, arows.Err()
}
