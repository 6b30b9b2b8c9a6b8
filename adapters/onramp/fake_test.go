package onramp_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/payledger/payledger/adapters/onramp"
)

const testKey = "onramp_test_key"

func sample(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "onramp", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var jsoncKey = regexp.MustCompile(`"([A-Za-z-]+)":`)

// documentedKeys are the field names of one of the document's bodies
// (a .jsonc file copied from it), nested payload keys included.
func documentedKeys(t testing.TB, name string) map[string]bool {
	t.Helper()
	keys := map[string]bool{}
	for _, m := range jsoncKey.FindAllSubmatch(sample(t, name), -1) {
		keys[string(m[1])] = true
	}
	if len(keys) == 0 {
		t.Fatalf("%s lists no fields", name)
	}
	return keys
}

// withField returns the sample with the payment's field (inside payload
// when there is one) replaced, or removed when v is nil.
func withField(t testing.TB, name string, set map[string]any) []byte {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(sample(t, name), &doc); err != nil {
		t.Fatal(err)
	}
	target := doc
	if p, ok := doc["payload"].(map[string]any); ok {
		target = p
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

type answer struct {
	status int
	body   []byte
	hang   bool
}

func ok(body []byte) answer { return answer{status: 200, body: body} }

type seen struct {
	Method, Path, Auth string
	Body               map[string]any
	Raw                []byte
}

// fake is the on-ramp platform on httptest, answering from testdata.
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
		raw, _ := io.ReadAll(r.Body)
		var body map[string]any
		_ = json.Unmarshal(raw, &body)
		f.mu.Lock()
		f.reqs = append(f.reqs, seen{r.Method, r.URL.Path, r.Header.Get("Authorization"), body, raw})
		key := r.Method + " " + r.URL.Path
		q := f.routes[key]
		var a answer
		switch {
		case len(q) == 0:
			a = answer{status: 404, body: sample(t, "error_not_found.json")}
		case len(q) == 1:
			a = q[0]
		default:
			a, f.routes[key] = q[0], q[1:]
		}
		f.mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer "+testKey {
			a = answer{status: 401, body: []byte(`{"error":{"code":"unauthorized","message":"invalid credentials"}}`)}
		}
		if a.hang {
			select {
			case <-r.Context().Done():
			case <-release:
			}
			return
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

func (f *fake) client(mod ...func(*onramp.Config)) *onramp.Client {
	f.t.Helper()
	cfg := onramp.Config{BaseURL: f.srv.URL, APIKey: testKey, Timeout: 300 * time.Millisecond, RetryBackoff: time.Millisecond}
	for _, m := range mod {
		m(&cfg)
	}
	c, err := onramp.New(cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

func keysOf(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
