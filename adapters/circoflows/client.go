package circoflows

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/payledger/payledger/adapters/provider"
)

// ErrOutcomeUnknown is wrapped (together with provider.ErrUnavailable) when
// a request that changes money was sent but no answer came: the payment
// may or may not exist at CircoFlows. Do not tell the payer it failed, and
// do not send the same charge again.
var ErrOutcomeUnknown = errors.New("circoflows: request sent, outcome unknown")

// maxBody bounds what we read from CircoFlows; its answers are small.
const maxBody = 1 << 20

// call is one API request.
type call struct {
	op     string
	method string
	path   string
	body   any
	// read marks requests that change nothing and may be repeated.
	read bool
}

// response is a received answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends the call, retrying reads. Transport failures and exhausted
// retries come back as *provider.Error; any HTTP answer comes back as a
// response for the caller to interpret.
func (c *Client) do(ctx context.Context, cl call) (response, error) {
	var payload []byte
	if cl.body != nil {
		var err error
		if payload, err = json.Marshal(cl.body); err != nil {
			return response{}, c.fail(cl.op, 0, "", "encoding the request: "+err.Error(), provider.ErrRejected)
		}
	}
	attempts := 1
	if cl.read {
		attempts += c.cfg.MaxRetries
	}
	backoff := c.cfg.RetryBackoff
	var last error
	for i := 0; i < attempts; i++ {
		if i > 0 {
			if err := sleep(ctx, backoff); err != nil {
				return response{}, c.fail(cl.op, 0, "", err.Error(), provider.ErrUnavailable)
			}
			backoff *= 2
		}
		resp, err := c.once(ctx, cl, payload)
		if err != nil {
			if ctx.Err() != nil {
				// The caller gave up; no retry will help.
				return response{}, c.sent(cl, c.fail(cl.op, 0, "", ctx.Err().Error(), provider.ErrUnavailable))
			}
			last = c.sent(cl, c.fail(cl.op, 0, "", transportMessage(err), provider.ErrUnavailable))
			continue
		}
		if cl.read && retryable(resp.status) && i+1 < attempts {
			if wait, ok := c.rateLimitWait(resp); ok {
				if wait > backoff {
					backoff = wait
				}
				last = c.apiError(cl.op, resp)
				continue
			}
		}
		return resp, nil
	}
	return response{}, last
}

// sent adds ErrOutcomeUnknown to a transport failure of a request that
// changes something.
func (c *Client) sent(cl call, err error) error {
	if cl.read {
		return err
	}
	return fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
}

func (c *Client) once(ctx context.Context, cl call, payload []byte) (response, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, cl.method, c.base.String()+cl.path, body)
	if err != nil {
		return response{}, err
	}
	req.Header.Set("Authorization", "Bearer "+c.cfg.APIKey)
	req.Header.Set("Accept", "application/json")
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
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
	return response{status: res.StatusCode, header: res.Header, body: b}, nil
}

func retryable(status int) bool {
	return status == http.StatusTooManyRequests || status >= 500
}

// rateLimitWait is how long to wait before retrying resp, and whether a
// retry is worth it. A 429 whose X-RateLimit-Reset lies beyond
// MaxRateLimitWait is not retried.
func (c *Client) rateLimitWait(resp response) (time.Duration, bool) {
	if resp.status != http.StatusTooManyRequests {
		return 0, true
	}
	reset, err := strconv.ParseInt(strings.TrimSpace(resp.header.Get("X-RateLimit-Reset")), 10, 64)
	if err != nil {
		return 0, true
	}
	wait := time.Unix(reset, 0).Sub(c.cfg.Now())
	if wait > c.cfg.MaxRateLimitWait {
		return 0, false
	}
	return max(wait, 0), true
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

// transportMessage keeps a network error short and free of the URL's
// query; our URLs carry no secrets, but the wording stays stable.
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

// apiErrorBody is the documented error format.
type apiErrorBody struct {
	Code        string `json:"code"`
	Message     string `json:"message"`
	Type        string `json:"type"`
	DeclineCode string `json:"decline_code"`
}

// envelope is every documented answer: {"success", "message", "data"} on
// success, {"error": {...}} on failure.
type envelope struct {
	Success *bool           `json:"success"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data"`
	Error   json.RawMessage `json:"error"`
}

// errorOf reads the error object; a bare string is taken as the message.
func errorOf(raw json.RawMessage) (apiErrorBody, bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return apiErrorBody{}, false
	}
	var e apiErrorBody
	if json.Unmarshal(raw, &e) == nil {
		return e, true
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return apiErrorBody{Message: s}, true
	}
	return apiErrorBody{}, false
}

// apiError maps a non-2xx answer onto the provider sentinels.
func (c *Client) apiError(op string, resp response) error {
	var env envelope
	_ = json.Unmarshal(resp.body, &env)
	e, _ := errorOf(env.Error)
	msg := e.Message
	if msg == "" {
		msg = env.Message
	}
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
	if e.Code == "invalid_currency" {
		kind = provider.ErrUnsupportedCurrency
	}
	return c.fail(op, resp.status, clean(e.Code, 64), clean(msg, 300), kind)
}

// decodeData reads a 2xx envelope's data into v. success:false or an error
// object in a 2xx answer is a refusal.
func (c *Client) decodeData(op string, resp response, v any) error {
	var env envelope
	if err := strictJSON(resp.body, &env); err != nil {
		return c.fail(op, resp.status, "", "unreadable answer: "+err.Error(), provider.ErrBadResponse)
	}
	if e, ok := errorOf(env.Error); ok || (env.Success != nil && !*env.Success) {
		msg := e.Message
		if msg == "" {
			msg = env.Message
		}
		return c.fail(op, resp.status, clean(e.Code, 64), clean(msg, 300), provider.ErrRejected)
	}
	if len(env.Data) == 0 || string(env.Data) == "null" {
		return c.fail(op, resp.status, "", "answer has no data", provider.ErrBadResponse)
	}
	if err := strictJSON(env.Data, v); err != nil {
		return c.fail(op, resp.status, "", "unreadable data: "+err.Error(), provider.ErrBadResponse)
	}
	return nil
}

// strictJSON decodes one JSON value with numbers kept as text, refusing
// trailing data.
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
		for cut > 0 && !utfStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

func utfStart(b byte) bool { return b&0xC0 != 0x80 }
