package kurrentdb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/payledger/payledger/eventstore"
)

// ErrStreamDeleted is returned (wrapped) when a stream was tombstoned on
// the server: it can be neither read nor appended to again. The ledger
// never tombstones streams, so seeing it means someone did by hand.
var ErrStreamDeleted = errors.New("eventstore/kurrentdb: stream is deleted")

// ErrClosed is returned by operations on a closed Store.
var ErrClosed = errors.New("eventstore/kurrentdb: store is closed")

// Store is the KurrentDB event store. It is safe for concurrent use.
type Store struct {
	cfg    esdb.Configuration
	prefix string
	logger *slog.Logger

	mu      sync.Mutex
	cl      *esdb.Client
	retired []*esdb.Client
	closed  bool
	changed chan struct{}

	heads headCache
}

var _ eventstore.Store = (*Store)(nil)

// Option configures Open.
type Option func(*Store)

// WithStreamPrefix makes the store keep its streams under prefix on the
// server (stream "invoice-1" is stored as prefix+"invoice-1") and see only
// those in ReadAll and Subscribe. It lets several ledgers, or the tests of
// one, share a server. The prefix must not start with "$".
func WithStreamPrefix(prefix string) Option { return func(s *Store) { s.prefix = prefix } }

// WithLogger sends the client library's log lines to l (errors and
// warnings at Warn, the rest at Debug). The default is slog.Default().
func WithLogger(l *slog.Logger) Option { return func(s *Store) { s.logger = l } }

// Open connects to the KurrentDB node or cluster at url, an esdb:// or
// esdb+discover:// connection string (kurrentdb://, kurrent:// and their
// +discover forms are accepted as the same thing), and checks that it
// answers.
func Open(ctx context.Context, url string, opts ...Option) (*Store, error) {
	cfg, err := ParseURL(url)
	if err != nil {
		return nil, err
	}
	s := &Store{changed: make(chan struct{}), logger: slog.Default()}
	for _, o := range opts {
		o(s)
	}
	if strings.HasPrefix(s.prefix, "$") {
		return nil, fmt.Errorf("eventstore/kurrentdb: stream prefix %q is in the server's system namespace", s.prefix)
	}
	cfg.Logger = s.logFunc
	s.cfg = *cfg
	s.heads.init()
	if s.cl, err = s.newClient(); err != nil {
		return nil, err
	}
	// A read of a stream that does not exist is the cheapest request that
	// proves the node is reachable and serving; it needs no ACL.
	if _, err := s.ReadStream(ctx, "payledger-ping-"+uuid.NewString(), 0); err != nil {
		s.Close()
		return nil, fmt.Errorf("eventstore/kurrentdb: connect: %w", err)
	}
	return s, nil
}

// ParseURL turns a connection string into the client's configuration. It
// exists because the client knows only the esdb schemes while KurrentDB's
// documentation now writes kurrentdb:// (and some tools kurrent://).
func ParseURL(url string) (*esdb.Configuration, error) {
	for _, scheme := range []string{"kurrentdb", "kurrent"} {
		if rest, ok := strings.CutPrefix(url, scheme+"+discover://"); ok {
			url = "esdb+discover://" + rest
			break
		}
		if rest, ok := strings.CutPrefix(url, scheme+"://"); ok {
			url = "esdb://" + rest
			break
		}
	}
	cfg, err := esdb.ParseConnectionString(url)
	if err != nil {
		return nil, fmt.Errorf("eventstore/kurrentdb: connection string: %w", err)
	}
	return cfg, nil
}

func (s *Store) logFunc(level esdb.LogLevel, format string, args ...any) {
	lv := slog.LevelDebug
	if level == esdb.LogError || level == esdb.LogWarn {
		lv = slog.LevelWarn
	}
	if s.logger.Enabled(context.Background(), lv) {
		s.logger.Log(context.Background(), lv, "kurrentdb client: "+fmt.Sprintf(format, args...))
	}
}

func (s *Store) newClient() (*esdb.Client, error) {
	cfg := s.cfg
	cl, err := esdb.NewClient(&cfg)
	if err != nil {
		return nil, fmt.Errorf("eventstore/kurrentdb: %w", err)
	}
	return cl, nil
}

func (s *Store) client() (*esdb.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	return s.cl, nil
}

// renew replaces old with a new client when old gave up: once its node
// discovery has failed MaxDiscoverAttempts times the client closes itself
// for good and answers every call with ErrorCodeConnectionClosed. The old
// client is not closed here because its internal goroutine has already
// stopped and closing it under a concurrent call can panic inside the
// library; Close releases it.
func (s *Store) renew(old *esdb.Client) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.cl != old {
		return nil // another caller renewed it already
	}
	cl, err := s.newClient()
	if err != nil {
		return err
	}
	s.retired = append(s.retired, old)
	s.cl = cl
	s.logger.Warn("kurrentdb: client gave up discovering the server; using a new client")
	return nil
}

// call runs op with the current client, and once more with a new client
// when the current one had given up: that failure happens before any
// request leaves the process, so the retry cannot duplicate a write.
func (s *Store) call(op func(cl *esdb.Client) error) error {
	cl, err := s.client()
	if err != nil {
		return err
	}
	err = op(cl)
	if !gaveUp(err) {
		return err
	}
	if err := s.renew(cl); err != nil {
		return err
	}
	if cl, err = s.client(); err != nil {
		return err
	}
	return op(cl)
}

// Close closes the store's clients.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	for _, cl := range append(s.retired, s.cl) {
		cl.Close()
	}
	return nil
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

// maxAppendAttempts bounds the retries of an Any or StreamExists append
// that keeps losing the race for the stream's head (each lost race means
// another append succeeded, so this only trips under pathological load).
const maxAppendAttempts = 50

// Append implements eventstore.Store.
//
// The hash chain needs the version at which each event lands, so every
// write is sent with an exact expected revision computed from the stream's
// head, whatever the caller asked for; the caller's condition is checked
// against that head first. A head that turns out stale (another writer
// got in) is re-read and the decision taken again.
func (s *Store) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	if stream == "" {
		return eventstore.AppendResult{}, fmt.Errorf("%w: empty stream name", eventstore.ErrInvalidEvent)
	}
	evs, err := eventstore.Normalize(events)
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	ids := eventstore.IDs(evs)
	fresh := false
	for attempt := 0; ; attempt++ {
		if other, ok := s.heads.streamOf(ids, stream); ok {
			return eventstore.AppendResult{}, fmt.Errorf("%w: an event id is already stored in stream %q", eventstore.ErrDuplicateEvent, other)
		}
		h, ok := s.heads.get(stream)
		if !ok || fresh {
			if h, err = s.loadHead(ctx, stream); err != nil {
				return eventstore.AppendResult{}, err
			}
			fresh = true
		}
		if found := h.find(ids); len(found) > 0 {
			return s.reappend(ctx, stream, evs, found)
		}
		if !expected.Allows(h.version) {
			if !fresh {
				fresh = true
				continue // the cache may be behind the server
			}
			return eventstore.AppendResult{}, wrongVersion(stream, expected, h.version)
		}
		if len(evs) == 0 {
			return eventstore.AppendResult{NextExpected: h.version}, nil
		}
		res, next, err := s.write(ctx, stream, h, evs)
		if errors.Is(err, eventstore.ErrWrongVersion) {
			if attempt >= maxAppendAttempts {
				return eventstore.AppendResult{}, err
			}
			fresh = true
			continue
		}
		if err != nil {
			return eventstore.AppendResult{}, err
		}
		s.heads.put(stream, next)
		s.notify()
		return res, nil
	}
}

func (s *Store) write(ctx context.Context, stream string, h head, evs []eventstore.EventData) (eventstore.AppendResult, head, error) {
	next := h.extend(len(evs))
	prev := h.hash
	out := make([]esdb.EventData, len(evs))
	for i, e := range evs {
		version := h.version + uint64(i) + 1
		m, sum, err := eventstore.ChainMetadata(prev, stream, version, e)
		if err != nil {
			return eventstore.AppendResult{}, head{}, fmt.Errorf("%w: %v", eventstore.ErrInvalidEvent, err)
		}
		prev = sum
		next.ids[e.ID] = version
		out[i] = esdb.EventData{
			EventID:     uuid.MustParse(e.ID),
			EventType:   e.Type,
			ContentType: esdb.ContentTypeJson,
			Data:        e.Data,
			Metadata:    m,
		}
	}
	next.hash = prev
	var rev esdb.ExpectedRevision = esdb.NoStream{}
	if h.version > 0 {
		rev = esdb.Revision(h.version - 1) // our versions count events; revisions index them
	}
	var wr *esdb.WriteResult
	err := s.call(func(cl *esdb.Client) (err error) {
		wr, err = cl.AppendToStream(ctx, s.prefix+stream, esdb.AppendToStreamOptions{ExpectedRevision: rev}, out...)
		return err
	})
	if err != nil {
		return eventstore.AppendResult{}, head{}, mapError("append to "+stream, err)
	}
	return eventstore.AppendResult{
		NextExpected: next.version,
		Position:     eventstore.Position{Commit: wr.CommitPosition, Prepare: wr.PreparePosition},
	}, next, nil
}

// reappend decides an append some of whose ids are already in the stream:
// the exact earlier append gives its earlier result, anything else is a
// duplicate.
func (s *Store) reappend(ctx context.Context, stream string, evs []eventstore.EventData, found []uint64) (eventstore.AppendResult, error) {
	from := found[0]
	for _, v := range found {
		from = min(from, v)
	}
	stored, err := s.ReadStream(ctx, stream, from)
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	want := make(map[string]bool, len(evs))
	for _, e := range evs {
		want[e.ID] = true
	}
	var hits []eventstore.RecordedEvent
	for _, r := range stored {
		if want[r.ID] {
			hits = append(hits, r)
		}
	}
	return eventstore.CheckReappend(stream, evs, hits)
}

func wrongVersion(stream string, expected eventstore.ExpectedVersion, current uint64) error {
	return fmt.Errorf("%w: stream %s is at version %d, expected %s", eventstore.ErrWrongVersion, stream, current, expected)
}

// loadHead reads the whole stream to learn its version, last hash and
// event ids. Reading it all (ledger streams are short) is what lets an
// exact re-append be recognised: the server only recognises its own
// idempotent writes when the expected revision is the one they were
// written at, and the store never sends that for a re-append.
func (s *Store) loadHead(ctx context.Context, stream string) (head, error) {
	if _, err := s.ReadStream(ctx, stream, 0); err != nil {
		return head{}, err
	}
	h, _ := s.heads.get(stream)
	return h, nil
}

// readPage is the number of events asked for per read request.
const readPage = 512

// ReadStream implements eventstore.Store.
func (s *Store) ReadStream(ctx context.Context, stream string, from uint64) ([]eventstore.RecordedEvent, error) {
	var out []eventstore.RecordedEvent
	pos := esdb.StreamPosition(esdb.Start{})
	if from > 1 {
		pos = esdb.Revision(from - 1)
	}
	for {
		page, err := s.readStreamPage(ctx, stream, pos)
		if err != nil {
			return nil, err
		}
		out = append(out, page...)
		if len(page) < readPage {
			break
		}
		pos = esdb.Revision(page[len(page)-1].StreamVersion) // next revision = last version
	}
	if from <= 1 {
		// A whole stream was read: remember its head for the next append
		// (the application reads a stream before appending to it).
		h := head{ids: make(map[string]uint64, len(out))}
		for _, e := range out {
			h.ids[e.ID] = e.StreamVersion
		}
		if n := len(out); n > 0 {
			hash, err := eventstore.LastHash(out[n-1].Metadata)
			if err != nil {
				return nil, fmt.Errorf("eventstore/kurrentdb: stream %s version %d has no hash chain: %v", stream, out[n-1].StreamVersion, err)
			}
			h.version, h.hash = out[n-1].StreamVersion, hash
		}
		s.heads.put(stream, h)
	}
	return out, nil
}

func (s *Store) readStreamPage(ctx context.Context, stream string, pos esdb.StreamPosition) ([]eventstore.RecordedEvent, error) {
	var out []eventstore.RecordedEvent
	err := s.call(func(cl *esdb.Client) error {
		out = out[:0]
		rs, err := cl.ReadStream(ctx, s.prefix+stream, esdb.ReadStreamOptions{Direction: esdb.Forwards, From: pos}, readPage)
		if err != nil {
			return err
		}
		defer rs.Close()
		for first := true; ; first = false {
			ev, err := rs.Recv()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				// The server reports a missing stream as the first and only
				// message of the read; later it would be a real error.
				if first && isCode(err, esdb.ErrorCodeResourceNotFound) {
					return nil
				}
				return err
			}
			if e, ok := s.convert(ev); ok {
				out = append(out, e)
			}
		}
	})
	if err != nil {
		return nil, mapError("read "+stream, err)
	}
	return out, nil
}

// ReadAll implements eventstore.Store. KurrentDB's $all is in commit order
// and only shows committed events, so nothing is held back; system events
// and other prefixes' streams are skipped without counting to limit.
func (s *Store) ReadAll(ctx context.Context, after eventstore.Position, limit int) ([]eventstore.RecordedEvent, error) {
	if limit <= 0 {
		return nil, nil
	}
	var out []eventstore.RecordedEvent
	var from esdb.AllPosition = esdb.Start{}
	if after != eventstore.Start {
		from = esdb.Position{Commit: after.Commit, Prepare: after.Prepare}
	}
	batch := uint64(min(max(limit+1, 64), 4096))
	for len(out) < limit {
		var n uint64
		var last eventstore.Position
		base := len(out)
		err := s.call(func(cl *esdb.Client) error {
			n, out = 0, out[:base]
			rs, err := cl.ReadAll(ctx, esdb.ReadAllOptions{Direction: esdb.Forwards, From: from}, batch)
			if err != nil {
				return err
			}
			defer rs.Close()
			for {
				ev, err := rs.Recv()
				if errors.Is(err, io.EOF) {
					return nil
				}
				if err != nil {
					return err
				}
				n++
				rec := ev.OriginalEvent()
				last = eventstore.Position{Commit: rec.Position.Commit, Prepare: rec.Position.Prepare}
				// Reads from a position include the event at it; ours
				// are strictly after.
				if !after.Less(last) && after != eventstore.Start {
					continue
				}
				if e, ok := s.convert(ev); ok && len(out) < limit {
					out = append(out, e)
				}
			}
		})
		if err != nil {
			return nil, mapError("read $all", err)
		}
		if n < batch {
			break
		}
		from, after = esdb.Position{Commit: last.Commit, Prepare: last.Prepare}, last
	}
	return out, nil
}

// convert turns a read event into ours, reporting false for what the
// store does not show: system events and other prefixes' streams.
func (s *Store) convert(ev *esdb.ResolvedEvent) (eventstore.RecordedEvent, bool) {
	rec := ev.OriginalEvent()
	if rec == nil || IsSystem(rec.StreamID, rec.EventType) {
		return eventstore.RecordedEvent{}, false
	}
	stream, ok := strings.CutPrefix(rec.StreamID, s.prefix)
	if !ok {
		return eventstore.RecordedEvent{}, false
	}
	return eventstore.RecordedEvent{
		ID:            rec.EventID.String(),
		Stream:        stream,
		StreamVersion: rec.EventNumber + 1,
		Type:          rec.EventType,
		Data:          rec.Data,
		Metadata:      rec.UserMetadata,
		Position:      eventstore.Position{Commit: rec.Position.Commit, Prepare: rec.Position.Prepare},
		RecordedAt:    rec.CreatedDate.UTC(),
	}, true
}

// IsSystem reports whether an event belongs to the server rather than the
// ledger: KurrentDB names its own streams and event types with a leading
// "$" (stream metadata, projections, statistics, link events).
func IsSystem(stream, eventType string) bool {
	return strings.HasPrefix(stream, "$") || strings.HasPrefix(eventType, "$")
}
