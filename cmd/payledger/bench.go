package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "github.com/lib/pq" // scratch database for --store postgres
	dto "github.com/prometheus/client_model/go"
)

// runBench is the load command: N clients each create an invoice and issue
// its payment link over real HTTP, for a duration. Without --url it starts
// the server in-process on a scratch store so that one command measures a
// tier end to end.
func runBench(ctx context.Context, env *environment, args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	target := fs.String("url", "", "base URL of a running server (default: start one in-process)")
	key := fs.String("key", "", "API key for --url")
	store := fs.String("store", "sqlite", "in-process store: sqlite or postgres (scratch database on PAYLEDGER_TEST_POSTGRES_URL's server)")
	clients := fs.Int("clients", 32, "concurrent clients")
	duration := fs.Duration("duration", 15*time.Second, "how long to measure")
	warmup := fs.Duration("warmup", 3*time.Second, "how long to run the load before measuring (new connections, prepared statements and caches make the first seconds slow)")
	rate := fs.Float64("rate", 0, "target iterations per second across all clients (0: each client as fast as it can); latencies then count from each iteration's scheduled start")
	links := fs.Bool("links", true, "also issue a payment link for every invoice")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of this process (client and in-process server) to the file")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if *clients < 1 || *duration <= 0 || *rate < 0 || *warmup < 0 {
		return fmt.Errorf("%w: --clients must be ≥ 1, --duration positive, --rate and --warmup not negative", errUsage)
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	base, apiKey := strings.TrimRight(*target, "/"), *key
	var waitProjections func(context.Context) (time.Duration, error)
	var lags func() (map[string]*dto.Histogram, error)
	if base == "" {
		srv, err := startBenchServer(ctx, env, *store)
		if err != nil {
			return err
		}
		defer srv.close()
		base, apiKey, waitProjections, lags = srv.base, srv.key, srv.catchUp, srv.lags
	} else if apiKey == "" {
		return fmt.Errorf("%w: --url needs --key", errUsage)
	}

	tr := &http.Transport{MaxIdleConns: *clients * 2, MaxIdleConnsPerHost: *clients * 2, IdleConnTimeout: time.Minute}
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	var (
		mu        sync.Mutex
		latencies []time.Duration
		failures  atomic.Int64
		firstErr  atomic.Value
	)
	begin := time.Now()
	start := begin.Add(*warmup) // measuring starts here
	deadline := start.Add(*duration)
	// With --rate the load is open: iterations are scheduled at fixed
	// intervals whether or not earlier ones have finished, and an
	// iteration that had to wait for a free client counts that wait (the
	// clients bound the concurrency, not the arrivals).
	var schedule chan time.Time
	if *rate > 0 {
		schedule = make(chan time.Time)
		interval := time.Duration(float64(time.Second) / *rate)
		go func() {
			defer close(schedule)
			for i := 0; ; i++ {
				at := begin.Add(time.Duration(i) * interval)
				if !at.Before(deadline) {
					return
				}
				time.Sleep(time.Until(at))
				select {
				case schedule <- at:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	// The lag histograms as the measurement starts: what the warm-up
	// observed is subtracted from the figures.
	var lagBase map[string]*dto.Histogram
	var lagBaseErr error
	baseTaken := make(chan struct{})
	go func() {
		defer close(baseTaken)
		if lags != nil {
			time.Sleep(time.Until(start))
			lagBase, lagBaseErr = lags()
		}
	}()
	var wg sync.WaitGroup
	for c := 0; c < *clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			local := make([]time.Duration, 0, 4096)
			// With a schedule, every scheduled iteration runs, even after
			// the deadline: dropping the late ones would hide exactly the
			// slow tail an open load is there to show.
			for i := 0; (schedule != nil || time.Now().Before(deadline)) && ctx.Err() == nil; i++ {
				t0 := time.Now()
				if schedule != nil {
					at, ok := <-schedule
					if !ok {
						break
					}
					t0 = at
				}
				err := benchIteration(ctx, client, base, apiKey, fmt.Sprintf("bench-%d-%d-%d", begin.UnixNano(), c, i), *links)
				if err != nil {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				if t0.Before(start) {
					continue // warm-up: run, not counted
				}
				local = append(local, time.Since(t0))
			}
			mu.Lock()
			latencies = append(latencies, local...)
			mu.Unlock()
		}(c)
	}
	wg.Wait()
	<-baseTaken
	elapsed := time.Since(start)
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	n := len(latencies)
	what := "invoice creations"
	if *links {
		what = "invoice creations + payment links"
	}
	offered := "as fast as the clients go"
	if *rate > 0 {
		offered = fmt.Sprintf("offered %.0f/s", *rate)
	}
	fmt.Fprintf(env.stdout, "store=%s clients=%d %s warmup=%s duration=%s: %d %s, %.0f/s, p50 %s, p99 %s, max %s, failures %d\n",
		*store, *clients, offered, *warmup, elapsed.Round(time.Millisecond), n, what, float64(n)/elapsed.Seconds(),
		pct(latencies, 0.50), pct(latencies, 0.99), pct(latencies, 1), failures.Load())
	if e := firstErr.Load(); e != nil {
		fmt.Fprintf(env.stdout, "first failure: %s\n", e)
	}
	if waitProjections != nil {
		lag, err := waitProjections(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(env.stdout, "projections caught up %s after the load ended\n", lag.Round(time.Millisecond))
	}
	if lags != nil {
		now, err := lags()
		if err == nil {
			err = lagBaseErr
		}
		if err != nil {
			return err
		}
		for _, f := range projectionLags(now, lagBase) {
			fmt.Fprintf(env.stdout, "projection lag during the load: %s\n", f)
		}
	}
	if failures.Load() > 0 {
		return fmt.Errorf("%d requests failed", failures.Load())
	}
	return nil
}

func pct(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p)
	return sorted[i].Round(10 * time.Microsecond)
}

func benchIteration(ctx context.Context, c *http.Client, base, key, ref string, link bool) error {
	body := `{"amount":"100.55","currency":"USD","reference_id":"` + ref + `","provider":"sandbox","description":"bench","customer":{"email":"bench@example.com"},"metadata":{"account_id":"12345"}}`
	var inv struct {
		ID string `json:"id"`
	}
	if err := benchPost(ctx, c, base+"/v1/invoices", key, body, http.StatusCreated, &inv); err != nil {
		return fmt.Errorf("create invoice: %w", err)
	}
	if !link {
		return nil
	}
	if err := benchPost(ctx, c, base+"/v1/invoices/"+inv.ID+"/payment_links", key, `{}`, http.StatusCreated, nil); err != nil {
		return fmt.Errorf("payment link: %w", err)
	}
	return nil
}

func benchPost(ctx context.Context, c *http.Client, u, key, body string, want int, into any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		return fmt.Errorf("status %d: %s", resp.StatusCode, bytes.TrimSpace(b))
	}
	if into != nil {
		return json.Unmarshal(b, into)
	}
	return nil
}

type benchServer struct {
	base, key string
	catchUp   func(context.Context) (time.Duration, error)
	lags      func() (map[string]*dto.Histogram, error)
	close     func()
}

// startBenchServer runs the real handler tree on a loopback listener over a
// scratch store, with a fresh API key whose rate limit cannot throttle the
// load (the limiter is measured by its own tests, not here).
func startBenchServer(ctx context.Context, env *environment, store string) (*benchServer, error) {
	vars := map[string]string{}
	var cleanup []func()
	switch store {
	case "sqlite":
		dir, err := os.MkdirTemp("", "payledger-bench-")
		if err != nil {
			return nil, err
		}
		cleanup = append(cleanup, func() { os.RemoveAll(dir) })
		vars["PAYLEDGER_DATA_DIR"] = dir
	case "postgres":
		dbURL, drop, err := scratchPostgres(ctx, env.getenv("PAYLEDGER_TEST_POSTGRES_URL"))
		if err != nil {
			return nil, err
		}
		cleanup = append(cleanup, drop)
		vars["PAYLEDGER_DATABASE_URL"] = dbURL
	default:
		return nil, fmt.Errorf("%w: --store must be sqlite or postgres", errUsage)
	}
	runCleanup := func() {
		for i := len(cleanup) - 1; i >= 0; i-- {
			cleanup[i]()
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		runCleanup()
		return nil, err
	}
	vars["PAYLEDGER_HTTP_ADDR"] = ln.Addr().String()
	benchEnv := &environment{stdout: env.stdout, stderr: io.Discard, getenv: func(k string) string {
		if v, ok := vars[k]; ok {
			return v
		}
		if strings.HasPrefix(k, "PAYLEDGER_") {
			return ""
		}
		return env.getenv(k)
	}}
	a, err := open(ctx, benchEnv)
	if err != nil {
		ln.Close()
		runCleanup()
		return nil, err
	}
	a.unlimited = true
	h, jobs, err := a.handler(ctx)
	if err != nil {
		a.Close()
		ln.Close()
		runCleanup()
		return nil, err
	}
	_, secret, err := a.keys.Create(ctx, "bench", "full")
	if err != nil {
		a.Close()
		ln.Close()
		runCleanup()
		return nil, err
	}
	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, job := range jobs {
		wg.Add(1)
		go func() { defer wg.Done(); _ = job(runCtx) }()
	}
	srv := &http.Server{Handler: h}
	go func() { _ = srv.Serve(ln) }()
	return &benchServer{
		base: "http://" + ln.Addr().String(),
		key:  secret,
		catchUp: func(ctx context.Context) (time.Duration, error) {
			t0 := time.Now()
			head, err := a.be.Head(ctx)
			if err != nil {
				return 0, err
			}
			err = a.set.WaitFor(ctx, head)
			return time.Since(t0), err
		},
		lags: func() (map[string]*dto.Histogram, error) { return lagHistograms(a.reg) },
		close: func() {
			_ = srv.Close()
			cancel()
			wg.Wait()
			a.Close()
			runCleanup()
		},
	}, nil
}

// scratchPostgres creates a database for one bench run and returns its URL
// and a function that drops it.
func scratchPostgres(ctx context.Context, admin string) (string, func(), error) {
	if admin == "" {
		admin = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	db, err := sql.Open("postgres", admin)
	if err != nil {
		return "", nil, err
	}
	name := fmt.Sprintf("payledger_bench_%d", os.Getpid())
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		db.Close()
		return "", nil, fmt.Errorf("create scratch database on %s: %w", admin, err)
	}
	u, err := url.Parse(admin)
	if err != nil {
		db.Close()
		return "", nil, err
	}
	u.Path = "/" + name
	return u.String(), func() {
		_, _ = db.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
		db.Close()
	}, nil
}
