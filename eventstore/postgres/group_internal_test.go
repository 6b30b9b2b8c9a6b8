package postgres

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"github.com/payledger/payledger/eventstore"
	"github.com/payledger/payledger/internal/pgtest"
)

// pendingFor prepares an append the way Store.append does, for runGroup.
func pendingFor(t *testing.T, stream string, ver uint64, prevHash []byte, ids ...string) *pending {
	t.Helper()
	p := &pending{stream: stream, ver: ver, hash: prevHash}
	for i, id := range ids {
		e := eventstore.EventData{ID: id, Type: "x", Data: []byte(`{"n":1}`)}
		m, sum, err := eventstore.ChainMetadata(p.hash, stream, ver+uint64(i)+1, e)
		if err != nil {
			t.Fatal(err)
		}
		p.evs = append(p.evs, e)
		p.datas, p.metas, p.hash = append(p.datas, string(e.Data)), append(p.metas, string(m)), sum
	}
	return p
}

// TestRunGroup runs combined statements directly, so that each outcome is
// certain rather than left to the scheduler: an append whose own version
// check fails writes nothing while the others in its statement commit, and
// a statement that fails as a whole is run again one append at a time,
// giving each append its own outcome.
func TestRunGroup(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := Open(ctx, pgtest.New(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	taken := uuid.NewString()
	if _, err := s.Append(ctx, "existing", eventstore.NoStream, eventstore.EventData{ID: taken, Type: "x", Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}

	// "existing" is at version 1; an appender that believes it is new
	// must lose, and only it.
	fresh := pendingFor(t, "fresh", 0, nil, uuid.NewString(), uuid.NewString(), uuid.NewString())
	stale := pendingFor(t, "existing", 0, nil, uuid.NewString())
	other := pendingFor(t, "other", 0, nil, uuid.NewString())
	res := s.runGroup(ctx, []*pending{fresh, stale, other})
	if combined, retried := s.group.combined.Load(), s.group.retried.Load(); combined != 1 || retried != 0 {
		t.Fatalf("combined/retried = %d/%d, want 1/0", combined, retried)
	}
	if res[0].err != nil || res[0].n != 3 || res[1].err != nil || res[1].n != 0 || res[2].err != nil || res[2].n != 1 {
		t.Fatalf("results %+v; want 3 rows, 0 rows (stale check), 1 row", res)
	}
	evs, err := s.ReadStream(ctx, "fresh", 0)
	if err != nil || len(evs) != 3 {
		t.Fatalf("fresh holds %d events (%v), want 3", len(evs), err)
	}
	if err := eventstore.VerifyStream(evs); err != nil {
		t.Fatal(err)
	}
	for i, e := range evs {
		if e.ID != fresh.evs[i].ID || (i > 0 && !evs[i-1].Position.Less(e.Position)) {
			t.Fatalf("fresh event %d is %s at %v: the combined insert changed the order", i, e.ID, e.Position)
		}
	}
	if res[0].pos != evs[2].Position {
		t.Fatalf("fresh's append reported %v, its last event is at %v", res[0].pos, evs[2].Position)
	}
	if evs, _ := s.ReadStream(ctx, "existing", 0); len(evs) != 1 {
		t.Fatalf("existing holds %d events after a failed check, want 1", len(evs))
	}

	// A reused event id fails the whole statement; run alone, the good
	// append commits and the bad one reports the unique violation.
	good := pendingFor(t, "good", 0, nil, uuid.NewString())
	bad := pendingFor(t, "bad", 0, nil, taken)
	res = s.runGroup(ctx, []*pending{good, bad})
	if retried := s.group.retried.Load(); retried != 1 {
		t.Fatalf("retried = %d, want 1", retried)
	}
	if res[0].err != nil || res[0].n != 1 {
		t.Fatalf("good append after the retry: %+v", res[0])
	}
	if !isUniqueViolation(res[1].err, "events_event_id_key") {
		t.Fatalf("bad append after the retry: %+v; want the event id's unique violation", res[1])
	}
	if evs, _ := s.ReadStream(ctx, "bad", 0); len(evs) != 0 {
		t.Fatalf("bad holds %d events", len(evs))
	}
	if evs, _ := s.ReadStream(ctx, "good", 0); len(evs) != 1 {
		t.Fatalf("good holds %d events", len(evs))
	}
}
