package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/lib/pq"

	"github.com/payledger/payledger/eventstore"
)

// Group commit. On a small machine the cost of a durable append is mostly
// per statement and per transaction (parse, plan, executor start, commit
// record), not per row. So appends to different streams that arrive while
// others are being written are combined into one statement, which is one
// transaction: every stream's version check and every event row, with each
// append's rows inserted only if its own check passed. An append alone
// runs at once, as before: there is no timer and no waiting for company.
//
// A caller learns its result only after the combined statement has
// committed, so a nil error still means durable. If the combined statement
// fails as a whole (a duplicate event id, a deadlock with another process,
// a lost connection) each of its appends is run again on its own, which
// gives each caller exactly the result and error it would have had alone.
const (
	// maxGroupEvents bounds one combined statement (six parameters per
	// event; PostgreSQL allows 65535). A power of two: see groupSize.
	maxGroupEvents = 128
	// maxCommitters is how many combined statements may be in flight at
	// once. One would leave the server idle during each round trip; many
	// would shrink the groups back to single appends.
	maxCommitters = 2
)

// pending is one append waiting for the committer.
type pending struct {
	stream       string
	ver          uint64 // the stream's version before the append
	hash         []byte // the stream's last hash after the append
	evs          []eventstore.EventData
	datas, metas []string

	res  chan groupResult // buffered: the committer never blocks on it
	lead chan struct{}    // buffered: "you commit now" (see commitGroup)

	// Guarded by committer.mu.
	done, leading bool
}

type groupResult struct {
	pos eventstore.Position
	n   int // event rows written: 0 when the version check failed
	err error
}

// committer queues appends. At most maxCommitters callers are leaders at a
// time: a leader takes a group off the queue, runs it, hands out the
// results, and goes on until its own append is done. Then it hands the
// lead to a queued caller instead of serving others, so that no caller
// waits behind other people's work for long. Two appends to one stream are
// never in flight together (the busy set): the second would only fail its
// version check, and two groups locking the same rows in different orders
// could deadlock.
type committer struct {
	// combined and retried count statements that carried several appends
	// and those of them that failed and were run again one by one.
	combined, retried atomic.Int64

	mu     sync.Mutex
	queue  []*pending
	busy   map[string]struct{}
	active int // leaders
}

// commitGroup runs p, alone or together with other callers' appends, and
// returns its result once the statement holding it has committed.
func (s *Store) commitGroup(ctx context.Context, p *pending) groupResult {
	c := &s.group
	p.res, p.lead = make(chan groupResult, 1), make(chan struct{}, 1)
	c.mu.Lock()
	c.queue = append(c.queue, p)
	lead := c.active < maxCommitters
	if lead {
		c.active++
		p.leading = true
	}
	c.mu.Unlock()
	for {
		if lead {
			s.leadGroups(ctx, p)
		}
		// Not ctx.Done: an append that may be in a running statement must
		// report what happened to it.
		select {
		case r := <-p.res:
			return r
		case <-p.lead:
			lead = true
		}
	}
}

// leadGroups runs groups until own is done or nothing is left to run.
func (s *Store) leadGroups(ctx context.Context, own *pending) {
	c := &s.group
	// Other callers' appends ride on this statement: the leader's own
	// cancellation must not abort theirs.
	ctx = context.WithoutCancel(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	defer func() { own.leading = false }()
	for {
		group := c.take()
		if len(group) == 0 {
			// Whatever is queued waits for a stream that another leader's
			// statement holds; that leader takes it next.
			c.active--
			return
		}
		c.mu.Unlock()
		results := s.runGroup(ctx, group)
		c.mu.Lock()
		for i, p := range group {
			delete(c.busy, p.stream)
			p.done = true
			p.res <- results[i]
		}
		if len(c.queue) == 0 {
			c.active--
			return
		}
		if own.done {
			for _, q := range c.queue {
				if !q.leading {
					q.leading = true
					q.lead <- struct{}{}
					return // the lead (and the active count) passes to q
				}
			}
			c.active-- // every queued caller is a leader already
			return
		}
	}
}

// take removes the next group from the queue: queued appends in arrival
// order, skipping streams already in flight, up to maxGroupEvents events.
// The caller holds c.mu.
func (c *committer) take() []*pending {
	if c.busy == nil {
		c.busy = make(map[string]struct{})
	}
	var group []*pending
	events := 0
	rest := c.queue[:0]
	for _, p := range c.queue {
		_, busy := c.busy[p.stream]
		if busy || events+len(p.evs) > maxGroupEvents {
			rest = append(rest, p)
			continue
		}
		c.busy[p.stream] = struct{}{}
		events += len(p.evs)
		group = append(group, p)
	}
	clear(c.queue[len(rest):])
	c.queue = rest
	return group
}

// runGroup runs the appends of group in one statement, or each on its own
// when there is one or the combined statement fails.
func (s *Store) runGroup(ctx context.Context, group []*pending) []groupResult {
	results := make([]groupResult, len(group))
	if len(group) > 1 {
		s.group.combined.Add(1)
		err := s.runCombined(ctx, group, results)
		if err == nil {
			return results
		}
		s.group.retried.Add(1)
		clear(results)
	}
	for i, p := range group {
		results[i] = s.runOne(ctx, direct, p)
	}
	return results
}

// runCombined fills results from one statement for all of group, whose
// streams are distinct.
func (s *Store) runCombined(ctx context.Context, group []*pending, results []groupResult) error {
	n := 0
	for _, p := range group {
		n += len(p.evs)
	}
	size := groupSize(n)
	st, err := s.groupStmt(ctx, size)
	if err != nil {
		return err
	}
	streams := make([]string, len(group))
	vers := make([]int64, len(group))
	counts := make([]int64, len(group))
	hashes := make([][]byte, len(group))
	fresh := make([]bool, len(group))
	index := make(map[string]int, len(group))
	args := make([]any, 5, 5+6*size)
	for i, p := range group {
		streams[i], vers[i], counts[i], hashes[i], fresh[i] = p.stream, int64(p.ver), int64(len(p.evs)), p.hash, p.ver == 0
		index[p.stream] = i
		for k, e := range p.evs {
			args = append(args, p.stream, int64(p.ver)+int64(k)+1, e.ID, e.Type, p.datas[k], p.metas[k])
		}
	}
	for ; n < size; n++ {
		args = append(args, nil, nil, nil, nil, nil, nil) // a padding row: no stream matches NULL
	}
	args[0], args[1], args[2], args[3], args[4] = pq.Array(streams), pq.Array(vers), pq.Array(counts), pq.ByteaArray(hashes), pq.Array(fresh)
	rows, err := st.QueryContext(ctx, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	var stream string
	for rows.Next() {
		var p eventstore.Position
		if err := rows.Scan(&stream, &p.Prepare, &p.Commit); err != nil {
			return err
		}
		i, ok := index[stream]
		if !ok {
			return fmt.Errorf("eventstore/postgres: combined append returned stream %q it was not given", stream)
		}
		r := &results[i]
		if r.pos.Less(p) {
			r.pos = p
		}
		r.n++
	}
	// rows.Err is the statement's outcome, commit included.
	return rows.Err()
}

// groupSize rounds an event count up to the size of the statement that
// carries it, so that each connection prepares a handful of statements
// rather than one per count.
func groupSize(n int) int {
	size := 2
	for size < n {
		size *= 2
	}
	return size
}

// groupStmt returns the prepared combined statement for n events.
func (s *Store) groupStmt(ctx context.Context, n int) (*sql.Stmt, error) {
	s.valuesMu.Lock()
	defer s.valuesMu.Unlock()
	if st, ok := s.groups[n]; ok {
		return st, nil
	}
	var b strings.Builder
	// Each stream's check is its own row of j: the INSERT creates new
	// streams, the UPDATE moves existing ones only from the version the
	// appender read. An event row goes in only if its stream's row came
	// back from one of them. ORDER BY keeps global positions in the order
	// of the events (the semi-join may not).
	b.WriteString(`WITH j(stream_id, ver, n, last_hash, fresh) AS (
	SELECT * FROM unnest($1::text[], $2::int8[], $3::int8[], $4::bytea[], $5::bool[])
), ins AS (
	INSERT INTO streams (stream_id, version, last_hash)
	SELECT stream_id, ver + n, last_hash FROM j WHERE fresh
	ON CONFLICT (stream_id) DO NOTHING
	RETURNING stream_id
), upd AS (
	UPDATE streams s SET version = j.ver + j.n, last_hash = j.last_hash
	FROM j WHERE NOT j.fresh AND s.stream_id = j.stream_id AND s.version = j.ver
	RETURNING s.stream_id
)
INSERT INTO events (stream_id, stream_version, event_id, event_type, data, metadata)
SELECT e.stream_id, e.v, e.id::uuid, e.typ, NULLIF(e.data, '')::json, e.meta::json
FROM (VALUES `)
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		p := 6 + 6*i
		fmt.Fprintf(&b, "($%d::text, $%d::int8, $%d::text, $%d::text, $%d::text, $%d::text, %d)", p, p+1, p+2, p+3, p+4, p+5, i)
	}
	b.WriteString(`) AS e(stream_id, v, id, typ, data, meta, ord)
WHERE e.stream_id IN (SELECT stream_id FROM ins UNION ALL SELECT stream_id FROM upd)
ORDER BY e.ord
RETURNING stream_id, global_position, tx_id`)
	st, err := s.ap.PrepareContext(ctx, b.String())
	if err != nil {
		return nil, fmt.Errorf("eventstore/postgres: prepare: %w", err)
	}
	s.groups[n] = st
	return st, nil
}
