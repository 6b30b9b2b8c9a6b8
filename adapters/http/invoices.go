package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/payledger/payledger/adapters/idempotency"
	"github.com/payledger/payledger/adapters/problem"
	"github.com/payledger/payledger/domain/invoice"
	"github.com/payledger/payledger/eventstore"
	"github.com/payledger/payledger/ledger"
	"github.com/payledger/payledger/projections/status"
)

// InvoiceLister is the read model behind GET /v1/invoices (the status
// projection).
type InvoiceLister interface {
	List(ctx context.Context, f status.Filter) ([]status.Invoice, bool, error)
}

func (s *Server) routes(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/invoices", s.createInvoice)
	mux.HandleFunc("GET /v1/invoices", s.listInvoices)
	mux.HandleFunc("GET /v1/invoices/{id}", s.getInvoice)
	mux.HandleFunc("POST /v1/invoices/{id}/cancel", s.cancelInvoice)
	mux.HandleFunc("GET /v1/invoices/{id}/events", s.invoiceEvents)
	mux.HandleFunc("POST /v1/invoices/{id}/payment_links", s.issueLink)
	mux.HandleFunc("POST /v1/refunds", s.createRefund)
	mux.HandleFunc("GET /v1/events", s.listEvents)
	mux.HandleFunc("GET /v1/openapi.yaml", s.serveOpenAPI)
}

type createInvoiceBody struct {
	Amount      string             `json:"amount"`
	Currency    string             `json:"currency"`
	ReferenceID string             `json:"reference_id"`
	Description string             `json:"description"`
	Customer    invoice.Customer   `json:"customer"`
	Metadata    map[string]string  `json:"metadata"`
	Provider    string             `json:"provider"`
	ExpiresAt   string             `json:"expires_at"`
	ReturnURLs  invoice.ReturnURLs `json:"return_urls"`
}

func (s *Server) createInvoice(w http.ResponseWriter, r *http.Request) {
	var b createInvoiceBody
	if p := decode(r, &b, false); p != nil {
		problem.Write(w, p)
		return
	}
	req := ledger.InvoiceRequest{
		Amount: b.Amount, Currency: b.Currency, ReferenceID: b.ReferenceID,
		Description: b.Description, Customer: b.Customer, Metadata: b.Metadata,
		Provider: b.Provider, ReturnURLs: b.ReturnURLs,
	}
	if b.ExpiresAt != "" {
		t, err := time.Parse(time.RFC3339, b.ExpiresAt)
		if err != nil {
			problem.Respond(w, http.StatusBadRequest, "validation_failed", "expires_at must be an RFC 3339 time such as 2026-11-22T10:00:00Z",
				problem.FieldError{Field: "expires_at", Message: "must be an RFC 3339 time such as 2026-11-22T10:00:00Z"})
			return
		}
		req.ExpiresAt = t
		if t.IsZero() {
			// The zero instant would read as "no expiry given" below; it is
			// an absurd time and gets the same refusal as any past one.
			req.ExpiresAt = time.Unix(0, 0).UTC()
		}
	}
	res, err := s.opt.Invoices.Create(r.Context(), req, idempotency.FromContext(r.Context()))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.wrote(r, res.Position)
	code := http.StatusCreated
	if res.Existing {
		code = http.StatusOK
	}
	w.Header().Set("Location", "/v1/invoices/"+res.State.ID)
	writeJSON(w, code, status.FromState(res.State))
}

func (s *Server) getInvoice(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var (
		st  invoice.State
		err error
	)
	if asOf := r.URL.Query().Get("as_of"); asOf != "" {
		t, perr := time.Parse(time.RFC3339Nano, asOf)
		if perr != nil {
			problem.Respond(w, http.StatusBadRequest, "validation_failed", "as_of must be an RFC 3339 time",
				problem.FieldError{Field: "as_of", Message: "must be an RFC 3339 time such as 2026-11-22T10:00:00Z"})
			return
		}
		st, err = s.opt.Invoices.Service().LoadAt(r.Context(), id, t)
	} else {
		// Read the aggregate, not the projection: a client always sees its
		// own last write.
		st, err = s.opt.Invoices.Service().Load(r.Context(), id)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, status.FromState(st))
}

type listBody[T any] struct {
	Object  string `json:"object"`
	Data    []T    `json:"data"`
	HasMore bool   `json:"has_more"`
}

func (s *Server) listInvoices(w http.ResponseWriter, r *http.Request) {
	if s.opt.Lister == nil {
		problem.Respond(w, http.StatusServiceUnavailable, "unavailable", "the invoice list is not available yet")
		return
	}
	f, p := parseFilter(r)
	if p != nil {
		problem.Write(w, p)
		return
	}
	s.awaitOwnWrites(r)
	data, more, err := s.opt.Lister.List(r.Context(), f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if data == nil {
		data = []status.Invoice{}
	}
	writeJSON(w, http.StatusOK, listBody[status.Invoice]{Object: "list", Data: data, HasMore: more})
}

var statuses = map[string]bool{
	string(invoice.StatusOpen): true, string(invoice.StatusPaid): true, string(invoice.StatusExpired): true,
	string(invoice.StatusCancelled): true, string(invoice.StatusPartiallyRefunded): true, string(invoice.StatusRefunded): true,
}

func parseFilter(r *http.Request) (status.Filter, *problem.Problem) {
	q := r.URL.Query()
	var f status.Filter
	var bad []problem.FieldError
	f.Status = q.Get("status")
	if f.Status != "" && !statuses[f.Status] {
		bad = append(bad, problem.FieldError{Field: "status", Message: "must be one of open, paid, expired, cancelled, partially_refunded, refunded"})
	}
	f.ReferenceID = q.Get("reference_id")
	f.CustomerEmail = q.Get("customer_email")
	for k, v := range q {
		if name, ok := strings.CutPrefix(k, "metadata["); ok && strings.HasSuffix(name, "]") {
			if f.Metadata == nil {
				f.Metadata = map[string]string{}
			}
			f.Metadata[strings.TrimSuffix(name, "]")] = v[0]
		}
	}
	for _, c := range []struct {
		name string
		dst  *time.Time
	}{{"created_gte", &f.CreatedGTE}, {"created_lt", &f.CreatedLT}} {
		if v := q.Get(c.name); v != "" {
			t, err := parseTime(v)
			if err != nil {
				bad = append(bad, problem.FieldError{Field: c.name, Message: "must be an RFC 3339 time or unix seconds"})
			}
			*c.dst = t
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			bad = append(bad, problem.FieldError{Field: "limit", Message: "must be an integer from 1 to 100"})
		}
		f.Limit = n
	}
	f.StartingAfter = q.Get("starting_after")
	f.EndingBefore = q.Get("ending_before")
	if f.StartingAfter != "" && f.EndingBefore != "" {
		bad = append(bad, problem.FieldError{Field: "ending_before", Message: "cannot be combined with starting_after"})
	}
	if len(bad) > 0 {
		return f, problem.New(http.StatusBadRequest, "validation_failed", "invalid query parameters", bad...)
	}
	return f, nil
}

func parseTime(v string) (time.Time, error) {
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Unix(n, 0).UTC(), nil
	}
	return time.Parse(time.RFC3339Nano, v)
}

type cancelBody struct {
	Reason string `json:"reason"`
}

func (s *Server) cancelInvoice(w http.ResponseWriter, r *http.Request) {
	var b cancelBody
	if p := decode(r, &b, true); p != nil {
		problem.Write(w, p)
		return
	}
	if len(b.Reason) > 500 {
		problem.Respond(w, http.StatusBadRequest, "validation_failed", "reason is too long",
			problem.FieldError{Field: "reason", Message: "must be at most 500 characters"})
		return
	}
	res, err := s.opt.Invoices.Service().Execute(r.Context(), r.PathValue("id"), invoice.Cancel{Reason: b.Reason}, s.commandOpts(r)...)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.wrote(r, res.Position)
	writeJSON(w, http.StatusOK, status.FromState(res.State))
}

// Event is one entry of GET /v1/invoices/{id}/events.
type Event struct {
	ID         string          `json:"id"`
	Object     string          `json:"object"`
	Sequence   uint64          `json:"sequence"`
	Type       string          `json:"type"`
	OccurredAt time.Time       `json:"occurred_at"`
	Data       json.RawMessage `json:"data"`
	Hash       string          `json:"hash"`
}

func (s *Server) invoiceEvents(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	recs, evs, err := s.opt.Invoices.Service().History(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if len(recs) == 0 {
		s.fail(w, r, fmt.Errorf("%w: %s", invoice.ErrNotFound, id))
		return
	}
	out := make([]Event, len(recs))
	for i, rec := range recs {
		out[i] = eventOf(rec, evs[i])
	}
	writeJSON(w, http.StatusOK, listBody[Event]{Object: "list", Data: out})
}

type linkBody struct {
	TTLSeconds *int64 `json:"ttl_seconds"`
}

// PaymentLink is the response of POST /v1/invoices/{id}/payment_links.
type PaymentLink struct {
	ID        string    `json:"id"`
	Object    string    `json:"object"`
	InvoiceID string    `json:"invoice_id"`
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expires_at"`
}

func (s *Server) issueLink(w http.ResponseWriter, r *http.Request) {
	var b linkBody
	if p := decode(r, &b, true); p != nil {
		problem.Write(w, p)
		return
	}
	var ttl time.Duration
	if b.TTLSeconds != nil {
		pol := s.opt.Invoices.Policy()
		if *b.TTLSeconds <= 0 || *b.TTLSeconds > int64(pol.LinkTTLMax/time.Second) {
			s.fail(w, r, ledger.ValidationErrors{{Field: "ttl_seconds", Message: fmt.Sprintf("must be between %d and %d seconds",
				int(pol.LinkTTLMin/time.Second), int(pol.LinkTTLMax/time.Second))}})
			return
		}
		ttl = time.Duration(*b.TTLSeconds) * time.Second
	}
	link, err := s.opt.Invoices.IssueLink(r.Context(), r.PathValue("id"), ttl)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.wrote(r, link.Result.Position)
	writeJSON(w, http.StatusCreated, PaymentLink{
		ID: link.ID, Object: "payment_link", InvoiceID: link.InvoiceID,
		URL: s.opt.PublicURL + "/pay/" + link.Token, ExpiresAt: link.ExpiresAt,
	})
}

type refundBody struct {
	InvoiceID string `json:"invoice_id"`
	Amount    string `json:"amount"`
	Reason    string `json:"reason"`
}

func (s *Server) createRefund(w http.ResponseWriter, r *http.Request) {
	var b refundBody
	if p := decode(r, &b, false); p != nil {
		problem.Write(w, p)
		return
	}
	res, err := s.opt.Invoices.Refund(r.Context(), ledger.RefundRequest{InvoiceID: b.InvoiceID, Amount: b.Amount, Reason: b.Reason},
		idempotency.FromContext(r.Context()))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.wrote(r, res.Result.Position)
	writeJSON(w, http.StatusCreated, status.RefundFromRecord(b.InvoiceID, res.Refund))
}

// commandOpts passes the request's scoped idempotency key to the ledger so
// that a retry after a crash re-derives the first run's result.
func (s *Server) commandOpts(r *http.Request) []ledger.Option {
	if k := idempotency.FromContext(r.Context()); k != "" {
		return []ledger.Option{ledger.Idempotent(k)}
	}
	return nil
}

// lastWrites remembers, per API key, the position of its latest write, so
// that its next list request can wait for the projection to include it.
type lastWrites struct {
	mu  sync.Mutex
	pos map[string]eventstore.Position
}

func (s *Server) wrote(r *http.Request, pos eventstore.Position) {
	if pos == (eventstore.Position{}) {
		return
	}
	key := scopeOf(r)
	s.last.mu.Lock()
	if s.last.pos == nil {
		s.last.pos = map[string]eventstore.Position{}
	}
	if s.last.pos[key].Less(pos) {
		s.last.pos[key] = pos
	}
	s.last.mu.Unlock()
}

// readYourWritesWait bounds how long a list waits for the projection.
const readYourWritesWait = 2 * time.Second

func (s *Server) awaitOwnWrites(r *http.Request) {
	if s.opt.WaitFor == nil {
		return
	}
	s.last.mu.Lock()
	pos, ok := s.last.pos[scopeOf(r)]
	s.last.mu.Unlock()
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), readYourWritesWait)
	defer cancel()
	// A timeout only means the list may lag; it is still answered.
	_ = s.opt.WaitFor(ctx, pos)
}
