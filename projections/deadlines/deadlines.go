package deadlines

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/payledger/payledger/domain/invoice"
	"github.com/payledger/payledger/eventstore"
	"github.com/payledger/payledger/projections"
)

// Name is the projection's name.
const Name = "deadlines"

// Deadline is one pending expiry. LinkID is empty for the invoice's own.
type Deadline struct {
	InvoiceID string
	LinkID    string
	At        time.Time
}

// Projection is the deadlines list.
type Projection struct {
	db     *sqlx.DB
	r      projections.StreamReader
	states *projections.States
}

// New returns the projection; see status.New for the arguments.
func New(r projections.StreamReader, db *sqlx.DB) *Projection {
	return &Projection{db: db, r: r, states: projections.NewStates(r)}
}

func (p *Projection) Name() string                  { return Name }
func (p *Projection) Clone() projections.Projection { return New(p.r, p.db) }

func (p *Projection) Migrate(ctx context.Context, tx *sqlx.Tx, _ projections.Dialect) error {
	return projections.ExecAll(ctx, tx, `CREATE TABLE IF NOT EXISTS deadlines (
	invoice_id TEXT NOT NULL,
	link_id    TEXT NOT NULL,
	due_at     BIGINT NOT NULL,
	PRIMARY KEY (invoice_id, link_id)
)`, `CREATE INDEX IF NOT EXISTS deadlines_due ON deadlines (due_at)`)
}

func (p *Projection) Reset(ctx context.Context, tx *sqlx.Tx) error {
	p.states.Reset()
	return projections.ExecAll(ctx, tx, `DELETE FROM deadlines`)
}

// pending is what a state still waits for.
func pending(s invoice.State) []Deadline {
	if !s.Exists() || s.Status != invoice.StatusOpen {
		return nil
	}
	out := []Deadline{{InvoiceID: s.ID, At: s.ExpiresAt}}
	for _, l := range s.Links {
		if l.State == invoice.LinkStateActive {
			out = append(out, Deadline{InvoiceID: s.ID, LinkID: l.ID, At: l.ExpiresAt})
		}
	}
	return out
}

func (p *Projection) Apply(ctx context.Context, tx *sqlx.Tx, batch []eventstore.RecordedEvent) error {
	order, final, _, err := p.states.Latest(ctx, batch)
	if err != nil {
		return err
	}
	if err := projections.DeleteIn(ctx, tx, "deadlines", "invoice_id", order); err != nil {
		return err
	}
	var rows [][]any
	for _, id := range order {
		for _, d := range pending(final[id]) {
			rows = append(rows, []any{d.InvoiceID, d.LinkID, projections.Micros(d.At)})
		}
	}
	return projections.Upsert(ctx, tx, "deadlines", []string{"invoice_id", "link_id", "due_at"}, []string{"invoice_id", "link_id"}, rows, true)
}

// Dump implements projections.Dumper.
func (p *Projection) Dump(ctx context.Context, q sqlx.QueryerContext) (map[string]string, error) {
	rows, err := q.QueryxContext(ctx, `SELECT invoice_id, link_id, due_at FROM deadlines`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var inv, l string
		var at int64
		if err := rows.Scan(&inv, &l, &at); err != nil {
			return nil, err
		}
		out["deadline "+inv+"/"+l] = fmt.Sprint(at)
	}
	return out, rows.Err()
}

// Due returns up to limit deadlines at or before now, earliest first.
func (p *Projection) Due(ctx context.Context, now time.Time, limit int) ([]Deadline, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := p.db.QueryxContext(ctx, p.db.Rebind(fmt.Sprintf(
		`SELECT invoice_id, link_id, due_at FROM deadlines WHERE due_at <= ? ORDER BY due_at, invoice_id, link_id LIMIT %d`, limit)), now.UnixMicro())
	if err != nil {
		return nil, fmt.Errorf("deadlines: due: %w", err)
	}
	defer rows.Close()
	var out []Deadline
	for rows.Next() {
		var d Deadline
		var at int64
		if err := rows.Scan(&d.InvoiceID, &d.LinkID, &at); err != nil {
			return nil, err
		}
		d.At = time.UnixMicro(at).UTC()
		out = append(out, d)
	}
	return out, rows.Err()
}

// Next returns the earliest pending deadline (ok false when none), so a
// scheduler can sleep until it.
func (p *Projection) Next(ctx context.Context) (time.Time, bool, error) {
	var at *int64
	if err := p.db.QueryRowxContext(ctx, `SELECT MIN(due_at) FROM deadlines`).Scan(&at); err != nil {
		return time.Time{}, false, fmt.Errorf("deadlines: next: %w", err)
	}
	if at == nil {
		return time.Time{}, false, nil
	}
	return time.UnixMicro(*at).UTC(), true, nil
}
