package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/payledger/payledger/internal/pgtest"
)

// buildBinary compiles payledger once per test binary run.
var buildOnce struct {
	sync.Once
	path string
	err  error
}

func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "payledger-bin-")
		if err != nil {
			buildOnce.err = err
			return
		}
		buildOnce.path = filepath.Join(dir, "payledger")
		out, err := exec.Command("go", "build", "-o", buildOnce.path, ".").CombinedOutput()
		if err != nil {
			buildOnce.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildOnce.err != nil {
		t.Fatal(buildOnce.err)
	}
	return buildOnce.path
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

type proc struct {
	cmd  *exec.Cmd
	addr string
}

// startServe runs `payledger serve` and waits until it answers /healthz.
func startServe(t *testing.T, bin string, env []string) *proc {
	t.Helper()
	addr := freeAddr(t)
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(append(os.Environ(), env...), "PAYLEDGER_HTTP_ADDR="+addr)
	cmd.Stderr = io.Discard
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	go func() { _, _ = io.Copy(io.Discard, bufio.NewReader(stdout)) }()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return &proc{cmd: cmd, addr: addr}
			}
		}
		time.Sleep(50 * time.Millisecond) // polling a process we cannot signal from
	}
	t.Fatalf("serve did not answer /healthz on %s within 30s", addr)
	return nil
}

func createKey(t *testing.T, bin string, env []string) string {
	t.Helper()
	cmd := exec.Command(bin, "keys", "create", "--name", "crash-test")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("keys create: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	key := lines[len(lines)-1]
	if !strings.HasPrefix(key, "plk_") {
		t.Fatalf("keys create printed %q, want the key alone on the last line", out)
	}
	return key
}

// TestSIGKILLLosesNoAcknowledgedInvoice kills the server with SIGKILL in
// the middle of a creation load, restarts it, and checks that every invoice
// whose creation got a 2xx is there: a 2xx means committed durably.
func TestSIGKILLLosesNoAcknowledgedInvoice(t *testing.T) {
	t.Parallel()
	bin := binary(t)
	tiers := map[string]func(t *testing.T) []string{
		"sqlite":   func(t *testing.T) []string { return []string{"PAYLEDGER_DATA_DIR=" + t.TempDir()} },
		"postgres": func(t *testing.T) []string { return []string{"PAYLEDGER_DATABASE_URL=" + pgtest.New(t)} },
	}
	for name, envOf := range tiers {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			env := envOf(t)
			key := createKey(t, bin, env)
			p := startServe(t, bin, env)

			var mu sync.Mutex
			acked := map[string]bool{}
			enough := make(chan struct{}) // closed at 200 acknowledged creations
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			client := &http.Client{Timeout: 5 * time.Second}
			for c := 0; c < 8; c++ {
				wg.Add(1)
				go func(c int) {
					defer wg.Done()
					for i := 0; ctx.Err() == nil; i++ {
						body := fmt.Sprintf(`{"amount":"10.00","currency":"USD","reference_id":"crash-%d-%d","provider":"sandbox"}`, c, i)
						req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+p.addr+"/v1/invoices", strings.NewReader(body))
						req.Header.Set("Authorization", "Bearer "+key)
						req.Header.Set("Content-Type", "application/json")
						resp, err := client.Do(req)
						if err != nil {
							return // the server is gone
						}
						var inv struct {
							ID string `json:"id"`
						}
						err = json.NewDecoder(resp.Body).Decode(&inv)
						resp.Body.Close()
						if resp.StatusCode == http.StatusCreated && err == nil && inv.ID != "" {
							mu.Lock()
							acked[inv.ID] = true
							if len(acked) == 200 {
								close(enough)
							}
							mu.Unlock()
						}
					}
				}(c)
			}
			// Kill once a good number of creations were acknowledged, while
			// the clients keep writing.
			select {
			case <-enough:
			case <-time.After(20 * time.Second):
			}
			if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			_ = p.cmd.Wait()
			cancel()
			wg.Wait()
			if len(acked) == 0 {
				t.Fatal("no creation was acknowledged before the kill")
			}

			p2 := startServe(t, bin, env)
			var missing []string
			for id := range acked {
				req, _ := http.NewRequest(http.MethodGet, "http://"+p2.addr+"/v1/invoices/"+id, nil)
				req.Header.Set("Authorization", "Bearer "+key)
				resp, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					missing = append(missing, fmt.Sprintf("%s (%d)", id, resp.StatusCode))
				}
			}
			if len(missing) > 0 {
				t.Fatalf("%d of %d acknowledged invoices lost after SIGKILL: %v", len(missing), len(acked), missing)
			}
			t.Logf("%d acknowledged invoices all present after SIGKILL and restart", len(acked))
		})
	}
}
