package scheduler

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/payledger/payledger/domain/invoice"
	"github.com/payledger/payledger/ledger"
	"github.com/payledger/payledger/projections/deadlines"
)

// Deadline is one pending expiry; LinkID empty means the invoice itself.
type Deadline struct {
	InvoiceID string
	LinkID    string
	At        time.Time
}

// Source lists the deadlines at or before now, earliest first.
type Source interface {
	Due(ctx context.Context, now time.Time, limit int) ([]Deadline, error)
}

// Nexter is optionally implemented by a Source that can tell the earliest
// pending deadline (ok false when there is none).
type Nexter interface {
	Next(ctx context.Context) (at time.Time, ok bool, err error)
}

type projectionSource struct{ p *deadlines.Projection }

// FromDeadlines adapts the deadlines projection to Source and Nexter.
func FromDeadlines(p *deadlines.Projection) Source { return projectionSource{p} }

func (s projectionSource) Due(ctx context.Context, now time.Time, limit int) ([]Deadline, error) {
	ds, err := s.p.Due(ctx, now, limit)
	out := make([]Deadline, len(ds))
	for i, d := range ds {
		out[i] = Deadline{InvoiceID: d.InvoiceID, LinkID: d.LinkID, At: d.At}
	}
	return out, err
}

func (s projectionSource) Next(ctx context.Context) (time.Time, bool, error) { return s.p.Next(ctx) }

// Options configure a Scheduler. Ledger and Source are required.
type Options struct {
	Ledger *ledger.Service // its clock is the scheduler's clock
	Source Source
	// Interval is the longest sleep between passes (default 5 s): it bounds
	// how late a deadline written by another process is noticed.
	Interval time.Duration
	// MinInterval is the shortest (default 200 ms): while the read model
	// has not yet caught up with expiries just written, the same deadlines
	// stay "due" and must not make the loop spin.
	MinInterval time.Duration
	// Batch is the number of deadlines handled per pass (default 100).
	Batch int
	// After is the timer (default time.After); tests inject their own.
	After  func(time.Duration) <-chan time.Time
	Logger *slog.Logger
}

// Scheduler expires what is due.
type Scheduler struct {
	opt  Options
	wake chan struct{}
}

// New builds a scheduler.
func New(opt Options) *Scheduler {
	if opt.Interval <= 0 {
		opt.Interval = 5 * time.Second
	}
	if opt.MinInterval <= 0 {
		opt.MinInterval = 200 * time.Millisecond
	}
	if opt.Batch <= 0 {
		opt.Batch = 100
	}
	if opt.After == nil {
		opt.After = time.After
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	return &Scheduler{opt: opt, wake: make(chan struct{}, 1)}
}

// Wake makes a running scheduler pass at once.
func (s *Scheduler) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Tick runs one pass: every due deadline (up to Batch) gets its command.
// It returns the number of commands that appended events. A deadline that
// fails is logged and retried on a later pass; the others still run.
func (s *Scheduler) Tick(ctx context.Context) (int, error) {
	svc := s.opt.Ledger
	due, err := s.opt.Source.Due(ctx, svc.Now(), s.opt.Batch)
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, d := range due {
		var cmd invoice.Command = invoice.Expire{}
		key := "expire:" + d.InvoiceID
		if d.LinkID != "" {
			cmd = invoice.ExpireLink{LinkID: d.LinkID}
			key = "expire-link:" + d.InvoiceID + ":" + d.LinkID
		}
		res, err := svc.Execute(ctx, d.InvoiceID, cmd, ledger.Idempotent(key))
		switch {
		case err == nil:
			if len(res.Events) > 0 && !res.Replayed {
				n++
			}
		case errors.Is(err, invoice.ErrNotDue), errors.Is(err, invoice.ErrLinkNotFound), errors.Is(err, invoice.ErrNotFound):
			// The read model and the stream disagree only transiently (or
			// the clocks of two processes differ): the stream decides.
		default:
			if ctx.Err() != nil {
				return n, ctx.Err()
			}
			s.opt.Logger.Error("scheduler: expire", "invoice", d.InvoiceID, "link", d.LinkID, "err", err)
			errs = append(errs, err)
		}
	}
	return n, errors.Join(errs...)
}

// Run passes until ctx is done.
func (s *Scheduler) Run(ctx context.Context) error {
	for {
		if _, err := s.Tick(ctx); err != nil && ctx.Err() == nil {
			s.opt.Logger.Error("scheduler: pass", "err", err)
		}
		wait := s.opt.Interval
		if nx, ok := s.opt.Source.(Nexter); ok {
			if at, ok, err := nx.Next(ctx); err == nil && ok {
				wait = min(wait, max(at.Sub(s.opt.Ledger.Now()), s.opt.MinInterval))
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.wake:
		case <-s.opt.After(wait):
		}
	}
}
