package audit

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/payledger/payledger/eventstore"
	"github.com/payledger/payledger/projections"
)

// Options say what Verify checks and how it reports progress.
type Options struct {
	// Backend is the event log and the SQL database of the read models.
	Backend projections.Backend
	// Projections are compared with a fresh replay; those that do not
	// implement projections.Dumper are listed as skipped.
	Projections []projections.Projection
	// StreamHeads compares every stream's last event with the head the
	// store keeps in its streams table (stream_id, version, last_hash), the
	// only place a dropped newest event shows. True for the PostgreSQL and
	// SQLite stores; false for KurrentDB.
	StreamHeads bool
	// Digests checks the digests recorded by the Digests projection.
	Digests bool
	// Expect are digests an auditor kept from an earlier run or a
	// publication; each must equal the digest recomputed over that many
	// events.
	Expect []Digest
	// Total is the number of events the log held when the check began
	// (-1 unknown). It draws the progress bar, and the pass waits up to
	// HoldBack for events that open transactions keep out of $all until
	// it has read that many: a verification that silently skipped
	// committed events would prove nothing about them.
	Total int
	// HoldBack bounds that wait (default 30 s).
	HoldBack time.Duration
	// Progress is called after each batch of the chain pass (may be nil).
	Progress func(done, total int)
	// OnProjection is called when a read model's comparison ends (may be
	// nil), for a line on the terminal.
	OnProjection func(name string, mismatches int, took time.Duration, err error)
	// BatchSize of the $all reads (default 5000).
	BatchSize int
	// MaxProblems bounds each list of the report (default 1000); the
	// counts stay exact.
	MaxProblems int
}

// Report is the outcome of Verify.
type Report struct {
	Streams int    `json:"streams_checked"`
	Events  uint64 `json:"events_checked"`
	// Digest is the digest over every event checked: one value that
	// commits to the whole history, to keep and pass back as Expect.
	Digest         string   `json:"digest"`
	DigestsChecked int      `json:"digests_checked"`
	HeadsChecked   int      `json:"stream_heads_checked"`
	Projections    []string `json:"projections_checked"`
	Skipped        []string `json:"projections_skipped,omitempty"`
	// Chain lists events whose hash, link or version is wrong.
	Chain []ChainProblem `json:"chain_mismatches"`
	// ReadModels lists rows where a read model differs from a fresh replay.
	ReadModels []projections.Mismatch `json:"read_model_mismatches"`
	// DigestProblems lists recorded or expected digests that do not match.
	DigestProblems []DigestProblem `json:"digest_mismatches"`
	// DigestsHoldUpTo is the event count of the last digest that matched
	// before the first that failed: the log's first DigestsHoldUpTo events
	// are as they were when that digest was taken.
	DigestsHoldUpTo uint64 `json:"digests_hold_up_to"`
	// Counts of each kind, exact even when the lists were cut.
	ChainCount, ReadModelCount, DigestCount int           `json:"-"`
	Elapsed                                 time.Duration `json:"-"`
}

// OK reports whether every check held.
func (r *Report) OK() bool {
	return r.ChainCount == 0 && r.ReadModelCount == 0 && r.DigestCount == 0
}

// ChainProblem is one event (or missing event) that breaks its stream.
type ChainProblem struct {
	Stream  string `json:"stream"`
	Version uint64 `json:"version"`
	EventID string `json:"event_id,omitempty"`
	// Position is where the event sits in $all (empty for a missing one).
	Position string `json:"position,omitempty"`
	Reason   string `json:"reason"`
}

func (p ChainProblem) String() string {
	s := fmt.Sprintf("stream %s version %d", p.Stream, p.Version)
	if p.EventID != "" {
		s += " (event " + p.EventID + ")"
	}
	return s + ": " + p.Reason
}

// DigestProblem is a recorded or expected digest that the log no longer
// produces.
type DigestProblem struct {
	Events   uint64 `json:"events"`
	Source   string `json:"source"` // "recorded", "head" or "expected"
	Recorded string `json:"recorded"`
	Computed string `json:"computed,omitempty"`
	Reason   string `json:"reason"`
}

func (p DigestProblem) String() string {
	return fmt.Sprintf("%s digest over the first %d events: %s", p.Source, p.Events, p.Reason)
}

// Verify replays $all once, recomputing every stream's hash chain and the
// digests over the $all prefix, compares the streams table's heads with
// the chains, and meanwhile compares each read model with a fresh replay
// (each in its own rolled-back transaction, concurrently on PostgreSQL).
// A nil error with !Report.OK() means tampering or corruption was found;
// an error means the check could not run to the end.
func Verify(ctx context.Context, o Options) (*Report, error) {
	start := time.Now()
	if o.BatchSize <= 0 {
		o.BatchSize = 5000
	}
	if o.MaxProblems <= 0 {
		o.MaxProblems = 1000
	}
	if o.HoldBack <= 0 {
		o.HoldBack = 30 * time.Second
	}
	r := &Report{Chain: []ChainProblem{}, ReadModels: []projections.Mismatch{}, DigestProblems: []DigestProblem{}}

	// Digests are read before the log: the log only grows, so every
	// recorded digest must lie within the events the pass below reads.
	var want []Digest
	if o.Digests {
		d, err := RecordedDigests(ctx, o.Backend.DB())
		if err != nil {
			return nil, err
		}
		want = d
	}
	for _, e := range o.Expect {
		want = append(want, Digest{Events: e.Events, Digest: strings.ToLower(e.Digest), EventID: "expected"})
	}
	sort.SliceStable(want, func(i, j int) bool { return want[i].Events < want[j].Events })

	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		rmErrs []error
		shared *sharedLog
	)
	// On PostgreSQL the replays run side by side and share the chain
	// pass's read of the log. On SQLite they queue for the single writer
	// one after the other, so each reads for itself.
	if d, _ := projections.DialectOf(o.Backend.DB().DriverName()); d == projections.Postgres {
		shared = newSharedLog(o.Backend, o.BatchSize, 16)
	}
	for _, p := range o.Projections {
		if _, ok := p.(projections.Dumper); !ok {
			r.Skipped = append(r.Skipped, p.Name())
			continue
		}
		r.Projections = append(r.Projections, p.Name())
		var src projections.Backend = o.Backend
		var reader *sharedReader
		if shared != nil {
			reader = shared.reader()
			src = reader
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if reader != nil {
				defer reader.done()
			}
			t0 := time.Now()
			ms, err := verifyProjection(ctx, src, p, o.BatchSize)
			if o.OnProjection != nil {
				o.OnProjection(p.Name(), len(ms), time.Since(t0), err)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				rmErrs = append(rmErrs, fmt.Errorf("read model %s: %w", p.Name(), err))
				return
			}
			r.ReadModelCount += len(ms)
			for _, m := range ms {
				if len(r.ReadModels) < o.MaxProblems {
					r.ReadModels = append(r.ReadModels, m)
				}
			}
		}()
	}

	c := newChecker(r, o.MaxProblems)
	err := c.pass(ctx, o, want, shared)
	if err == nil && o.StreamHeads {
		err = c.streamHeads(ctx, o.Backend)
	}
	wg.Wait()
	if err != nil {
		return nil, err
	}
	if len(rmErrs) > 0 {
		return nil, errors.Join(rmErrs...)
	}
	sort.Slice(r.ReadModels, func(i, j int) bool {
		if r.ReadModels[i].Projection != r.ReadModels[j].Projection {
			return r.ReadModels[i].Projection < r.ReadModels[j].Projection
		}
		return r.ReadModels[i].Key < r.ReadModels[j].Key
	})
	r.Elapsed = time.Since(start)
	return r, nil
}

// verifyProjection runs projections.Set.Verify for one projection. Each
// gets its own Set so that the comparisons run side by side; PostgreSQL
// aborts one of two transactions that wait on each other (a live runner in
// another process writing the same rows), and that comparison is retried.
func verifyProjection(ctx context.Context, b projections.Backend, p projections.Projection, batch int) ([]projections.Mismatch, error) {
	if d, _ := projections.DialectOf(b.DB().DriverName()); d == projections.Postgres {
		p = scratch{p}
	}
	set, err := projections.NewSet(b, projections.Options{RebuildBatchSize: batch}, p)
	if err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		ms, err := set.Verify(ctx)
		var pqErr *pq.Error
		if err != nil && attempt < 3 && errors.As(err, &pqErr) && (pqErr.Code == "40P01" || pqErr.Code == "40001") {
			continue
		}
		return ms, err
	}
}

// scratch makes Set.Verify rebuild a PostgreSQL read model in a scratch
// schema instead of over its live rows. Verify dumps the live rows first
// and then resets the clone; the clone's Reset puts the transaction's
// temporary schema first on the search path and runs the projection's own
// Migrate there, so the same unqualified table names now mean empty
// temporary tables with the same columns, keys and indexes. The replay and
// the second dump use them; the rollback drops them. The live rows are
// never deleted, so a serving process's projections are not blocked
// meanwhile, and temporary tables skip the write-ahead log.
type scratch struct{ projections.Projection }

func (s scratch) Dump(ctx context.Context, q sqlx.QueryerContext) (map[string]string, error) {
	return s.Projection.(projections.Dumper).Dump(ctx, q)
}

// Clone wraps the projection's own clone (empty caches) so that its Reset
// moves to the scratch schema.
func (s scratch) Clone() projections.Projection {
	return &scratchReplica{Projection: s.Projection.Clone()}
}

type scratchReplica struct{ projections.Projection }

func (c *scratchReplica) Reset(ctx context.Context, tx *sqlx.Tx) error {
	if _, err := tx.ExecContext(ctx, `SELECT set_config('search_path', 'pg_temp, ' || current_setting('search_path'), true)`); err != nil {
		return fmt.Errorf("scratch schema: %w", err)
	}
	if err := c.Projection.Migrate(ctx, tx, projections.Postgres); err != nil {
		return fmt.Errorf("scratch tables: %w", err)
	}
	return c.Projection.Reset(ctx, tx)
}

func (c *scratchReplica) Dump(ctx context.Context, q sqlx.QueryerContext) (map[string]string, error) {
	return c.Projection.(projections.Dumper).Dump(ctx, q)
}

// checker is the state of the chain pass.
type checker struct {
	r     *Report
	max   int
	heads map[string]head
}

type head struct {
	version uint64
	hash    []byte
}

func newChecker(r *Report, max int) *checker {
	return &checker{r: r, max: max, heads: make(map[string]head)}
}

func (c *checker) chain(p ChainProblem) {
	c.r.ChainCount++
	if len(c.r.Chain) < c.max {
		c.r.Chain = append(c.r.Chain, p)
	}
}

func (c *checker) digest(p DigestProblem) {
	c.r.DigestCount++
	if len(c.r.DigestProblems) < c.max {
		c.r.DigestProblems = append(c.r.DigestProblems, p)
	}
}

// pass reads $all once.
func (c *checker) pass(ctx context.Context, o Options, want []Digest, shared *sharedLog) error {
	if shared != nil {
		defer shared.close()
	}
	digest := ZeroDigest
	var (
		n         uint64
		waitUntil time.Time
	)
	pos := eventstore.Start
	if o.Progress != nil {
		o.Progress(0, o.Total)
	}
	for len(want) > 0 && want[0].Events == 0 {
		c.compare(want[0], 0, eventstore.RecordedEvent{}, ZeroDigest)
		want = want[1:]
	}
	for {
		batch, err := o.Backend.ReadAll(ctx, pos, o.BatchSize)
		if err != nil {
			return fmt.Errorf("read $all after %s: %w", pos, err)
		}
		if len(batch) == 0 {
			if o.Total < 0 || int(n) >= o.Total {
				break
			}
			if waitUntil.IsZero() {
				waitUntil = time.Now().Add(o.HoldBack)
			}
			if time.Now().After(waitUntil) {
				return fmt.Errorf("only %d of the %d events became readable within %s: a transaction left open on the database server holds back $all; run verify again when it has ended", n, o.Total, o.HoldBack)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		for _, e := range batch {
			digest = NextDigest(digest, c.event(e))
			n++
			for len(want) > 0 && want[0].Events == n {
				c.compare(want[0], n, e, digest)
				want = want[1:]
			}
		}
		if shared != nil {
			shared.publish(ctx, pos, batch)
		}
		pos = batch[len(batch)-1].Position
		if o.Progress != nil {
			o.Progress(int(n), o.Total)
		}
	}
	for _, w := range want {
		c.digest(DigestProblem{Events: w.Events, Source: source(w), Recorded: w.Digest,
			Reason: fmt.Sprintf("the log now has only %d events: events were removed", n)})
	}
	c.r.Events = n
	c.r.Streams = len(c.heads)
	c.r.Digest = hex.EncodeToString(digest)
	return nil
}

func source(d Digest) string {
	switch {
	case d.EventID == "expected":
		return "expected"
	case d.Head:
		return "head"
	default:
		return "recorded"
	}
}

func (c *checker) compare(w Digest, n uint64, e eventstore.RecordedEvent, digest []byte) {
	c.r.DigestsChecked++
	got := hex.EncodeToString(digest)
	src := source(w)
	var why []string
	if got != w.Digest {
		why = append(why, "digest differs: an event up to here was edited, removed, inserted or reordered")
	}
	if src != "expected" && n > 0 && (w.Position != e.Position || w.EventID != e.ID) {
		why = append(why, fmt.Sprintf("it was recorded at event %s (position %s), the log has event %s (position %s) there", w.EventID, w.Position, e.ID, e.Position))
	}
	if len(why) > 0 {
		c.digest(DigestProblem{Events: n, Source: src, Recorded: w.Digest, Computed: got, Reason: strings.Join(why, "; ")})
	} else if c.r.DigestCount == 0 {
		c.r.DigestsHoldUpTo = n
	}
}

// event checks one event against its stream's previous one and records
// every fault; it then takes the event as the stream's head, so that one
// broken event does not make every later one in the stream look broken.
// It returns the hash recomputed from the event's content, which is what
// the digests fold: a digest then fails for an edited event even when the
// stored hash was left alone.
func (c *checker) event(e eventstore.RecordedEvent) []byte {
	h := c.heads[e.Stream]
	problem := func(v uint64, id, pos, reason string) {
		c.chain(ChainProblem{Stream: e.Stream, Version: v, EventID: id, Position: pos, Reason: reason})
	}
	gap := false
	switch {
	case e.StreamVersion <= h.version:
		problem(e.StreamVersion, e.ID, e.Position.String(), fmt.Sprintf("version %d again after version %d (duplicated or reordered)", e.StreamVersion, h.version))
		gap = true
	case e.StreamVersion > h.version+1:
		missing := fmt.Sprintf("version %d", h.version+1)
		if e.StreamVersion > h.version+2 {
			missing = fmt.Sprintf("versions %d–%d", h.version+1, e.StreamVersion-1)
		}
		problem(h.version+1, "", "", fmt.Sprintf("missing: %s deleted (the log goes from version %d to %d)", missing, h.version, e.StreamVersion))
		gap = true
	}
	_, prev, stored, err := eventstore.SplitMetadata(e.Metadata)
	if err != nil {
		problem(e.StreamVersion, e.ID, e.Position.String(), err.Error())
		c.heads[e.Stream] = head{version: e.StreamVersion}
		return ZeroDigest
	}
	want := h.hash
	if h.version == 0 {
		want = ZeroDigest
	}
	var why []string
	// After a gap the prev_hash rightly names the missing event: the gap
	// is the finding, not the link.
	if !gap && want != nil && !bytes.Equal(prev, want) {
		why = append(why, fmt.Sprintf("prev_hash %x is not the hash of version %d (%x)", prev, h.version, want))
	}
	sum := chainHash(e)
	if !bytes.Equal(sum, stored) {
		why = append(why, "hash mismatch: stream, version, type, data or metadata changed after the append")
	}
	if len(why) > 0 {
		problem(e.StreamVersion, e.ID, e.Position.String(), strings.Join(why, "; "))
	}
	c.heads[e.Stream] = head{version: e.StreamVersion, hash: stored}
	if sum == nil {
		return ZeroDigest
	}
	return sum
}

// streamHeads compares the streams table with the chains just read. A stream
// that moved on since the pass (a live server appending) is followed with
// ReadStream; only a head the log cannot reach is a finding.
func (c *checker) streamHeads(ctx context.Context, b projections.Backend) error {
	type row struct {
		Stream  string `db:"stream_id"`
		Version int64  `db:"version"`
		Hash    []byte `db:"last_hash"`
	}
	var rows []row
	if err := sqlx.SelectContext(ctx, b.DB(), &rows, `SELECT stream_id, version, last_hash FROM streams`); err != nil {
		return fmt.Errorf("read stream heads: %w", err)
	}
	seen := make(map[string]bool, len(rows))
	for _, t := range rows {
		seen[t.Stream] = true
		c.r.HeadsChecked++
		h := c.heads[t.Stream]
		v := uint64(t.Version)
		if v == h.version && bytes.Equal(t.Hash, h.hash) {
			continue
		}
		if v > h.version {
			if ok, err := c.follow(ctx, b, t.Stream, h, v, t.Hash); err != nil {
				return err
			} else if ok {
				continue
			}
			c.chain(ChainProblem{Stream: t.Stream, Version: h.version + 1,
				Reason: fmt.Sprintf("missing: the streams table says the stream ends at version %d (hash %x), the log ends at version %d: newest events deleted", v, t.Hash, h.version)})
			continue
		}
		c.chain(ChainProblem{Stream: t.Stream, Version: v,
			Reason: fmt.Sprintf("the streams table's head (version %d, hash %x) is not the log's (version %d, hash %x)", v, t.Hash, h.version, h.hash)})
	}
	var orphans []string
	for s := range c.heads {
		if !seen[s] {
			orphans = append(orphans, s)
		}
	}
	sort.Strings(orphans)
	for _, s := range orphans {
		h := c.heads[s]
		c.chain(ChainProblem{Stream: s, Version: h.version, Reason: "stream missing from the streams table"})
	}
	return nil
}

// follow reads events appended to stream after the pass saw version
// h.version and reports whether they lead, chained, to the head (v, hash).
func (c *checker) follow(ctx context.Context, b projections.Backend, stream string, h head, v uint64, hash []byte) (bool, error) {
	evs, err := b.ReadStream(ctx, stream, h.version+1)
	if err != nil {
		return false, fmt.Errorf("read %s: %w", stream, err)
	}
	if len(evs) == 0 {
		return false, nil
	}
	sub := newChecker(&Report{}, 1)
	sub.heads[stream] = h
	for _, e := range evs {
		if e.StreamVersion > v {
			break
		}
		sub.event(e)
	}
	got := sub.heads[stream]
	return sub.r.ChainCount == 0 && got.version == v && bytes.Equal(got.hash, hash), nil
}

// ParseExpect parses an auditor's digest "EVENTS:HEX" (as printed by
// verify and listed by audit digests).
func ParseExpect(s string) (Digest, error) {
	n, hx, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok {
		return Digest{}, fmt.Errorf("digest %q: want EVENTS:HEX", s)
	}
	events, err := strconv.ParseUint(n, 10, 63)
	if err != nil {
		return Digest{}, fmt.Errorf("digest %q: %q is not an event count", s, n)
	}
	hx = strings.ToLower(hx)
	if b, err := hex.DecodeString(hx); err != nil || len(b) != len(ZeroDigest) {
		return Digest{}, fmt.Errorf("digest %q: want 64 hex digits after the colon", s)
	}
	return Digest{Events: events, Digest: hx, EventID: "expected"}, nil
}

// chainHash recomputes an event's hash with the store's own definition of
// the canonical bytes (eventstore.HashOf), trusting the prev_hash the
// event carries; the caller checks that link itself.
func chainHash(e eventstore.RecordedEvent) []byte {
	sum, err := eventstore.HashOf(e)
	if err != nil {
		return nil
	}
	return sum
}
