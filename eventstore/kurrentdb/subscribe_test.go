package kurrentdb_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/payledger/payledger/eventstore"
	"github.com/payledger/payledger/eventstore/kurrentdb"
	"github.com/payledger/payledger/eventstore/storetest"
)

// projection records what a subscription delivered, as a read model that
// stores its checkpoint with each event would see it.
type projection struct {
	mu        sync.Mutex
	positions []eventstore.Position
	ids       []string
	caughtUp  int
	changed   chan struct{}
}

func newProjection() *projection { return &projection{changed: make(chan struct{}, 1)} }

func (p *projection) handler() kurrentdb.Handler {
	return kurrentdb.Handler{
		Event: func(e eventstore.RecordedEvent) error {
			p.mu.Lock()
			p.positions = append(p.positions, e.Position)
			p.ids = append(p.ids, e.ID)
			p.mu.Unlock()
			p.signal()
			return nil
		},
		CaughtUp: func() {
			p.mu.Lock()
			p.caughtUp++
			p.mu.Unlock()
			p.signal()
		},
	}
}

func (p *projection) signal() {
	select {
	case p.changed <- struct{}{}:
	default:
	}
}

// waitFor blocks until the projection holds n events (or fails the test).
func (p *projection) waitFor(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		p.mu.Lock()
		got := len(p.ids)
		ids := append([]string(nil), p.ids...)
		p.mu.Unlock()
		if got >= n {
			return ids
		}
		select {
		case <-p.changed:
		case <-deadline:
			t.Fatalf("projection has %d events, want %d", got, n)
		}
	}
}

// follow runs Follow in the background until the test ends.
func follow(t *testing.T, s *kurrentdb.Store, from eventstore.Position, h kurrentdb.Handler) <-chan error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Follow(ctx, from, h) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Follow returned %v, want context.Canceled", err)
		}
	})
	return done
}

func appendN(t *testing.T, s *kurrentdb.Store, n int, tag string) []string {
	t.Helper()
	var ids []string
	for i := 0; i < n; i++ {
		e := storetest.Event("x", fmt.Sprintf(`{"tag":%q,"i":%d}`, tag, i))
		if _, err := s.Append(ctxFor(t), fmt.Sprintf("sub-%s-%d", tag, i%3), eventstore.Any, e); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.ID)
	}
	return ids
}

// assertExactlyOnce checks the projection saw want, in order, once each,
// with strictly increasing positions.
func (p *projection) assertExactlyOnce(t *testing.T, want []string) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.ids) != len(want) {
		t.Fatalf("projection saw %d events, want %d", len(p.ids), len(want))
	}
	for i := range want {
		if p.ids[i] != want[i] {
			t.Fatalf("event %d: got %s, want %s (lost, duplicated or reordered)", i, p.ids[i], want[i])
		}
		if i > 0 && !p.positions[i-1].Less(p.positions[i]) {
			t.Fatalf("position %v at %d not after %v", p.positions[i], i, p.positions[i-1])
		}
	}
}

func TestSubscriptionDroppedMidStreamResumes(t *testing.T) {
	t.Parallel()
	s, srv := openFake(t, "")
	want := appendN(t, s, 40, "stored")
	srv.DropSubscriptionsAfter(7) // every subscription dies after 7 events
	p := newProjection()
	follow(t, s, eventstore.Start, p.handler())
	p.waitFor(t, 40)
	// Live events arrive through subscriptions that keep dropping too.
	want = append(want, appendN(t, s, 20, "live")...)
	p.waitFor(t, 60)
	p.assertExactlyOnce(t, want)
	if n := srv.Subscriptions(); n < 60/7 {
		t.Fatalf("%d subscriptions for 60 events dropped every 7: the drops did not happen", n)
	}
}

func TestSubscriptionDroppedWhileLive(t *testing.T) {
	t.Parallel()
	s, srv := openFake(t, "")
	want := appendN(t, s, 5, "a")
	p := newProjection()
	follow(t, s, eventstore.Start, p.handler())
	p.waitFor(t, 5)
	for round := 0; round < 3; round++ {
		srv.DropSubscriptions()
		want = append(want, appendN(t, s, 4, fmt.Sprintf("r%d", round))...)
		p.waitFor(t, len(want))
	}
	p.assertExactlyOnce(t, want)
	if srv.Subscriptions() < 2 {
		t.Fatal("no resubscription happened")
	}
}

func TestSubscriptionSurvivesNodeRestart(t *testing.T) {
	t.Parallel()
	renewed := make(chan struct{}, 1)
	logs := slog.New(signalHandler{msg: "using a new client", ch: renewed})
	s, srv := openFake(t, "&maxDiscoverAttempts=1&discoveryInterval=1&gossipTimeout=1", kurrentdb.WithLogger(logs))
	want := appendN(t, s, 6, "before")
	p := newProjection()
	follow(t, s, eventstore.Start, p.handler())
	p.waitFor(t, 6)
	srv.Stop()
	// While the node is down the subscription fails over and over and its
	// client gives up discovering after one attempt; once the node is back
	// the store must build a new client and resume.
	select {
	case <-renewed:
	case <-time.After(20 * time.Second):
		t.Fatal("the store never replaced the client that gave up")
	}
	before := srv.Subscriptions()
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	readEventually(t, s, "sub-before-0", 2) // the first call after the restart reconnects
	want = append(want, appendN(t, s, 6, "after")...)
	p.waitFor(t, 12)
	p.assertExactlyOnce(t, want)
	if srv.Subscriptions() <= before {
		t.Fatal("no resubscription after the restart")
	}
}

func TestSubscribeFromPosition(t *testing.T) {
	t.Parallel()
	s, _ := openFake(t, "")
	ids := appendN(t, s, 10, "p")
	all, err := s.ReadAll(ctxFor(t), eventstore.Start, 100)
	if err != nil || len(all) != 10 {
		t.Fatalf("ReadAll = %d, %v", len(all), err)
	}
	p := newProjection()
	follow(t, s, all[3].Position, p.handler())
	p.waitFor(t, 6)
	p.assertExactlyOnce(t, ids[4:])
}

// TestSubscriptionSkipsSystemEvents writes server-side events with a raw
// client ($-prefixed stream and type) between ledger events.
func TestSubscriptionSkipsSystemEvents(t *testing.T) {
	t.Parallel()
	s, srv := openFake(t, "")
	cfg, _ := esdb.ParseConnectionString(srv.URL())
	cfg.Logger = esdb.NoopLogging()
	raw, err := esdb.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	system := func(stream, typ string) {
		t.Helper()
		if _, err := raw.AppendToStream(ctxFor(t), stream, esdb.AppendToStreamOptions{}, esdb.EventData{EventID: uuid.New(), EventType: typ, ContentType: esdb.ContentTypeJson, Data: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	want := appendN(t, s, 2, "a")
	system("$stats-127.0.0.1:2113", "$statsCollected")
	system("$$invoice-1", "$metadata")
	system("$projections-x", "ProjectionUpdated") // system stream, ordinary type
	system("ordinary-stream", "$>")               // link event in a user stream
	want = append(want, appendN(t, s, 2, "b")...)
	system("$stats-127.0.0.1:2113", "$statsCollected") // after the last ledger event

	p := newProjection()
	checkpoints := make(chan eventstore.Position, 16)
	h := p.handler()
	h.Checkpoint = func(pos eventstore.Position) error { checkpoints <- pos; return nil }
	follow(t, s, eventstore.Start, h)
	p.waitFor(t, 4)
	p.assertExactlyOnce(t, want)
	// The filter skipped the trailing system event; the server's
	// checkpoint tells the projection it may move its checkpoint past it.
	select {
	case pos := <-checkpoints:
		p.mu.Lock()
		lastLedger := p.positions[len(p.positions)-1]
		p.mu.Unlock()
		if !lastLedger.Less(pos) {
			t.Fatalf("checkpoint %v not after the last ledger event %v", pos, lastLedger)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no checkpoint past the filtered system event")
	}
	all, err := s.ReadAll(ctxFor(t), eventstore.Start, 100)
	if err != nil || len(all) != 4 {
		t.Fatalf("ReadAll returned %d events, %v; want the 4 ledger events only", len(all), err)
	}
	p.mu.Lock()
	caughtUp := p.caughtUp
	p.mu.Unlock()
	if caughtUp == 0 {
		t.Fatal("CaughtUp was never called")
	}
}

func TestFollowHandlerErrorStops(t *testing.T) {
	t.Parallel()
	s, _ := openFake(t, "")
	appendN(t, s, 3, "h")
	boom := errors.New("projection failed")
	n := 0
	err := s.Follow(ctxFor(t), eventstore.Start, kurrentdb.Handler{Event: func(eventstore.RecordedEvent) error {
		if n++; n == 2 {
			return boom
		}
		return nil
	}})
	if !errors.Is(err, boom) || n != 2 {
		t.Fatalf("Follow = %v after %d events, want the handler's error after 2", err, n)
	}
}

func TestFollowAfterClose(t *testing.T) {
	t.Parallel()
	s, _ := openFake(t, "")
	s.Close()
	if err := s.Subscribe(ctxFor(t), eventstore.Start, func(eventstore.RecordedEvent) error { return nil }); !errors.Is(err, kurrentdb.ErrClosed) {
		t.Fatalf("Subscribe on a closed store = %v, want ErrClosed", err)
	}
	if _, err := s.ReadAll(ctxFor(t), eventstore.Start, 1); !errors.Is(err, kurrentdb.ErrClosed) {
		t.Fatalf("ReadAll on a closed store = %v, want ErrClosed", err)
	}
}

// signalHandler is a slog handler that signals when a record's message
// contains msg, so a test can wait for something only the log reports.
type signalHandler struct {
	msg string
	ch  chan struct{}
}

func (h signalHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h signalHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h signalHandler) WithGroup(string) slog.Handler            { return h }
func (h signalHandler) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, h.msg) {
		select {
		case h.ch <- struct{}{}:
		default:
		}
	}
	return nil
}
