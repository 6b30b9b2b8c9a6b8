package links

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/payledger/payledger/domain/invoice"
	"github.com/payledger/payledger/eventstore"
	"github.com/payledger/payledger/projections"
)

// Name is the projection's name.
const Name = "links"

// ErrNotFound is returned by Lookup for an unknown token hash.
var ErrNotFound = errors.New("links: unknown payment link")

// Link is one row of the index.
type Link struct {
	TokenHash string
	InvoiceID string
	LinkID    string
	ExpiresAt time.Time
	State     invoice.LinkState
}

// Projection is the link index.
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
	return projections.ExecAll(ctx, tx, `CREATE TABLE IF NOT EXISTS payment_links (
	token_hash  TEXT PRIMARY KEY,
	invoice_id  TEXT NOT NULL,
	link_id     TEXT NOT NULL,
	expires_at  BIGINT NOT NULL,
	state       TEXT NOT NULL
)`)
}

func (p *Projection) Reset(ctx context.Context, tx *sqlx.Tx) error {
	p.states.Reset()
	return projections.ExecAll(ctx, tx, `DELETE FROM payment_links`)
}

func (p *Projection) Apply(ctx context.Context, tx *sqlx.Tx, batch []eventstore.RecordedEvent) error {
	order, final, steps, err := p.states.Latest(ctx, batch)
	if err != nil {
		return err
	}
	touched := map[string]bool{}
	for _, st := range steps {
		switch st.Event.(type) {
		case invoice.LinkIssued, invoice.LinkConsumed, invoice.LinkExpired:
			touched[st.InvoiceID] = true
		}
	}
	var rows [][]any
	for _, id := range order {
		if !touched[id] {
			continue
		}
		for _, l := range final[id].Links {
			rows = append(rows, []any{l.TokenHash, id, l.ID, projections.Micros(l.ExpiresAt), string(l.State)})
		}
	}
	return projections.Upsert(ctx, tx, "payment_links", []string{"token_hash", "invoice_id", "link_id", "expires_at", "state"}, []string{"token_hash"}, rows, true)
}

// Dump implements projections.Dumper.
func (p *Projection) Dump(ctx context.Context, q sqlx.QueryerContext) (map[string]string, error) {
	rows, err := q.QueryxContext(ctx, `SELECT token_hash, invoice_id, link_id, expires_at, state FROM payment_links`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var h, inv, l, st string
		var exp int64
		if err := rows.Scan(&h, &inv, &l, &exp, &st); err != nil {
			return nil, err
		}
		out["link "+h] = fmt.Sprintf("%s|%s|%d|%s", inv, l, exp, st)
	}
	return out, rows.Err()
}

// Lookup finds the link whose token hashes to tokenHash (hex SHA-256).
func (p *Projection) Lookup(ctx context.Context, tokenHash string) (Link, error) {
	l := Link{TokenHash: tokenHash}
	var exp int64
	var st string
	err := p.db.QueryRowxContext(ctx, p.db.Rebind(`SELECT invoice_id, link_id, expires_at, state FROM payment_links WHERE token_hash = ?`), tokenHash).
		Scan(&l.InvoiceID, &l.LinkID, &exp, &st)
	if errors.Is(err, sql.ErrNoRows) {
		return Link{}, ErrNotFound
	}
	if err != nil {
		return Link{}, fmt.Errorf("links: lookup: %w", err)
	}
	l.ExpiresAt = time.UnixMicro(exp).UTC()
	l.State = invoice.LinkState(st)
	return l, nil
}
