package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/payledger/payledger/eventstore"
)

// Store is the PostgreSQL event store. It is safe for concurrent use.
type Store struct {
	db *sqlx.DB
	// ap is the appenders' pool: the append statements are prepared on it,
	// and its sessions plan them once (see genericPlans).
	ap *sqlx.DB
	// rm is WriteTx's pool. Its sessions carry the read-model mark (see
	// horizonSQL) from their first statement and never append.
	rm *sqlx.DB

	appendNew, appendExact, headOf, readStream, byIDs *sql.Stmt

	valuesMu sync.Mutex
	values   map[int]*sql.Stmt // by event count, negative for a new stream
	groups   map[int]*sql.Stmt // combined appends, by event count

	group committer

	mu      sync.Mutex
	changed chan struct{}

	heads headCache

	replayRowsSet int // rows per ReplayAll query; 0 means the constant
}

var _ eventstore.Store = (*Store)(nil)

// MaxConns bounds the connection pool Open creates for reads and the
// callers of DB. Idle connections are kept up to the same number: closing
// and reopening connections under a burst of requests costs more than the
// requests.
const MaxConns = 32

// AppendConns bounds the appenders' pool. Group commit runs at most
// maxCommitters statements at once; the rest are appends of more than
// maxValuesEvents events and single reruns of a failed group.
const AppendConns = 8

// Open connects to the database at url (a postgres:// URL or a key=value
// connection string), forces synchronous_commit=on for its sessions, runs
// Migrate and prepares the store's statements.
func Open(ctx context.Context, dsn string) (*Store, error) {
	main, err := sessionDSN(dsn, "")
	if err != nil {
		return nil, err
	}
	rmDSN, err := sessionDSN(dsn, readModelApp)
	if err != nil {
		return nil, err
	}
	apDSN, err := sessionDSN(dsn, "", genericPlans)
	if err != nil {
		return nil, err
	}
	db, err := openPool(ctx, main, MaxConns)
	if err != nil {
		return nil, err
	}
	rm, err := openPool(ctx, rmDSN, ReadModelConns)
	if err != nil {
		db.Close()
		return nil, err
	}
	ap, err := openPool(ctx, apDSN, AppendConns)
	if err != nil {
		db.Close()
		rm.Close()
		return nil, err
	}
	s := &Store{db: db, rm: rm, ap: ap, changed: make(chan struct{}), values: make(map[int]*sql.Stmt), groups: make(map[int]*sql.Stmt)}
	s.heads.init()
	if err := s.Migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.prepare(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// ReadModelConns bounds WriteTx's pool: one connection per projection
// runner plus the API's own writes (keys, idempotency, endpoints).
const ReadModelConns = 16

func openPool(ctx context.Context, dsn string, conns int) (*sqlx.DB, error) {
	conn, err := pq.NewConnector(dsn)
	if err != nil {
		return nil, fmt.Errorf("eventstore/postgres: %w", err)
	}
	conn.Dialer(bufferedDialer{})
	db := sqlx.NewDb(sql.OpenDB(conn), "postgres")
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("eventstore/postgres: connect: %w", err)
	}
	return db, nil
}

// setting is a run-time parameter a pool's sessions start with.
type setting struct{ key, value string }

// genericPlans is the appenders' pool's setting: its sessions use a
// generic plan for a prepared statement from its first run. PostgreSQL's
// default plans a statement afresh for each run whenever its cost
// estimates (which move with table statistics) make the generic plan look
// dearer, and planning the combined append, a VALUES list of up to
// maxGroupEvents rows, is most of its cost: ten-event appends at 32
// writers ran at 25,000–28,000 events/s with custom plans against
// 47,000–53,000 with the generic one (2026-12-08, same machine). The
// default chose the generic plan in most runs here, but not in all
// (37,800 and 38,700 in two); the plan is the same for any parameters, so
// it is pinned. Reads stay on the main pool, where a generic plan would
// hide ReadAll's LIMIT.
var genericPlans = setting{"plan_cache_mode", "force_generic_plan"}

// sessionDSN makes every session of a pool commit durably, whatever the
// server's default (a ledger acknowledgement must survive a crash), sets
// its application_name, and adds the extra settings. The name is app for
// WriteTx's pool, which is how the $all horizon recognises read-model
// transactions, and otherwise the caller's name or "payledger". The caller
// may not borrow the read-model mark: on the appenders' pool it would let
// readers pass running appends.
func sessionDSN(dsn, app string, extra ...setting) (string, error) {
	isURL := strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
	var u *url.URL
	var given string
	if isURL {
		var err error
		if u, err = url.Parse(dsn); err != nil {
			return "", fmt.Errorf("eventstore/postgres: database URL: %w", err)
		}
		given = u.Query().Get("application_name")
	} else {
		given = kvValue(dsn, "application_name")
	}
	name, err := appName(given, app)
	if err != nil {
		return "", err
	}
	settings := append([]setting{{"synchronous_commit", "on"}, {"application_name", name}}, extra...)
	if isURL {
		q := u.Query()
		for _, st := range settings {
			q.Set(st.key, st.value)
		}
		u.RawQuery = q.Encode()
		return u.String(), nil
	}
	// Later keys win in lib/pq's key=value parsing.
	quote := strings.NewReplacer(`\`, `\\`, "'", `\'`)
	for _, st := range settings {
		dsn += " " + st.key + "='" + quote.Replace(st.value) + "'"
	}
	return dsn, nil
}

// kvValue is key's value in a key=value connection string ("" if absent;
// the last one if repeated, as lib/pq reads it). Values may be quoted with
// single quotes and escape quotes and backslashes with a backslash.
func kvValue(dsn, key string) string {
	val := ""
	for i := 0; i < len(dsn); {
		for i < len(dsn) && dsn[i] == ' ' {
			i++
		}
		eq := strings.IndexByte(dsn[i:], '=')
		if eq < 0 {
			break
		}
		k := strings.TrimSpace(dsn[i : i+eq])
		i += eq + 1
		for i < len(dsn) && dsn[i] == ' ' {
			i++
		}
		var v strings.Builder
		if i < len(dsn) && dsn[i] == '\'' {
			for i++; i < len(dsn) && dsn[i] != '\''; i++ {
				if dsn[i] == '\\' && i+1 < len(dsn) {
					i++
				}
				v.WriteByte(dsn[i])
			}
			i++
		} else {
			for ; i < len(dsn) && dsn[i] != ' '; i++ {
				v.WriteByte(dsn[i])
			}
		}
		if k == key {
			val = v.String()
		}
	}
	return val
}

func appName(given, app string) (string, error) {
	switch {
	case app != "":
		return app, nil
	case given == readModelApp:
		return "", fmt.Errorf("eventstore/postgres: application_name %q is reserved for the store's read-model sessions", readModelApp)
	case given != "":
		return given, nil
	}
	return "payledger", nil
}

// DB is the store's connection pool, for read models that live in the same
// database (their own tables; never write to streams or events).
func (s *Store) DB() *sqlx.DB { return s.db }

// WriteTx runs fn in a read-write transaction on the store's pool and
// commits it when fn returns nil. It exists so that read-model code can be
// written once for this store and the SQLite one, where writes must go
// through the store's single writer. fn must not append events (nothing
// can: appends go through Append): $all readers do not wait for these
// transactions, see horizonSQL.
func (s *Store) WriteTx(ctx context.Context, fn func(*sqlx.Tx) error) error {
	tx, err := s.rm.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// WriteDB is WriteTx's pool, for single read-model statements that need no
// transaction of their own (the same rules as WriteTx: never append).
func (s *Store) WriteDB() *sqlx.DB { return s.rm }

// Close closes the pools.
func (s *Store) Close() error { return errors.Join(s.db.Close(), s.rm.Close(), s.ap.Close()) }

// Changed returns a channel closed by the next append through this Store.
func (s *Store) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

func (s *Store) notify() {
	s.mu.Lock()
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// recorded_at is read as Unix microseconds: parsing timestamp text is a
// large share of a replay's client time.
const selectCols = `global_position, tx_id, stream_id, stream_version, event_id, event_type, data, metadata, round(date_part('epoch', recorded_at) * 1e6)::int8`

// horizonSQL is the first transaction id whose events a reader may not
// pass yet: the oldest transaction still running, except transactions of
// other databases on the server (transaction ids are the cluster's, but
// only sessions of this database can write its events; a long transaction
// elsewhere stalled every projection here) and transactions that WriteTx
// opened. The latter never append events (WriteTx is for read models),
// and without the exception every projection's commit would hold back
// every $all reader while it runs. They are recognised by the
// application_name of WriteTx's own pool, which its sessions carry from
// connection start (no statement per transaction) and which Open refuses
// on the appenders' pool.
//
// Only transactions running when the snapshot was taken are candidates,
// and pg_stat_activity is read after it, so an xid is skipped only if its
// backend is one of the read-model pool's or another database's; an xid assigned after the
// snapshot is at or above its xmax, beyond the horizon anyway. backend_xid
// is a 32-bit xid: it is compared with the low half of the xid8.
//
// It is the function payledger_read_horizon() that Migrate creates.
const horizonSQL = `payledger_read_horizon()`

// readModelApp marks WriteTx's transactions (see horizonSQL).
const readModelApp = "payledger read model"

// readAllSQL holds back rows of transactions that may still be running
// (tx_id at or above the horizon), with everything after them, so a
// reader never passes over an event that commits late.
const readAllSQL = `SELECT ` + selectCols + ` FROM events
WHERE (tx_id, global_position) > ($1::xid8, $2::bigint)
  AND tx_id < ` + horizonSQL + `
ORDER BY tx_id, global_position LIMIT $3`

func (s *Store) prepare(ctx context.Context) error {
	// The append statements are one round trip each: the stream's version
	// check (or creation) and the event rows happen in one statement, so no
	// lock is held across round trips and concurrent appenders to different
	// streams never wait on each other.
	const insertEvents = `
INSERT INTO events (stream_id, stream_version, event_id, event_type, data, metadata)
SELECT $1, $2::bigint + e.ord, e.id, e.typ, NULLIF(e.data, '')::json, e.meta::json
FROM unnest($4::uuid[], $5::text[], $6::text[], $7::text[]) WITH ORDINALITY AS e(id, typ, data, meta, ord)
WHERE EXISTS (SELECT 1 FROM s)
RETURNING global_position, tx_id`
	stmts := []struct {
		dst  **sql.Stmt
		pool *sqlx.DB
		sql  string
	}{
		{&s.appendNew, s.ap, `
WITH s AS (
	INSERT INTO streams (stream_id, version, last_hash)
	VALUES ($1, $2::bigint + cardinality($4::uuid[]), $3)
	ON CONFLICT (stream_id) DO NOTHING
	RETURNING 1
)` + insertEvents},
		{&s.appendExact, s.ap, `
WITH s AS (
	UPDATE streams SET version = $2::bigint + cardinality($4::uuid[]), last_hash = $3
	WHERE stream_id = $1 AND version = $2::bigint
	RETURNING 1
)` + insertEvents},
		{&s.headOf, s.db, `SELECT version, last_hash FROM streams WHERE stream_id = $1`},
		{&s.readStream, s.db, `SELECT ` + selectCols + ` FROM events
WHERE stream_id = $1 AND stream_version >= $2 ORDER BY stream_version`},
		// Rows of transactions that may still be running are held back
		// (tx_id at or above the snapshot's xmin), with everything after
		// them, so a reader never passes over an event that commits late.
		{&s.byIDs, s.db, `SELECT ` + selectCols + ` FROM events WHERE event_id = ANY($1::uuid[])`},
	}
	for _, st := range stmts {
		p, err := st.pool.PrepareContext(ctx, st.sql)
		if err != nil {
			return fmt.Errorf("eventstore/postgres: prepare: %w", err)
		}
		*st.dst = p
	}
	return nil
}

// maxValuesEvents is the largest append sent as a VALUES list of scalar
// parameters rather than as arrays: encoding and parsing array literals of
// JSON (every quote escaped) is a large part of an append's CPU time.
const maxValuesEvents = 16

// valuesStmt returns the prepared append statement for n events, creating
// it on first use.
func (s *Store) valuesStmt(ctx context.Context, create bool, n int) (*sql.Stmt, error) {
	k := n
	if create {
		k = -n
	}
	s.valuesMu.Lock()
	defer s.valuesMu.Unlock()
	if st, ok := s.values[k]; ok {
		return st, nil
	}
	var b strings.Builder
	if create {
		fmt.Fprintf(&b, `WITH s AS (
	INSERT INTO streams (stream_id, version, last_hash) VALUES ($1, $2::bigint + %d, $3)
	ON CONFLICT (stream_id) DO NOTHING RETURNING 1
)`, n)
	} else {
		fmt.Fprintf(&b, `WITH s AS (
	UPDATE streams SET version = $2::bigint + %d, last_hash = $3
	WHERE stream_id = $1 AND version = $2::bigint RETURNING 1
)`, n)
	}
	b.WriteString(`
INSERT INTO events (stream_id, stream_version, event_id, event_type, data, metadata)
SELECT $1, $2::bigint + e.ord, e.id::uuid, e.typ, NULLIF(e.data, '')::json, e.meta::json
FROM (VALUES `)
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		p := 4 + 4*i
		fmt.Fprintf(&b, "($%d::text, $%d::text, $%d::text, $%d::text, %d)", p, p+1, p+2, p+3, i+1)
	}
	b.WriteString(`) AS e(id, typ, data, meta, ord)
WHERE EXISTS (SELECT 1 FROM s)
RETURNING global_position, tx_id`)
	st, err := s.ap.PrepareContext(ctx, b.String())
	if err != nil {
		return nil, fmt.Errorf("eventstore/postgres: prepare: %w", err)
	}
	s.values[k] = st
	return st, nil
}

// querier runs one of the store's prepared statements; the test hook runs
// them inside a caller's transaction instead.
type querier func(ctx context.Context, st *sql.Stmt, args ...any) (*sql.Rows, error)

func direct(ctx context.Context, st *sql.Stmt, args ...any) (*sql.Rows, error) {
	return st.QueryContext(ctx, args...)
}

// Append implements eventstore.Store.
func (s *Store) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	res, err := s.append(ctx, direct, true, stream, expected, events)
	if err != nil {
		return res, err
	}
	return res, nil
}

func (s *Store) append(ctx context.Context, q querier, committed bool, stream string, expected eventstore.ExpectedVersion, events []eventstore.EventData) (eventstore.AppendResult, error) {
	if stream == "" {
		return eventstore.AppendResult{}, fmt.Errorf("%w: empty stream name", eventstore.ErrInvalidEvent)
	}
	evs, err := eventstore.Normalize(events)
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	if len(evs) == 0 {
		h, err := s.fetchHead(ctx, stream)
		if err != nil {
			return eventstore.AppendResult{}, err
		}
		if !expected.Allows(h.version) {
			return eventstore.AppendResult{}, wrongVersion(stream, expected, h.version)
		}
		return eventstore.AppendResult{NextExpected: h.version}, nil
	}
	datas := make([]string, len(evs))
	metas := make([]string, len(evs))
	for i, e := range evs {
		datas[i] = string(e.Data)
	}
	fresh := false // whether the head below was read from the database just now
	for {
		var h head
		switch v, exact := expected.Exact(); {
		case expected.IsNoStream():
		case exact:
			if c, ok := s.heads.get(stream); ok && c.version == v {
				h = c
			} else if h, err = s.fetchHead(ctx, stream); err != nil {
				return eventstore.AppendResult{}, err
			}
		default: // Any, StreamExists
			c, ok := s.heads.get(stream)
			if !ok || fresh {
				if c, err = s.fetchHead(ctx, stream); err != nil {
					return eventstore.AppendResult{}, err
				}
				fresh = true
			}
			h = c
		}
		if !expected.Allows(h.version) {
			return s.failed(ctx, stream, expected, evs, h.version)
		}
		prev := h.hash
		for i, e := range evs {
			m, sum, err := eventstore.ChainMetadata(prev, stream, h.version+uint64(i)+1, e)
			if err != nil {
				return eventstore.AppendResult{}, fmt.Errorf("%w: %v", eventstore.ErrInvalidEvent, err)
			}
			metas[i], prev = string(m), sum
		}
		p := &pending{stream: stream, ver: h.version, hash: prev, evs: evs, datas: datas, metas: metas}
		var r groupResult
		if committed && len(evs) <= maxValuesEvents {
			r = s.commitGroup(ctx, p)
		} else {
			r = s.runOne(ctx, q, p)
		}
		pos, n, err := r.pos, r.n, r.err
		switch {
		case isUniqueViolation(err, "events_event_id_key"):
			return s.failed(ctx, stream, expected, evs, h.version)
		case isUniqueViolation(err, "events_stream_id_stream_version_key"):
			n = 0 // another appender got there first; same as a failed check
		case err != nil:
			return eventstore.AppendResult{}, fmt.Errorf("eventstore/postgres: append to %s: %w", stream, err)
		}
		if n == 0 {
			if expected.IsAny() || expected.IsStreamExists() {
				if found, err := s.eventsByID(ctx, evs); err != nil || len(found) > 0 {
					if err != nil {
						return eventstore.AppendResult{}, err
					}
					return eventstore.CheckReappend(stream, evs, found)
				}
				s.heads.forget(stream)
				fresh = true
				continue // someone else appended in between: retry on the new head
			}
			return s.failed(ctx, stream, expected, evs, h.version)
		}
		next := h.version + uint64(len(evs))
		if committed {
			s.heads.put(stream, head{version: next, hash: prev})
			s.notify()
		}
		return eventstore.AppendResult{NextExpected: next, Position: pos}, nil
	}
}

// runOne runs p's append as its own statement.
func (s *Store) runOne(ctx context.Context, q querier, p *pending) groupResult {
	var rows *sql.Rows
	var err error
	if len(p.evs) <= maxValuesEvents {
		st, perr := s.valuesStmt(ctx, p.ver == 0, len(p.evs))
		if perr != nil {
			return groupResult{err: perr}
		}
		args := make([]any, 0, 3+4*len(p.evs))
		args = append(args, p.stream, int64(p.ver), p.hash)
		for i, e := range p.evs {
			args = append(args, e.ID, e.Type, p.datas[i], p.metas[i])
		}
		rows, err = q(ctx, st, args...)
	} else {
		st := s.appendExact
		if p.ver == 0 {
			st = s.appendNew
		}
		types := make([]string, len(p.evs))
		for i, e := range p.evs {
			types[i] = e.Type
		}
		rows, err = q(ctx, st, p.stream, int64(p.ver), p.hash, pq.Array(eventstore.IDs(p.evs)), pq.Array(types), pq.Array(p.datas), pq.Array(p.metas))
	}
	pos, n, err := scanPositions(rows, err)
	return groupResult{pos: pos, n: n, err: err}
}

// failed decides an append whose version check failed or whose ids
// collided: an exact re-append returns the earlier result, other used ids
// are duplicates, and otherwise it is a version conflict.
func (s *Store) failed(ctx context.Context, stream string, expected eventstore.ExpectedVersion, evs []eventstore.EventData, seen uint64) (eventstore.AppendResult, error) {
	found, err := s.eventsByID(ctx, evs)
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	if len(found) > 0 {
		return eventstore.CheckReappend(stream, evs, found)
	}
	s.heads.forget(stream)
	if h, err := s.fetchHead(ctx, stream); err == nil {
		seen = h.version
	}
	return eventstore.AppendResult{}, wrongVersion(stream, expected, seen)
}

func wrongVersion(stream string, expected eventstore.ExpectedVersion, current uint64) error {
	return fmt.Errorf("%w: stream %s is at version %d, expected %s", eventstore.ErrWrongVersion, stream, current, expected)
}

func (s *Store) eventsByID(ctx context.Context, evs []eventstore.EventData) ([]eventstore.RecordedEvent, error) {
	rows, err := s.byIDs.QueryContext(ctx, pq.Array(eventstore.IDs(evs)))
	if err != nil {
		return nil, fmt.Errorf("eventstore/postgres: look up event ids: %w", err)
	}
	return scanEvents(rows, 0)
}

func scanPositions(rows *sql.Rows, err error) (last eventstore.Position, n int, _ error) {
	if err != nil {
		return last, 0, err
	}
	defer rows.Close()
	for rows.Next() {
		var p eventstore.Position
		if err := rows.Scan(&p.Prepare, &p.Commit); err != nil {
			return last, 0, err
		}
		if last.Less(p) {
			last = p
		}
		n++
	}
	return last, n, rows.Err()
}

func isUniqueViolation(err error, constraint string) bool {
	var pe *pq.Error
	return errors.As(err, &pe) && pe.Code == "23505" && pe.Constraint == constraint
}

func (s *Store) fetchHead(ctx context.Context, stream string) (head, error) {
	var h head
	var v int64
	err := s.headOf.QueryRowContext(ctx, stream).Scan(&v, &h.hash)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return head{}, nil
	case err != nil:
		return head{}, fmt.Errorf("eventstore/postgres: read head of %s: %w", stream, err)
	}
	h.version = uint64(v)
	s.heads.put(stream, h)
	return h, nil
}

// ReadStream implements eventstore.Store.
func (s *Store) ReadStream(ctx context.Context, stream string, from uint64) ([]eventstore.RecordedEvent, error) {
	rows, err := s.readStream.QueryContext(ctx, stream, int64(from))
	if err != nil {
		return nil, fmt.Errorf("eventstore/postgres: read %s: %w", stream, err)
	}
	evs, err := scanEvents(rows, 0)
	if err != nil {
		return nil, err
	}
	if n := len(evs); n > 0 {
		// The application reads a stream before appending to it, so the
		// next append finds the previous hash here.
		if h, err := eventstore.LastHash(evs[n-1].Metadata); err == nil {
			s.heads.put(stream, head{version: evs[n-1].StreamVersion, hash: h})
		}
	}
	return evs, nil
}

// ReadAll implements eventstore.Store.
func (s *Store) ReadAll(ctx context.Context, after eventstore.Position, limit int) ([]eventstore.RecordedEvent, error) {
	if limit <= 0 {
		return nil, nil
	}
	// Not a prepared statement: after a few runs PostgreSQL would switch it
	// to a generic plan that cannot see the LIMIT and sorts the table.
	rows, err := s.db.QueryContext(ctx, readAllSQL, strconv.FormatUint(after.Commit, 10), int64(after.Prepare), limit)
	if err != nil {
		return nil, fmt.Errorf("eventstore/postgres: read $all: %w", err)
	}
	return scanEvents(rows, limit)
}

// Head returns the position of the last event ReadAll can return now
// (Start when there is none).
func (s *Store) Head(ctx context.Context) (eventstore.Position, error) {
	var p eventstore.Position
	err := s.db.QueryRowContext(ctx, `SELECT tx_id, global_position FROM events
WHERE tx_id < `+horizonSQL+`
ORDER BY tx_id DESC, global_position DESC LIMIT 1`).Scan(&p.Commit, &p.Prepare)
	if errors.Is(err, sql.ErrNoRows) {
		return eventstore.Start, nil
	}
	if err != nil {
		return p, fmt.Errorf("eventstore/postgres: head: %w", err)
	}
	return p, nil
}

// replayChunk is how many rows one ReplayAll query returns. The rows
// stream from the server as they are scanned, so it bounds how long one
// statement (and the snapshot it holds, which holds back vacuum) lives,
// not memory.
const replayChunk = 100_000

// replayRows is replayChunk unless a test set a smaller one.
func (s *Store) replayRows() int {
	if s.replayRowsSet > 0 {
		return s.replayRowsSet
	}
	return replayChunk
}

// replaySQL is readAllSQL against a horizon fixed by the caller.
const replaySQL = `SELECT ` + selectCols + ` FROM events
WHERE (tx_id, global_position) > ($1::xid8, $2::bigint)
  AND tx_id < $3::xid8
ORDER BY tx_id, global_position LIMIT $4`

// ReplayAll passes $all after the position to fn in consecutive batches of
// up to batch events, up to the horizon as of the call, and returns the
// last position passed. It is ReadAll for long replays (rebuild, audit):
// one query per replayChunk rows instead of one per batch, with no LIMIT
// re-planned for each. fn may keep every batch.
//
// Fixing the horizon once is safe: every transaction below it had ended
// when it was read, and any transaction that starts later gets a larger
// xid, so later queries see exactly the rows below it that the first one
// would have. Events committed meanwhile are left to ReadAll.
func (s *Store) ReplayAll(ctx context.Context, after eventstore.Position, batch int, fn func([]eventstore.RecordedEvent) error) (eventstore.Position, error) {
	if batch <= 0 {
		batch = 1000
	}
	var horizon string
	if err := s.db.QueryRowContext(ctx, `SELECT `+horizonSQL+`::text`).Scan(&horizon); err != nil {
		return after, fmt.Errorf("eventstore/postgres: replay $all: horizon: %w", err)
	}
	var sc eventScanner
	for {
		n, err := s.replayQuery(ctx, &sc, &after, horizon, batch, fn)
		if err != nil || n < s.replayRows() {
			return after, err
		}
	}
}

// replayQuery runs one replay query, advancing *after past every batch fn
// accepted, and returns how many rows it passed.
func (s *Store) replayQuery(ctx context.Context, sc *eventScanner, after *eventstore.Position, horizon string, batch int, fn func([]eventstore.RecordedEvent) error) (int, error) {
	rows, err := s.db.QueryContext(ctx, replaySQL, strconv.FormatUint(after.Commit, 10), int64(after.Prepare), horizon, s.replayRows())
	if err != nil {
		return 0, fmt.Errorf("eventstore/postgres: replay $all: %w", err)
	}
	defer rows.Close()
	n := 0
	for more := true; more; {
		var evs []eventstore.RecordedEvent
		evs, more, err = sc.scan(rows, batch, batch)
		if err != nil {
			return n, err
		}
		if len(evs) == 0 {
			break
		}
		if err := fn(evs); err != nil {
			return n, err
		}
		n += len(evs)
		*after = evs[len(evs)-1].Position
	}
	if err := rows.Err(); err != nil {
		return n, fmt.Errorf("eventstore/postgres: replay $all: %w", err)
	}
	return n, nil
}

// scanEvents is the replay hot path: the driver's raw bytes are copied
// into one arena per batch instead of one allocation per column, and the
// few distinct stream and type names of a batch are shared.
func scanEvents(rows *sql.Rows, capHint int) ([]eventstore.RecordedEvent, error) {
	defer rows.Close()
	var sc eventScanner
	out, _, err := sc.scan(rows, capHint, -1)
	if err != nil {
		return nil, err
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("eventstore/postgres: read events: %w", err)
	}
	return out, nil
}

// eventScanner turns rows of selectCols into events. The names it interns
// outlive a batch (a replay sees the same event types throughout); the
// arena does not, so a caller may keep every batch it is given.
type eventScanner struct {
	names map[string]string
}

// scan reads up to limit rows (all of them when limit < 0) into a new slice;
// more reports whether rows.Next returned true for each of them, so false
// means the rows are exhausted (check rows.Err).
func (sc *eventScanner) scan(rows *sql.Rows, capHint, limit int) (out []eventstore.RecordedEvent, more bool, _ error) {
	if sc.names == nil {
		sc.names = make(map[string]string)
	}
	out = make([]eventstore.RecordedEvent, 0, capHint)
	var gp, tx, stream, version, id, typ, data, meta sql.RawBytes
	var at int64
	var arena []byte
	chunk := 0
	intern := func(b []byte) string {
		if s, ok := sc.names[string(b)]; ok {
			return s
		}
		s := string(b)
		sc.names[s] = s
		return s
	}
	for limit < 0 || len(out) < limit {
		if !rows.Next() {
			return out, false, nil
		}
		var e eventstore.RecordedEvent
		if err := rows.Scan(&gp, &tx, &stream, &version, &id, &typ, &data, &meta, &at); err != nil {
			return nil, false, fmt.Errorf("eventstore/postgres: scan event: %w", err)
		}
		var ok1, ok2, ok3 bool
		e.Position.Prepare, ok1 = parseUint(gp)
		e.Position.Commit, ok2 = parseUint(tx)
		e.StreamVersion, ok3 = parseUint(version)
		if !ok1 || !ok2 || !ok3 {
			return nil, false, fmt.Errorf("eventstore/postgres: scan event: bad number in %q/%q/%q", gp, tx, version)
		}
		e.Stream, e.Type, e.ID = intern(stream), intern(typ), string(id)
		if need := len(data) + len(meta); cap(arena)-len(arena) < need {
			// Grow geometrically from a small arena: most reads (a stream
			// before an append, a live projection's batch) return a few
			// events, and a fixed large arena was cleared for each of them.
			chunk = min(max(chunk*2, 4<<10), 256<<10)
			arena = make([]byte, 0, max(need, chunk))
		}
		n := len(arena)
		arena = append(arena, data...)
		e.Data = arena[n:len(arena):len(arena)]
		n = len(arena)
		arena = append(arena, meta...)
		e.Metadata = arena[n:len(arena):len(arena)]
		if len(data) == 0 {
			e.Data = nil
		}
		e.RecordedAt = time.UnixMicro(at).UTC()
		out = append(out, e)
		if len(sc.names) > 4096 {
			clear(sc.names)
		}
	}
	return out, true, nil
}

func parseUint(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return n, true
}

// head is what the next append to a stream needs: the stream's version and
// its last event's hash. Both are immutable once committed, so a cached
// value is never wrong, only possibly behind (then the version check fails
// and the store reads the head again).
type head struct {
	version uint64
	hash    []byte
}

// headCache bounds memory for stores that touch millions of streams: when
// full it drops an arbitrary slice of entries, which only costs a SELECT.
type headCache struct {
	mu sync.Mutex
	m  map[string]head
}

const headCacheSize = 1 << 16

func (c *headCache) init() { c.m = make(map[string]head) }

func (c *headCache) get(stream string) (head, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	h, ok := c.m[stream]
	return h, ok
}

func (c *headCache) put(stream string, h head) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.m[stream]; ok && old.version > h.version {
		return
	}
	if len(c.m) >= headCacheSize {
		n := 0
		for k := range c.m {
			delete(c.m, k)
			if n++; n >= headCacheSize/8 {
				break
			}
		}
	}
	c.m[stream] = h
}

func (c *headCache) forget(stream string) {
	c.mu.Lock()
	delete(c.m, stream)
	c.mu.Unlock()
}
