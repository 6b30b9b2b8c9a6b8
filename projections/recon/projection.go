package recon

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/shopspring/decimal"

	"github.com/payledger/payledger/domain/invoice"
	"github.com/payledger/payledger/domain/money"
	"github.com/payledger/payledger/eventstore"
	"github.com/payledger/payledger/projections"
)

// Name is the projection's name (checkpoint key, CLI argument).
const Name = "reconciliation"

// Item kinds.
const (
	KindPayment  = "payment"
	KindRefund   = "refund"
	KindCallback = "callback"
)

// Projection is the reconciliation read model. Reads are safe for
// concurrent use; Apply is called by one runner.
type Projection struct {
	db     *sqlx.DB
	r      projections.StreamReader
	states *projections.States
}

// New returns the projection over db (the read-model database) that
// re-reads invoice streams through r on a cache miss (the event store).
func New(r projections.StreamReader, db *sqlx.DB) *Projection {
	return &Projection{db: db, r: r, states: projections.NewStates(r)}
}

func (p *Projection) Name() string { return Name }

// Clone implements projections.Projection.
func (p *Projection) Clone() projections.Projection { return New(p.r, p.db) }

func (p *Projection) Migrate(ctx context.Context, tx *sqlx.Tx, _ projections.Dialect) error {
	return projections.ExecAll(ctx, tx,
		`CREATE TABLE IF NOT EXISTS recon_items (
	invoice_id     TEXT NOT NULL,
	id             TEXT NOT NULL,
	kind           TEXT NOT NULL,
	invoice_number BIGINT NOT NULL,
	reference_id   TEXT NOT NULL,
	provider       TEXT NOT NULL,
	provider_ref   TEXT NOT NULL,
	gross          TEXT NOT NULL,
	currency       TEXT NOT NULL,
	status         TEXT NOT NULL,
	occurred_at    BIGINT NOT NULL,
	flags          TEXT NOT NULL,
	PRIMARY KEY (invoice_id, id)
)`,
		`CREATE INDEX IF NOT EXISTS recon_items_time ON recon_items (occurred_at, id, invoice_id)`,
		`CREATE INDEX IF NOT EXISTS recon_items_id ON recon_items (id)`,
		`CREATE TABLE IF NOT EXISTS recon_summary (
	day                  TEXT NOT NULL,
	currency             TEXT NOT NULL,
	provider             TEXT NOT NULL,
	invoiced             TEXT NOT NULL,
	paid                 TEXT NOT NULL,
	refunded             TEXT NOT NULL,
	invoices             BIGINT NOT NULL,
	n_open               BIGINT NOT NULL,
	n_paid               BIGINT NOT NULL,
	n_partially_refunded BIGINT NOT NULL,
	n_refunded           BIGINT NOT NULL,
	n_expired            BIGINT NOT NULL,
	n_cancelled          BIGINT NOT NULL,
	payments             BIGINT NOT NULL,
	failed_payments      BIGINT NOT NULL,
	refunds              BIGINT NOT NULL,
	flagged              BIGINT NOT NULL,
	PRIMARY KEY (day, currency, provider)
)`,
	)
}

func (p *Projection) Reset(ctx context.Context, tx *sqlx.Tx) error {
	p.states.Reset()
	return projections.ExecAll(ctx, tx, `DELETE FROM recon_items`, `DELETE FROM recon_summary`)
}

// itemRow is one recon_items row.
type itemRow struct {
	InvoiceID   string
	ID          string
	Kind        string
	Number      int64
	ReferenceID string
	Provider    string
	ProviderRef string
	Gross       string // "" when unknown (callbacks)
	Currency    string // "" when unknown (callbacks)
	Status      string
	OccurredAt  int64
	Flags       string // ",late_payment,currency_mismatch," or ""
}

var itemCols = []string{"invoice_id", "id", "kind", "invoice_number", "reference_id", "provider", "provider_ref", "gross", "currency", "status", "occurred_at", "flags"}

func (r *itemRow) values() []any {
	return []any{r.InvoiceID, r.ID, r.Kind, r.Number, r.ReferenceID, r.Provider, r.ProviderRef, r.Gross, r.Currency, r.Status, r.OccurredAt, r.Flags}
}

type itemKey struct{ invoice, id string }

// encodeFlags stores flags with surrounding commas so that one LIKE
// '%,flag,%' matches in both dialects.
func encodeFlags(fs []invoice.Flag) string {
	if len(fs) == 0 {
		return ""
	}
	parts := make([]string, len(fs))
	for i, f := range fs {
		parts[i] = string(f)
	}
	return "," + strings.Join(parts, ",") + ","
}

func decodeFlags(s string) []string {
	s = strings.Trim(s, ",")
	if s == "" {
		return []string{}
	}
	return strings.Split(s, ",")
}

// sumKey is one recon_summary row.
type sumKey struct{ day, currency, provider string }

// figures are the additive columns of a summary row; a batch accumulates
// deltas in them and adds them to the stored row.
type figures struct {
	invoiced, paid, refunded decimal.Decimal
	invoices                 int64
	byStatus                 [6]int64 // in statusOrder
	payments, failed         int64
	refunds, flagged         int64
}

var statusOrder = [6]invoice.Status{
	invoice.StatusOpen, invoice.StatusPaid, invoice.StatusPartiallyRefunded,
	invoice.StatusRefunded, invoice.StatusExpired, invoice.StatusCancelled,
}

func statusIndex(s invoice.Status) int {
	for i, x := range statusOrder {
		if x == s {
			return i
		}
	}
	return -1
}

func (f *figures) add(o *figures) {
	f.invoiced = f.invoiced.Add(o.invoiced)
	f.paid = f.paid.Add(o.paid)
	f.refunded = f.refunded.Add(o.refunded)
	f.invoices += o.invoices
	for i := range f.byStatus {
		f.byStatus[i] += o.byStatus[i]
	}
	f.payments += o.payments
	f.failed += o.failed
	f.refunds += o.refunds
	f.flagged += o.flagged
}

func (f *figures) count(s invoice.Status, n int64) {
	if i := statusIndex(s); i >= 0 {
		f.byStatus[i] += n
	}
}

// exponent is the currency's number of decimals; 0 for the empty currency
// of unmatched callbacks (their figures are all zero).
func exponent(code string) int32 {
	if c, err := money.LookupCurrency(code); err == nil {
		return c.Exponent
	}
	return 0
}

// amount reads a stored decimal; a malformed one (a hand-edited history)
// counts as zero, as in invoice.Evolve.
func amount(s string) decimal.Decimal {
	d, err := decimal.NewFromString(s)
	if err != nil {
		return decimal.Zero
	}
	return d
}

func day(t time.Time) string { return t.UTC().Format(time.DateOnly) }

// batch is what one Apply accumulates before writing.
type batch struct {
	items     map[itemKey]*itemRow
	itemOrder []itemKey
	flagsOnly map[itemKey]string // flag changes of rows written by an earlier batch
	flagOrder []itemKey
	sums      map[sumKey]*figures
}

func (b *batch) put(r *itemRow) {
	k := itemKey{r.InvoiceID, r.ID}
	if _, seen := b.items[k]; !seen {
		b.itemOrder = append(b.itemOrder, k)
	}
	b.items[k] = r
	delete(b.flagsOnly, k)
}

func (b *batch) setFlags(k itemKey, flags string) {
	if r, ok := b.items[k]; ok {
		r.Flags = flags
		return
	}
	if _, seen := b.flagsOnly[k]; !seen {
		b.flagOrder = append(b.flagOrder, k)
	}
	b.flagsOnly[k] = flags
}

func (b *batch) sum(d, currency, provider string) *figures {
	k := sumKey{d, currency, provider}
	f := b.sums[k]
	if f == nil {
		f = &figures{}
		b.sums[k] = f
	}
	return f
}

func findPayment(s invoice.State, id string) (invoice.Payment, bool) {
	for _, p := range s.Payments {
		if p.ID == id {
			return p, true
		}
	}
	return invoice.Payment{}, false
}

// paymentRow renders payment pay of invoice s as it stands after an event
// at t that set its status. An attempt that moved no money carries the
// invoice's amount and currency: what the payer was asked for.
func paymentRow(s invoice.State, pay invoice.Payment, t time.Time) *itemRow {
	gross, cur := pay.Amount, pay.Currency
	if pay.Status != invoice.PaymentStatusProcessed || cur == "" {
		gross, cur = s.Amount.String(), s.Amount.Currency().Code
	}
	return &itemRow{
		InvoiceID: s.ID, ID: pay.ID, Kind: KindPayment, Number: s.Number, ReferenceID: s.ReferenceID,
		Provider: pay.Provider, ProviderRef: pay.ProviderRef, Gross: gross, Currency: cur,
		Status: string(pay.Status), OccurredAt: projections.Micros(t), Flags: encodeFlags(pay.Flags),
	}
}

// paymentCurrency is the currency a payment's figures count in.
func paymentCurrency(s invoice.State, pay invoice.Payment) string {
	if pay.Status == invoice.PaymentStatusProcessed && pay.Currency != "" {
		return pay.Currency
	}
	return s.Amount.Currency().Code
}

// refundProvider is the provider that returns a refund's money: the one of
// the latest processed payment in the invoice's currency, else the
// invoice's.
func refundProvider(s invoice.State) string {
	for i := len(s.Payments) - 1; i >= 0; i-- {
		p := s.Payments[i]
		if p.Status == invoice.PaymentStatusProcessed && p.Currency == s.Amount.Currency().Code && p.Provider != "" {
			return p.Provider
		}
	}
	return s.Provider
}

// PublicEventID renders a stored event id (a UUID) as the API's evt_ id.
func PublicEventID(storeID string) string { return "evt_" + strings.ReplaceAll(storeID, "-", "") }

func (p *Projection) Apply(ctx context.Context, tx *sqlx.Tx, events []eventstore.RecordedEvent) error {
	b := &batch{items: map[itemKey]*itemRow{}, flagsOnly: map[itemKey]string{}, sums: map[sumKey]*figures{}}
	for _, e := range events {
		st, ok, err := p.states.Next(ctx, e)
		if err != nil {
			return err
		}
		if !ok {
			unmatched(b, e)
			continue
		}
		step(b, st)
	}
	rows := make([][]any, 0, len(b.itemOrder))
	for _, k := range b.itemOrder {
		rows = append(rows, b.items[k].values())
	}
	if err := projections.Upsert(ctx, tx, "recon_items", itemCols, []string{"invoice_id", "id"}, rows, true); err != nil {
		return err
	}
	for _, k := range b.flagOrder {
		if err := projections.Exec(ctx, tx, tx.Rebind(`UPDATE recon_items SET flags = ? WHERE invoice_id = ? AND id = ?`), b.flagsOnly[k], k.invoice, k.id); err != nil {
			return fmt.Errorf("recon: flag %s/%s: %w", k.invoice, k.id, err)
		}
	}
	return p.addSums(ctx, tx, b.sums)
}

// unmatched records a provider callback kept outside any invoice stream.
// Other non-invoice events are not reconciliation's concern.
func unmatched(b *batch, e eventstore.RecordedEvent) {
	if e.Type != invoice.TypeCallbackReceived {
		return
	}
	var cb invoice.CallbackReceived
	if ev, err := invoice.Decode(e.Type, e.Data); err == nil {
		cb = ev.(invoice.CallbackReceived)
	} else {
		// A callback we cannot read is still money someone may be
		// waiting for: list it rather than stall the read model on it.
		// The stream name ("callback-<provider>-<ref>") still says whose.
		if rest, ok := strings.CutPrefix(e.Stream, "callback-"); ok {
			cb.Provider, cb.ProviderRef, _ = strings.Cut(rest, "-")
		}
	}
	at := cb.At
	if at.IsZero() {
		at = e.RecordedAt
	}
	status := cb.Status
	if status == "" {
		status = "received"
	}
	b.put(&itemRow{
		ID: PublicEventID(e.ID), Kind: KindCallback, Provider: cb.Provider, ProviderRef: cb.ProviderRef,
		Status: status, OccurredAt: projections.Micros(at), Flags: encodeFlags([]invoice.Flag{invoice.FlagUnmatchedCallback}),
	})
	b.sum(day(at), "", cb.Provider).flagged++
}

// step turns one invoice event into item rows and summary deltas.
func step(b *batch, st projections.Step) {
	before, after := st.Before, st.After
	if after.Exists() {
		inv := b.sum(day(after.CreatedAt), after.Amount.Currency().Code, after.Provider)
		switch {
		case !before.Exists():
			inv.invoiced = inv.invoiced.Add(after.Amount.Amount())
			inv.invoices++
			inv.count(after.Status, 1)
		case before.Status != after.Status:
			inv.count(before.Status, -1)
			inv.count(after.Status, 1)
		}
	}
	switch ev := st.Event.(type) {
	case invoice.PaymentInitiated:
		if pay, ok := findPayment(after, ev.PaymentID); ok {
			b.put(paymentRow(after, pay, ev.At))
		}
	case invoice.ActionRequired:
		if pay, ok := findPayment(after, ev.PaymentID); ok {
			b.put(paymentRow(after, pay, ev.At))
		}
	case invoice.PaymentFailed:
		if pay, ok := findPayment(after, ev.PaymentID); ok {
			b.put(paymentRow(after, pay, ev.At))
			b.sum(day(ev.At), paymentCurrency(after, pay), pay.Provider).failed++
		}
	case invoice.PaymentProcessed:
		if pay, ok := findPayment(after, ev.PaymentID); ok {
			b.put(paymentRow(after, pay, ev.At))
			f := b.sum(day(ev.At), ev.Currency, ev.Provider)
			f.paid = f.paid.Add(amount(ev.Amount))
			f.payments++
		}
	case invoice.Flagged:
		pay, ok := findPayment(after, ev.PaymentID)
		if !ok {
			return
		}
		b.setFlags(itemKey{after.ID, pay.ID}, encodeFlags(pay.Flags))
		if prev, _ := findPayment(before, ev.PaymentID); len(prev.Flags) == 0 {
			b.sum(day(ev.At), paymentCurrency(after, pay), pay.Provider).flagged++
		}
	case invoice.Refunded:
		prov := refundProvider(before)
		b.put(&itemRow{
			InvoiceID: after.ID, ID: ev.RefundID, Kind: KindRefund, Number: after.Number, ReferenceID: after.ReferenceID,
			Provider: prov, Gross: ev.Amount, Currency: ev.Currency, Status: "succeeded", OccurredAt: projections.Micros(ev.At),
		})
		f := b.sum(day(ev.At), ev.Currency, prov)
		f.refunded = f.refunded.Add(amount(ev.Amount))
		f.refunds++
	}
}

var sumCols = []string{"day", "currency", "provider", "invoiced", "paid", "refunded", "invoices",
	"n_open", "n_paid", "n_partially_refunded", "n_refunded", "n_expired", "n_cancelled",
	"payments", "failed_payments", "refunds", "flagged"}

const sumSelect = `SELECT day, currency, provider, invoiced, paid, refunded, invoices,
	n_open, n_paid, n_partially_refunded, n_refunded, n_expired, n_cancelled,
	payments, failed_payments, refunds, flagged FROM recon_summary`

type scanner interface{ Scan(dest ...any) error }

func scanSum(s scanner) (sumKey, figures, error) {
	var (
		k                  sumKey
		f                  figures
		inv, paid, refunds string
	)
	err := s.Scan(&k.day, &k.currency, &k.provider, &inv, &paid, &refunds, &f.invoices,
		&f.byStatus[0], &f.byStatus[1], &f.byStatus[2], &f.byStatus[3], &f.byStatus[4], &f.byStatus[5],
		&f.payments, &f.failed, &f.refunds, &f.flagged)
	f.invoiced, f.paid, f.refunded = amount(inv), amount(paid), amount(refunds)
	return k, f, err
}

// addSums adds the batch's deltas to the stored rows: read the touched
// days' rows, add in Go with exact decimals, write back.
func (p *Projection) addSums(ctx context.Context, tx *sqlx.Tx, sums map[sumKey]*figures) error {
	if len(sums) == 0 {
		return nil
	}
	days := map[string]bool{}
	for k := range sums {
		days[k.day] = true
	}
	dayList := make([]string, 0, len(days))
	for d := range days {
		dayList = append(dayList, d)
	}
	sort.Strings(dayList)
	q, args, err := sqlx.In(sumSelect+` WHERE day IN (?)`, dayList)
	if err != nil {
		return err
	}
	rows, err := tx.QueryContext(ctx, tx.Rebind(q), args...)
	if err != nil {
		return fmt.Errorf("recon: read summary: %w", err)
	}
	for rows.Next() {
		k, f, err := scanSum(rows)
		if err != nil {
			rows.Close()
			return err
		}
		if d, ok := sums[k]; ok {
			d.add(&f)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	keys := make([]sumKey, 0, len(sums))
	for k := range sums {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.day != b.day {
			return a.day < b.day
		}
		if a.currency != b.currency {
			return a.currency < b.currency
		}
		return a.provider < b.provider
	})
	out := make([][]any, 0, len(keys))
	for _, k := range keys {
		f := sums[k]
		exp := exponent(k.currency)
		out = append(out, []any{k.day, k.currency, k.provider,
			f.invoiced.StringFixed(exp), f.paid.StringFixed(exp), f.refunded.StringFixed(exp), f.invoices,
			f.byStatus[0], f.byStatus[1], f.byStatus[2], f.byStatus[3], f.byStatus[4], f.byStatus[5],
			f.payments, f.failed, f.refunds, f.flagged})
	}
	return projections.Upsert(ctx, tx, "recon_summary", sumCols, []string{"day", "currency", "provider"}, out, true)
}

// Dump implements projections.Dumper.
func (p *Projection) Dump(ctx context.Context, q sqlx.QueryerContext) (map[string]string, error) {
	out := map[string]string{}
	rows, err := q.QueryxContext(ctx, `SELECT invoice_id, id, kind, invoice_number, reference_id, provider, provider_ref, gross, currency, status, occurred_at, flags FROM recon_items`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var r itemRow
		if err := rows.Scan(&r.InvoiceID, &r.ID, &r.Kind, &r.Number, &r.ReferenceID, &r.Provider, &r.ProviderRef, &r.Gross, &r.Currency, &r.Status, &r.OccurredAt, &r.Flags); err != nil {
			rows.Close()
			return nil, err
		}
		out["item "+r.InvoiceID+"/"+r.ID] = fmt.Sprintf("%s|%d|%s|%s|%s|%s|%s|%s|%d|%s", r.Kind, r.Number, r.ReferenceID, r.Provider, r.ProviderRef, r.Gross, r.Currency, r.Status, r.OccurredAt, r.Flags)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	srows, err := q.QueryxContext(ctx, sumSelect)
	if err != nil {
		return nil, err
	}
	defer srows.Close()
	for srows.Next() {
		var (
			k                  sumKey
			f                  [11]int64
			inv, paid, refunds string
		)
		if err := srows.Scan(&k.day, &k.currency, &k.provider, &inv, &paid, &refunds, &f[0], &f[1], &f[2], &f[3], &f[4], &f[5], &f[6], &f[7], &f[8], &f[9], &f[10]); err != nil {
			return nil, err
		}
		out["summary "+k.day+"/"+k.currency+"/"+k.provider] = fmt.Sprintf("%s|%s|%s|%v", inv, paid, refunds, f)
	}
	return out, srows.Err()
}
