// Package esdbfake is an in-process stand-in for a single KurrentDB node
// that speaks the gRPC protocol of the EventStore-Client-Go v4 client,
// built on the server stubs generated inside the client module. It exists
// so that the KurrentDB backend's conformance and failure tests run where
// no KurrentDB server can. It is test support only: it keeps everything in
// memory, has no durability, security or clustering, and no production
// code may import it (it is internal to eventstore/kurrentdb and imported
// only from _test files).
//
// Server behaviours it reproduces (listening on a loopback port, plaintext,
// for a connection string "esdb://127.0.0.1:PORT?tls=false"):
//
//   - ServerFeatures.GetSupportedMethods answers Unimplemented (as servers
//     before 21.10 do), so the client connects without feature flags.
//     Gossip is not served: single-node connection strings skip it.
//   - Streams.Append: the options message then the proposed events; the
//     expected revision (exact revision, no_stream, any, stream_exists) is
//     checked and a mismatch answered with a WrongExpectedVersion result
//     carrying the current and expected revisions. Idempotent writes as the
//     server does them: when the expected revision is behind the stream
//     (or any/stream_exists and the first event id is in the stream) and
//     the events at the following revisions have the same ids, the append
//     succeeds again with the original revision and position, writing
//     nothing. Success carries the current revision and the (commit,
//     prepare) position of the last event.
//   - $all positions: the events of one append share a commit position and
//     have distinct, increasing prepare positions below it (a transaction's
//     prepares before its commit record), so $all order is (commit,
//     prepare) and a client comparing commit positions alone goes wrong.
//   - Streams.Read of a stream, forwards, from start or a revision, with a
//     count: events in revision order; a missing stream is a single
//     stream_not_found message and the end of the call. A tombstoned stream
//     (Streams.Tombstone) fails reads and appends with the trailers
//     "exception: stream-deleted" and "stream-name".
//   - Streams.Read of $all, forwards, from start or a (commit, prepare)
//     position inclusive, with a count; no filter.
//   - Catch-up subscriptions to $all (count_option subscription): a
//     confirmation first, then the stored events after the start position
//     (exclusive, as the server does), then live events. With a filter
//     (stream-name or event-type prefixes or regex) non-matching events are
//     skipped and a checkpoint (commit, prepare) is sent every max-window ×
//     multiplier scanned events and when caught up; a caught_up message is
//     sent once the stored events are delivered.
//   - Faults for tests: DropSubscriptions ends every open subscription with
//     Unavailable, DropSubscriptionsAfter ends each subscription after n
//     delivered events, InjectFault makes the next Read or Append fail with
//     a chosen status (optionally after sending some events), and
//     Stop/Restart take the node down and bring it back on the same port.
//
// Not reproduced: backwards reads, stream subscriptions, soft deletes and
// stream metadata ($maxCount, ACLs), batch append, persistent
// subscriptions, projections and system events, authentication, TLS,
// leader election and not-leader redirects, size limits.
package esdbfake

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/serverfeatures"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	api "github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Server is a running fake node.
type Server struct {
	mu      sync.Mutex
	addr    string
	grpc    *grpc.Server
	log     []*record
	streams map[string]*stream
	next    uint64        // next free log position
	wake    chan struct{} // closed and replaced on every append
	drop    chan struct{} // closed and replaced by DropSubscriptions
	dropN   int           // DropSubscriptionsAfter
	faults  []Fault
	subs    int // subscriptions opened so far
}

type record struct {
	id       uuid.UUID
	stream   string
	revision uint64
	typ      string
	ctype    string
	data     []byte
	meta     []byte
	commit   uint64
	prepare  uint64
	created  time.Time
}

type stream struct {
	events     []*record
	tombstoned bool
}

// Fault makes the next call of Method ("Read" for stream and $all reads,
// "Subscribe" for subscriptions, "Append") fail with Err (a gRPC status
// error) after sending After events (reads) or before answering (appends).
// Trailer, when set, is sent with the error, as the server sends its
// exception trailers.
type Fault struct {
	Method  string
	After   int
	Err     error
	Trailer metadata.MD
}

// Start runs a fake node on a free loopback port until the test ends.
func Start(t interface {
	Helper()
	Fatalf(string, ...any)
	Cleanup(func())
}) *Server {
	t.Helper()
	s := &Server{streams: map[string]*stream{}, next: 1000, wake: make(chan struct{}), drop: make(chan struct{})}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("esdbfake: listen: %v", err)
	}
	s.addr = lis.Addr().String()
	s.serve(lis)
	t.Cleanup(s.Stop)
	return s
}

func (s *Server) serve(lis net.Listener) {
	g := grpc.NewServer()
	api.RegisterStreamsServer(g, &streamsServer{s: s})
	serverfeatures.RegisterServerFeaturesServer(g, serverfeatures.UnimplementedServerFeaturesServer{})
	s.mu.Lock()
	s.grpc = g
	s.mu.Unlock()
	go g.Serve(lis)
}

// URL is the connection string of the node.
func (s *Server) URL() string { return "esdb://" + s.addr + "?tls=false" }

// Addr is the node's host:port.
func (s *Server) Addr() string { return s.addr }

// Stop takes the node down, ending every call. The data stays.
func (s *Server) Stop() {
	s.mu.Lock()
	g := s.grpc
	s.grpc = nil
	s.mu.Unlock()
	if g != nil {
		g.Stop()
	}
}

// Restart brings a stopped node back on the same address.
func (s *Server) Restart() error {
	lis, err := net.Listen("tcp", s.addr)
	if err != nil {
		return err
	}
	s.serve(lis)
	return nil
}

// DropSubscriptions ends every open subscription with Unavailable.
func (s *Server) DropSubscriptions() {
	s.mu.Lock()
	close(s.drop)
	s.drop = make(chan struct{})
	s.mu.Unlock()
}

// DropSubscriptionsAfter makes every subscription opened from now on end
// with Unavailable after it has delivered n events (0 turns it off).
func (s *Server) DropSubscriptionsAfter(n int) {
	s.mu.Lock()
	s.dropN = n
	s.mu.Unlock()
}

// Subscriptions counts the subscriptions opened so far.
func (s *Server) Subscriptions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.subs
}

// InjectFault queues a fault for the next matching call.
func (s *Server) InjectFault(f Fault) {
	s.mu.Lock()
	s.faults = append(s.faults, f)
	s.mu.Unlock()
}

func (s *Server) takeFault(method string) (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.faults {
		if f.Method == method {
			s.faults = append(s.faults[:i], s.faults[i+1:]...)
			return f, true
		}
	}
	return Fault{}, false
}

func (f Fault) fail(ctx grpc.ServerStream) error {
	if f.Trailer != nil {
		ctx.SetTrailer(f.Trailer)
	}
	return f.Err
}

// Tombstone deletes a stream for good, as the server's Tombstone does.
func (s *Server) Tombstone(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.streams[name]
	if st == nil {
		st = &stream{}
		s.streams[name] = st
	}
	st.tombstoned = true
}

func deleted(srv grpc.ServerStream, name string) error {
	srv.SetTrailer(metadata.Pairs("exception", "stream-deleted", "stream-name", name))
	return status.Errorf(codes.FailedPrecondition, "Event stream '%s' is deleted.", name)
}

type streamsServer struct {
	api.UnimplementedStreamsServer
	s *Server
}

func (x *streamsServer) Tombstone(_ context.Context, req *api.TombstoneReq) (*api.TombstoneResp, error) {
	x.s.Tombstone(string(req.GetOptions().GetStreamIdentifier().GetStreamName()))
	x.s.mu.Lock()
	p := x.s.next
	x.s.next += 100
	x.s.mu.Unlock()
	return &api.TombstoneResp{PositionOption: &api.TombstoneResp_Position_{Position: &api.TombstoneResp_Position{CommitPosition: p, PreparePosition: p}}}, nil
}

func (x *streamsServer) Append(srv api.Streams_AppendServer) error {
	first, err := srv.Recv()
	if err != nil {
		return err
	}
	opts := first.GetOptions()
	if opts == nil {
		return status.Error(codes.InvalidArgument, "first append message must be options")
	}
	name := string(opts.GetStreamIdentifier().GetStreamName())
	var proposed []*api.AppendReq_ProposedMessage
	for {
		m, err := srv.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if p := m.GetProposedMessage(); p != nil {
			proposed = append(proposed, p)
		}
	}
	if f, ok := x.s.takeFault("Append"); ok {
		return f.fail(srv)
	}
	resp, err := x.s.append(name, opts, proposed)
	if errors.Is(err, errDeleted) {
		return deleted(srv, name)
	}
	if err != nil {
		return err
	}
	return srv.SendAndClose(resp)
}

var errDeleted = errors.New("stream deleted")

func (s *Server) append(name string, opts *api.AppendReq_Options, proposed []*api.AppendReq_ProposedMessage) (*api.AppendResp, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.streams[name]
	if st != nil && st.tombstoned {
		return nil, errDeleted
	}
	exists := st != nil && len(st.events) > 0
	current := int64(-1) // revision of the last event; -1 for no stream
	if exists {
		current = int64(len(st.events)) - 1
	}
	ids := make([]uuid.UUID, len(proposed))
	for i, p := range proposed {
		id, err := protoUUID(p.GetId())
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "event %d: %v", i, err)
		}
		ids[i] = id
	}

	// base is the revision after which the caller means its events to go.
	var base int64
	ok := true
	switch e := opts.GetExpectedStreamRevision().(type) {
	case *api.AppendReq_Options_Revision:
		base, ok = int64(e.Revision), int64(e.Revision) == current
	case *api.AppendReq_Options_NoStream:
		base, ok = -1, !exists
	case *api.AppendReq_Options_StreamExists:
		base, ok = current, exists
		if b, found := st.indexOf(ids); found {
			base, ok = b, false
		}
	default: // any
		base = current
		if b, found := st.indexOf(ids); found {
			base, ok = b, false
		}
	}
	if !ok {
		if base < current && len(ids) > 0 && st.matches(base, ids) {
			last := st.events[base+int64(len(ids))]
			return success(last), nil
		}
		return wrongExpected(current, opts), nil
	}
	if len(proposed) == 0 {
		// The server answers an empty append with the stream's state.
		resp := &api.AppendResp_Success{PositionOption: &api.AppendResp_Success_NoPosition{NoPosition: &shared.Empty{}}}
		if exists {
			resp.CurrentRevisionOption = &api.AppendResp_Success_CurrentRevision{CurrentRevision: uint64(current)}
		} else {
			resp.CurrentRevisionOption = &api.AppendResp_Success_NoStream{NoStream: &shared.Empty{}}
		}
		return &api.AppendResp{Result: &api.AppendResp_Success_{Success: resp}}, nil
	}
	if st == nil {
		st = &stream{}
		s.streams[name] = st
	}
	commit := s.next + uint64(len(proposed))*100
	now := time.Now()
	var last *record
	for i, p := range proposed {
		r := &record{
			id:       ids[i],
			stream:   name,
			revision: uint64(len(st.events)),
			typ:      p.GetMetadata()["type"],
			ctype:    p.GetMetadata()["content-type"],
			data:     append([]byte(nil), p.GetData()...),
			meta:     append([]byte(nil), p.GetCustomMetadata()...),
			commit:   commit,
			prepare:  s.next + uint64(i)*100,
			created:  now,
		}
		st.events = append(st.events, r)
		s.log = append(s.log, r)
		last = r
	}
	s.next = commit + 100
	close(s.wake)
	s.wake = make(chan struct{})
	return success(last), nil
}

// indexOf finds the first id in the stream and returns the revision
// before it, as the server's idempotency check starts there.
func (st *stream) indexOf(ids []uuid.UUID) (int64, bool) {
	if st == nil || len(ids) == 0 {
		return 0, false
	}
	for i, r := range st.events {
		if r.id == ids[0] {
			return int64(i) - 1, true
		}
	}
	return 0, false
}

func (st *stream) matches(base int64, ids []uuid.UUID) bool {
	if st == nil || base+int64(len(ids)) >= int64(len(st.events)) {
		return false
	}
	for i, id := range ids {
		if st.events[base+1+int64(i)].id != id {
			return false
		}
	}
	return true
}

func success(last *record) *api.AppendResp {
	return &api.AppendResp{Result: &api.AppendResp_Success_{Success: &api.AppendResp_Success{
		CurrentRevisionOption: &api.AppendResp_Success_CurrentRevision{CurrentRevision: last.revision},
		PositionOption: &api.AppendResp_Success_Position{Position: &api.AppendResp_Position{
			CommitPosition: last.commit, PreparePosition: last.prepare,
		}},
	}}}
}

func wrongExpected(current int64, opts *api.AppendReq_Options) *api.AppendResp {
	w := &api.AppendResp_WrongExpectedVersion{}
	if current < 0 {
		w.CurrentRevisionOption = &api.AppendResp_WrongExpectedVersion_CurrentNoStream{CurrentNoStream: &shared.Empty{}}
		w.CurrentRevisionOption_20_6_0 = &api.AppendResp_WrongExpectedVersion_NoStream_20_6_0{NoStream_20_6_0: &shared.Empty{}}
	} else {
		w.CurrentRevisionOption = &api.AppendResp_WrongExpectedVersion_CurrentRevision{CurrentRevision: uint64(current)}
		w.CurrentRevisionOption_20_6_0 = &api.AppendResp_WrongExpectedVersion_CurrentRevision_20_6_0{CurrentRevision_20_6_0: uint64(current)}
	}
	switch e := opts.GetExpectedStreamRevision().(type) {
	case *api.AppendReq_Options_Revision:
		w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedRevision{ExpectedRevision: e.Revision}
	case *api.AppendReq_Options_NoStream:
		w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedNoStream{ExpectedNoStream: &shared.Empty{}}
	case *api.AppendReq_Options_StreamExists:
		w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedStreamExists{ExpectedStreamExists: &shared.Empty{}}
	default:
		w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedAny{ExpectedAny: &shared.Empty{}}
	}
	return &api.AppendResp{Result: &api.AppendResp_WrongExpectedVersion_{WrongExpectedVersion: w}}
}

func (x *streamsServer) Read(req *api.ReadReq, srv api.Streams_ReadServer) error {
	o := req.GetOptions()
	if o.GetReadDirection() != api.ReadReq_Options_Forwards {
		return status.Error(codes.Unimplemented, "esdbfake: backwards reads are not reproduced")
	}
	if o.GetSubscription() != nil {
		if o.GetAll() == nil {
			return status.Error(codes.Unimplemented, "esdbfake: stream subscriptions are not reproduced")
		}
		return x.s.subscribeAll(o, srv)
	}
	f, faulty := x.s.takeFault("Read")
	sent := 0
	send := func(r *record) error {
		if faulty && sent >= f.After {
			return f.fail(srv)
		}
		sent++
		return srv.Send(eventResp(r))
	}
	var recs []*record
	if so := o.GetStream(); so != nil {
		name := string(so.GetStreamIdentifier().GetStreamName())
		x.s.mu.Lock()
		st := x.s.streams[name]
		switch {
		case st != nil && st.tombstoned:
			x.s.mu.Unlock()
			return deleted(srv, name)
		case st == nil || len(st.events) == 0:
			x.s.mu.Unlock()
			if faulty {
				return f.fail(srv)
			}
			return srv.Send(&api.ReadResp{Content: &api.ReadResp_StreamNotFound_{StreamNotFound: &api.ReadResp_StreamNotFound{
				StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(name)},
			}}})
		}
		from := uint64(0)
		switch r := so.GetRevisionOption().(type) {
		case *api.ReadReq_Options_StreamOptions_Revision:
			from = r.Revision
		case *api.ReadReq_Options_StreamOptions_End:
			from = uint64(len(st.events))
		}
		if from < uint64(len(st.events)) {
			recs = append(recs, st.events[from:]...)
		}
		x.s.mu.Unlock()
	} else {
		x.s.mu.Lock()
		i := x.s.allIndex(o.GetAll(), true)
		recs = append(recs, x.s.log[i:]...)
		x.s.mu.Unlock()
	}
	if n := o.GetCount(); uint64(len(recs)) > n {
		recs = recs[:n]
	}
	for _, r := range recs {
		if err := send(r); err != nil {
			return err
		}
	}
	if faulty {
		return f.fail(srv)
	}
	return nil
}

// allIndex is the index in the log where a read (inclusive) or a
// subscription (exclusive) from the given $all option starts.
func (s *Server) allIndex(o *api.ReadReq_Options_AllOptions, inclusive bool) int {
	switch a := o.GetAllOption().(type) {
	case *api.ReadReq_Options_AllOptions_End:
		return len(s.log)
	case *api.ReadReq_Options_AllOptions_Position:
		c, p := a.Position.GetCommitPosition(), a.Position.GetPreparePosition()
		for i, r := range s.log {
			after := r.commit > c || r.commit == c && r.prepare > p
			at := r.commit == c && r.prepare == p
			if after || inclusive && at {
				return i
			}
		}
		return len(s.log)
	default:
		return 0
	}
}

type filter struct {
	onType   bool
	prefixes []string
	re       *regexp.Regexp
}

func newFilter(o *api.ReadReq_Options) (*filter, error) {
	fo := o.GetFilter()
	if fo == nil {
		return nil, nil
	}
	f := &filter{}
	var e *api.ReadReq_Options_FilterOptions_Expression
	if t := fo.GetEventType(); t != nil {
		f.onType, e = true, t
	} else {
		e = fo.GetStreamIdentifier()
	}
	f.prefixes = e.GetPrefix()
	if e.GetRegex() != "" {
		re, err := regexp.Compile(e.GetRegex())
		if err != nil {
			return nil, err
		}
		f.re = re
	}
	return f, nil
}

func (f *filter) match(r *record) bool {
	if f == nil {
		return true
	}
	v := r.stream
	if f.onType {
		v = r.typ
	}
	for _, p := range f.prefixes {
		if strings.HasPrefix(v, p) {
			return true
		}
	}
	return f.re != nil && f.re.MatchString(v)
}

func (s *Server) subscribeAll(o *api.ReadReq_Options, srv api.Streams_ReadServer) error {
	flt, err := newFilter(o)
	if err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	interval := 32
	if fo := o.GetFilter(); fo != nil {
		if m := fo.GetMax(); m > 0 {
			interval = int(m)
		}
		if k := fo.GetCheckpointIntervalMultiplier(); k > 0 {
			interval *= int(k)
		}
	}
	fault, faulty := s.takeFault("Subscribe")
	s.mu.Lock()
	s.subs++
	id := fmt.Sprintf("sub-%d", s.subs)
	dropN, drop := s.dropN, s.drop
	next := s.allIndex(o.GetAll(), false)
	s.mu.Unlock()
	if err := srv.Send(&api.ReadResp{Content: &api.ReadResp_Confirmation{Confirmation: &api.ReadResp_SubscriptionConfirmation{SubscriptionId: id}}}); err != nil {
		return err
	}
	checkpoint := func(r *record) error {
		return srv.Send(&api.ReadResp{Content: &api.ReadResp_Checkpoint_{Checkpoint: &api.ReadResp_Checkpoint{CommitPosition: r.commit, PreparePosition: r.prepare}}})
	}
	sent, scanned, caughtUp := 0, 0, false
	for {
		s.mu.Lock()
		batch := append([]*record(nil), s.log[next:]...)
		wake := s.wake
		s.mu.Unlock()
		for _, r := range batch {
			next++
			scanned++
			if flt.match(r) {
				if faulty && sent >= fault.After {
					return fault.fail(srv)
				}
				if dropN > 0 && sent >= dropN {
					return status.Error(codes.Unavailable, "esdbfake: subscription dropped")
				}
				if err := srv.Send(eventResp(r)); err != nil {
					return err
				}
				sent++
			}
			if flt != nil && scanned%interval == 0 {
				if err := checkpoint(r); err != nil {
					return err
				}
			}
		}
		if !caughtUp {
			caughtUp = true
			if flt != nil && len(batch) > 0 {
				if err := checkpoint(batch[len(batch)-1]); err != nil {
					return err
				}
			}
			if err := srv.Send(&api.ReadResp{Content: &api.ReadResp_CaughtUp_{CaughtUp: &api.ReadResp_CaughtUp{}}}); err != nil {
				return err
			}
		}
		select {
		case <-wake:
		case <-drop:
			return status.Error(codes.Unavailable, "esdbfake: subscription dropped")
		case <-srv.Context().Done():
			return srv.Context().Err()
		}
	}
}

func eventResp(r *record) *api.ReadResp {
	return &api.ReadResp{Content: &api.ReadResp_Event{Event: &api.ReadResp_ReadEvent{
		Event: &api.ReadResp_ReadEvent_RecordedEvent{
			Id:               structuredUUID(r.id),
			StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(r.stream)},
			StreamRevision:   r.revision,
			PreparePosition:  r.prepare,
			CommitPosition:   r.commit,
			Metadata: map[string]string{
				"type":         r.typ,
				"content-type": r.ctype,
				// .NET ticks (100 ns) since the Unix epoch, as the server sends.
				"created": strconv.FormatInt(r.created.UnixNano()/100, 10),
			},
			CustomMetadata: r.meta,
			Data:           r.data,
		},
		Position: &api.ReadResp_ReadEvent_CommitPosition{CommitPosition: r.commit},
	}}}
}

func structuredUUID(id uuid.UUID) *shared.UUID {
	return &shared.UUID{Value: &shared.UUID_Structured_{Structured: &shared.UUID_Structured{
		MostSignificantBits:  int64(binary.BigEndian.Uint64(id[:8])),
		LeastSignificantBits: int64(binary.BigEndian.Uint64(id[8:])),
	}}}
}

func protoUUID(u *shared.UUID) (uuid.UUID, error) {
	if s := u.GetStructured(); s != nil {
		var b [16]byte
		binary.BigEndian.PutUint64(b[:8], uint64(s.GetMostSignificantBits()))
		binary.BigEndian.PutUint64(b[8:], uint64(s.GetLeastSignificantBits()))
		return uuid.UUID(b), nil
	}
	return uuid.Parse(u.GetString_())
}
