package scheduler_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/payledger/payledger/domain/invoice"
	"github.com/payledger/payledger/internal/paytest"
	"github.com/payledger/payledger/scheduler"
)

func load(t *testing.T, env *paytest.Env, id string) invoice.State {
	t.Helper()
	st, err := env.Service.Load(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func count(t *testing.T, env *paytest.Env, id, typ string) int {
	t.Helper()
	_, evs, err := env.Service.History(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range evs {
		if e.EventType() == typ {
			n++
		}
	}
	return n
}

func tick(t *testing.T, env *paytest.Env, s *scheduler.Scheduler) int {
	t.Helper()
	env.MustSync(t)
	n, err := s.Tick(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestExpiresWhatIsDue(t *testing.T) {
	t.Parallel()
	for _, kind := range paytest.Backends {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			env := paytest.New(t, kind)
			s := scheduler.New(scheduler.Options{Ledger: env.Service, Source: scheduler.FromDeadlines(env.Deadlines)})

			a, _ := env.Invoice(t, "10.00", "sandbox") // link 10 min, invoice 24 h
			if n := tick(t, env, s); n != 0 {
				t.Fatalf("nothing is due yet, %d expired", n)
			}
			env.Clock.Advance(11 * time.Minute)
			b, _ := env.Invoice(t, "20.00", "sandbox") // issued now: not due
			if n := tick(t, env, s); n != 1 {
				t.Fatalf("want a's link expired, got %d", n)
			}
			if st := load(t, env, a); st.Links[0].State != invoice.LinkStateExpired || st.Status != invoice.StatusOpen {
				t.Fatalf("a: link %s, invoice %s", st.Links[0].State, st.Status)
			}
			if st := load(t, env, b); st.Links[0].State != invoice.LinkStateActive {
				t.Fatalf("b's link expired early: %s", st.Links[0].State)
			}
			// A second pass (the read model may lag) writes nothing more.
			if n := tick(t, env, s); n != 0 {
				t.Fatalf("second pass expired %d", n)
			}
			env.Clock.Advance(25 * time.Hour)
			// b's link and both invoices (one command each).
			if n := tick(t, env, s); n != 3 {
				t.Fatalf("want b's link and both invoices expired, got %d", n)
			}
			for _, id := range []string{a, b} {
				st := load(t, env, id)
				if st.Status != invoice.StatusExpired || count(t, env, id, invoice.TypeExpired) != 1 {
					t.Fatalf("%s: %s", id, st.Status)
				}
			}
			if st := load(t, env, b); st.Links[0].State != invoice.LinkStateExpired {
				t.Fatalf("b's link: %s", st.Links[0].State)
			}
		})
	}
}

// Nothing lives in the scheduler's memory: a new process on the same
// store expires what the old one left pending.
func TestRestartPicksUpPendingDeadlines(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	clock := paytest.NewClock(time.Now().UTC().Truncate(time.Second))
	var id string
	t.Run("before", func(t *testing.T) {
		store := paytest.OpenStore(t, "sqlite", dir)
		env := paytest.Open(t, store, clock)
		id, _ = env.Invoice(t, "10.00", "sandbox")
		env.MustSync(t)
		s := scheduler.New(scheduler.Options{Ledger: env.Service, Source: scheduler.FromDeadlines(env.Deadlines)})
		if n := tick(t, env, s); n != 0 {
			t.Fatalf("expired %d before due", n)
		}
	})
	clock.Advance(25 * time.Hour)
	store := paytest.OpenStore(t, "sqlite", dir)
	env := paytest.Open(t, store, clock)
	s := scheduler.New(scheduler.Options{Ledger: env.Service, Source: scheduler.FromDeadlines(env.Deadlines)})
	if n := tick(t, env, s); n != 2 { // the link and the invoice
		t.Fatalf("after restart: %d expired", n)
	}
	if st := load(t, env, id); st.Status != invoice.StatusExpired || st.Links[0].State != invoice.LinkStateExpired {
		t.Fatalf("after restart: %s / %s", st.Status, st.Links[0].State)
	}
}

// manualTimer hands Run's sleeps to the test.
type manualTimer struct {
	mu    sync.Mutex
	waits []time.Duration
	ch    chan time.Time
}

func (m *manualTimer) After(d time.Duration) <-chan time.Time {
	m.mu.Lock()
	m.waits = append(m.waits, d)
	m.mu.Unlock()
	return m.ch
}

func TestRunSleepsUntilTheNextDeadline(t *testing.T) {
	t.Parallel()
	env := paytest.New(t, "sqlite")
	id, _ := env.Invoice(t, "10.00", "sandbox")
	env.MustSync(t)
	timer := &manualTimer{ch: make(chan time.Time)}
	s := scheduler.New(scheduler.Options{
		Ledger: env.Service, Source: scheduler.FromDeadlines(env.Deadlines),
		Interval: time.Hour, After: timer.After,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	// Run asks to sleep until the link's deadline (10 min), not the hour.
	timer.ch <- env.Clock.Now() // completes the first sleep (Run had to be waiting in it)
	timer.mu.Lock()
	first := timer.waits[0]
	timer.mu.Unlock()
	if first > 10*time.Minute || first < 9*time.Minute {
		t.Fatalf("first sleep %s, want ≈10 min", first)
	}
	env.Clock.Advance(10 * time.Minute)
	s.Wake()
	ctx2, cancel2 := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel2()
	for load(t, env, id).Links[0].State != invoice.LinkStateExpired {
		select {
		case timer.ch <- env.Clock.Now():
		case <-ctx2.Done():
			t.Fatal("the link was never expired by Run")
		}
	}
}
