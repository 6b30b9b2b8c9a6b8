package audit_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/payledger/payledger/audit"
	"github.com/payledger/payledger/eventstore"
	"github.com/payledger/payledger/ledger"
	"github.com/payledger/payledger/projections"
	"github.com/payledger/payledger/projections/deadlines"
	"github.com/payledger/payledger/projections/links"
	"github.com/payledger/payledger/projections/projectiontest"
	"github.com/payledger/payledger/projections/status"
)

// world is a ledger with history and caught-up read models.
type world struct {
	b     projections.Backend
	projs []projections.Projection
	ids   []string
}

// testInvoices gives about 2,000 events (4.9 per invoice on average).
const testInvoices = 410

// testDigestEvery makes the test history record about 20 digests.
const testDigestEvery = 100

func newWorld(t testing.TB, b projections.Backend, invoices int) *world {
	t.Helper()
	ctx := context.Background()
	projs := []projections.Projection{status.New(b, b.DB()), links.New(b, b.DB()), deadlines.New(b, b.DB()), audit.NewDigests(testDigestEvery)}
	set, err := projections.NewSet(b, projections.Options{}, projs...)
	if err != nil {
		t.Fatal(err)
	}
	if err := set.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	ids, err := projectiontest.Generate(ctx, b, invoices, time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	settle(t, b)
	if err := set.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	return &world{b: b, projs: projs, ids: ids}
}

// settle waits until $all shows every committed event. On PostgreSQL a
// transaction open anywhere on the server (other test databases included:
// transaction ids are server-wide) holds back newer events for a moment.
func settle(t testing.TB, b projections.Backend) {
	t.Helper()
	ctx := context.Background()
	var total int
	if err := b.DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM events`).Scan(&total); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		n, pos := 0, eventstore.Start
		for {
			batch, err := b.ReadAll(ctx, pos, 5000)
			if err != nil {
				t.Fatal(err)
			}
			if len(batch) == 0 {
				break
			}
			n += len(batch)
			pos = batch[len(batch)-1].Position
		}
		if n == total {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("$all shows %d of %d events after 30 s", n, total)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (w *world) verify(t testing.TB, expect ...audit.Digest) *audit.Report {
	t.Helper()
	r, err := audit.Verify(context.Background(), audit.Options{
		Backend: w.b, Projections: w.projs, StreamHeads: true, Digests: true, Expect: expect, Total: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// exec tampers "directly in the database", as someone with SQL access
// would. SQLite's pool is read-only, so both go through the writer.
func (w *world) exec(t testing.TB, query string, args ...any) int64 {
	t.Helper()
	var n int64
	err := w.b.WriteTx(context.Background(), func(tx *sqlx.Tx) error {
		res, err := tx.Exec(tx.Rebind(query), args...)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func (w *world) event(t testing.TB, stream string, version uint64) eventstore.RecordedEvent {
	t.Helper()
	evs, err := w.b.ReadStream(context.Background(), stream, version)
	if err != nil || len(evs) == 0 || evs[0].StreamVersion != version {
		t.Fatalf("read %s v%d: %v", stream, version, err)
	}
	return evs[0]
}

func (w *world) streamLen(t testing.TB, stream string) uint64 {
	t.Helper()
	evs, err := w.b.ReadStream(context.Background(), stream, 1)
	if err != nil {
		t.Fatal(err)
	}
	return uint64(len(evs))
}

func hasChain(r *audit.Report, stream string, version uint64, reason string) bool {
	for _, p := range r.Chain {
		if p.Stream == stream && p.Version == version && strings.Contains(p.Reason, reason) {
			return true
		}
	}
	return false
}

func hasReadModel(r *audit.Report, projection, key string) bool {
	for _, m := range r.ReadModels {
		if m.Projection == projection && m.Key == key {
			return true
		}
	}
	return false
}

func report(r *audit.Report) string {
	var b strings.Builder
	_ = r.WriteText(&b)
	return b.String()
}

func TestUntouchedLedgerVerifies(t *testing.T) {
	t.Parallel()
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		w := newWorld(t, b, testInvoices)
		r := w.verify(t)
		if !r.OK() {
			t.Fatalf("untouched ledger fails:\n%s", report(r))
		}
		if r.Streams != testInvoices || r.Events < 1900 || r.HeadsChecked != testInvoices {
			t.Fatalf("checked %d streams, %d events, %d heads", r.Streams, r.Events, r.HeadsChecked)
		}
		// Every periodic digest plus the head.
		if want := int(r.Events/testDigestEvery) + 1; r.DigestsChecked != want {
			t.Fatalf("%d digests checked, want %d", r.DigestsChecked, want)
		}
		if strings.Join(r.Projections, ",") != "status,links,deadlines" || strings.Join(r.Skipped, ",") != audit.DigestsName {
			t.Fatalf("compared %v, skipped %v", r.Projections, r.Skipped)
		}
		// The final digest is the head the projection recorded, and an
		// auditor holding it (or any earlier one) sees it confirmed.
		ds, err := audit.RecordedDigests(context.Background(), b.DB())
		if err != nil {
			t.Fatal(err)
		}
		last := ds[len(ds)-1]
		if !last.Head || last.Events != r.Events || last.Digest != r.Digest {
			t.Fatalf("head digest %+v, report %d:%s", last, r.Events, r.Digest)
		}
		if r2 := w.verify(t, audit.Digest{Events: r.Events, Digest: r.Digest}, ds[3]); !r2.OK() || r2.DigestsChecked != r.DigestsChecked+2 {
			t.Fatalf("expected digests not confirmed:\n%s", report(r2))
		}
		if !strings.Contains(report(r), "OK: every hash chain") {
			t.Fatalf("report:\n%s", report(r))
		}
	})
}

func TestTamperingIsCaught(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		tamper func(t *testing.T, w *world) (check func(t *testing.T, r *audit.Report))
	}{
		{"edit event data", func(t *testing.T, w *world) func(*testing.T, *audit.Report) {
			stream := ledger.StreamName(w.ids[0])
			e := w.event(t, stream, 3)
			forged := strings.Replace(string(e.Data), `"`, `"x`, 1) // still JSON: first key renamed
			if w.exec(t, `UPDATE events SET data = ? WHERE stream_id = ? AND stream_version = ?`, forged, stream, 3) != 1 {
				t.Fatal("no row edited")
			}
			return func(t *testing.T, r *audit.Report) {
				if !hasChain(r, stream, 3, "hash mismatch") || r.ChainCount != 1 {
					t.Fatalf("edited %s v3 not named alone:\n%s", stream, report(r))
				}
				if r.DigestCount == 0 {
					t.Fatalf("digests hold over an edited event:\n%s", report(r))
				}
			}
		}},
		{"edit event type", func(t *testing.T, w *world) func(*testing.T, *audit.Report) {
			stream := ledger.StreamName(w.ids[7])
			w.exec(t, `UPDATE events SET event_type = 'invoice.paid' WHERE stream_id = ? AND stream_version = 2`, stream)
			return func(t *testing.T, r *audit.Report) {
				if !hasChain(r, stream, 2, "hash mismatch") {
					t.Fatalf("retyped %s v2 not named:\n%s", stream, report(r))
				}
			}
		}},
		{"delete an event in the middle", func(t *testing.T, w *world) func(*testing.T, *audit.Report) {
			stream := ledger.StreamName(w.ids[0]) // six events
			w.exec(t, `DELETE FROM events WHERE stream_id = ? AND stream_version = 3`, stream)
			return func(t *testing.T, r *audit.Report) {
				if !hasChain(r, stream, 3, "missing") || r.ChainCount != 1 {
					t.Fatalf("deleted %s v3 not named alone:\n%s", stream, report(r))
				}
				if r.DigestCount == 0 {
					t.Fatalf("digests still hold after a deletion:\n%s", report(r))
				}
			}
		}},
		{"delete a stream's first event", func(t *testing.T, w *world) func(*testing.T, *audit.Report) {
			stream := ledger.StreamName(w.ids[2])
			w.exec(t, `DELETE FROM events WHERE stream_id = ? AND stream_version = 1`, stream)
			return func(t *testing.T, r *audit.Report) {
				if !hasChain(r, stream, 1, "missing") {
					t.Fatalf("deleted %s v1 not named:\n%s", stream, report(r))
				}
			}
		}},
		{"delete a stream's newest event", func(t *testing.T, w *world) func(*testing.T, *audit.Report) {
			stream := ledger.StreamName(w.ids[1])
			last := w.streamLen(t, stream)
			w.exec(t, `DELETE FROM events WHERE stream_id = ? AND stream_version = ?`, stream, last)
			return func(t *testing.T, r *audit.Report) {
				if !hasChain(r, stream, last, "newest events deleted") {
					t.Fatalf("dropped %s v%d not named:\n%s", stream, last, report(r))
				}
			}
		}},
		{"rewrite a stream consistently", func(t *testing.T, w *world) func(*testing.T, *audit.Report) {
			// The attacker edits an event, recomputes the hashes of the rest
			// of the stream and fixes the streams table: every chain holds
			// again. Only the digests over $all still know.
			stream := ledger.StreamName(w.ids[3])
			n := w.streamLen(t, stream)
			evs, _ := w.b.ReadStream(context.Background(), stream, 1)
			var prev []byte
			for i, e := range evs {
				caller, _, _, err := eventstore.SplitMetadata(e.Metadata)
				if err != nil {
					t.Fatal(err)
				}
				data := e.Data
				if i == 1 {
					data = []byte(strings.Replace(string(data), `"`, `"x`, 1))
				}
				md, sum, err := eventstore.ChainMetadata(prev, stream, e.StreamVersion, eventstore.EventData{Type: e.Type, Data: data, Metadata: caller})
				if err != nil {
					t.Fatal(err)
				}
				w.exec(t, `UPDATE events SET data = ?, metadata = ? WHERE stream_id = ? AND stream_version = ?`, string(data), string(md), stream, e.StreamVersion)
				prev = sum
			}
			w.exec(t, `UPDATE streams SET last_hash = ? WHERE stream_id = ? AND version = ?`, prev, stream, n)
			return func(t *testing.T, r *audit.Report) {
				if r.ChainCount != 0 {
					t.Fatalf("the rewrite is not consistent:\n%s", report(r))
				}
				if r.DigestCount == 0 || r.DigestProblems[len(r.DigestProblems)-1].Source != "head" {
					t.Fatalf("consistent rewrite not caught by the digests:\n%s", report(r))
				}
			}
		}},
		{"edit a read-model row", func(t *testing.T, w *world) func(*testing.T, *audit.Report) {
			id := w.ids[5]
			if w.exec(t, `UPDATE status_invoices SET status = 'cancelled' WHERE id = ?`, id) != 1 {
				t.Fatal("no row edited")
			}
			return func(t *testing.T, r *audit.Report) {
				if !hasReadModel(r, status.Name, "invoice "+id) || r.ReadModelCount != 1 || r.ChainCount != 0 || r.DigestCount != 0 {
					t.Fatalf("edited status row %s not named alone:\n%s", id, report(r))
				}
			}
		}},
		{"delete a read-model row", func(t *testing.T, w *world) func(*testing.T, *audit.Report) {
			id := w.ids[6]
			w.exec(t, `DELETE FROM status_invoice_metadata WHERE invoice_id = ?`, id)
			return func(t *testing.T, r *audit.Report) {
				if !hasReadModel(r, status.Name, "metadata "+id+"/account_id") || r.ReadModelCount != 1 {
					t.Fatalf("deleted metadata row of %s not named alone:\n%s", id, report(r))
				}
			}
		}},
		{"add a read-model row", func(t *testing.T, w *world) func(*testing.T, *audit.Report) {
			w.exec(t, `INSERT INTO payment_links (token_hash, invoice_id, link_id, expires_at, state) VALUES ('forged', 'inv_x', 'lnk_x', 0, 'active')`)
			return func(t *testing.T, r *audit.Report) {
				if !hasReadModel(r, links.Name, "link forged") {
					t.Fatalf("forged link row not named:\n%s", report(r))
				}
			}
		}},
		{"edit a recorded digest", func(t *testing.T, w *world) func(*testing.T, *audit.Report) {
			forged := hex.EncodeToString(make([]byte, 32))
			w.exec(t, `UPDATE audit_digests SET digest = ? WHERE events = ?`, forged, 2*testDigestEvery)
			return func(t *testing.T, r *audit.Report) {
				if r.DigestCount != 1 || r.DigestProblems[0].Events != 2*testDigestEvery || r.ChainCount != 0 || r.DigestsHoldUpTo != testDigestEvery {
					t.Fatalf("edited digest not named alone:\n%s", report(r))
				}
			}
		}},
	}
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		for i, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				// Each case needs its own ledger; the first reuses b.
				be := b
				if i > 0 {
					be = reopen(t, b)
				}
				w := newWorld(t, be, 150)
				check := c.tamper(t, w)
				r := w.verify(t)
				if r.OK() {
					t.Fatalf("tampering passed:\n%s", report(r))
				}
				check(t, r)
				if testing.Verbose() {
					t.Logf("report:\n%s", report(r))
				}
				if !strings.Contains(report(r), "FAILED:") {
					t.Fatalf("report has no verdict:\n%s", report(r))
				}
			})
		}
	})
}

// reopen gives a fresh store of the same kind as b.
func reopen(t *testing.T, b projections.Backend) projections.Backend {
	switch d := b.DB().DriverName(); d {
	case "sqlite":
		return projectiontest.SQLite(t)
	case "postgres":
		return projectiontest.Postgres(t)
	default:
		panic(fmt.Sprint("unknown driver ", d))
	}
}

// Read models that lag behind the log are compared up to their own
// checkpoint; on PostgreSQL their replays share the chain pass's batches
// and stop early, which must neither stall the pass nor cut it short.
func TestVerifyWithLaggingReadModels(t *testing.T) {
	t.Parallel()
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		w := newWorld(t, b, 60)
		if _, err := projectiontest.Generate(context.Background(), b, 60, time.Date(2026, 11, 3, 9, 0, 0, 0, time.UTC)); err != nil {
			t.Fatal(err)
		}
		settle(t, b)
		r, err := audit.Verify(context.Background(), audit.Options{Backend: w.b, Projections: w.projs, StreamHeads: true, Digests: true, Total: -1, BatchSize: 7})
		if err != nil {
			t.Fatal(err)
		}
		if !r.OK() || r.Streams != 120 || len(r.Projections) != 3 {
			t.Fatalf("lagging read models:\n%s", report(r))
		}
	})
}

// Rebuilding every read model after an edit must not launder it: the
// digests recorded before stay as they were and still fail.
func TestRebuildKeepsRecordedDigests(t *testing.T) {
	t.Parallel()
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		ctx := context.Background()
		w := newWorld(t, b, 100)
		before, err := audit.RecordedDigests(ctx, b.DB())
		if err != nil || len(before) < 4 {
			t.Fatalf("%d digests recorded, %v", len(before), err)
		}
		stream := ledger.StreamName(w.ids[4])
		e := w.event(t, stream, 1)
		w.exec(t, `UPDATE events SET data = ? WHERE stream_id = ? AND stream_version = 1`, strings.Replace(string(e.Data), `"`, `"x`, 1), stream)
		set, err := projections.NewSet(b, projections.Options{}, w.projs...)
		if err != nil {
			t.Fatal(err)
		}
		if err := set.Rebuild(ctx, "", nil); err != nil {
			t.Fatal(err)
		}
		after, err := audit.RecordedDigests(ctx, b.DB())
		if err != nil || fmt.Sprint(after) != fmt.Sprint(before) {
			t.Fatalf("a rebuild rewrote the digests:\n%v\n%v (%v)", before, after, err)
		}
		if r := w.verify(t); r.DigestCount == 0 || !hasChain(r, stream, 1, "hash mismatch") {
			t.Fatalf("after a rebuild the edit is no longer caught:\n%s", report(r))
		}
		if audit.NewDigests(0).Every() != audit.DefaultDigestEvery {
			t.Fatal("default digest interval")
		}
	})
}
