package outbox

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/payledger/payledger/eventstore"
	"github.com/payledger/payledger/projections"
)

// Name is the projection's name (checkpoint key, CLI argument).
const Name = "webhook_outbox"

// Delivery formats.
const (
	FormatStandard    = "standard"
	FormatWooCommerce = "woocommerce"
)

// Subscriber is one webhook endpoint as the outbox sees it: it receives the
// published events of a matching type recorded in [From, Until) (Until
// zero: still subscribed).
type Subscriber struct {
	ID     string
	Format string
	Events []string // published types, or "*"
	From   time.Time
	Until  time.Time
}

// Wants reports whether the endpoint receives an event of type typ
// recorded at at.
func (s Subscriber) Wants(typ string, at time.Time) bool {
	if at.Before(s.From) || (!s.Until.IsZero() && !at.Before(s.Until)) {
		return false
	}
	if s.Format == FormatWooCommerce && !orderUpdates[typ] {
		return false
	}
	for _, e := range s.Events {
		if e == "*" || e == typ {
			return true
		}
	}
	return false
}

// Subscribers lists every endpoint that ever existed, with its
// subscription window, reading through q (the projection's transaction).
// The endpoint store implements it.
type Subscribers interface {
	Subscribers(ctx context.Context, q sqlx.QueryerContext) ([]Subscriber, error)
}

// Projection is the webhook outbox.
type Projection struct {
	r      projections.StreamReader
	subs   Subscribers
	states *projections.States
}

// New returns the outbox projection; r re-reads streams on a cache miss,
// subs says who receives what.
func New(r projections.StreamReader, subs Subscribers) *Projection {
	return &Projection{r: r, subs: subs, states: projections.NewStates(r)}
}

func (p *Projection) Name() string { return Name }

// Clone implements projections.Projection.
func (p *Projection) Clone() projections.Projection { return New(p.r, p.subs) }

// Migrate implements projections.Projection.
func (p *Projection) Migrate(ctx context.Context, tx *sqlx.Tx, _ projections.Dialect) error {
	return projections.ExecAll(ctx, tx,
		`CREATE TABLE IF NOT EXISTS webhook_messages (
	event_id         TEXT PRIMARY KEY,
	commit_pos       BIGINT NOT NULL,
	prepare_pos      BIGINT NOT NULL,
	type             TEXT NOT NULL,
	invoice_id       TEXT NOT NULL,
	recorded_at      BIGINT NOT NULL,
	standard_body    TEXT NOT NULL,
	woocommerce_body TEXT NOT NULL
)`,
		`CREATE TABLE IF NOT EXISTS webhook_deliveries (
	id               TEXT PRIMARY KEY,
	endpoint_id      TEXT NOT NULL,
	event_id         TEXT NOT NULL,
	event_type       TEXT NOT NULL,
	format           TEXT NOT NULL,
	created_at       BIGINT NOT NULL,
	status           TEXT NOT NULL,
	attempts         INTEGER NOT NULL,
	next_attempt_at  BIGINT NOT NULL,
	last_attempt_at  BIGINT NOT NULL,
	last_status_code INTEGER NOT NULL,
	last_error       TEXT NOT NULL,
	manual           INTEGER NOT NULL,
	UNIQUE (endpoint_id, event_id)
)`,
		// The sender's claim: pending rows in the order it takes them, so
		// that a claim reads its LIMIT rows off the index instead of
		// sorting every due row.
		`CREATE INDEX IF NOT EXISTS webhook_deliveries_queue ON webhook_deliveries (next_attempt_at, id) WHERE status = 'pending'`,
		`CREATE INDEX IF NOT EXISTS webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, id)`,
		`CREATE TABLE IF NOT EXISTS webhook_attempts (
	delivery_id      TEXT NOT NULL,
	attempt          INTEGER NOT NULL,
	manual           INTEGER NOT NULL,
	started_at       BIGINT NOT NULL,
	duration_us      BIGINT NOT NULL,
	status_code      INTEGER NOT NULL,
	error            TEXT NOT NULL,
	response_excerpt TEXT NOT NULL,
	PRIMARY KEY (delivery_id, attempt)
)`,
	)
}

// Reset implements projections.Projection. Only the rendered messages are
// dropped; deliveries and attempts are records of what was sent (see the
// package comment), and replaying re-creates the same delivery keys.
func (p *Projection) Reset(ctx context.Context, tx *sqlx.Tx) error {
	p.states.Reset()
	return projections.ExecAll(ctx, tx, `DELETE FROM webhook_messages`)
}

var (
	messageCols  = []string{"event_id", "commit_pos", "prepare_pos", "type", "invoice_id", "recorded_at", "standard_body", "woocommerce_body"}
	deliveryCols = []string{"id", "endpoint_id", "event_id", "event_type", "format", "created_at", "status", "attempts",
		"next_attempt_at", "last_attempt_at", "last_status_code", "last_error", "manual"}
)

// DeliveryID derives the delivery id of (endpoint, event): the event's
// recorded time in hex first, so ids sort by time as API ids must, then a
// hash of both ids, so a replay finds the same row.
func DeliveryID(endpointID, eventID string, recordedAt time.Time) string {
	sum := sha256.Sum256([]byte(endpointID + "\x00" + eventID))
	return fmt.Sprintf("wd_%016x%s", recordedAt.UnixMicro(), hex.EncodeToString(sum[:8]))
}

// Apply implements projections.Projection.
func (p *Projection) Apply(ctx context.Context, tx *sqlx.Tx, batch []eventstore.RecordedEvent) error {
	_, _, steps, err := p.states.Latest(ctx, batch)
	if err != nil {
		return err
	}
	var (
		subs     []Subscriber
		loaded   bool
		messages [][]any
		deliver  [][]any
	)
	for _, st := range steps {
		typ, ok := PublishedType(st.Recorded.Type)
		if !ok || !st.After.Exists() {
			continue
		}
		if !loaded {
			if subs, err = p.subs.Subscribers(ctx, tx); err != nil {
				return fmt.Errorf("outbox: subscribers: %w", err)
			}
			loaded = true
		}
		std, err := standardBody(st, typ)
		if err != nil {
			return err
		}
		var woo []byte
		if orderUpdates[typ] {
			if woo, err = orderBody(st.After); err != nil {
				return err
			}
		}
		id := EventID(st.Recorded.ID)
		at := st.Recorded.RecordedAt
		messages = append(messages, []any{id, int64(st.Recorded.Position.Commit), int64(st.Recorded.Position.Prepare),
			typ, st.InvoiceID, at.UnixMicro(), string(std), string(woo)})
		for _, s := range subs {
			if !s.Wants(typ, at) {
				continue
			}
			deliver = append(deliver, []any{DeliveryID(s.ID, id, at), s.ID, id, typ, s.Format, at.UnixMicro(),
				StatusPending, 0, int64(0), int64(0), 0, "", 0})
		}
	}
	if err := projections.Upsert(ctx, tx, "webhook_messages", messageCols, []string{"event_id"}, messages, true); err != nil {
		return err
	}
	// DO NOTHING: an existing delivery keeps its state (a replay must not
	// re-arm what was already sent).
	return projections.Upsert(ctx, tx, "webhook_deliveries", deliveryCols, []string{"id"}, deliver, false)
}

// Dump implements projections.Dumper: the messages and the delivery keys.
// Delivery state is left out: it records what the sender did, which no
// replay can reproduce.
func (p *Projection) Dump(ctx context.Context, q sqlx.QueryerContext) (map[string]string, error) {
	out := map[string]string{}
	rows, err := q.QueryxContext(ctx, `SELECT event_id, commit_pos, prepare_pos, type, invoice_id, recorded_at, standard_body, woocommerce_body FROM webhook_messages`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var id, typ, inv, std, woo string
		var c, pp, at int64
		if err := rows.Scan(&id, &c, &pp, &typ, &inv, &at, &std, &woo); err != nil {
			rows.Close()
			return nil, err
		}
		out["message "+id] = fmt.Sprintf("%d/%d|%s|%s|%d|%s|%s", c, pp, typ, inv, at, std, woo)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	drows, err := q.QueryxContext(ctx, `SELECT id, endpoint_id, event_id, event_type, format, created_at FROM webhook_deliveries`)
	if err != nil {
		return nil, err
	}
	defer drows.Close()
	for drows.Next() {
		var id, ep, ev, typ, f string
		var at int64
		if err := drows.Scan(&id, &ep, &ev, &typ, &f, &at); err != nil {
			return nil, err
		}
		out["delivery "+id] = fmt.Sprintf("%s|%s|%s|%s|%d", ep, ev, typ, f, at)
	}
	return out, drows.Err()
}
