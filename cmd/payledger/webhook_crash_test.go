package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/payledger/payledger/adapters/webhook"
	"github.com/payledger/payledger/internal/pgtest"
)

// crashReceiver answers the first new message 503, holds the second one
// open (so the server can be killed in the middle of that attempt), and,
// once healed, accepts everything. It checks every signature.
type crashReceiver struct {
	mu        sync.Mutex
	secret    string
	healed    bool
	order     []string       // webhook-ids in order of first arrival
	successes map[string]int // webhook-id → 2xx answered
	bad       int
	holding   chan string // receives the held message's id
}

func (c *crashReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	id := r.Header.Get("webhook-id")
	c.mu.Lock()
	if !webhook.VerifyStandard(c.secret, id, r.Header.Get("webhook-timestamp"), body, r.Header.Get("webhook-signature")) {
		c.bad++
	}
	seen := false
	for _, o := range c.order {
		seen = seen || o == id
	}
	if !seen {
		c.order = append(c.order, id)
	}
	n, healed := len(c.order), c.healed
	if healed {
		c.successes[id]++
		c.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
		return
	}
	c.mu.Unlock()
	if !seen && n == 2 {
		c.holding <- id
		<-r.Context().Done() // until the server dies
		return
	}
	w.WriteHeader(http.StatusServiceUnavailable)
}

func (c *crashReceiver) snapshot() (order []string, successes map[string]int, bad int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	successes = map[string]int{}
	for k, v := range c.successes {
		successes[k] = v
	}
	return append([]string(nil), c.order...), successes, c.bad
}

type apiCall struct {
	t    *testing.T
	addr string
	key  string
}

func (a apiCall) do(method, path, body string, want int, v any) {
	a.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, "http://"+a.addr+path, rd)
	req.Header.Set("Authorization", "Bearer "+a.key)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		a.t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, b, want)
	}
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			a.t.Fatalf("%s %s: %v", method, path, err)
		}
	}
}

type deliveryList struct {
	Data []struct {
		ID           string `json:"id"`
		EventID      string `json:"event_id"`
		Status       string `json:"status"`
		AttemptCount int    `json:"attempt_count"`
	} `json:"data"`
}

// TestSIGKILLBetweenCommitAndDeliveryStillDelivers kills the server with
// SIGKILL twice over between commit and delivery: one event's first
// attempt failed and its retry is scheduled in the database; another
// event's attempt is in flight at the moment of the kill. After a restart
// both reach the receiver, each exactly once successfully.
func TestSIGKILLBetweenCommitAndDeliveryStillDelivers(t *testing.T) {
	t.Parallel()
	bin := binary(t)
	tiers := map[string]func(t *testing.T) []string{
		"sqlite":   func(t *testing.T) []string { return []string{"PAYLEDGER_DATA_DIR=" + t.TempDir()} },
		"postgres": func(t *testing.T) []string { return []string{"PAYLEDGER_DATABASE_URL=" + pgtest.New(t)} },
	}
	for name, envOf := range tiers {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			// A 2 s attempt timeout makes the lease of the killed attempt
			// 7 s instead of 20 s.
			env := append(envOf(t), "PAYLEDGER_WEBHOOK_ALLOW_PRIVATE=true", "PAYLEDGER_WEBHOOK_TIMEOUT=2s")
			rcv := &crashReceiver{successes: map[string]int{}, holding: make(chan string, 1)}
			hook := httptest.NewServer(rcv)
			defer hook.Close()

			key := createKey(t, bin, env)
			p := startServe(t, bin, env)
			api := apiCall{t: t, addr: p.addr, key: key}
			var ep struct {
				ID     string `json:"id"`
				Secret string `json:"secret"`
			}
			api.do(http.MethodPost, "/v1/webhook_endpoints", fmt.Sprintf(`{"url":%q,"events":["invoice.created"]}`, hook.URL+"/hook"), http.StatusCreated, &ep)
			rcv.mu.Lock()
			rcv.secret = ep.Secret
			rcv.mu.Unlock()

			// Event A: its first attempt gets a 503 and a retry is scheduled.
			api.do(http.MethodPost, "/v1/invoices", `{"amount":"10.00","currency":"USD","reference_id":"wh-crash-a","provider":"sandbox"}`, http.StatusCreated, nil)
			deadline := time.Now().Add(15 * time.Second)
			for {
				var l deliveryList
				api.do(http.MethodGet, "/v1/webhook_endpoints/"+ep.ID+"/deliveries", "", http.StatusOK, &l)
				if len(l.Data) == 1 && l.Data[0].AttemptCount == 1 && l.Data[0].Status == "pending" {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the first attempt was not recorded: %+v", l)
				}
				time.Sleep(20 * time.Millisecond) // polling another process
			}
			// Event B: killed while its attempt is in flight.
			api.do(http.MethodPost, "/v1/invoices", `{"amount":"11.00","currency":"USD","reference_id":"wh-crash-b","provider":"sandbox"}`, http.StatusCreated, nil)
			select {
			case <-rcv.holding:
			case <-time.After(15 * time.Second):
				t.Fatal("the second event's attempt never arrived")
			}
			if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			_ = p.cmd.Wait()

			rcv.mu.Lock()
			rcv.healed = true
			rcv.mu.Unlock()
			killed := time.Now()
			p2 := startServe(t, bin, env)
			api.addr = p2.addr
			deadline = time.Now().Add(30 * time.Second)
			for {
				order, ok, _ := rcv.snapshot()
				if len(order) == 2 && ok[order[0]] >= 1 && ok[order[1]] >= 1 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("not delivered after restart: order %v, successes %v", order, ok)
				}
				time.Sleep(20 * time.Millisecond)
			}
			delay := time.Since(killed)
			// The receiver answered; the server records the outcome just after.
			var l deliveryList
			for {
				api.do(http.MethodGet, "/v1/webhook_endpoints/"+ep.ID+"/deliveries", "", http.StatusOK, &l)
				if len(l.Data) == 2 && l.Data[0].Status == "succeeded" && l.Data[1].Status == "succeeded" {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("deliveries not recorded as succeeded: %+v", l)
				}
				time.Sleep(20 * time.Millisecond)
			}
			order, ok, bad := rcv.snapshot()
			if bad != 0 {
				t.Errorf("%d requests failed signature verification", bad)
			}
			for _, id := range order {
				if ok[id] != 1 {
					t.Errorf("%s delivered successfully %d times, want 1", id, ok[id])
				}
			}
			if len(l.Data) != 2 {
				t.Fatalf("deliveries %+v", l)
			}
			for _, d := range l.Data {
				if d.Status != "succeeded" || ok[d.EventID] != 1 {
					t.Errorf("delivery %+v (receiver successes %d)", d, ok[d.EventID])
				}
			}
			t.Logf("both events delivered %s after SIGKILL (restart included)", delay.Round(10*time.Millisecond))
		})
	}
}
