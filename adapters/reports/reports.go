package reports

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/payledger/payledger/adapters/problem"
	"github.com/payledger/payledger/domain/money"
	"github.com/payledger/payledger/projections/recon"
)

// Options configure the handler. Recon is required.
type Options struct {
	Recon *recon.Projection
	// Sync, if set, waits until the read models include everything
	// appended before the call (the store's head, projections.Set
	// WaitFor). Reports call it, bounded by SyncTimeout, so that a report
	// asked for right after a payment includes it; a timeout only means the
	// answer may lag.
	Sync        func(ctx context.Context) error
	SyncTimeout time.Duration // default 2 s
	Logger      *slog.Logger
}

// Handler serves the reconciliation routes.
type Handler struct {
	opt Options
	log *slog.Logger
}

// New builds the handler.
func New(opt Options) *Handler {
	if opt.SyncTimeout <= 0 {
		opt.SyncTimeout = 2 * time.Second
	}
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Handler{opt: opt, log: log}
}

// Routes registers the routes; pass it to httpapi.Server.Mount.
func (h *Handler) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/reconciliation/summary", h.summary)
	mux.HandleFunc("GET /v1/reconciliation/items", h.items)
}

func (h *Handler) sync(ctx context.Context) {
	if h.opt.Sync == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, h.opt.SyncTimeout)
	defer cancel()
	_ = h.opt.Sync(ctx)
}

type list[T any] struct {
	Object  string `json:"object"`
	Data    []T    `json:"data"`
	HasMore bool   `json:"has_more"`
}

type summaryList struct {
	list[recon.SummaryRow]
	Totals []recon.Total `json:"totals"`
}

func (h *Handler) summary(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var bad []problem.FieldError
	var f recon.SummaryFilter
	from, to, errs := parseRange(q.Get("from"), q.Get("to"))
	bad = append(bad, errs...)
	if !from.IsZero() {
		f.From = from.Format(time.DateOnly)
	}
	if !to.IsZero() {
		f.To = to.Add(-time.Microsecond).Format(time.DateOnly) // the last day with an instant before to
	}
	f.Currency, f.Provider = q.Get("currency"), q.Get("provider")
	bad = append(bad, checkCurrency(f.Currency)...)
	if len(bad) > 0 {
		problem.Write(w, problem.New(http.StatusBadRequest, "validation_failed", "invalid query parameters", bad...))
		return
	}
	h.sync(r.Context())
	rows, totals, err := h.opt.Recon.Summary(r.Context(), f)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if !wantsCSV(r.Header.Get("Accept")) {
		writeJSON(w, summaryList{list: list[recon.SummaryRow]{Object: "list", Data: rows}, Totals: totals})
		return
	}
	cw := startCSV(w, "reconciliation-summary.csv", summaryHeader)
	for _, row := range rows {
		_ = cw.Write(summaryRecord(row))
	}
	cw.Flush()
}

var summaryHeader = []string{"date", "currency", "provider", "invoiced", "paid", "refunded", "net", "invoice_count",
	"count_open", "count_paid", "count_partially_refunded", "count_refunded", "count_expired", "count_cancelled",
	"payment_count", "failed_payment_count", "refund_count", "flagged_count"}

func summaryRecord(r recon.SummaryRow) []string {
	n := func(v int64) string { return strconv.FormatInt(v, 10) }
	c := r.Counts
	return []string{r.Date, text(deref(r.Currency)), text(r.Provider), r.Invoiced, r.Paid, r.Refunded, r.Net, n(r.InvoiceCount),
		n(c.Open), n(c.Paid), n(c.PartiallyRefunded), n(c.Refunded), n(c.Expired), n(c.Cancelled),
		n(r.PaymentCount), n(r.FailedPaymentCount), n(r.RefundCount), n(r.FlaggedCount)}
}

var itemHeader = []string{"id", "type", "invoice_id", "invoice_number", "reference_id", "provider", "provider_reference",
	"gross", "currency", "status", "occurred_at", "flag", "flags"}

func itemRecord(it recon.Item) []string {
	num := ""
	if it.InvoiceNumber != nil {
		num = strconv.FormatInt(*it.InvoiceNumber, 10)
	}
	return []string{text(it.ID), it.Type, text(deref(it.InvoiceID)), num, text(deref(it.ReferenceID)), text(it.Provider),
		text(deref(it.ProviderReference)), deref(it.Gross), text(deref(it.Currency)), text(it.Status),
		it.OccurredAt.UTC().Format(time.RFC3339Nano), it.Flag, strings.Join(it.Flags, ";")}
}

var itemTypes = map[string]bool{recon.KindPayment: true, recon.KindRefund: true, recon.KindCallback: true}

func (h *Handler) items(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	csvOut := wantsCSV(r.Header.Get("Accept"))
	var bad []problem.FieldError
	var f recon.ItemFilter
	f.From, f.To, bad = parseRange(q.Get("from"), q.Get("to"))
	if f.Flag = q.Get("flag"); f.Flag != "" && !recon.KnownFlag(f.Flag) {
		bad = append(bad, problem.FieldError{Field: "flag", Message: "must be one of late_payment, duplicate_payment, amount_mismatch, currency_mismatch, unmatched_callback, provider_status_mismatch"})
	}
	if f.Type = q.Get("type"); f.Type != "" && !itemTypes[f.Type] {
		bad = append(bad, problem.FieldError{Field: "type", Message: "must be payment, refund or callback"})
	}
	f.Currency, f.Provider = q.Get("currency"), q.Get("provider")
	bad = append(bad, checkCurrency(f.Currency)...)
	if !csvOut {
		f.Limit = 20
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			bad = append(bad, problem.FieldError{Field: "limit", Message: "must be an integer from 1 to 100"})
		}
		f.Limit = n
	}
	f.StartingAfter, f.EndingBefore = q.Get("starting_after"), q.Get("ending_before")
	if f.StartingAfter != "" && f.EndingBefore != "" {
		bad = append(bad, problem.FieldError{Field: "ending_before", Message: "cannot be combined with starting_after"})
	}
	if len(bad) > 0 {
		problem.Write(w, problem.New(http.StatusBadRequest, "validation_failed", "invalid query parameters", bad...))
		return
	}
	h.sync(r.Context())
	if !csvOut {
		data, more, err := h.opt.Recon.Items(r.Context(), f)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		writeJSON(w, list[recon.Item]{Object: "list", Data: data, HasMore: more})
		return
	}
	// CSV streams: the header goes out with the first row, so that an
	// error found before any row (an unknown cursor) is still a problem.
	var cw *csv.Writer
	start := func() {
		if cw == nil {
			cw = startCSV(w, "reconciliation-items.csv", itemHeader)
		}
	}
	_, err := h.opt.Recon.EachItem(r.Context(), f, func(it recon.Item) error {
		start()
		return cw.Write(itemRecord(it))
	})
	if err != nil && cw == nil {
		h.fail(w, r, err)
		return
	}
	if err != nil {
		// Half a CSV must not pass for a whole one: abort the response.
		h.log.Error("reconciliation items export failed mid-stream", "err", err)
		panic(http.ErrAbortHandler)
	}
	start()
	cw.Flush()
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, recon.ErrUnknownCursor):
		field := "starting_after"
		if r.URL.Query().Get("ending_before") != "" {
			field = "ending_before"
		}
		problem.Respond(w, http.StatusBadRequest, "validation_failed", field+" names no reconciliation item",
			problem.FieldError{Field: field, Message: "no such item"})
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		problem.Respond(w, http.StatusServiceUnavailable, "timeout", "the report did not finish in time; retry")
	default:
		h.log.Error("reconciliation query failed", "path", r.URL.Path, "err", err)
		problem.Respond(w, http.StatusInternalServerError, "internal_error", "the server failed to build the report")
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		problem.Respond(w, http.StatusInternalServerError, "internal_error", "could not encode the response")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Vary", "Accept")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(append(b, '\n'))
}

func startCSV(w http.ResponseWriter, filename string, header []string) *csv.Writer {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+filename+`"`)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Vary", "Accept")
	w.WriteHeader(http.StatusOK)
	cw := csv.NewWriter(w)
	cw.UseCRLF = true // RFC 4180
	_ = cw.Write(header)
	return cw
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// text neutralises a cell a spreadsheet would run as a formula.
func text(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r', '\n':
		return "'" + s
	}
	return s
}

// wantsCSV reports whether the Accept header prefers text/csv to JSON: CSV
// must be named (a bare */* gets JSON) with a quality at least that of
// application/json.
func wantsCSV(accept string) bool {
	if accept == "" {
		return false
	}
	csvQ, jsonQ := -1.0, -1.0
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		q := 1.0
		if v, ok := params["q"]; ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f < 0 || f > 1 {
				continue
			}
			q = f
		}
		switch mt {
		case "text/csv":
			csvQ = max(csvQ, q)
		case "application/json":
			jsonQ = max(jsonQ, q)
		}
	}
	return csvQ > 0 && csvQ >= jsonQ
}

// parseRange reads from and to: a day, an RFC 3339 instant or unix
// seconds. A day as to means the end of that day. The result is the
// half-open range [from, to); zero times do not bound.
func parseRange(fromS, toS string) (from, to time.Time, bad []problem.FieldError) {
	const msg = "must be a day (YYYY-MM-DD), an RFC 3339 time or unix seconds"
	var err error
	if fromS != "" {
		if from, _, err = parseBound(fromS); err != nil {
			bad = append(bad, problem.FieldError{Field: "from", Message: msg})
		}
	}
	if toS != "" {
		var isDay bool
		if to, isDay, err = parseBound(toS); err != nil {
			bad = append(bad, problem.FieldError{Field: "to", Message: msg})
		} else if isDay {
			to = to.AddDate(0, 0, 1)
		}
	}
	if len(bad) == 0 && !from.IsZero() && !to.IsZero() && !from.Before(to) {
		bad = append(bad, problem.FieldError{Field: "to", Message: "must be after from"})
	}
	return from, to, bad
}

// Bounds outside these years are typing mistakes, and keeping them out
// keeps every bound representable in unix microseconds.
var (
	earliest = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	latest   = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)
)

func parseBound(s string) (time.Time, bool, error) {
	var (
		t     time.Time
		isDay bool
		err   error
	)
	if n, perr := strconv.ParseInt(s, 10, 64); perr == nil {
		if n < 0 || n > latest.Unix() {
			return time.Time{}, false, errors.New("out of range")
		}
		t = time.Unix(n, 0).UTC()
	} else if t, err = time.Parse(time.DateOnly, s); err == nil {
		isDay = true
	} else if t, err = time.Parse(time.RFC3339Nano, s); err != nil {
		return time.Time{}, false, err
	}
	t = t.UTC()
	if t.Before(earliest) || t.After(latest) {
		return time.Time{}, false, errors.New("out of range")
	}
	return t, isDay, nil
}

func checkCurrency(c string) []problem.FieldError {
	if c == "" {
		return nil
	}
	if _, err := money.LookupCurrency(c); err != nil {
		return []problem.FieldError{{Field: "currency", Message: "must be a supported currency code such as USD"}}
	}
	return nil
}
