package recon

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/payledger/payledger/domain/invoice"
)

// Flags are the reconciliation flags an item can carry, in the order the
// API documents them.
var Flags = []invoice.Flag{
	invoice.FlagLatePayment, invoice.FlagDuplicatePayment, invoice.FlagAmountMismatch,
	invoice.FlagCurrencyMismatch, invoice.FlagUnmatchedCallback, invoice.FlagProviderStatusMismatch,
}

// KnownFlag reports whether f is one of Flags.
func KnownFlag(f string) bool {
	for _, x := range Flags {
		if string(x) == f {
			return true
		}
	}
	return false
}

// ErrUnknownCursor is returned when starting_after / ending_before names
// no item.
var ErrUnknownCursor = errors.New("recon: cursor names no reconciliation item")

// Item is one row of GET /v1/reconciliation/items. Fields that are unknown
// for the row (an unmatched callback has no invoice, amount or currency)
// are null.
type Item struct {
	ID                string    `json:"id"`
	Object            string    `json:"object"` // "reconciliation_item"
	Type              string    `json:"type"`   // payment, refund or callback
	InvoiceID         *string   `json:"invoice_id"`
	InvoiceNumber     *int64    `json:"invoice_number"`
	ReferenceID       *string   `json:"reference_id"`
	Provider          string    `json:"provider"`
	ProviderReference *string   `json:"provider_reference"`
	Gross             *string   `json:"gross"`
	Currency          *string   `json:"currency"`
	Status            string    `json:"status"`
	OccurredAt        time.Time `json:"occurred_at"`
	// Flag is the first flag raised on the item, "" if none; Flags lists
	// all of them in the order they were raised (a late payment in the
	// wrong currency carries two).
	Flag  string   `json:"flag"`
	Flags []string `json:"flags"`
}

func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func (r itemRow) item() Item {
	it := Item{
		ID: r.ID, Object: "reconciliation_item", Type: r.Kind,
		InvoiceID: strPtr(r.InvoiceID), ReferenceID: strPtr(r.ReferenceID),
		Provider: r.Provider, ProviderReference: strPtr(r.ProviderRef),
		Gross: strPtr(r.Gross), Currency: strPtr(r.Currency), Status: r.Status,
		OccurredAt: time.UnixMicro(r.OccurredAt).UTC(), Flags: decodeFlags(r.Flags),
	}
	if r.InvoiceID != "" {
		n := r.Number
		it.InvoiceNumber = &n
	}
	if len(it.Flags) > 0 {
		it.Flag = it.Flags[0]
	}
	return it
}

// ItemFilter selects items. Zero fields do not filter.
type ItemFilter struct {
	Flag     string // items carrying this flag (any position)
	Type     string // payment, refund or callback
	Currency string
	Provider string
	From     time.Time // occurred_at >= From
	To       time.Time // occurred_at < To
	// Limit is the page size; 0 means every matching item (CSV export).
	Limit         int
	StartingAfter string // item id: older than it
	EndingBefore  string // item id: newer than it
}

// Items returns items newest first (by occurred_at, then id) and whether
// more match beyond the page.
func (p *Projection) Items(ctx context.Context, f ItemFilter) ([]Item, bool, error) {
	out := []Item{}
	more, err := p.EachItem(ctx, f, func(it Item) error { out = append(out, it); return nil })
	return out, more, err
}

// EachItem calls fn for each item Items would return, in the same order,
// without holding them all (a CSV export of a year streams).
func (p *Projection) EachItem(ctx context.Context, f ItemFilter, fn func(Item) error) (bool, error) {
	var where []string
	var args []any
	add := func(cond string, a ...any) { where = append(where, cond); args = append(args, a...) }
	if f.Flag != "" {
		add("flags LIKE ?", "%,"+f.Flag+",%")
	}
	if f.Type != "" {
		add("kind = ?", f.Type)
	}
	if f.Currency != "" {
		add("currency = ?", strings.ToUpper(f.Currency))
	}
	if f.Provider != "" {
		add("provider = ?", f.Provider)
	}
	if !f.From.IsZero() {
		add("occurred_at >= ?", f.From.UnixMicro())
	}
	if !f.To.IsZero() {
		add("occurred_at < ?", f.To.UnixMicro())
	}
	asc := false
	for _, c := range []struct {
		id string
		op string
	}{{f.StartingAfter, "<"}, {f.EndingBefore, ">"}} {
		if c.id == "" {
			continue
		}
		var at int64
		var id, inv string
		err := p.db.QueryRowxContext(ctx, p.db.Rebind(`SELECT occurred_at, id, invoice_id FROM recon_items WHERE id = ? ORDER BY invoice_id LIMIT 1`), c.id).Scan(&at, &id, &inv)
		if errors.Is(err, sql.ErrNoRows) {
			return false, fmt.Errorf("%w: %s", ErrUnknownCursor, c.id)
		}
		if err != nil {
			return false, fmt.Errorf("recon: cursor %s: %w", c.id, err)
		}
		add("(occurred_at, id, invoice_id) "+c.op+" (?, ?, ?)", at, id, inv)
		asc = c.op == ">"
		break
	}
	q := "SELECT invoice_id, id, kind, invoice_number, reference_id, provider, provider_ref, gross, currency, status, occurred_at, flags FROM recon_items"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	if asc {
		q += " ORDER BY occurred_at ASC, id ASC, invoice_id ASC"
	} else {
		q += " ORDER BY occurred_at DESC, id DESC, invoice_id DESC"
	}
	if f.Limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", f.Limit+1)
	}
	rows, err := p.db.QueryxContext(ctx, p.db.Rebind(q), args...)
	if err != nil {
		return false, fmt.Errorf("recon: items: %w", err)
	}
	defer rows.Close()
	var buf []Item // ascending pages are reversed before fn sees them
	n := 0
	more := false
	for rows.Next() {
		var r itemRow
		if err := rows.Scan(&r.InvoiceID, &r.ID, &r.Kind, &r.Number, &r.ReferenceID, &r.Provider, &r.ProviderRef, &r.Gross, &r.Currency, &r.Status, &r.OccurredAt, &r.Flags); err != nil {
			return false, err
		}
		if f.Limit > 0 && n == f.Limit {
			more = true
			break
		}
		n++
		if asc {
			buf = append(buf, r.item())
			continue
		}
		if err := fn(r.item()); err != nil {
			return false, err
		}
	}
	if err := rows.Err(); err != nil {
		return false, err
	}
	for i := len(buf) - 1; i >= 0; i-- {
		if err := fn(buf[i]); err != nil {
			return false, err
		}
	}
	return more, nil
}

// StatusCounts are invoices by current status.
type StatusCounts struct {
	Open              int64 `json:"open"`
	Paid              int64 `json:"paid"`
	PartiallyRefunded int64 `json:"partially_refunded"`
	Refunded          int64 `json:"refunded"`
	Expired           int64 `json:"expired"`
	Cancelled         int64 `json:"cancelled"`
}

// Figures are the totals of one summary row (or of a currency over the
// whole selection). Amounts are exact decimals at the currency's
// exponent; net is paid minus refunded and may be negative on a day that
// refunds more than it takes.
type Figures struct {
	Invoiced           string       `json:"invoiced"`
	Paid               string       `json:"paid"`
	Refunded           string       `json:"refunded"`
	Net                string       `json:"net"`
	InvoiceCount       int64        `json:"invoice_count"`
	Counts             StatusCounts `json:"counts"`
	PaymentCount       int64        `json:"payment_count"`
	FailedPaymentCount int64        `json:"failed_payment_count"`
	RefundCount        int64        `json:"refund_count"`
	FlaggedCount       int64        `json:"flagged_count"`
}

func (f *figures) public(currency string) Figures {
	exp := exponent(currency)
	return Figures{
		Invoiced: f.invoiced.StringFixed(exp), Paid: f.paid.StringFixed(exp),
		Refunded: f.refunded.StringFixed(exp), Net: f.paid.Sub(f.refunded).StringFixed(exp),
		InvoiceCount: f.invoices,
		Counts: StatusCounts{
			Open: f.byStatus[0], Paid: f.byStatus[1], PartiallyRefunded: f.byStatus[2],
			Refunded: f.byStatus[3], Expired: f.byStatus[4], Cancelled: f.byStatus[5],
		},
		PaymentCount: f.payments, FailedPaymentCount: f.failed, RefundCount: f.refunds, FlaggedCount: f.flagged,
	}
}

// SummaryRow is one row of GET /v1/reconciliation/summary: one UTC day,
// currency and provider. Currency is null on the row counting unmatched
// callbacks, whose currency is unknown.
type SummaryRow struct {
	Object   string  `json:"object"` // "reconciliation_summary"
	Date     string  `json:"date"`   // YYYY-MM-DD, UTC
	Currency *string `json:"currency"`
	Provider string  `json:"provider"`
	Figures
}

// Total is the sum of the selected rows of one currency (all days and
// providers).
type Total struct {
	Currency *string `json:"currency"`
	Figures
}

// SummaryFilter selects summary rows. Zero fields do not filter.
type SummaryFilter struct {
	From     string // first day, YYYY-MM-DD, inclusive
	To       string // last day, YYYY-MM-DD, inclusive
	Currency string
	Provider string
}

// Summary returns the selected rows newest day first (then by currency
// and provider) and the totals per currency over them.
func (p *Projection) Summary(ctx context.Context, f SummaryFilter) ([]SummaryRow, []Total, error) {
	var where []string
	var args []any
	add := func(cond string, a ...any) { where = append(where, cond); args = append(args, a...) }
	if f.From != "" {
		add("day >= ?", f.From)
	}
	if f.To != "" {
		add("day <= ?", f.To)
	}
	if f.Currency != "" {
		add("currency = ?", strings.ToUpper(f.Currency))
	}
	if f.Provider != "" {
		add("provider = ?", f.Provider)
	}
	q := sumSelect
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY day DESC, currency ASC, provider ASC"
	rows, err := p.db.QueryxContext(ctx, p.db.Rebind(q), args...)
	if err != nil {
		return nil, nil, fmt.Errorf("recon: summary: %w", err)
	}
	defer rows.Close()
	out := []SummaryRow{}
	totals := map[string]*figures{}
	for rows.Next() {
		k, fg, err := scanSum(rows)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, SummaryRow{Object: "reconciliation_summary", Date: k.day, Currency: strPtr(k.currency), Provider: k.provider, Figures: fg.public(k.currency)})
		t := totals[k.currency]
		if t == nil {
			t = &figures{invoiced: decimal.Zero, paid: decimal.Zero, refunded: decimal.Zero}
			totals[k.currency] = t
		}
		t.add(&fg)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	curs := make([]string, 0, len(totals))
	for c := range totals {
		curs = append(curs, c)
	}
	sort.Strings(curs)
	tot := make([]Total, 0, len(curs))
	for _, c := range curs {
		tot = append(tot, Total{Currency: strPtr(c), Figures: totals[c].public(c)})
	}
	return out, tot, nil
}
