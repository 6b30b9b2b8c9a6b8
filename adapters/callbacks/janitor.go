package callbacks

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/payledger/payledger/adapters/provider"
	"github.com/payledger/payledger/domain/invoice"
	"github.com/payledger/payledger/eventstore"
	"github.com/payledger/payledger/ledger"
	"github.com/payledger/payledger/projections"
)

// PaymentsName is the name of the payments index projection.
const PaymentsName = "provider_payments"

// Payments is the janitor's index: one row per payment of an invoice with
// its provider, provider reference and status, kept from the events. It is
// a projection like any other (rebuildable from the log); beside it the
// janitor keeps its own table of what it checked and when to look again,
// which is not derived from events and survives a rebuild.
type Payments struct {
	b projections.Backend
}

// NewPayments builds the index over the store's database.
func NewPayments(b projections.Backend) *Payments { return &Payments{b: b} }

// Name implements projections.Projection.
func (p *Payments) Name() string { return PaymentsName }

// Clone implements projections.Projection.
func (p *Payments) Clone() projections.Projection { return NewPayments(p.b) }

// Migrate implements projections.Projection.
func (p *Payments) Migrate(ctx context.Context, tx *sqlx.Tx, _ projections.Dialect) error {
	return projections.ExecAll(ctx, tx,
		`CREATE TABLE IF NOT EXISTS provider_payments (
	invoice_id   TEXT NOT NULL,
	payment_id   TEXT NOT NULL,
	provider     TEXT NOT NULL,
	provider_ref TEXT NOT NULL,
	status       TEXT NOT NULL,
	started_at   BIGINT NOT NULL,
	updated_at   BIGINT NOT NULL,
	PRIMARY KEY (invoice_id, payment_id)
)`,
		`CREATE INDEX IF NOT EXISTS provider_payments_started ON provider_payments (started_at)`,
		`CREATE TABLE IF NOT EXISTS provider_payment_checks (
	invoice_id TEXT NOT NULL,
	payment_id TEXT NOT NULL,
	confirmed  TEXT NOT NULL,
	tries      INTEGER NOT NULL,
	next_at    BIGINT NOT NULL,
	PRIMARY KEY (invoice_id, payment_id)
)`,
	)
}

// Reset implements projections.Projection. The checks table stays: it
// records conversations with providers, not events.
func (p *Payments) Reset(ctx context.Context, tx *sqlx.Tx) error {
	return projections.ExecAll(ctx, tx, `DELETE FROM provider_payments`)
}

// Apply implements projections.Projection.
func (p *Payments) Apply(ctx context.Context, tx *sqlx.Tx, batch []eventstore.RecordedEvent) error {
	upsert := tx.Rebind(`INSERT INTO provider_payments (invoice_id, payment_id, provider, provider_ref, status, started_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (invoice_id, payment_id) DO UPDATE SET provider = excluded.provider, provider_ref = excluded.provider_ref,
status = excluded.status, updated_at = excluded.updated_at`)
	action := tx.Rebind(`UPDATE provider_payments SET status = ?, updated_at = ? WHERE invoice_id = ? AND payment_id = ? AND status = ?`)
	for _, rec := range batch {
		invID, ok := ledger.InvoiceIDFromStream(rec.Stream)
		if !ok {
			continue
		}
		switch rec.Type {
		case invoice.TypePaymentInitiated, invoice.TypeActionRequired, invoice.TypePaymentProcessed, invoice.TypePaymentFailed:
		default:
			continue
		}
		e, err := invoice.Decode(rec.Type, rec.Data)
		if err != nil {
			return fmt.Errorf("%s v%d: %w", rec.Stream, rec.StreamVersion, err)
		}
		var args []any
		q := upsert
		switch e := e.(type) {
		case invoice.PaymentInitiated:
			args = []any{invID, e.PaymentID, e.Provider, e.ProviderRef, string(invoice.PaymentStatusInitiated), projections.Micros(e.At), projections.Micros(e.At)}
		case invoice.ActionRequired:
			q = action
			args = []any{string(invoice.PaymentStatusActionRequired), projections.Micros(e.At), invID, e.PaymentID, string(invoice.PaymentStatusInitiated)}
		case invoice.PaymentProcessed:
			args = []any{invID, e.PaymentID, e.Provider, e.ProviderRef, string(invoice.PaymentStatusProcessed), projections.Micros(e.At), projections.Micros(e.At)}
		case invoice.PaymentFailed:
			args = []any{invID, e.PaymentID, e.Provider, e.ProviderRef, string(invoice.PaymentStatusFailed), projections.Micros(e.At), projections.Micros(e.At)}
		}
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("provider_payments: %w", err)
		}
	}
	return nil
}

// Due is a payment the janitor should ask its provider about.
type Due struct {
	InvoiceID   string `db:"invoice_id"`
	PaymentID   string `db:"payment_id"`
	Provider    string `db:"provider"`
	ProviderRef string `db:"provider_ref"`
	Status      string `db:"status"`
	Tries       int    `db:"tries"`
}

// Due lists, oldest first, up to limit payments of the given providers
// that started in [since, settleBefore] and are either still unsettled, or
// settled (before settleBefore) without the janitor having confirmed that
// status yet; each only once its next check time (if any) has come.
func (p *Payments) Due(ctx context.Context, providers []string, since, settleBefore, now time.Time, limit int) ([]Due, error) {
	if len(providers) == 0 {
		return nil, nil
	}
	db := p.b.DB()
	q := `SELECT p.invoice_id, p.payment_id, p.provider, p.provider_ref, p.status, COALESCE(c.tries, 0) AS tries
FROM provider_payments p LEFT JOIN provider_payment_checks c ON c.invoice_id = p.invoice_id AND c.payment_id = p.payment_id
WHERE p.provider IN (?` + strings.Repeat(", ?", len(providers)-1) + `)
AND p.provider_ref <> '' AND p.started_at >= ? AND COALESCE(c.next_at, 0) <= ?
AND ((p.status IN ('initiated', 'action_required') AND p.started_at <= ?)
  OR (p.status IN ('processed', 'failed') AND p.updated_at <= ? AND COALESCE(c.confirmed, '') <> p.status))
ORDER BY p.updated_at LIMIT ?`
	args := make([]any, 0, len(providers)+5)
	for _, name := range providers {
		args = append(args, name)
	}
	args = append(args, since.UnixMicro(), now.UnixMicro(), settleBefore.UnixMicro(), settleBefore.UnixMicro(), limit)
	var out []Due
	if err := sqlx.SelectContext(ctx, db, &out, db.Rebind(q), args...); err != nil {
		return nil, fmt.Errorf("provider_payments: due: %w", err)
	}
	return out, nil
}

// mark records a check: the status confirmed with the provider (empty:
// none yet), the number of tries and when to look again.
func (p *Payments) mark(ctx context.Context, d Due, confirmed string, tries int, next time.Time) error {
	return p.b.WriteTx(ctx, func(tx *sqlx.Tx) error {
		_, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO provider_payment_checks (invoice_id, payment_id, confirmed, tries, next_at) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (invoice_id, payment_id) DO UPDATE SET confirmed = excluded.confirmed, tries = excluded.tries, next_at = excluded.next_at`),
			d.InvoiceID, d.PaymentID, confirmed, tries, next.UnixMicro())
		return err
	})
}

// JanitorOptions configure the reconciliation poller.
type JanitorOptions struct {
	// After is how old an unsettled payment (or a settlement not yet
	// confirmed by a status query) must be before the provider is asked
	// (default 15 min: callbacks normally arrive well before).
	After time.Duration
	// Interval is the pause between sweeps and the first back-off step
	// (default 1 min).
	Interval time.Duration
	// MaxAge stops the questions about payments started longer ago
	// (default 72 h: WZRDPAY invoices live 2 days at most).
	MaxAge time.Duration
	// Batch bounds the payments looked at per sweep (default 100).
	Batch int
}

// Janitor re-queries payments the providers have gone quiet about.
type Janitor struct {
	s   *Service
	idx *Payments
	opt JanitorOptions
}

// Janitor builds the poller over the index.
func (s *Service) Janitor(idx *Payments, opt JanitorOptions) *Janitor {
	if opt.After <= 0 {
		opt.After = 15 * time.Minute
	}
	if opt.Interval <= 0 {
		opt.Interval = time.Minute
	}
	if opt.MaxAge <= 0 {
		opt.MaxAge = 72 * time.Hour
	}
	if opt.Batch <= 0 {
		opt.Batch = 100
	}
	return &Janitor{s: s, idx: idx, opt: opt}
}

// Report counts what a sweep did.
type Report struct {
	Checked, Settled, Flagged, Pending, Errors int
}

// Run sweeps every Interval until ctx ends.
func (j *Janitor) Run(ctx context.Context) error {
	t := time.NewTicker(j.opt.Interval)
	defer t.Stop()
	for {
		if rep, err := j.Sweep(ctx); err != nil && ctx.Err() == nil {
			j.s.opt.Logger.Error("callbacks: janitor sweep", "err", err)
		} else if rep.Settled+rep.Flagged+rep.Errors > 0 {
			j.s.opt.Logger.Info("callbacks: janitor sweep", "checked", rep.Checked, "settled", rep.Settled, "flagged", rep.Flagged, "errors", rep.Errors)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// backoff is the wait before asking again after tries unsuccessful or
// inconclusive questions: Interval doubling up to an hour.
func (j *Janitor) backoff(tries int) time.Duration {
	d := float64(j.opt.Interval) * math.Pow(2, float64(min(tries, 20)))
	return time.Duration(min(d, float64(time.Hour)))
}

// Sweep asks the providers about every due payment once.
func (j *Janitor) Sweep(ctx context.Context) (Report, error) {
	var rep Report
	now := j.s.opt.Ledger.Now()
	due, err := j.idx.Due(ctx, j.s.names, now.Add(-j.opt.MaxAge), now.Add(-j.opt.After), now, j.opt.Batch)
	if err != nil {
		return rep, err
	}
	for _, d := range due {
		if ctx.Err() != nil {
			return rep, ctx.Err()
		}
		rep.Checked++
		if err := j.check(ctx, d, now, &rep); err != nil {
			rep.Errors++
			j.s.opt.Logger.Warn("callbacks: janitor", "invoice", d.InvoiceID, "payment", d.PaymentID, "err", err)
			if merr := j.idx.mark(ctx, d, "", d.Tries+1, now.Add(j.backoff(d.Tries+1))); merr != nil {
				return rep, merr
			}
		}
	}
	return rep, nil
}

// never is the next-check time of a payment nobody should ask about again.
var never = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

func (j *Janitor) check(ctx context.Context, d Due, now time.Time, rep *Report) error {
	a, ok := j.s.adapters[d.Provider]
	if !ok {
		return fmt.Errorf("%w: %s", provider.ErrDisabled, d.Provider)
	}
	sctx, cancel := context.WithTimeout(ctx, j.s.opt.StatusTimeout)
	p, err := a.Status(sctx, d.ProviderRef)
	cancel()
	if errors.Is(err, provider.ErrNotFound) {
		// The provider denies the payment we recorded: a contradiction for
		// a human; asking again will not change the answer.
		res, ferr := j.s.opt.Ledger.Execute(ctx, d.InvoiceID, invoice.RecordMismatch{
			PaymentID: d.PaymentID, Detail: fmt.Sprintf("%s does not know %s, which the ledger has %s", d.Provider, d.ProviderRef, d.Status),
		})
		if ferr != nil {
			return ferr
		}
		if len(res.Events) > 0 {
			rep.Flagged++
		}
		return j.idx.mark(ctx, d, d.Status, d.Tries+1, never)
	}
	if err != nil {
		return err
	}
	if p.Ref == "" {
		p.Ref = d.ProviderRef
	}
	res, err := j.s.apply(ctx, d.Provider, d.InvoiceID, d.PaymentID, p, true)
	if err != nil {
		return err
	}
	if res.settled {
		rep.Settled++
	}
	if res.flagged {
		rep.Flagged++
	}
	if res.status == invoice.PaymentStatusProcessed || res.status == invoice.PaymentStatusFailed {
		return j.idx.mark(ctx, d, string(res.status), 0, time.Time{})
	}
	rep.Pending++
	return j.idx.mark(ctx, d, "", d.Tries+1, now.Add(j.backoff(d.Tries)))
}
