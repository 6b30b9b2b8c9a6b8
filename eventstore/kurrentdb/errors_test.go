package kurrentdb_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/payledger/payledger/eventstore"
	"github.com/payledger/payledger/eventstore/kurrentdb"
	"github.com/payledger/payledger/eventstore/kurrentdb/internal/esdbfake"
	"github.com/payledger/payledger/eventstore/storetest"
)

func esdbCode(err error) (esdb.ErrorCode, bool) {
	var esdbErr *esdb.Error
	if !errors.As(err, &esdbErr) {
		return 0, false
	}
	return esdbErr.Code(), true
}

func TestParseURL(t *testing.T) {
	t.Parallel()
	cases := []struct {
		url     string
		wantErr bool
		addr    string
		tls     bool
	}{
		{"esdb://127.0.0.1:2113?tls=false", false, "127.0.0.1:2113", false},
		{"kurrentdb://kurrentdb:2113?tls=false", false, "kurrentdb:2113", false},
		{"kurrentdb+discover://cluster.local:2113", false, "cluster.local:2113", true},
		{"kurrent://node:2113?tls=false", false, "node:2113", false},
		{"esdb://node1:2113,node2:2113,node3:2113?tls=false", false, "", false},
		{"postgres://localhost/x", true, "", false},
		{"", true, "", false},
	}
	for _, tc := range cases {
		cfg, err := kurrentdb.ParseURL(tc.url)
		if tc.wantErr {
			if err == nil {
				t.Errorf("ParseURL(%q) succeeded, want an error", tc.url)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseURL(%q): %v", tc.url, err)
			continue
		}
		if tc.addr != "" && cfg.Address != tc.addr {
			t.Errorf("ParseURL(%q).Address = %q, want %q", tc.url, cfg.Address, tc.addr)
		}
		if cfg.DisableTLS == tc.tls {
			t.Errorf("ParseURL(%q).DisableTLS = %v, want %v", tc.url, cfg.DisableTLS, !tc.tls)
		}
	}
}

func TestOpenKurrentScheme(t *testing.T) {
	t.Parallel()
	srv := esdbfake.Start(t)
	s, err := kurrentdb.Open(ctxFor(t), "kurrentdb://"+srv.Addr()+"?tls=false", kurrentdb.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Append(ctxFor(t), "k", eventstore.NoStream, storetest.Event("x", `{}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := kurrentdb.Open(ctxFor(t), srv.URL(), kurrentdb.WithStreamPrefix("$sys-")); err == nil {
		t.Fatal("Open with a $ prefix succeeded")
	}
}

// TestServerWrongExpectedVersion makes the server, not the store's own
// check, refuse the write: another store appended behind this one's back,
// so its cached head is stale.
func TestServerWrongExpectedVersion(t *testing.T) {
	t.Parallel()
	a, srv := openFake(t, "")
	b, err := kurrentdb.Open(ctxFor(t), srv.URL(), kurrentdb.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := ctxFor(t)
	if _, err := a.Append(ctx, "s", eventstore.NoStream, storetest.Event("x", `{}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Append(ctx, "s", eventstore.Exact(1), storetest.Event("x", `{"by":"b"}`)); err != nil {
		t.Fatal(err)
	}
	// a still believes the stream is at version 1.
	_, err = a.Append(ctx, "s", eventstore.Exact(1), storetest.Event("x", `{"by":"a"}`))
	if !errors.Is(err, eventstore.ErrWrongVersion) {
		t.Fatalf("stale exact append: error = %v, want ErrWrongVersion", err)
	}
	// An Any append from the stale store lands on the real head and keeps
	// the chain intact.
	res, err := a.Append(ctx, "s", eventstore.Any, storetest.Event("x", `{"by":"a"}`))
	if err != nil || res.NextExpected != 3 {
		t.Fatalf("stale Any append = %+v, %v; want version 3", res, err)
	}
	// b's cache is stale now; a re-append of a's event through b must be
	// recognised from the server's copy of the stream, not written again.
	evs, err := b.ReadStream(ctx, "s", 0)
	if err != nil || len(evs) != 3 {
		t.Fatalf("ReadStream = %d, %v", len(evs), err)
	}
	if err := eventstore.VerifyStream(evs); err != nil {
		t.Fatal(err)
	}
}

func TestReappendAcrossStores(t *testing.T) {
	t.Parallel()
	a, srv := openFake(t, "")
	b, err := kurrentdb.Open(ctxFor(t), srv.URL(), kurrentdb.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := ctxFor(t)
	evs := []eventstore.EventData{storetest.Event("x", `{"n":1}`), storetest.Event("x", `{"n":2}`)}
	first, err := a.Append(ctx, "r", eventstore.NoStream, evs...)
	if err != nil {
		t.Fatal(err)
	}
	// b never saw the stream: the lost-acknowledgement retry from another
	// process, with the expectation the caller had before the first try.
	for _, exp := range []eventstore.ExpectedVersion{eventstore.NoStream, eventstore.Any, eventstore.Exact(2)} {
		again, err := b.Append(ctx, "r", exp, evs...)
		if err != nil || again != first {
			t.Fatalf("re-append (%v) through another store = %+v, %v; want %+v", exp, again, err, first)
		}
	}
	if got, _ := b.ReadStream(ctx, "r", 0); len(got) != 2 {
		t.Fatalf("re-append wrote: %d events", len(got))
	}
}

func TestDeletedStream(t *testing.T) {
	t.Parallel()
	s, srv := openFake(t, "")
	ctx := ctxFor(t)
	if _, err := s.Append(ctx, "gone", eventstore.NoStream, storetest.Event("x", `{}`)); err != nil {
		t.Fatal(err)
	}
	srv.Tombstone("gone")
	if _, err := s.ReadStream(ctx, "gone", 0); !errors.Is(err, kurrentdb.ErrStreamDeleted) {
		t.Fatalf("ReadStream(tombstoned) error = %v, want ErrStreamDeleted", err)
	}
	if _, err := s.Append(ctx, "gone", eventstore.Any, storetest.Event("x", `{}`)); !errors.Is(err, kurrentdb.ErrStreamDeleted) {
		t.Fatalf("Append(tombstoned) error = %v, want ErrStreamDeleted", err)
	}
	if _, err := s.Append(ctx, "gone", eventstore.Exact(1), storetest.Event("x", `{}`)); !errors.Is(err, kurrentdb.ErrStreamDeleted) {
		t.Fatalf("Append(tombstoned, cached head) error = %v, want ErrStreamDeleted", err)
	}
}

// TestErrorsReturned checks that transport and server failures come back
// as errors (keeping the client's error for errors.As), never as an empty
// or partial result, and never as a version conflict.
func TestErrorsReturned(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		fault  esdbfake.Fault
		op     string // "stream", "all", "append"
		code   esdb.ErrorCode
		stored int // events already in stream "e" before the operation
	}{
		{"read unavailable before any event", esdbfake.Fault{Method: "Read", Err: status.Error(codes.Unavailable, "node down")}, "stream", esdb.ErrorUnavailable, 3},
		{"read internal after two events", esdbfake.Fault{Method: "Read", After: 2, Err: status.Error(codes.Internal, "boom")}, "stream", esdb.ErrorCodeUnknown, 3},
		{"read missing stream unavailable", esdbfake.Fault{Method: "Read", Err: status.Error(codes.Unavailable, "node down")}, "stream", esdb.ErrorUnavailable, 0},
		{"read access denied", esdbfake.Fault{Method: "Read", Err: status.Error(codes.PermissionDenied, "no")}, "stream", esdb.ErrorCodeAccessDenied, 3},
		{"read deadline", esdbfake.Fault{Method: "Read", After: 1, Err: status.Error(codes.DeadlineExceeded, "slow")}, "stream", esdb.ErrorCodeDeadlineExceeded, 3},
		{"$all unavailable after one event", esdbfake.Fault{Method: "Read", After: 1, Err: status.Error(codes.Unavailable, "node down")}, "all", esdb.ErrorUnavailable, 3},
		{"append unavailable", esdbfake.Fault{Method: "Append", Err: status.Error(codes.Unavailable, "node down")}, "append", esdb.ErrorUnavailable, 3},
		{"append internal", esdbfake.Fault{Method: "Append", Err: status.Error(codes.Internal, "boom")}, "append", esdb.ErrorCodeUnknown, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, srv := openFake(t, "")
			ctx := ctxFor(t)
			for i := 0; i < tc.stored; i++ {
				if _, err := s.Append(ctx, "e", eventstore.Any, storetest.Event("x", fmt.Sprintf(`{"i":%d}`, i))); err != nil {
					t.Fatal(err)
				}
			}
			srv.InjectFault(tc.fault)
			var err error
			var n int
			switch tc.op {
			case "stream":
				var evs []eventstore.RecordedEvent
				evs, err = s.ReadStream(ctx, "e", 0)
				n = len(evs)
			case "all":
				var evs []eventstore.RecordedEvent
				evs, err = s.ReadAll(ctx, eventstore.Start, 10)
				n = len(evs)
			case "append":
				_, err = s.Append(ctx, "e", eventstore.Exact(uint64(tc.stored)), storetest.Event("x", `{}`))
			}
			if err == nil {
				t.Fatalf("%s succeeded with %d events under fault %v, want the error", tc.op, n, tc.fault.Err)
			}
			if n != 0 {
				t.Fatalf("%s returned %d events with its error", tc.op, n)
			}
			if errors.Is(err, eventstore.ErrWrongVersion) || errors.Is(err, kurrentdb.ErrStreamDeleted) {
				t.Fatalf("error %v mapped to a sentinel it is not", err)
			}
			if code, ok := esdbCode(err); !ok || code != tc.code {
				t.Fatalf("error %v: client code %v (found %v), want %v", err, code, ok, tc.code)
			}
			if !strings.Contains(err.Error(), "eventstore/kurrentdb") {
				t.Fatalf("error %q does not say where it comes from", err)
			}
			// The fault was one-off: the store works again, and a failed
			// append wrote nothing.
			evs := readEventually(t, s, "e", tc.stored)
			if len(evs) != tc.stored {
				t.Fatalf("after the fault the stream has %d events, want %d", len(evs), tc.stored)
			}
		})
	}
}

// readEventually reads a stream, retrying while the client reconnects
// after an Unavailable fault (it rediscovers the node on the next call).
func readEventually(t *testing.T, s *kurrentdb.Store, stream string, want int) []eventstore.RecordedEvent {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		evs, err := s.ReadStream(ctxFor(t), stream, 0)
		if err == nil && len(evs) >= want || time.Now().After(deadline) {
			if err != nil {
				t.Fatalf("ReadStream(%s): %v", stream, err)
			}
			return evs
		}
		time.Sleep(10 * time.Millisecond) // waiting on the client's reconnect, which signals nothing
	}
}

// TestClientRenewedAfterDiscoveryGaveUp stops the node long enough for the
// client's discovery to give up (one attempt), which closes that client for
// good; the store must build a new one once the node is back.
func TestClientRenewedAfterDiscoveryGaveUp(t *testing.T) {
	t.Parallel()
	s, srv := openFake(t, "&maxDiscoverAttempts=1&discoveryInterval=1&gossipTimeout=1")
	ctx := ctxFor(t)
	if _, err := s.Append(ctx, "d", eventstore.NoStream, storetest.Event("x", `{}`)); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	// The first failure makes the client rediscover; rediscovery fails and
	// closes the client; every call fails while the node is down.
	for i := 0; i < 3; i++ {
		if _, err := s.ReadStream(ctx, "d", 0); err == nil {
			t.Fatal("ReadStream succeeded while the node is down")
		}
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	evs := readEventually(t, s, "d", 1)
	if len(evs) != 1 {
		t.Fatalf("after restart: %d events", len(evs))
	}
	if _, err := s.Append(ctx, "d", eventstore.Exact(1), storetest.Event("x", `{}`)); err != nil {
		t.Fatalf("append after restart: %v", err)
	}
}

// TestServerIdempotentWrite covers the lost acknowledgement retried from a
// process whose cached head predates the first attempt: the store sends
// the old revision, and the server recognises its own earlier write by the
// event ids and answers with the original result, writing nothing.
func TestServerIdempotentWrite(t *testing.T) {
	t.Parallel()
	a, srv := openFake(t, "")
	b, err := kurrentdb.Open(ctxFor(t), srv.URL(), kurrentdb.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := ctxFor(t)
	if _, err := a.Append(ctx, "i", eventstore.NoStream, storetest.Event("x", `{}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.ReadStream(ctx, "i", 0); err != nil {
		t.Fatal(err)
	}
	evs := []eventstore.EventData{storetest.Event("y", `{"n":1}`), storetest.Event("y", `{"n":2}`)}
	first, err := b.Append(ctx, "i", eventstore.Exact(1), evs...)
	if err != nil {
		t.Fatal(err)
	}
	again, err := a.Append(ctx, "i", eventstore.Exact(1), evs...) // a still caches version 1
	if err != nil || again != first {
		t.Fatalf("retry through a stale store = %+v, %v; want the first result %+v", again, err, first)
	}
	got, err := a.ReadStream(ctx, "i", 0)
	if err != nil || len(got) != 3 {
		t.Fatalf("stream has %d events (%v), want 3", len(got), err)
	}
	if err := eventstore.VerifyStream(got); err != nil {
		t.Fatal(err)
	}
	// a's cache now matches the server: the next append chains correctly.
	if _, err := a.Append(ctx, "i", eventstore.Exact(3), storetest.Event("z", `{}`)); err != nil {
		t.Fatal(err)
	}
	got, _ = b.ReadStream(ctx, "i", 0)
	if err := eventstore.VerifyStream(got); err != nil || len(got) != 4 {
		t.Fatalf("after the retry: %d events, chain %v", len(got), err)
	}
}
