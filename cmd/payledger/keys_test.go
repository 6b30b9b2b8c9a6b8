package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/payledger/payledger/adapters/apikey"
	"github.com/payledger/payledger/internal/pgtest"
)

// TestKeysCommand drives `payledger keys create|list|revoke` on both
// tiers and uses the keys it prints against the real handler: the key is
// printed once, alone on the last line; list never shows a secret; a
// read-only key cannot write; a revoked key is refused.
func TestKeysCommand(t *testing.T) {
	t.Parallel()
	tiers := map[string]func(t *testing.T) map[string]string{
		"sqlite": func(t *testing.T) map[string]string { return map[string]string{"PAYLEDGER_DATA_DIR": t.TempDir()} },
		"postgres": func(t *testing.T) map[string]string {
			return map[string]string{"PAYLEDGER_DATABASE_URL": pgtest.New(t)}
		},
	}
	for name, settings := range tiers {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			vars := settings(t)
			cli := func(args ...string) (int, string, string) {
				var out, errOut bytes.Buffer
				code := run(context.Background(), args, &environment{stdout: &out, stderr: &errOut, getenv: func(k string) string { return vars[k] }})
				return code, out.String(), errOut.String()
			}
			tokenLine := regexp.MustCompile(`^plk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$`)
			create := func(args ...string) string {
				t.Helper()
				code, out, errOut := cli(append([]string{"keys", "create"}, args...)...)
				lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
				if code != 0 || !tokenLine.MatchString(lines[len(lines)-1]) {
					t.Fatalf("keys create %v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
				}
				if !strings.Contains(errOut, "shown once") {
					t.Fatalf("keys create does not say the key is shown once: %q", errOut)
				}
				return lines[len(lines)-1]
			}
			full := create("--name", "backend")
			read := create("--name", "reports", "--scope", "read")
			idOf := func(tok string) string { return strings.Split(tok, "_")[1] }

			code, out, _ := cli("keys", "list")
			if code != 0 || !strings.Contains(out, "ID") || !strings.Contains(out, "LAST USED") {
				t.Fatalf("keys list: %d %q", code, out)
			}
			for _, want := range []string{idOf(full) + "  backend  full", idOf(read) + "  reports  read"} {
				if !strings.Contains(out, want) {
					t.Fatalf("keys list lacks %q:\n%s", want, out)
				}
			}
			for _, tok := range []string{full, read} {
				if secret := tok[len("plk_")+16+1:]; strings.Contains(out, secret) {
					t.Fatal("keys list shows a secret")
				}
			}

			// The printed keys work on the real handler.
			a, err := open(context.Background(), &environment{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}, getenv: func(k string) string { return vars[k] }})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			h, _, err := a.handler(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			call := func(method, tok string) int {
				t.Helper()
				var body *strings.Reader
				if method == "POST" {
					body = strings.NewReader(`{"amount":"1.00","currency":"USD"}`)
				} else {
					body = strings.NewReader("")
				}
				req := httptest.NewRequest(method, "/v1/invoices", body)
				req.Header.Set("Authorization", "Bearer "+tok)
				req.Header.Set("Content-Type", "application/json")
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				return w.Code
			}
			if c := call("POST", full); c != http.StatusCreated {
				t.Fatalf("full key POST: %d", c)
			}
			if c := call("POST", read); c != http.StatusForbidden {
				t.Fatalf("read key POST: %d", c)
			}

			code, out, _ = cli("keys", "revoke", idOf(full))
			if code != 0 || !strings.Contains(out, "revoked "+idOf(full)) {
				t.Fatalf("keys revoke: %d %q", code, out)
			}
			// The server is another process than the CLI: it sees the
			// revocation once its one-second key cache expires.
			revokedAt := time.Now()
			for {
				_, err := a.keys.Authenticate(context.Background(), full)
				if errors.Is(err, apikey.ErrRevoked) {
					break
				}
				if time.Since(revokedAt) > 3*time.Second {
					t.Fatalf("revoked key still authenticates after 3 s: %v", err)
				}
				time.Sleep(50 * time.Millisecond) // the cache runs on the real clock here
			}
			if c := call("GET", full); c != http.StatusUnauthorized {
				t.Fatalf("revoked key GET: %d", c)
			}
			_, out, _ = cli("keys", "list")
			for _, line := range strings.Split(out, "\n") {
				if strings.HasPrefix(line, idOf(full)) && strings.HasSuffix(strings.TrimSpace(line), "-") {
					t.Fatalf("revoked key listed without a revocation time: %q", line)
				}
			}

			for _, c := range []struct {
				args []string
				code int
			}{
				{[]string{"keys"}, 2},
				{[]string{"keys", "create"}, 2},
				{[]string{"keys", "create", "--name", "x", "--scope", "admin"}, 2},
				{[]string{"keys", "revoke"}, 2},
				{[]string{"keys", "rotate"}, 2},
				{[]string{"keys", "revoke", "0000000000000000"}, 1},
			} {
				if code, _, _ := cli(c.args...); code != c.code {
					t.Errorf("%v: exit %d, want %d", c.args, code, c.code)
				}
			}
		})
	}
}
