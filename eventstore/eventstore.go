package eventstore

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrWrongVersion is returned by Append when the stream is not at the
// expected version. Nothing was written.
var ErrWrongVersion = errors.New("eventstore: wrong expected version")

// ErrDuplicateEvent is returned by Append when an event id already exists in
// the store but the earlier append does not match this one (other stream,
// other position or other content). An exact re-append of events that were
// already committed is not an error: see Append.
var ErrDuplicateEvent = errors.New("eventstore: event id already used")

// ExpectedVersion is the optimistic-concurrency condition of an append. The
// zero value is Any.
type ExpectedVersion struct {
	kind    expectKind
	version uint64
}

type expectKind uint8

const (
	expectAny expectKind = iota
	expectNoStream
	expectStreamExists
	expectExact
)

var (
	// Any appends whatever the stream's state.
	Any = ExpectedVersion{kind: expectAny}
	// NoStream requires that the stream has no events yet.
	NoStream = ExpectedVersion{kind: expectNoStream}
	// StreamExists requires that the stream has at least one event.
	StreamExists = ExpectedVersion{kind: expectStreamExists}
)

// Exact requires that the stream holds exactly v events (its last event has
// version v). Exact(0) is the same as NoStream.
func Exact(v uint64) ExpectedVersion {
	if v == 0 {
		return NoStream
	}
	return ExpectedVersion{kind: expectExact, version: v}
}

// IsAny, IsNoStream, IsStreamExists report the mode; Exact reports the
// version for the exact mode.
func (e ExpectedVersion) IsAny() bool          { return e.kind == expectAny }
func (e ExpectedVersion) IsNoStream() bool     { return e.kind == expectNoStream }
func (e ExpectedVersion) IsStreamExists() bool { return e.kind == expectStreamExists }

// Exact returns the required version and true when the mode is exact.
func (e ExpectedVersion) Exact() (uint64, bool) { return e.version, e.kind == expectExact }

// Allows reports whether a stream currently holding current events (0 for a
// missing stream) satisfies the condition. Backends that check in Go use it
// so that every backend means the same thing.
func (e ExpectedVersion) Allows(current uint64) bool {
	switch e.kind {
	case expectNoStream:
		return current == 0
	case expectStreamExists:
		return current > 0
	case expectExact:
		return current == e.version
	default:
		return true
	}
}

func (e ExpectedVersion) String() string {
	switch e.kind {
	case expectNoStream:
		return "no-stream"
	case expectStreamExists:
		return "stream-exists"
	case expectExact:
		return fmt.Sprintf("exact(%d)", e.version)
	default:
		return "any"
	}
}

// EventData is an event to append. The store does not interpret Data or
// Metadata beyond requiring Metadata to be a JSON object (or empty); it adds
// the hash-chain fields (see HashChain) to the metadata it stores.
type EventData struct {
	// ID is a UUID in canonical text form. Appending an event whose id is
	// already stored is how a lost acknowledgement is retried safely.
	ID string
	// Type is the stable event name, e.g. "invoice.created".
	Type string
	// Data is the JSON body of the event.
	Data []byte
	// Metadata is a JSON object or nil.
	Metadata []byte
}

// Position is a place in the global order ($all). It is opaque to callers
// except for ordering: backends define Commit and Prepare (KurrentDB's
// commit/prepare pair; Postgres transaction id and global position; SQLite
// uses the row id for both). The zero Position is before every event.
type Position struct {
	Commit  uint64
	Prepare uint64
}

// Start is the position before the first event.
var Start = Position{}

// Less orders positions as the store's global order does.
func (p Position) Less(q Position) bool {
	if p.Commit != q.Commit {
		return p.Commit < q.Commit
	}
	return p.Prepare < q.Prepare
}

func (p Position) String() string { return fmt.Sprintf("%d/%d", p.Commit, p.Prepare) }

// RecordedEvent is an event as stored.
type RecordedEvent struct {
	ID            string
	Stream        string
	StreamVersion uint64 // 1 for the first event of a stream
	Type          string
	Data          []byte
	Metadata      []byte // the caller's metadata plus "prev_hash" and "hash"
	Position      Position
	RecordedAt    time.Time
}

// AppendResult tells where the last appended event landed.
type AppendResult struct {
	// NextExpected is the stream's version after the append (the version of
	// its last event).
	NextExpected uint64
	// Position is the global position of the last appended event.
	Position Position
}

// Replayer is what a Store may offer for long reads of $all (rebuilds,
// audits): ReplayAll passes the events after the position to fn in
// consecutive batches of at most batch events, up to the head as of the
// call, and returns the last position passed (after itself when there was
// nothing). fn may keep each batch. An error from fn stops the replay and
// is returned. Events committed while it runs may or may not be passed;
// a ReadAll from the returned position finds the rest.
type Replayer interface {
	ReplayAll(ctx context.Context, after Position, batch int, fn func([]RecordedEvent) error) (Position, error)
}

// Store is the ledger's event log. Implementations must pass the suite in
// eventstore/storetest.
type Store interface {
	// Append writes events to the end of stream atomically, if the stream
	// satisfies expected. It returns ErrWrongVersion (wrapped) when it does
	// not, and writes nothing. Re-appending exactly the events of an earlier
	// committed append (same ids, same stream, same versions, same content)
	// succeeds without writing and returns the earlier result; ids that
	// exist but do not match that rule give ErrDuplicateEvent. A nil error
	// means the events are committed durably.
	Append(ctx context.Context, stream string, expected ExpectedVersion, events ...EventData) (AppendResult, error)
	// ReadStream returns the stream's events with version >= from, oldest
	// first. A missing stream gives an empty slice and no error.
	ReadStream(ctx context.Context, stream string, from uint64) ([]RecordedEvent, error)
	// ReadAll returns up to limit events strictly after the position, in
	// global order. It never returns an event and later skips one that
	// belongs before it: an event that is not yet safely visible is held
	// back together with everything after it.
	ReadAll(ctx context.Context, after Position, limit int) ([]RecordedEvent, error)
	// Changed returns a channel that is closed after the next append
	// committed through this Store value, so that in-process readers wake at
	// once instead of polling. Appends by other processes are not seen:
	// readers also poll with backoff.
	Changed() <-chan struct{}
	// Close releases the store's resources.
	Close() error
}
