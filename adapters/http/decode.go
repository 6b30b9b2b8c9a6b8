package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/payledger/payledger/adapters/problem"
)

// MaxBody is the largest request body the server reads.
const MaxBody = 1 << 20

// decode reads one JSON object into v, strictly. An empty body is allowed
// when optional is true (v keeps its zero value). The returned problem is
// ready to write.
func decode(r *http.Request, v any, optional bool) *problem.Problem {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return problem.New(http.StatusRequestEntityTooLarge, "request_too_large", fmt.Sprintf("request body exceeds %d bytes", mbe.Limit))
		}
		return problem.New(http.StatusBadRequest, "invalid_body", "could not read the request body")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		if optional {
			return nil
		}
		return problem.New(http.StatusBadRequest, "invalid_json", "a JSON object is required as the request body")
	}
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.Contains(ct, "json") && !strings.HasPrefix(ct, "text/plain") {
		return problem.New(http.StatusUnsupportedMediaType, "unsupported_media_type", "send the body as application/json")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonProblem(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return problem.New(http.StatusBadRequest, "invalid_json", "unexpected data after the JSON object")
	}
	return nil
}

func jsonProblem(err error) *problem.Problem {
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &syn):
		return problem.New(http.StatusBadRequest, "invalid_json", fmt.Sprintf("malformed JSON at byte %d: %s", syn.Offset, syn.Error()))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return problem.New(http.StatusBadRequest, "invalid_json", "malformed JSON: the body ends early")
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return problem.New(http.StatusBadRequest, "invalid_json", "the body must be a JSON object")
		}
		msg := "must be " + jsonKind(typ.Type.Kind().String())
		return problem.New(http.StatusBadRequest, "validation_failed", field+" "+msg,
			problem.FieldError{Field: field, Message: msg})
	}
	if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		f = strings.Trim(f, `"`)
		return problem.New(http.StatusBadRequest, "validation_failed", "unknown field "+f,
			problem.FieldError{Field: f, Message: "unknown field"})
	}
	return problem.New(http.StatusBadRequest, "invalid_json", "malformed JSON")
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "int", "int64", "int32", "uint64", "float64":
		return "a number"
	case "bool":
		return "true or false"
	case "map", "struct", "ptr":
		return "an object"
	case "slice":
		return "an array"
	}
	return "of another type"
}
