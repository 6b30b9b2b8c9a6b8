package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/payledger/payledger/eventstore"
)

// Run runs the conformance suite. newStore must return an empty store of
// its own (subtests run in parallel and read $all); it should register its
// own cleanup with t.Cleanup.
func Run(t *testing.T, newStore func(t *testing.T) eventstore.Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, s eventstore.Store)
	}{
		{"ExpectedVersion", testExpectedVersion},
		{"EmptyAppendChecksVersion", testEmptyAppend},
		{"MissingStreamReadsEmpty", testMissingStream},
		{"RoundTripExactBytes", testRoundTrip},
		{"InvalidInput", testInvalidInput},
		{"ReadStreamFrom", testReadStreamFrom},
		{"ReadAllPaging", testReadAllPaging},
		{"LargeEvents", testLargeEvents},
		{"ManyEventsInOneAppend", testManyEvents},
		{"IdempotentReappend", testIdempotentReappend},
		{"ConcurrentOneStream", testConcurrentOneStream},
		{"ConcurrentManyStreams", testConcurrentManyStreams},
		{"ReadAllTailUnderConcurrentCommits", testReadAllTail},
		{"HashChain", testHashChain},
		{"Changed", testChanged},
		{"ReplayAll", testReplayAll},
		{"ReplayAllUnderConcurrentCommits", testReplayAllTail},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newStore(t))
		})
	}
}

func ctxFor(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// Event returns a valid event with a fresh id and a small JSON body.
func Event(typ string, body string) eventstore.EventData {
	return eventstore.EventData{ID: uuid.NewString(), Type: typ, Data: []byte(body)}
}

func events(n int, typ string) []eventstore.EventData {
	out := make([]eventstore.EventData, n)
	for i := range out {
		out[i] = Event(typ, fmt.Sprintf(`{"n":%d}`, i+1))
	}
	return out
}

func mustAppend(t *testing.T, s eventstore.Store, stream string, exp eventstore.ExpectedVersion, evs ...eventstore.EventData) eventstore.AppendResult {
	t.Helper()
	res, err := s.Append(ctxFor(t), stream, exp, evs...)
	if err != nil {
		t.Fatalf("Append(%s, %v): %v", stream, exp, err)
	}
	return res
}

func mustRead(t *testing.T, s eventstore.Store, stream string, from uint64) []eventstore.RecordedEvent {
	t.Helper()
	evs, err := s.ReadStream(ctxFor(t), stream, from)
	if err != nil {
		t.Fatalf("ReadStream(%s, %d): %v", stream, from, err)
	}
	return evs
}

// readAll pages through $all with the given batch size until it has at
// least want events. A store may hold back committed events for a while (a
// transaction anywhere on a PostgreSQL server that is still running holds
// back everything that committed after it began), so the suite polls with a
// deadline instead of expecting read-your-writes from $all.
func readAll(t *testing.T, s eventstore.Store, batch, want int) []eventstore.RecordedEvent {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		out := readAllOnce(t, s, batch)
		if len(out) >= want || time.Now().After(deadline) {
			return out
		}
		select {
		case <-s.Changed():
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func readAllOnce(t *testing.T, s eventstore.Store, batch int) []eventstore.RecordedEvent {
	t.Helper()
	var out []eventstore.RecordedEvent
	pos := eventstore.Start
	for {
		evs, err := s.ReadAll(ctxFor(t), pos, batch)
		if err != nil {
			t.Fatalf("ReadAll(%v, %d): %v", pos, batch, err)
		}
		if len(evs) > batch {
			t.Fatalf("ReadAll returned %d events for limit %d", len(evs), batch)
		}
		out = append(out, evs...)
		if len(evs) < batch {
			return out
		}
		pos = evs[len(evs)-1].Position
	}
}

// assertGlobalOrder checks that positions strictly increase and that each
// stream's events appear in version order.
func assertGlobalOrder(t *testing.T, evs []eventstore.RecordedEvent) {
	t.Helper()
	last := map[string]uint64{}
	for i, e := range evs {
		if i > 0 && !evs[i-1].Position.Less(e.Position) {
			t.Fatalf("$all position %v at %d not after %v", e.Position, i, evs[i-1].Position)
		}
		if e.StreamVersion != last[e.Stream]+1 {
			t.Fatalf("$all: stream %s version %d after %d", e.Stream, e.StreamVersion, last[e.Stream])
		}
		last[e.Stream] = e.StreamVersion
	}
}

func testExpectedVersion(t *testing.T, s eventstore.Store) {
	type step struct {
		exp     eventstore.ExpectedVersion
		wantErr bool
	}
	cases := []struct {
		name  string
		setup int // events already in the stream
		step  step
		want  uint64 // version after a successful append of 2 events
	}{
		{"any on missing", 0, step{eventstore.Any, false}, 2},
		{"any on existing", 3, step{eventstore.Any, false}, 5},
		{"no-stream on missing", 0, step{eventstore.NoStream, false}, 2},
		{"no-stream on existing", 3, step{eventstore.NoStream, true}, 0},
		{"exact(0) on missing", 0, step{eventstore.Exact(0), false}, 2},
		{"exact(0) on existing", 1, step{eventstore.Exact(0), true}, 0},
		{"stream-exists on missing", 0, step{eventstore.StreamExists, true}, 0},
		{"stream-exists on existing", 3, step{eventstore.StreamExists, false}, 5},
		{"exact on matching", 3, step{eventstore.Exact(3), false}, 5},
		{"exact behind", 3, step{eventstore.Exact(2), true}, 0},
		{"exact ahead", 3, step{eventstore.Exact(4), true}, 0},
		{"exact on missing", 0, step{eventstore.Exact(1), true}, 0},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			stream := fmt.Sprintf("ev-%d-%s", i, uuid.NewString()[:8])
			if tc.setup > 0 {
				mustAppend(t, s, stream, eventstore.NoStream, events(tc.setup, "setup")...)
			}
			res, err := s.Append(ctxFor(t), stream, tc.step.exp, events(2, "step")...)
			got := mustRead(t, s, stream, 0)
			if tc.step.wantErr {
				if !errors.Is(err, eventstore.ErrWrongVersion) {
					t.Fatalf("Append(%v) error = %v, want ErrWrongVersion", tc.step.exp, err)
				}
				if len(got) != tc.setup {
					t.Fatalf("failed append wrote: stream has %d events, want %d", len(got), tc.setup)
				}
				return
			}
			if err != nil {
				t.Fatalf("Append(%v): %v", tc.step.exp, err)
			}
			if res.NextExpected != tc.want || uint64(len(got)) != tc.want {
				t.Fatalf("NextExpected = %d, stream length %d, want %d", res.NextExpected, len(got), tc.want)
			}
			if res.Position != got[len(got)-1].Position {
				t.Fatalf("AppendResult.Position = %v, last event at %v", res.Position, got[len(got)-1].Position)
			}
			if err := eventstore.VerifyStream(got); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func testEmptyAppend(t *testing.T, s eventstore.Store) {
	mustAppend(t, s, "empty-1", eventstore.NoStream, events(2, "x")...)
	if res, err := s.Append(ctxFor(t), "empty-1", eventstore.Exact(2)); err != nil || res.NextExpected != 2 {
		t.Fatalf("empty Append(Exact(2)) = %+v, %v; want version 2", res, err)
	}
	if _, err := s.Append(ctxFor(t), "empty-1", eventstore.Exact(1)); !errors.Is(err, eventstore.ErrWrongVersion) {
		t.Fatalf("empty Append(Exact(1)) error = %v, want ErrWrongVersion", err)
	}
	if _, err := s.Append(ctxFor(t), "empty-missing", eventstore.StreamExists); !errors.Is(err, eventstore.ErrWrongVersion) {
		t.Fatalf("empty Append(StreamExists) on missing stream error = %v, want ErrWrongVersion", err)
	}
}

func testMissingStream(t *testing.T, s eventstore.Store) {
	evs, err := s.ReadStream(ctxFor(t), "missing-"+uuid.NewString(), 0)
	if err != nil || len(evs) != 0 {
		t.Fatalf("ReadStream(missing) = %d events, %v; want 0, nil", len(evs), err)
	}
	all, err := s.ReadAll(ctxFor(t), eventstore.Start, 10)
	if err != nil || len(all) != 0 {
		t.Fatalf("ReadAll(empty store) = %d events, %v; want 0, nil", len(all), err)
	}
	mustAppend(t, s, "present", eventstore.NoStream, events(1, "x")...)
	if evs := mustRead(t, s, "present", 2); len(evs) != 0 {
		t.Fatalf("ReadStream past the end = %d events, want 0", len(evs))
	}
}

func testRoundTrip(t *testing.T, s eventstore.Store) {
	// Whitespace and key order are kept: the hash covers these bytes.
	data := []byte("{ \"b\" : 1,\n \"a\": [1, 2.50, \"\\u00e9\"] }")
	e := eventstore.EventData{
		ID:       strings.ToUpper(uuid.NewString()),
		Type:     "test.round_trip",
		Data:     data,
		Metadata: []byte(`{"correlation_id": "c-1", "idempotency_key":"k-1"}`),
	}
	before := time.Now().Add(-time.Minute)
	res := mustAppend(t, s, "rt", eventstore.NoStream, e)
	got := mustRead(t, s, "rt", 1)
	if len(got) != 1 {
		t.Fatalf("got %d events", len(got))
	}
	r := got[0]
	if r.ID != strings.ToLower(e.ID) {
		t.Errorf("ID = %q, want lowercase %q", r.ID, strings.ToLower(e.ID))
	}
	if r.Stream != "rt" || r.StreamVersion != 1 || r.Type != e.Type || r.Position != res.Position {
		t.Errorf("recorded = %+v", r)
	}
	if !bytes.Equal(r.Data, data) {
		t.Errorf("Data = %q, want byte-identical %q", r.Data, data)
	}
	if r.RecordedAt.Before(before) || r.RecordedAt.After(time.Now().Add(time.Minute)) {
		t.Errorf("RecordedAt = %v, not around now", r.RecordedAt)
	}
	var m map[string]string
	if err := json.Unmarshal(r.Metadata, &m); err != nil {
		t.Fatalf("metadata %q: %v", r.Metadata, err)
	}
	if m["correlation_id"] != "c-1" || m["idempotency_key"] != "k-1" || len(m["prev_hash"]) != 64 || len(m["hash"]) != 64 {
		t.Errorf("metadata = %q, want caller keys plus prev_hash and hash", r.Metadata)
	}
	all := readAll(t, s, 10, 1)
	if len(all) != 1 || !bytes.Equal(all[0].Data, data) || !bytes.Equal(all[0].Metadata, r.Metadata) || all[0].Position != r.Position {
		t.Errorf("ReadAll = %+v, want the same event as ReadStream", all)
	}
}

func testInvalidInput(t *testing.T, s eventstore.Store) {
	cases := []struct {
		name string
		e    eventstore.EventData
	}{
		{"metadata array", eventstore.EventData{ID: uuid.NewString(), Type: "x", Data: []byte(`{}`), Metadata: []byte(`[1]`)}},
		{"metadata reserved hash", eventstore.EventData{ID: uuid.NewString(), Type: "x", Data: []byte(`{}`), Metadata: []byte(`{"hash":"x"}`)}},
		{"metadata reserved prev_hash", eventstore.EventData{ID: uuid.NewString(), Type: "x", Data: []byte(`{}`), Metadata: []byte(`{"prev_hash":"x"}`)}},
		{"data not JSON", eventstore.EventData{ID: uuid.NewString(), Type: "x", Data: []byte(`{oops`)}},
		{"bad id", eventstore.EventData{ID: "not-a-uuid", Type: "x", Data: []byte(`{}`)}},
		{"no type", eventstore.EventData{ID: uuid.NewString(), Data: []byte(`{}`)}},
	}
	for _, tc := range cases {
		if _, err := s.Append(ctxFor(t), "invalid", eventstore.Any, tc.e); err == nil {
			t.Errorf("%s: Append succeeded, want an error", tc.name)
		}
	}
	if evs := mustRead(t, s, "invalid", 0); len(evs) != 0 {
		t.Fatalf("invalid appends wrote %d events", len(evs))
	}
	e := Event("x", `{}`)
	if _, err := s.Append(ctxFor(t), "invalid", eventstore.Any, e, e); !errors.Is(err, eventstore.ErrDuplicateEvent) {
		t.Fatalf("same id twice in one append: error = %v, want ErrDuplicateEvent", err)
	}
}

func testReadStreamFrom(t *testing.T, s eventstore.Store) {
	mustAppend(t, s, "from", eventstore.NoStream, events(5, "x")...)
	for _, tc := range []struct {
		from uint64
		want []uint64
	}{{0, []uint64{1, 2, 3, 4, 5}}, {1, []uint64{1, 2, 3, 4, 5}}, {3, []uint64{3, 4, 5}}, {5, []uint64{5}}, {6, nil}} {
		got := mustRead(t, s, "from", tc.from)
		var vs []uint64
		for _, e := range got {
			vs = append(vs, e.StreamVersion)
		}
		if fmt.Sprint(vs) != fmt.Sprint(tc.want) {
			t.Errorf("ReadStream(from %d) versions = %v, want %v", tc.from, vs, tc.want)
		}
	}
}

func testReadAllPaging(t *testing.T, s eventstore.Store) {
	for i := 0; i < 5; i++ {
		mustAppend(t, s, fmt.Sprintf("page-%d", i%2), eventstore.Any, events(5, "x")...)
	}
	whole := readAll(t, s, 1000, 25)
	if len(whole) != 25 {
		t.Fatalf("ReadAll = %d events, want 25", len(whole))
	}
	assertGlobalOrder(t, whole)
	for _, batch := range []int{1, 7, 10, 25} {
		paged := readAll(t, s, batch, len(whole))
		if len(paged) != len(whole) {
			t.Fatalf("paging by %d: %d events, want %d", batch, len(paged), len(whole))
		}
		for i := range paged {
			if paged[i].ID != whole[i].ID {
				t.Fatalf("paging by %d: event %d differs", batch, i)
			}
		}
	}
	rest, err := s.ReadAll(ctxFor(t), whole[9].Position, 100)
	if err != nil || len(rest) != 15 || rest[0].ID != whole[10].ID {
		t.Fatalf("ReadAll after the 10th = %d events, %v; want the last 15", len(rest), err)
	}
	if evs, err := s.ReadAll(ctxFor(t), whole[24].Position, 100); err != nil || len(evs) != 0 {
		t.Fatalf("ReadAll after the last = %d, %v; want 0", len(evs), err)
	}
}

func testLargeEvents(t *testing.T, s eventstore.Store) {
	big := make([]byte, 0, 512<<10+32)
	big = append(big, `{"blob":"`...)
	for len(big) < 512<<10 {
		big = append(big, "0123456789abcdef\\\"é"...)
	}
	big = append(big, `"}`...)
	e := eventstore.EventData{ID: uuid.NewString(), Type: "test.large", Data: big}
	mustAppend(t, s, "large", eventstore.NoStream, e, Event("test.small", `{}`))
	got := mustRead(t, s, "large", 0)
	if len(got) != 2 || !bytes.Equal(got[0].Data, big) {
		t.Fatalf("large event did not round-trip (%d events)", len(got))
	}
	if err := eventstore.VerifyStream(got); err != nil {
		t.Fatal(err)
	}
	all := readAll(t, s, 10, 2)
	if len(all) != 2 || !bytes.Equal(all[0].Data, big) {
		t.Fatal("large event did not round-trip through ReadAll")
	}
}

func testManyEvents(t *testing.T, s eventstore.Store) {
	for _, n := range []int{16, 17, 40} {
		stream := fmt.Sprintf("many-events-%d", n)
		mustAppend(t, s, stream, eventstore.NoStream, events(3, "x")...)
		res := mustAppend(t, s, stream, eventstore.Exact(3), events(n, "y")...)
		if res.NextExpected != uint64(3+n) {
			t.Fatalf("append of %d: NextExpected = %d, want %d", n, res.NextExpected, 3+n)
		}
		got := mustRead(t, s, stream, 0)
		if len(got) != 3+n || got[len(got)-1].Position != res.Position || string(got[3+n-1].Data) != fmt.Sprintf(`{"n":%d}`, n) {
			t.Fatalf("append of %d: read back %d events", n, len(got))
		}
		if err := eventstore.VerifyStream(got); err != nil {
			t.Fatal(err)
		}
	}
}

func testIdempotentReappend(t *testing.T, s eventstore.Store) {
	first := events(2, "x")
	first[0].Metadata = []byte(`{"idempotency_key":"k"}`)
	res := mustAppend(t, s, "idem", eventstore.NoStream, first...)
	// The same events again, whatever the expectation: the lost
	// acknowledgement case.
	for _, exp := range []eventstore.ExpectedVersion{eventstore.NoStream, eventstore.Any, eventstore.StreamExists, eventstore.Exact(2), eventstore.Exact(7)} {
		again, err := s.Append(ctxFor(t), "idem", exp, first...)
		if err != nil || again != res {
			t.Fatalf("re-append with %v = %+v, %v; want the earlier %+v", exp, again, err, res)
		}
	}
	mustAppend(t, s, "idem", eventstore.Exact(2), events(1, "y")...)
	again, err := s.Append(ctxFor(t), "idem", eventstore.Exact(0), first...)
	if err != nil || again != res {
		t.Fatalf("re-append after the stream moved on = %+v, %v; want the earlier %+v", again, err, res)
	}
	if n := len(mustRead(t, s, "idem", 0)); n != 3 {
		t.Fatalf("re-appends wrote: stream has %d events, want 3", n)
	}

	changed := first[1]
	changed.Data = []byte(`{"n":99}`)
	otherMeta := first[0]
	otherMeta.Metadata = []byte(`{"idempotency_key":"other"}`)
	cases := []struct {
		name   string
		stream string
		exp    eventstore.ExpectedVersion
		evs    []eventstore.EventData
	}{
		{"other content", "idem", eventstore.Any, []eventstore.EventData{first[0], changed}},
		{"other metadata", "idem", eventstore.Any, []eventstore.EventData{otherMeta, first[1]}},
		{"other stream", "idem-2", eventstore.NoStream, first},
		{"reordered", "idem", eventstore.Any, []eventstore.EventData{first[1], first[0]}},
		{"with a new event", "idem", eventstore.Exact(3), append(append([]eventstore.EventData(nil), first...), Event("z", `{}`))},
	}
	for _, tc := range cases {
		if _, err := s.Append(ctxFor(t), tc.stream, tc.exp, tc.evs...); !errors.Is(err, eventstore.ErrDuplicateEvent) {
			t.Errorf("%s: error = %v, want ErrDuplicateEvent", tc.name, err)
		}
	}
	if n := len(mustRead(t, s, "idem", 0)); n != 3 {
		t.Fatalf("rejected appends wrote: stream has %d events, want 3", n)
	}
	if n := len(mustRead(t, s, "idem-2", 0)); n != 0 {
		t.Fatalf("rejected append wrote %d events to idem-2", n)
	}
}

func testConcurrentOneStream(t *testing.T, s eventstore.Store) {
	const writers, rounds = 8, 8
	mustAppend(t, s, "race", eventstore.NoStream, Event("x", `{}`))
	wins := make([]int, rounds+2)
	for round := uint64(1); round <= rounds; round++ {
		var wg sync.WaitGroup
		start := make(chan struct{})
		results := make(chan error, writers)
		for w := 0; w < writers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, err := s.Append(ctxFor(t), "race", eventstore.Exact(round), Event("x", fmt.Sprintf(`{"w":%d}`, w)))
				results <- err
			}()
		}
		close(start)
		wg.Wait()
		close(results)
		for err := range results {
			switch {
			case err == nil:
				wins[round]++
			case !errors.Is(err, eventstore.ErrWrongVersion):
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if wins[round] != 1 {
			t.Fatalf("round %d (Exact(%d)): %d winners, want exactly 1", round, round, wins[round])
		}
	}
	got := mustRead(t, s, "race", 0)
	if len(got) != rounds+1 {
		t.Fatalf("stream has %d events, want %d", len(got), rounds+1)
	}
	if err := eventstore.VerifyStream(got); err != nil {
		t.Fatal(err)
	}
}

func testConcurrentManyStreams(t *testing.T, s eventstore.Store) {
	const writers, perWriter = 8, 12
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	ids := make(chan string, writers*perWriter*2)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var version [2]uint64
			for i := 0; i < perWriter; i++ {
				// Two streams per writer, alternating modes.
				k := i % 2
				stream := fmt.Sprintf("many-%d-%d", w, k)
				exp := eventstore.Exact(version[k])
				if i%4 == 3 {
					exp = eventstore.Any
				}
				evs := events(1+k, "x")
				res, err := s.Append(ctxFor(t), stream, exp, evs...)
				if err != nil {
					errs <- fmt.Errorf("writer %d append %d: %w", w, i, err)
					return
				}
				version[k] = res.NextExpected
				for _, e := range evs {
					ids <- e.ID
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	close(ids)
	for err := range errs {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for id := range ids {
		want[id] = true
	}
	all := readAll(t, s, 13, len(want))
	assertGlobalOrder(t, all)
	seen := map[string]bool{}
	for _, e := range all {
		if seen[e.ID] {
			t.Fatalf("event %s returned twice by ReadAll", e.ID)
		}
		seen[e.ID] = true
		if !want[e.ID] {
			t.Fatalf("ReadAll returned unknown event %s", e.ID)
		}
	}
	if len(seen) != len(want) {
		t.Fatalf("ReadAll returned %d events, %d were appended", len(seen), len(want))
	}
	for w := 0; w < writers; w++ {
		for k := 0; k < 2; k++ {
			if err := eventstore.VerifyStream(mustRead(t, s, fmt.Sprintf("many-%d-%d", w, k), 0)); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// testReadAllTail follows $all with a moving cursor while writers commit
// concurrently: a reader that was ever handed an event past one that had
// not committed yet would finish short of the total.
func testReadAllTail(t *testing.T, s eventstore.Store) {
	const writers, perWriter = 6, 15
	ctx := ctxFor(t)
	done, errs := appendConcurrently(ctx, s, "tail", writers, perWriter)

	var got []eventstore.RecordedEvent
	pos := eventstore.Start
	finished := false
	var giveUp time.Time
	for {
		wake := s.Changed()
		evs, err := s.ReadAll(ctx, pos, 4)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if !pos.Less(e.Position) {
				t.Fatalf("ReadAll after %v returned %v", pos, e.Position)
			}
			pos = e.Position
		}
		got = append(got, evs...)
		if len(evs) > 0 {
			continue
		}
		if finished && (len(got) >= writers*perWriter || time.Now().After(giveUp)) {
			break
		}
		select {
		case <-done:
			finished = true
			done = nil
			giveUp = time.Now().Add(20 * time.Second)
		case <-wake:
		case <-time.After(20 * time.Millisecond): // appends of other processes are not signalled
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
	}
	for err := range errs {
		t.Fatal(err)
	}
	assertFullRead(t, s, "tailing reader", got, writers*perWriter)
}

func testHashChain(t *testing.T, s eventstore.Store) {
	for i := 0; i < 4; i++ {
		for _, stream := range []string{"chain-a", "chain-b"} {
			e := Event("x", fmt.Sprintf(`{"i":%d}`, i))
			e.Metadata = []byte(fmt.Sprintf(`{"correlation_id":"c-%d"}`, i))
			mustAppend(t, s, stream, eventstore.Any, e, Event("y", `{}`))
		}
	}
	for _, stream := range []string{"chain-a", "chain-b"} {
		evs := mustRead(t, s, stream, 0)
		if len(evs) != 8 {
			t.Fatalf("%s has %d events", stream, len(evs))
		}
		if err := eventstore.VerifyStream(evs); err != nil {
			t.Fatal(err)
		}
		// A stored event whose data changed must not verify.
		evs[3].Data = []byte(`{"i":1000}`)
		var ce *eventstore.ChainError
		if err := eventstore.VerifyStream(evs); !errors.As(err, &ce) || ce.Version != 4 {
			t.Fatalf("edited event: VerifyStream = %v, want a ChainError at version 4", err)
		}
	}
	v := eventstore.NewChainVerifier()
	for _, e := range readAll(t, s, 5, 16) {
		if err := v.Add(e); err != nil {
			t.Fatal(err)
		}
	}
	if v.Streams() != 2 {
		t.Fatalf("verifier saw %d streams, want 2", v.Streams())
	}
}

func testChanged(t *testing.T, s eventstore.Store) {
	ch := s.Changed()
	select {
	case <-ch:
		t.Fatal("Changed closed before any append")
	default:
	}
	mustAppend(t, s, "changed", eventstore.NoStream, Event("x", `{}`))
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("Changed not closed after an append")
	}
	next := s.Changed()
	select {
	case <-next:
		t.Fatal("the new Changed channel is already closed")
	default:
	}
}

// testReplayAll checks a Replayer against ReadAll: the same events in the
// same order, in batches of the size asked, each batch still intact after
// later ones were passed (callers keep them), starting after the given
// position. Stores without ReplayAll skip it.
func testReplayAll(t *testing.T, s eventstore.Store) {
	r, ok := s.(eventstore.Replayer)
	if !ok {
		t.Skip("the store has no ReplayAll")
	}
	ctx := ctxFor(t)
	for i := 0; i < 5; i++ {
		mustAppend(t, s, fmt.Sprintf("replay-%d", i%2), eventstore.Any, events(5, "x")...)
	}
	whole := readAll(t, s, 1000, 25)
	for _, tc := range []struct {
		batch, from int // from: index of the event to start after, -1 for Start
	}{{1, -1}, {7, -1}, {25, -1}, {1000, -1}, {7, 9}, {3, 24}} {
		after := eventstore.Start
		if tc.from >= 0 {
			after = whole[tc.from].Position
		}
		var kept [][]eventstore.RecordedEvent
		last, err := r.ReplayAll(ctx, after, tc.batch, func(evs []eventstore.RecordedEvent) error {
			if len(evs) == 0 || len(evs) > tc.batch {
				t.Fatalf("batch %d: got a batch of %d", tc.batch, len(evs))
			}
			kept = append(kept, evs)
			return nil
		})
		if err != nil {
			t.Fatalf("batch %d after %d: %v", tc.batch, tc.from, err)
		}
		var got []eventstore.RecordedEvent
		for _, b := range kept {
			got = append(got, b...)
		}
		want := whole[tc.from+1:]
		if len(got) != len(want) {
			t.Fatalf("batch %d after %d: replayed %d events, want %d", tc.batch, tc.from, len(got), len(want))
		}
		for i := range got {
			if got[i].ID != want[i].ID || got[i].Position != want[i].Position || !bytes.Equal(got[i].Data, want[i].Data) || !bytes.Equal(got[i].Metadata, want[i].Metadata) {
				t.Fatalf("batch %d after %d: event %d differs from ReadAll's", tc.batch, tc.from, i)
			}
		}
		wantLast := after
		if len(want) > 0 {
			wantLast = want[len(want)-1].Position
		}
		if last != wantLast {
			t.Fatalf("batch %d after %d: returned %v, want %v", tc.batch, tc.from, last, wantLast)
		}
	}

	stop := errors.New("stop")
	calls := 0
	last, err := r.ReplayAll(ctx, eventstore.Start, 5, func([]eventstore.RecordedEvent) error {
		calls++
		if calls == 2 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 2 {
		t.Fatalf("fn failing on the 2nd batch: %d calls, %v; want 2 and its error", calls, err)
	}
	if last != whole[4].Position {
		t.Fatalf("fn failing on the 2nd batch: returned %v, want the 1st batch's last %v", last, whole[4].Position)
	}
}

// testReplayAllTail replays while writers commit: the replay followed by
// ReadAll from where it stopped must see every event once, in ReadAll's
// order, so a replay never passes over a transaction that commits late.
func testReplayAllTail(t *testing.T, s eventstore.Store) {
	r, ok := s.(eventstore.Replayer)
	if !ok {
		t.Skip("the store has no ReplayAll")
	}
	const writers, perWriter = 6, 20
	ctx := ctxFor(t)
	done, errs := appendConcurrently(ctx, s, "rtail", writers, perWriter)
	var got []eventstore.RecordedEvent
	pos := eventstore.Start
	for round := 0; ; round++ {
		last, err := r.ReplayAll(ctx, pos, 3, func(evs []eventstore.RecordedEvent) error {
			got = append(got, evs...)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		pos = last
		if len(got) >= writers*perWriter || round > 10000 {
			break
		}
	}
	<-done
	for err := range errs {
		t.Fatal(err)
	}
	rest, err := s.ReadAll(ctx, pos, 1000)
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, rest...)
	assertFullRead(t, s, "replays", got, writers*perWriter)
}

// appendConcurrently starts writers goroutines, each appending perWriter
// single events to three streams of its own. done is closed when all have
// finished; errs is closed just before it and holds their failures.
func appendConcurrently(ctx context.Context, s eventstore.Store, prefix string, writers, perWriter int) (<-chan struct{}, <-chan error) {
	done, errs := make(chan struct{}), make(chan error, writers)
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWriter; i++ {
				if _, err := s.Append(ctx, fmt.Sprintf("%s-%d-%d", prefix, w, i%3), eventstore.Any, Event("x", `{}`)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	go func() { wg.Wait(); close(errs); close(done) }()
	return done, errs
}

// assertFullRead checks what a reader collected while writers committed:
// every one of the committed events, once each, in the order of a full
// read of $all afterwards.
func assertFullRead(t *testing.T, s eventstore.Store, who string, got []eventstore.RecordedEvent, committed int) {
	t.Helper()
	if len(got) != committed {
		t.Fatalf("%s saw %d events, %d were committed", who, len(got), committed)
	}
	assertGlobalOrder(t, got)
	full := readAll(t, s, 1000, len(got))
	for i := range full {
		if full[i].ID != got[i].ID {
			t.Fatalf("%s: event %d differs from a full read", who, i)
		}
	}
}
