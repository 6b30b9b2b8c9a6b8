package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/payledger/payledger/adapters/problem"
	"github.com/payledger/payledger/projections/outbox"
)

// APIOptions configure the endpoints API. DB and Endpoints are required.
type APIOptions struct {
	DB        Database
	Endpoints *Store
	// Guard validates endpoint URLs.
	Guard Guard
	// Wake tells the sender a delivery was re-queued (may be nil).
	Wake func()
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger receives unexpected failures; nil discards.
	Logger *slog.Logger
}

// API serves /v1/webhook_endpoints and /v1/webhook_deliveries. The server
// in front of it authenticates, checks scopes and handles Idempotency-Key.
type API struct{ o APIOptions }

// NewAPI returns the endpoints API.
func NewAPI(o APIOptions) *API {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Wake == nil {
		o.Wake = func() {}
	}
	return &API{o: o}
}

// Routes registers the API on mux.
func (a *API) Routes(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/webhook_endpoints", a.create)
	mux.HandleFunc("GET /v1/webhook_endpoints", a.list)
	mux.HandleFunc("GET /v1/webhook_endpoints/{id}", a.get)
	mux.HandleFunc("DELETE /v1/webhook_endpoints/{id}", a.delete)
	mux.HandleFunc("GET /v1/webhook_endpoints/{id}/deliveries", a.deliveries)
	mux.HandleFunc("GET /v1/webhook_deliveries/{id}", a.delivery)
	mux.HandleFunc("POST /v1/webhook_deliveries/{id}/retry", a.retry)
}

// EndpointObject is the public webhook endpoint. Secret is only filled in
// the creation response: it is shown once.
type EndpointObject struct {
	ID             string    `json:"id"`
	Object         string    `json:"object"`
	URL            string    `json:"url"`
	Events         []string  `json:"events"`
	Format         string    `json:"format"`
	Status         string    `json:"status"`
	DisabledReason *string   `json:"disabled_reason"`
	Secret         string    `json:"secret,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
}

func endpointObject(e Endpoint) EndpointObject {
	o := EndpointObject{ID: e.ID, Object: "webhook_endpoint", URL: e.URL, Events: e.Events, Format: e.Format,
		Status: e.Status, CreatedAt: e.CreatedAt}
	if e.DisabledReason != "" {
		r := e.DisabledReason
		o.DisabledReason = &r
	}
	return o
}

// DeliveryObject is one event's delivery to one endpoint, with every
// attempt made, oldest first.
type DeliveryObject struct {
	ID             string          `json:"id"`
	Object         string          `json:"object"`
	EndpointID     string          `json:"endpoint_id"`
	EventID        string          `json:"event_id"`
	EventType      string          `json:"event_type"`
	Status         string          `json:"status"`
	AttemptCount   int             `json:"attempt_count"`
	NextAttemptAt  *time.Time      `json:"next_attempt_at"`
	LastAttemptAt  *time.Time      `json:"last_attempt_at"`
	LastStatusCode *int            `json:"last_status_code"`
	CreatedAt      time.Time       `json:"created_at"`
	Attempts       []AttemptObject `json:"attempts"`
}

// AttemptObject is one logged attempt.
type AttemptObject struct {
	Attempt         int       `json:"attempt"`
	Manual          bool      `json:"manual"`
	StartedAt       time.Time `json:"started_at"`
	DurationMS      float64   `json:"duration_ms"`
	StatusCode      *int      `json:"status_code"`
	Error           string    `json:"error,omitempty"`
	ResponseExcerpt string    `json:"response_excerpt"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func deliveryObject(d outbox.Delivery) DeliveryObject {
	o := DeliveryObject{ID: d.ID, Object: "webhook_delivery", EndpointID: d.EndpointID, EventID: d.EventID, EventType: d.EventType,
		Status: d.Status, AttemptCount: d.AttemptCount, NextAttemptAt: timePtr(d.NextAttemptAt),
		LastAttemptAt: timePtr(d.LastAttemptAt), CreatedAt: d.CreatedAt, Attempts: make([]AttemptObject, len(d.Attempts))}
	if d.LastStatusCode != 0 {
		c := d.LastStatusCode
		o.LastStatusCode = &c
	}
	for i, at := range d.Attempts {
		ao := AttemptObject{Attempt: at.Attempt, Manual: at.Manual, StartedAt: at.StartedAt,
			DurationMS: float64(at.Duration.Microseconds()) / 1000, Error: at.Error, ResponseExcerpt: at.Excerpt}
		if at.StatusCode != 0 {
			c := at.StatusCode
			ao.StatusCode = &c
		}
		o.Attempts[i] = ao
	}
	return o
}

type listBody[T any] struct {
	Object  string `json:"object"`
	Data    []T    `json:"data"`
	HasMore bool   `json:"has_more"`
}

type createBody struct {
	URL    string   `json:"url"`
	Events []string `json:"events"`
	Format string   `json:"format"`
}

func (a *API) create(w http.ResponseWriter, r *http.Request) {
	var b createBody
	if p := decodeStrict(r, &b); p != nil {
		problem.Write(w, p)
		return
	}
	var fields []problem.FieldError
	b.URL = strings.TrimSpace(b.URL)
	if b.URL == "" {
		fields = append(fields, problem.FieldError{Field: "url", Message: "is required"})
	} else if err := a.o.Guard.CheckURL(r.Context(), b.URL); err != nil {
		var ue *URLError
		msg := "is not allowed"
		if errors.As(err, &ue) {
			msg = ue.Reason
		}
		fields = append(fields, problem.FieldError{Field: "url", Message: msg})
	}
	switch b.Format {
	case "":
		b.Format = outbox.FormatStandard
	case outbox.FormatStandard, outbox.FormatWooCommerce:
	default:
		fields = append(fields, problem.FieldError{Field: "format", Message: `must be "standard" or "woocommerce"`})
	}
	events, evFields := normaliseEvents(b.Events)
	fields = append(fields, evFields...)
	if len(fields) > 0 {
		detail := "the request has invalid fields"
		if len(fields) == 1 {
			detail = fields[0].Field + " " + fields[0].Message
		}
		problem.Respond(w, http.StatusBadRequest, "validation_failed", detail, fields...)
		return
	}
	e, err := a.o.Endpoints.Create(r.Context(), NewEndpoint{URL: b.URL, Format: b.Format, Events: events})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	obj := endpointObject(e)
	obj.Secret = e.Secret
	writeJSON(w, http.StatusCreated, obj)
}

// normaliseEvents checks the filter: a non-empty list of published types
// or "*", de-duplicated, "*" alone if present.
func normaliseEvents(in []string) ([]string, []problem.FieldError) {
	if len(in) == 0 {
		return nil, []problem.FieldError{{Field: "events", Message: `is required: a list of event types, or ["*"] for all`}}
	}
	if len(in) > 50 {
		return nil, []problem.FieldError{{Field: "events", Message: "must list at most 50 types"}}
	}
	var out []string
	var fields []problem.FieldError
	seen := map[string]bool{}
	for i, e := range in {
		switch {
		case e == "*":
			seen["*"] = true
		case outbox.IsType(e):
			if !seen[e] {
				seen[e] = true
				out = append(out, e)
			}
		default:
			fields = append(fields, problem.FieldError{Field: fmt.Sprintf("events[%d]", i),
				Message: "unknown event type; use one of " + strings.Join(outbox.Types(), ", ") + ` or "*"`})
		}
	}
	if seen["*"] {
		out = []string{"*"}
	}
	return out, fields
}

func (a *API) list(w http.ResponseWriter, r *http.Request) {
	page, p := pageOf(r)
	if p != nil {
		problem.Write(w, p)
		return
	}
	es, more, err := a.o.Endpoints.List(r.Context(), EndpointPage{Limit: page.Limit, StartingAfter: page.StartingAfter, EndingBefore: page.EndingBefore})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := listBody[EndpointObject]{Object: "list", Data: make([]EndpointObject, len(es)), HasMore: more}
	for i, e := range es {
		out.Data[i] = endpointObject(e)
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) get(w http.ResponseWriter, r *http.Request) {
	e, err := a.o.Endpoints.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, endpointObject(e))
}

func (a *API) delete(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := a.o.Endpoints.Delete(r.Context(), id); err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "object": "webhook_endpoint", "deleted": true})
}

func (a *API) deliveries(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := a.o.Endpoints.Get(r.Context(), id); err != nil {
		a.fail(w, r, err)
		return
	}
	page, p := pageOf(r)
	if p != nil {
		problem.Write(w, p)
		return
	}
	switch st := r.URL.Query().Get("status"); st {
	case "", outbox.StatusPending, outbox.StatusSucceeded, outbox.StatusFailed, outbox.StatusCancelled:
		page.Status = st
	default:
		problem.Respond(w, http.StatusBadRequest, "validation_failed", "status must be pending, succeeded, failed or cancelled",
			problem.FieldError{Field: "status", Message: "must be pending, succeeded, failed or cancelled"})
		return
	}
	ds, more, err := outbox.List(r.Context(), a.o.DB.DB(), id, page)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := listBody[DeliveryObject]{Object: "list", Data: make([]DeliveryObject, len(ds)), HasMore: more}
	for i, d := range ds {
		out.Data[i] = deliveryObject(d)
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) delivery(w http.ResponseWriter, r *http.Request) {
	d, err := outbox.Get(r.Context(), a.o.DB.DB(), r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, deliveryObject(d))
}

// retry queues one more attempt of a delivery, now, whatever its status
// (a failed delivery, or a succeeded one the receiver lost). The attempt
// is made by the sender; the response shows the delivery as queued.
func (a *API) retry(w http.ResponseWriter, r *http.Request) {
	if p := decodeStrict(r, &struct{}{}); p != nil && p.Code != "invalid_json_empty" {
		problem.Write(w, p)
		return
	}
	id := r.PathValue("id")
	d, err := outbox.Get(r.Context(), a.o.DB.DB(), id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	e, err := a.o.Endpoints.Get(r.Context(), d.EndpointID)
	if errors.Is(err, ErrEndpointNotFound) {
		problem.Respond(w, http.StatusConflict, "endpoint_deleted", "the delivery's endpoint was deleted")
		return
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if e.Status != EndpointEnabled {
		problem.Respond(w, http.StatusConflict, "endpoint_disabled", "the delivery's endpoint is disabled ("+e.DisabledReason+"); create a new endpoint")
		return
	}
	err = a.o.DB.WriteTx(r.Context(), func(tx *sqlx.Tx) error { return outbox.Requeue(r.Context(), tx, id, a.o.Now()) })
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.o.Wake()
	if d, err = outbox.Get(r.Context(), a.o.DB.DB(), id); err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, deliveryObject(d))
}

func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, ErrEndpointNotFound):
		problem.Respond(w, http.StatusNotFound, "webhook_endpoint_not_found", "no such webhook endpoint")
	case errors.Is(err, outbox.ErrNotFound):
		problem.Respond(w, http.StatusNotFound, "webhook_delivery_not_found", "no such webhook delivery")
	default:
		a.o.Logger.Error("webhook api", "method", r.Method, "path", r.URL.Path, "err", err)
		problem.Respond(w, http.StatusInternalServerError, "internal_error", "the server failed to handle the request; retry with the same Idempotency-Key")
	}
}

// pageOf reads limit, starting_after and ending_before.
func pageOf(r *http.Request) (outbox.Page, *problem.Problem) {
	q := r.URL.Query()
	p := outbox.Page{Limit: 20, StartingAfter: q.Get("starting_after"), EndingBefore: q.Get("ending_before")}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			return p, problem.New(http.StatusBadRequest, "validation_failed", "limit must be an integer from 1 to 100",
				problem.FieldError{Field: "limit", Message: "must be an integer from 1 to 100"})
		}
		p.Limit = n
	}
	if p.StartingAfter != "" && p.EndingBefore != "" {
		return p, problem.New(http.StatusBadRequest, "validation_failed", "use starting_after or ending_before, not both",
			problem.FieldError{Field: "ending_before", Message: "cannot be combined with starting_after"})
	}
	return p, nil
}

// decodeStrict reads one JSON object into v, refusing unknown fields and
// trailing data. An empty body gives a problem with code
// "invalid_json_empty" so that callers with optional bodies can accept it.
func decodeStrict(r *http.Request, v any) *problem.Problem {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return problem.New(http.StatusRequestEntityTooLarge, "request_too_large", fmt.Sprintf("request body exceeds %d bytes", mbe.Limit))
		}
		return problem.New(http.StatusBadRequest, "invalid_body", "could not read the request body")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return problem.New(http.StatusBadRequest, "invalid_json_empty", "a JSON object is required as the request body")
	}
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.Contains(ct, "json") {
		return problem.New(http.StatusUnsupportedMediaType, "unsupported_media_type", "send the body as application/json")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syn), errors.Is(err, io.ErrUnexpectedEOF):
			return problem.New(http.StatusBadRequest, "invalid_json", "malformed JSON")
		case errors.As(err, &typ) && typ.Field != "":
			return problem.New(http.StatusBadRequest, "validation_failed", typ.Field+" has the wrong type",
				problem.FieldError{Field: typ.Field, Message: "has the wrong type"})
		}
		if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			f = strings.Trim(f, `"`)
			return problem.New(http.StatusBadRequest, "validation_failed", "unknown field "+f,
				problem.FieldError{Field: f, Message: "unknown field"})
		}
		return problem.New(http.StatusBadRequest, "invalid_json", "the body must be a JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return problem.New(http.StatusBadRequest, "invalid_json", "unexpected data after the JSON object")
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		problem.Respond(w, http.StatusInternalServerError, "internal_error", "could not encode the response")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
