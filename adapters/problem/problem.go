// Package problem writes RFC 9457 problem+json responses, the one error
// shape of the HTTP API. Every handler in the tree answers errors through
// it so that clients see the same fields everywhere.
package problem

import (
	"encoding/json"
	"net/http"
)

// FieldError is one refused input field.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Problem is the body of an error response.
type Problem struct {
	Type   string       `json:"type"`
	Title  string       `json:"title"`
	Status int          `json:"status"`
	Detail string       `json:"detail,omitempty"`
	Code   string       `json:"code"`
	Errors []FieldError `json:"errors,omitempty"`
}

// Error lets a Problem travel as an error until a handler writes it.
func (p *Problem) Error() string { return p.Code + ": " + p.Detail }

// New builds a problem; type is derived from the code so that it is a
// stable, documented URI.
func New(status int, code, detail string, fields ...FieldError) *Problem {
	return &Problem{
		Type:   "https://payledger.dev/problems/" + code,
		Title:  http.StatusText(status),
		Status: status,
		Detail: detail,
		Code:   code,
		Errors: fields,
	}
}

// Write sends p.
func Write(w http.ResponseWriter, p *Problem) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// Respond builds and sends a problem in one call.
func Respond(w http.ResponseWriter, status int, code, detail string, fields ...FieldError) {
	Write(w, New(status, code, detail, fields...))
}
