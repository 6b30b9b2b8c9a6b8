package httpapi

import (
	"context"
	"errors"
	"net/http"

	"github.com/payledger/payledger/adapters/problem"
	"github.com/payledger/payledger/domain/invoice"
	"github.com/payledger/payledger/ledger"
)

// fail answers err with its stable code. Domain refusals map to 4xx; only
// errors nobody anticipated become a 500, and those are logged.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var (
		verrs ledger.ValidationErrors
		verr  *invoice.ValidationError
		prob  *problem.Problem
	)
	switch {
	case errors.As(err, &prob):
		problem.Write(w, prob)
	case errors.As(err, &verrs):
		fields := make([]problem.FieldError, len(verrs))
		for i, v := range verrs {
			fields[i] = problem.FieldError{Field: v.Field, Message: v.Message}
		}
		detail := "the request has invalid fields"
		if len(verrs) == 1 {
			detail = verrs[0].Field + " " + verrs[0].Message
		}
		problem.Respond(w, http.StatusBadRequest, "validation_failed", detail, fields...)
	case errors.As(err, &verr):
		problem.Respond(w, http.StatusBadRequest, "validation_failed", verr.Field+" "+verr.Message,
			problem.FieldError{Field: verr.Field, Message: verr.Message})
	case errors.Is(err, invoice.ErrNotFound):
		problem.Respond(w, http.StatusNotFound, "invoice_not_found", "no such invoice")
	case errors.Is(err, ledger.ErrReferenceConflict):
		problem.Respond(w, http.StatusConflict, "reference_id_conflict", err.Error(),
			problem.FieldError{Field: "reference_id", Message: "already used by an invoice with different details"})
	case errors.Is(err, invoice.ErrAlreadyExists):
		problem.Respond(w, http.StatusConflict, "invoice_already_exists", err.Error())
	case errors.Is(err, invoice.ErrNotOpen):
		problem.Respond(w, http.StatusConflict, "invoice_not_open", err.Error())
	case errors.Is(err, invoice.ErrPaymentInProgress):
		problem.Respond(w, http.StatusConflict, "payment_in_progress", err.Error())
	case errors.Is(err, invoice.ErrNotPaid):
		problem.Respond(w, http.StatusConflict, "invoice_not_paid", err.Error())
	case errors.Is(err, invoice.ErrRefundExceedsPayment):
		problem.Respond(w, http.StatusConflict, "refund_exceeds_payment", err.Error(),
			problem.FieldError{Field: "amount", Message: "exceeds the amount that is still refundable"})
	case errors.Is(err, invoice.ErrCurrencyMismatch):
		problem.Respond(w, http.StatusBadRequest, "currency_mismatch", err.Error())
	case errors.Is(err, ledger.ErrConflict):
		w.Header().Set("Retry-After", "1")
		problem.Respond(w, http.StatusConflict, "concurrent_modification", "the invoice changed concurrently; retry the request")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		problem.Respond(w, http.StatusServiceUnavailable, "timeout", "the request did not finish in time; retry with the same Idempotency-Key")
	default:
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		problem.Respond(w, http.StatusInternalServerError, "internal_error", "the server failed to handle the request; retry with the same Idempotency-Key")
	}
}
