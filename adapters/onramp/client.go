package onramp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode"

	"github.com/payledger/payledger/adapters/provider"
)

// ErrOutcomeUnknown is wrapped (with provider.ErrUnavailable) when a
// create, update or confirm was sent and no usable answer came back: the
// platform may have acted on it.
var ErrOutcomeUnknown = errors.New("onramp: request sent, outcome unknown")

const maxBody = 1 << 20

type call struct {
	op   string
	path string
	body any
	read bool // a retrieve: safe to repeat
}

type response struct {
	status int
	body   []byte
}

// do POSTs the call (every documented endpoint takes a JSON body),
// retrying reads after a network error, 429 or 5xx.
func (c *Client) do(ctx context.Context, cl call) (response, error) {
	payload, err := json.Marshal(cl.body)
	if err != nil {
		return response{}, c.fail(cl.op, 0, "", "encoding the request: "+err.Error(), provider.ErrRejected)
	}
	attempts := 1
	if cl.read {
		attempts += c.cfg.MaxRetries
	}
	backoff := c.cfg.RetryBackoff
	var last error
	for i := range attempts {
		if i > 0 {
			if err := sleep(ctx, backoff); err != nil {
				return response{}, c.fail(cl.op, 0, "", err.Error(), provider.ErrUnavailable)
			}
			backoff *= 2
		}
		resp, err := c.once(ctx, cl.path, payload)
		if err != nil {
			last = c.sent(cl, c.fail(cl.op, 0, "", transportMessage(err), provider.ErrUnavailable))
			if ctx.Err() != nil {
				return response{}, last
			}
			continue
		}
		if cl.read && (resp.status == http.StatusTooManyRequests || resp.status >= 500) && i+1 < attempts {
			last = c.apiError(cl.op, resp)
			continue
		}
		return resp, nil
	}
	return response{}, last
}

func (c *Client) sent(cl call, err error) error {
	if cl.read {
		return err
	}
	return fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
}

func (c *Client) once(ctx context.Context, path string, payload []byte) (response, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(payload))
	if err != nil {
		return response{}, err
	}
	req.Header.Set("Authorization", "Bearer "+c.cfg.APIKey)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	res, err := c.http.Do(req)
	if err != nil {
		return response{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, maxBody+1))
	if err != nil {
		return response{}, err
	}
	if len(b) > maxBody {
		return response{}, fmt.Errorf("response larger than %d bytes", maxBody)
	}
	return response{status: res.StatusCode, body: b}, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func transportMessage(err error) string {
	var ne interface{ Timeout() bool }
	if errors.As(err, &ne) && ne.Timeout() {
		return "no answer within the timeout"
	}
	return "network error: " + err.Error()
}

func (c *Client) fail(op string, status int, code, msg string, kind error) *provider.Error {
	return &provider.Error{Provider: Name, Op: op, HTTPStatus: status, Code: code, Message: msg, Kind: kind}
}

// errorBody reads the usual error shapes: {"error": {"code","message"}},
// {"error": "…"}, {"code","message"}.
func errorBody(b []byte) (code, msg string) {
	var top struct {
		Code    json.RawMessage `json:"code"`
		Message string          `json:"message"`
		Error   json.RawMessage `json:"error"`
	}
	if json.Unmarshal(b, &top) != nil {
		return "", ""
	}
	code, msg = rawString(top.Code), top.Message
	var e struct {
		Code    json.RawMessage `json:"code"`
		Message string          `json:"message"`
	}
	if json.Unmarshal(top.Error, &e) == nil {
		if c := rawString(e.Code); c != "" {
			code = c
		}
		if e.Message != "" {
			msg = e.Message
		}
	} else if s := rawString(top.Error); s != "" {
		msg = s
	}
	return code, msg
}

// rawString is a JSON string or number as text.
func rawString(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return ""
}

// apiError maps a non-2xx answer onto the provider sentinels.
func (c *Client) apiError(op string, resp response) error {
	code, msg := errorBody(resp.body)
	if msg == "" {
		msg = http.StatusText(resp.status)
	}
	var kind error
	switch s := resp.status; {
	case s == http.StatusUnauthorized || s == http.StatusForbidden:
		kind = provider.ErrRejected
		msg = "authentication failed, check the API key: " + msg
	case s == http.StatusNotFound:
		kind = provider.ErrNotFound
	case s == http.StatusConflict || s == http.StatusGone:
		kind = provider.ErrConflict
	case s == http.StatusTooManyRequests || s >= 500:
		kind = provider.ErrUnavailable
	case s >= 400:
		kind = provider.ErrRejected
	default:
		kind = provider.ErrBadResponse
	}
	return c.fail(op, resp.status, clean(code, 64), clean(msg, 300), kind)
}

// writeError maps the error answer of a create, update or confirm; a 5xx
// other than 503 may come after the platform acted.
func (c *Client) writeError(op string, resp response) error {
	err := c.apiError(op, resp)
	if resp.status >= 500 && resp.status != http.StatusServiceUnavailable {
		return fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
	}
	return err
}

func strictJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

// clean makes provider text safe to show and log: printable, one line,
// bounded.
func clean(s string, limit int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return ' '
	}, s)
	s = strings.TrimSpace(s)
	if len(s) > limit {
		cut := limit
		for cut > 0 && s[cut]&0xC0 == 0x80 {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}
