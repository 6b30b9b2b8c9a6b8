package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"sort"
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
		return jsonProblem(err, body, reflect.TypeOf(v))
	}
	if _, err := dec.Token(); err != io.EOF {
		return problem.New(http.StatusBadRequest, "invalid_json", "unexpected data after the JSON object")
	}
	return nil
}

func jsonProblem(err error, body []byte, into reflect.Type) *problem.Problem {
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
		msg := "must be " + jsonKind(typ.Type.Kind())
		// encoding/json names a map by its field only; say that it is the
		// map's values that have the wrong type.
		if ft := fieldType(into, field); ft != nil && ft.Kind() == reflect.Map && ft.Elem() == typ.Type {
			msg = "must have " + jsonKind(typ.Type.Kind()) + " as every value"
		}
		return problem.New(http.StatusBadRequest, "validation_failed", field+" "+msg,
			problem.FieldError{Field: field, Message: msg})
	}
	if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		f = strings.Trim(f, `"`)
		// encoding/json names only the key; find where it sits.
		var raw any
		if json.Unmarshal(body, &raw) == nil {
			if path := unknownField(raw, into, ""); path != "" {
				f = path
			}
		}
		return problem.New(http.StatusBadRequest, "validation_failed", "unknown field "+f,
			problem.FieldError{Field: f, Message: "unknown field"})
	}
	return problem.New(http.StatusBadRequest, "invalid_json", "malformed JSON")
}

func jsonKind(k reflect.Kind) string {
	switch k {
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "true or false"
	case reflect.Map, reflect.Struct, reflect.Pointer:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	}
	return "of another type"
}

// jsonField finds the struct field encoding/json would decode key into
// (exact name first, then case-insensitively, as encoding/json does).
func jsonField(t reflect.Type, key string) (reflect.StructField, bool) {
	var fold *reflect.StructField
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if name == key {
			return f, true
		}
		if fold == nil && strings.EqualFold(name, key) {
			fold = &f
		}
	}
	if fold != nil {
		return *fold, true
	}
	return reflect.StructField{}, false
}

func deref(t reflect.Type) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// fieldType resolves a dotted path of encoding/json's Field (such as
// "customer.address") to its Go type; nil when it does not resolve.
func fieldType(t reflect.Type, path string) reflect.Type {
	t = deref(t)
	for _, part := range strings.Split(path, ".") {
		if t == nil || t.Kind() != reflect.Struct {
			return nil
		}
		f, ok := jsonField(t, part)
		if !ok {
			return nil
		}
		t = deref(f.Type)
	}
	return t
}

// unknownField returns the dotted path of the first object key (in sorted
// order) of raw that t has no field for, or "".
func unknownField(raw any, t reflect.Type, prefix string) string {
	t = deref(t)
	if t == nil {
		return ""
	}
	switch v := raw.(type) {
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			switch t.Kind() {
			case reflect.Struct:
				f, ok := jsonField(t, k)
				if !ok {
					return prefix + k
				}
				if p := unknownField(v[k], f.Type, prefix+k+"."); p != "" {
					return p
				}
			case reflect.Map:
				if p := unknownField(v[k], t.Elem(), prefix+k+"."); p != "" {
					return p
				}
			}
		}
	case []any:
		if t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
			for i, e := range v {
				if p := unknownField(e, t.Elem(), fmt.Sprintf("%s%d.", prefix, i)); p != "" {
					return p
				}
			}
		}
	}
	return ""
}
