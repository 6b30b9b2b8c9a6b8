package circoflows_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/payledger/payledger/adapters/circoflows"
)

const (
	testKey    = "sk_test_key"
	testSecret = "whsec_test_secret"
)

// sample reads a payload of testdata/circoflows.
func sample(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "circoflows", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// withField returns the sample with data.<key> (or the top-level key when
// data is absent) replaced.
func withField(t testing.TB, name string, set map[string]any) []byte {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(sample(t, name), &doc); err != nil {
		t.Fatal(err)
	}
	target := doc
	if d, ok := doc["data"].(map[string]any); ok {
		target = d
	}
	for k, v := range set {
		if v == nil {
			delete(target, k)
			continue
		}
		target[k] = v
	}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// answer is one canned reply of the fake server.
type answer struct {
	status int
	body   []byte
	header map[string]string
	// hang makes the handler wait for the client to give up.
	hang bool
}

// seen is one request the fake server received.
type seen struct {
	Method, Path, Auth, ContentType string
	Body                            []byte
}

// fake is a CircoFlows API on httptest answering from testdata. Routes
// map "METHOD /path" to a queue of answers; the last answer repeats.
type fake struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	routes map[string][]answer
	reqs   []seen
}

func newFake(t *testing.T) *fake {
	t.Helper()
	f := &fake{t: t, routes: map[string][]answer{}}
	release := make(chan struct{})
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.reqs = append(f.reqs, seen{r.Method, r.URL.Path, r.Header.Get("Authorization"), r.Header.Get("Content-Type"), body})
		key := r.Method + " " + r.URL.Path
		q := f.routes[key]
		var a answer
		switch {
		case len(q) == 0:
			a = answer{status: 404, body: sample(t, "error_session_not_found.json")}
		case len(q) == 1:
			a = q[0]
		default:
			a, f.routes[key] = q[0], q[1:]
		}
		f.mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer "+testKey {
			a = answer{status: 401, body: sample(t, "error_authentication_failed.json")}
		}
		if a.hang {
			select {
			case <-r.Context().Done():
			case <-release:
			}
			return
		}
		for k, v := range a.header {
			w.Header().Set(k, v)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(a.status)
		_, _ = w.Write(a.body)
	}))
	t.Cleanup(func() { close(release); f.srv.Close() })
	return f
}

func (f *fake) on(route string, answers ...answer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.routes[route] = answers
}

func (f *fake) requests() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seen(nil), f.reqs...)
}

// client builds a client on the fake with quick timeouts and backoff.
func (f *fake) client(mod ...func(*circoflows.Config)) *circoflows.Client {
	f.t.Helper()
	cfg := circoflows.Config{
		BaseURL:       f.srv.URL,
		APIKey:        testKey,
		WebhookSecret: testSecret,
		Timeout:       300 * time.Millisecond,
		RetryBackoff:  time.Millisecond,
	}
	for _, m := range mod {
		m(&cfg)
	}
	c, err := circoflows.New(cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

func ok(body []byte) answer { return answer{status: 200, body: body} }
