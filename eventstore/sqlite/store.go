package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
	_ "modernc.org/sqlite" // registers the "sqlite" driver (pure Go)

	"github.com/payledger/payledger/eventstore"
)

// Store is the SQLite event store. It is safe for concurrent use within
// one process; other processes may read the file but must not append.
type Store struct {
	w *sqlx.DB // one connection: SQLite has one writer at a time
	r *sqlx.DB // readers, query_only

	// writes serialises everything that uses w, so that writers queue in
	// Go instead of spinning on SQLITE_BUSY.
	writes sync.Mutex

	reqs    chan *appendReq
	closed  chan struct{} // closed by Close
	stopped chan struct{} // closed when the writer goroutine has ended
	once    sync.Once

	mu      sync.Mutex
	changed chan struct{}
}

var _ eventstore.Store = (*Store)(nil)

// Readers bounds the reader pool.
const Readers = 4

const schema = `
CREATE TABLE IF NOT EXISTS streams (
	stream_id TEXT    PRIMARY KEY,
	version   INTEGER NOT NULL CHECK (version > 0),
	last_hash BLOB    NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
	global_position INTEGER PRIMARY KEY AUTOINCREMENT,
	stream_id       TEXT    NOT NULL,
	stream_version  INTEGER NOT NULL CHECK (stream_version > 0),
	event_id        TEXT    NOT NULL UNIQUE,
	event_type      TEXT    NOT NULL,
	data            TEXT    NOT NULL,
	metadata        TEXT    NOT NULL,
	recorded_at     INTEGER NOT NULL,
	UNIQUE (stream_id, stream_version)
);
`

// Open opens (creating if needed, with its directory) the database file at
// path in WAL mode with synchronous=FULL, so that an acknowledged append
// survives power loss, and creates the tables if they do not exist.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" {
		return nil, errors.New("eventstore/sqlite: empty database path")
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("eventstore/sqlite: %w", err)
		}
	}
	base := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=synchronous(FULL)&_pragma=foreign_keys(1)"
	w, err := sqlx.Open("sqlite", base+"&_pragma=journal_mode(WAL)&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("eventstore/sqlite: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	if _, err := w.ExecContext(ctx, schema); err != nil {
		w.Close()
		return nil, fmt.Errorf("eventstore/sqlite: open %s: %w", path, err)
	}
	var mode string
	if err := w.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil || !strings.EqualFold(mode, "wal") {
		w.Close()
		return nil, fmt.Errorf("eventstore/sqlite: %s: WAL mode not available (journal_mode=%q, %v)", path, mode, err)
	}
	r, err := sqlx.Open("sqlite", base+"&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("eventstore/sqlite: %w", err)
	}
	r.SetMaxOpenConns(Readers)
	r.SetMaxIdleConns(Readers)
	s := &Store{w: w, r: r, changed: make(chan struct{}),
		reqs: make(chan *appendReq), closed: make(chan struct{}), stopped: make(chan struct{})}
	go s.writer()
	return s, nil
}

// DB is the reader pool, for read models kept in the same file. Its
// connections are query_only: write through WriteTx, which queues behind
// appends on the single writer connection instead of failing with
// SQLITE_BUSY.
func (s *Store) DB() *sqlx.DB { return s.r }

// WriteTx runs fn in a transaction on the writer connection (BEGIN
// IMMEDIATE) and commits it when fn returns nil. Read-model tables and
// checkpoints are written here; fn must not touch streams or events.
func (s *Store) WriteTx(ctx context.Context, fn func(*sqlx.Tx) error) error {
	s.writes.Lock()
	defer s.writes.Unlock()
	tx, err := s.w.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// Close stops the writer (after the group it is committing) and closes
// both pools.
func (s *Store) Close() error {
	var err error
	s.once.Do(func() {
		close(s.closed)
		<-s.stopped
		err = errors.Join(s.r.Close(), s.w.Close())
	})
	return err
}

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

// Append implements eventstore.Store. Appends are handed to the writer
// goroutine, which commits every append waiting at that moment in one
// transaction (each in its own savepoint, so one failing append does not
// undo the others) and answers them all after the one fsync.
func (s *Store) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	if stream == "" {
		return eventstore.AppendResult{}, fmt.Errorf("%w: empty stream name", eventstore.ErrInvalidEvent)
	}
	evs, err := eventstore.Normalize(events)
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	req := &appendReq{ctx: ctx, stream: stream, expected: expected, evs: evs, done: make(chan struct{})}
	select {
	case s.reqs <- req:
	case <-s.closed:
		return eventstore.AppendResult{}, errClosed
	case <-ctx.Done():
		return eventstore.AppendResult{}, ctx.Err()
	}
	// Once queued the append may commit, so its answer is awaited even if
	// ctx ends: returning early would hide a committed write.
	<-req.done
	return req.res, req.err
}

var errClosed = errors.New("eventstore/sqlite: store is closed")

type appendReq struct {
	ctx      context.Context
	stream   string
	expected eventstore.ExpectedVersion
	evs      []eventstore.EventData

	res  eventstore.AppendResult
	err  error
	done chan struct{}
}

// maxGroup bounds how many appends share one commit, so that one commit
// never grows without limit under a flood.
const maxGroup = 128

func (s *Store) writer() {
	defer close(s.stopped)
	for {
		var first *appendReq
		select {
		case first = <-s.reqs:
		case <-s.closed:
			return
		}
		group := []*appendReq{first}
	drain:
		for len(group) < maxGroup {
			select {
			case r := <-s.reqs:
				group = append(group, r)
			default:
				break drain
			}
		}
		s.commitGroup(group)
	}
}

func (s *Store) commitGroup(group []*appendReq) {
	s.writes.Lock()
	defer s.writes.Unlock()
	defer func() {
		for _, r := range group {
			close(r.done)
		}
	}()
	fail := func(err error) {
		for _, r := range group {
			r.res, r.err = eventstore.AppendResult{}, err
		}
	}
	// The group's statements do not use any one caller's context: one
	// caller giving up must not abort the others' appends.
	ctx := context.Background()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		fail(fmt.Errorf("eventstore/sqlite: begin: %w", err))
		return
	}
	defer tx.Rollback()
	wrote := false
	for _, r := range group {
		if err := r.ctx.Err(); err != nil {
			r.err = err
			continue
		}
		if _, err := tx.ExecContext(ctx, `SAVEPOINT append`); err != nil {
			fail(fmt.Errorf("eventstore/sqlite: savepoint: %w", err))
			return
		}
		var ok bool
		r.res, ok, r.err = appendTx(ctx, tx, r.stream, r.expected, r.evs)
		release := `RELEASE append`
		if r.err != nil || !ok {
			release = `ROLLBACK TO append; RELEASE append`
		}
		if _, err := tx.ExecContext(ctx, release); err != nil {
			fail(fmt.Errorf("eventstore/sqlite: savepoint: %w", err))
			return
		}
		wrote = wrote || ok
	}
	if !wrote {
		return
	}
	// Answers given before the commit (re-appends, conflicts) were decided
	// on this transaction's view, so they too wait for it and fail with it.
	if err := tx.Commit(); err != nil {
		fail(fmt.Errorf("eventstore/sqlite: commit: %w", err))
		return
	}
	s.notify()
}

// appendTx does an append inside the writer's transaction; wrote reports
// whether there is anything to commit.
func appendTx(ctx context.Context, tx *sql.Tx, stream string, expected eventstore.ExpectedVersion, evs []eventstore.EventData) (res eventstore.AppendResult, wrote bool, err error) {
	var version int64
	var prev []byte
	err = tx.QueryRowContext(ctx, `SELECT version, last_hash FROM streams WHERE stream_id = ?`, stream).Scan(&version, &prev)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return res, false, fmt.Errorf("eventstore/sqlite: read head of %s: %w", stream, err)
	}
	current := uint64(version)
	if len(evs) > 0 {
		// Ids that exist decide the append whatever the version says: a
		// retried append must get its first result back.
		found, err := eventsByID(ctx, tx, evs)
		if err != nil {
			return res, false, err
		}
		if len(found) > 0 {
			res, err := eventstore.CheckReappend(stream, evs, found)
			return res, false, err
		}
	}
	if !expected.Allows(current) {
		return res, false, fmt.Errorf("%w: stream %s is at version %d, expected %s", eventstore.ErrWrongVersion, stream, current, expected)
	}
	if len(evs) == 0 {
		return eventstore.AppendResult{NextExpected: current}, false, nil
	}
	now := time.Now().UnixMicro()
	var last int64
	for i, e := range evs {
		v := current + uint64(i) + 1
		meta, sum, err := eventstore.ChainMetadata(prev, stream, v, e)
		if err != nil {
			return res, false, fmt.Errorf("%w: %v", eventstore.ErrInvalidEvent, err)
		}
		r, err := tx.ExecContext(ctx, `INSERT INTO events (stream_id, stream_version, event_id, event_type, data, metadata, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			stream, int64(v), e.ID, e.Type, string(e.Data), string(meta), now)
		if err != nil {
			return res, false, fmt.Errorf("eventstore/sqlite: append to %s: %w", stream, err)
		}
		if last, err = r.LastInsertId(); err != nil {
			return res, false, err
		}
		prev = sum
	}
	next := current + uint64(len(evs))
	if _, err := tx.ExecContext(ctx, `INSERT INTO streams (stream_id, version, last_hash) VALUES (?, ?, ?)
ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version, last_hash = excluded.last_hash`, stream, int64(next), prev); err != nil {
		return res, false, fmt.Errorf("eventstore/sqlite: append to %s: %w", stream, err)
	}
	p := uint64(last)
	return eventstore.AppendResult{NextExpected: next, Position: eventstore.Position{Commit: p, Prepare: p}}, true, nil
}

const selectCols = `global_position, stream_id, stream_version, event_id, event_type, data, metadata, recorded_at`

func eventsByID(ctx context.Context, tx *sql.Tx, evs []eventstore.EventData) ([]eventstore.RecordedEvent, error) {
	args := make([]any, len(evs))
	for i, e := range evs {
		args[i] = e.ID
	}
	q := `SELECT ` + selectCols + ` FROM events WHERE event_id IN (?` + strings.Repeat(",?", len(evs)-1) + `)`
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("eventstore/sqlite: look up event ids: %w", err)
	}
	return scanEvents(rows, 0)
}

// ReadStream implements eventstore.Store.
func (s *Store) ReadStream(ctx context.Context, stream string, from uint64) ([]eventstore.RecordedEvent, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+selectCols+` FROM events WHERE stream_id = ? AND stream_version >= ? ORDER BY stream_version`, stream, int64(from))
	if err != nil {
		return nil, fmt.Errorf("eventstore/sqlite: read %s: %w", stream, err)
	}
	return scanEvents(rows, 0)
}

// ReadAll implements eventstore.Store. Appends are serialised by the one
// writer, so row ids are assigned in commit order and a reader that sees
// a row also sees every row before it.
func (s *Store) ReadAll(ctx context.Context, after eventstore.Position, limit int) ([]eventstore.RecordedEvent, error) {
	if limit <= 0 {
		return nil, nil
	}
	threshold := int64(after.Commit)
	if after.Prepare < after.Commit {
		threshold-- // a position inside row Commit's place: that row is still after it
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+selectCols+` FROM events WHERE global_position > ? ORDER BY global_position LIMIT ?`, threshold, limit)
	if err != nil {
		return nil, fmt.Errorf("eventstore/sqlite: read $all: %w", err)
	}
	return scanEvents(rows, limit)
}

// Head returns the position of the last event (Start when there is none).
func (s *Store) Head(ctx context.Context) (eventstore.Position, error) {
	var p sql.NullInt64
	if err := s.r.QueryRowContext(ctx, `SELECT max(global_position) FROM events`).Scan(&p); err != nil {
		return eventstore.Start, fmt.Errorf("eventstore/sqlite: head: %w", err)
	}
	return eventstore.Position{Commit: uint64(p.Int64), Prepare: uint64(p.Int64)}, nil
}

func scanEvents(rows *sql.Rows, capHint int) ([]eventstore.RecordedEvent, error) {
	defer rows.Close()
	out := make([]eventstore.RecordedEvent, 0, capHint)
	for rows.Next() {
		var e eventstore.RecordedEvent
		var pos, version, at int64
		if err := rows.Scan(&pos, &e.Stream, &version, &e.ID, &e.Type, &e.Data, &e.Metadata, &at); err != nil {
			return nil, fmt.Errorf("eventstore/sqlite: scan event: %w", err)
		}
		e.Position = eventstore.Position{Commit: uint64(pos), Prepare: uint64(pos)}
		e.StreamVersion = uint64(version)
		e.RecordedAt = time.UnixMicro(at).UTC()
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("eventstore/sqlite: read events: %w", err)
	}
	return out, nil
}
