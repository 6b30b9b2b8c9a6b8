package status

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/payledger/payledger/eventstore"
	"github.com/payledger/payledger/projections"
)

// Name is the projection's name (checkpoint key, CLI argument).
const Name = "status"

// ErrNotFound is returned by Get for an unknown invoice.
var ErrNotFound = errors.New("status: invoice not found")

// Projection is the status read model. Reads (Get, List) are safe for
// concurrent use; Apply is called by one runner.
type Projection struct {
	db     *sqlx.DB
	r      projections.StreamReader
	states *projections.States
}

// New returns the projection over db (the read-model database) that
// re-reads streams through r on a cache miss (the event store).
func New(r projections.StreamReader, db *sqlx.DB) *Projection {
	return &Projection{db: db, r: r, states: projections.NewStates(r)}
}

func (p *Projection) Name() string { return Name }

// Clone implements projections.Projection.
func (p *Projection) Clone() projections.Projection { return New(p.r, p.db) }

func (p *Projection) Migrate(ctx context.Context, tx *sqlx.Tx, _ projections.Dialect) error {
	return projections.ExecAll(ctx, tx,
		`CREATE TABLE IF NOT EXISTS status_invoices (
	id             TEXT PRIMARY KEY,
	number         BIGINT NOT NULL,
	status         TEXT NOT NULL,
	currency       TEXT NOT NULL,
	provider       TEXT NOT NULL,
	reference_id   TEXT NOT NULL,
	customer_email TEXT NOT NULL,
	created_at     BIGINT NOT NULL,
	version        BIGINT NOT NULL,
	object         TEXT NOT NULL
)`,
		`CREATE INDEX IF NOT EXISTS status_invoices_status ON status_invoices (status, id)`,
		`CREATE INDEX IF NOT EXISTS status_invoices_reference ON status_invoices (reference_id)`,
		`CREATE INDEX IF NOT EXISTS status_invoices_email ON status_invoices (customer_email)`,
		`CREATE INDEX IF NOT EXISTS status_invoices_created ON status_invoices (created_at)`,
		`CREATE TABLE IF NOT EXISTS status_invoice_metadata (
	invoice_id TEXT NOT NULL,
	md_key     TEXT NOT NULL,
	md_value   TEXT NOT NULL,
	PRIMARY KEY (invoice_id, md_key)
)`,
		`CREATE INDEX IF NOT EXISTS status_invoice_metadata_kv ON status_invoice_metadata (md_key, md_value)`,
	)
}

func (p *Projection) Reset(ctx context.Context, tx *sqlx.Tx) error {
	p.states.Reset()
	return projections.ExecAll(ctx, tx, `DELETE FROM status_invoices`, `DELETE FROM status_invoice_metadata`)
}

var invoiceCols = []string{"id", "number", "status", "currency", "provider", "reference_id", "customer_email", "created_at", "version", "object"}

func (p *Projection) Apply(ctx context.Context, tx *sqlx.Tx, batch []eventstore.RecordedEvent) error {
	order, final, steps, err := p.states.Latest(ctx, batch)
	if err != nil {
		return err
	}
	rows := make([][]any, 0, len(order))
	for _, id := range order {
		s := final[id]
		if !s.Exists() {
			continue
		}
		obj, err := json.Marshal(FromState(s))
		if err != nil {
			return err
		}
		rows = append(rows, []any{s.ID, s.Number, string(s.Status), s.Amount.Currency().Code, s.Provider,
			s.ReferenceID, strings.ToLower(s.Customer.Email), projections.Micros(s.CreatedAt), int64(s.Version), string(obj)})
	}
	var md [][]any
	for _, st := range steps {
		if st.Before.Exists() || !st.After.Exists() {
			continue // metadata is fixed at creation
		}
		keys := make([]string, 0, len(st.After.Metadata))
		for k := range st.After.Metadata {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			md = append(md, []any{st.InvoiceID, k, st.After.Metadata[k]})
		}
	}
	if err := projections.Upsert(ctx, tx, "status_invoices", invoiceCols, []string{"id"}, rows, true); err != nil {
		return err
	}
	return projections.Upsert(ctx, tx, "status_invoice_metadata", []string{"invoice_id", "md_key", "md_value"}, []string{"invoice_id", "md_key"}, md, true)
}

// Dump implements projections.Dumper.
func (p *Projection) Dump(ctx context.Context, q sqlx.QueryerContext) (map[string]string, error) {
	out := map[string]string{}
	rows, err := q.QueryxContext(ctx, `SELECT id, number, status, currency, provider, reference_id, customer_email, created_at, version, object FROM status_invoices`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var id, st, cur, prov, ref, email, obj string
		var num, created, ver int64
		if err := rows.Scan(&id, &num, &st, &cur, &prov, &ref, &email, &created, &ver, &obj); err != nil {
			rows.Close()
			return nil, err
		}
		out["invoice "+id] = fmt.Sprintf("%d|%s|%s|%s|%s|%s|%d|%d|%s", num, st, cur, prov, ref, email, created, ver, obj)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	mrows, err := q.QueryxContext(ctx, `SELECT invoice_id, md_key, md_value FROM status_invoice_metadata`)
	if err != nil {
		return nil, err
	}
	defer mrows.Close()
	for mrows.Next() {
		var id, k, v string
		if err := mrows.Scan(&id, &k, &v); err != nil {
			return nil, err
		}
		out["metadata "+id+"/"+k] = v
	}
	return out, mrows.Err()
}

// Get returns the invoice object, or ErrNotFound.
func (p *Projection) Get(ctx context.Context, id string) (Invoice, error) {
	var obj string
	err := p.db.QueryRowxContext(ctx, p.db.Rebind(`SELECT object FROM status_invoices WHERE id = ?`), id).Scan(&obj)
	if errors.Is(err, sql.ErrNoRows) {
		return Invoice{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return Invoice{}, fmt.Errorf("status: get %s: %w", id, err)
	}
	var inv Invoice
	if err := json.Unmarshal([]byte(obj), &inv); err != nil {
		return Invoice{}, fmt.Errorf("status: decode %s: %w", id, err)
	}
	return inv, nil
}

// Filter selects invoices for List. Zero fields do not filter.
type Filter struct {
	Status        string
	ReferenceID   string
	CustomerEmail string // compared case-insensitively
	Metadata      map[string]string
	CreatedGTE    time.Time
	CreatedLT     time.Time
	Limit         int    // 1–100, default 20
	StartingAfter string // invoice id: older than it
	EndingBefore  string // invoice id: newer than it
}

// List returns invoices newest first (ids are time-ordered) and whether
// more match beyond the page.
func (p *Projection) List(ctx context.Context, f Filter) ([]Invoice, bool, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 20
	}
	limit = min(limit, 100)
	var where []string
	var args []any
	add := func(cond string, a ...any) { where = append(where, cond); args = append(args, a...) }
	if f.Status != "" {
		add("status = ?", f.Status)
	}
	if f.ReferenceID != "" {
		add("reference_id = ?", f.ReferenceID)
	}
	if f.CustomerEmail != "" {
		add("customer_email = ?", strings.ToLower(f.CustomerEmail))
	}
	keys := make([]string, 0, len(f.Metadata))
	for k := range f.Metadata {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		add("EXISTS (SELECT 1 FROM status_invoice_metadata m WHERE m.invoice_id = status_invoices.id AND m.md_key = ? AND m.md_value = ?)", k, f.Metadata[k])
	}
	if !f.CreatedGTE.IsZero() {
		add("created_at >= ?", f.CreatedGTE.UnixMicro())
	}
	if !f.CreatedLT.IsZero() {
		add("created_at < ?", f.CreatedLT.UnixMicro())
	}
	asc := false
	switch {
	case f.StartingAfter != "":
		add("id < ?", f.StartingAfter)
	case f.EndingBefore != "":
		add("id > ?", f.EndingBefore)
		asc = true
	}
	q := "SELECT object FROM status_invoices"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	if asc {
		q += " ORDER BY id ASC"
	} else {
		q += " ORDER BY id DESC"
	}
	q += fmt.Sprintf(" LIMIT %d", limit+1)
	rows, err := p.db.QueryxContext(ctx, p.db.Rebind(q), args...)
	if err != nil {
		return nil, false, fmt.Errorf("status: list: %w", err)
	}
	defer rows.Close()
	out := []Invoice{}
	for rows.Next() {
		var obj string
		if err := rows.Scan(&obj); err != nil {
			return nil, false, err
		}
		var inv Invoice
		if err := json.Unmarshal([]byte(obj), &inv); err != nil {
			return nil, false, fmt.Errorf("status: decode: %w", err)
		}
		out = append(out, inv)
	}
	if err := rows.Err(); err != nil {
		return nil, false, err
	}
	more := len(out) > limit
	if more {
		out = out[:limit]
	}
	if asc {
		for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
			out[i], out[j] = out[j], out[i]
		}
	}
	return out, more, nil
}
