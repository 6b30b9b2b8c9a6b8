package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/payledger/payledger/projections/outbox"
)

// DefaultSchedule is the delay before each retry after a failed attempt
// (API.md): the first attempt is immediate, the tenth and last comes about
// three days later.
var DefaultSchedule = []time.Duration{
	5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour,
	10 * time.Hour, 14 * time.Hour, 20 * time.Hour, 24 * time.Hour,
}

// Topics of the sender's router.
const (
	TopicDeliveries = "webhook.deliveries"
	TopicPoison     = "webhook.deliveries.poison"
)

// SenderOptions configure a Sender. DB and Endpoints are required.
type SenderOptions struct {
	DB        Database
	Endpoints *Store
	// Guard checks every address dialled (unless Client is given).
	Guard Guard
	// Client sends the requests; nil builds Guard.Client(Timeout).
	Client *http.Client
	// Timeout bounds one attempt (default 15 s).
	Timeout time.Duration
	// Schedule is the delay before each retry (default DefaultSchedule);
	// when it runs out the delivery is failed for good.
	Schedule []time.Duration
	// Jitter spreads each delay by ±Jitter (default 0.1; negative: none).
	Jitter float64
	// DisableAfter disables an endpoint whose attempts have all failed for
	// this long (default 5 days).
	DisableAfter time.Duration
	// Lease is how long a claimed delivery stays out of other polls, and
	// so how long a crash delays the delivery that was in flight. It must
	// exceed Timeout (default and floor: Timeout + 5 s). Within one process
	// a delivery still being handled (Retry re-running it) is never
	// published twice; across processes an attempt that outlives its lease
	// may be repeated, which at-least-once delivery allows and the
	// attempt-number guard of the outbox keeps out of the log.
	Lease time.Duration
	// MaxInFlight bounds concurrent attempts (default 256: attempts mostly
	// wait on the network, and more of them in flight make claims and
	// recorded groups larger).
	MaxInFlight int
	// MaxPoll bounds the wait between polls when nothing wakes the sender
	// (default 1 s): deliveries queued by another process, or due later.
	MaxPoll time.Duration
	// Source is X-WC-Webhook-Source, the "store URL" (the public URL).
	Source string
	// Now is the clock (default time.Now); Rand returns [0,1) for jitter.
	Now  func() time.Time
	Rand func() float64
	// Logger for failures; nil discards.
	Logger *slog.Logger
	// Registerer receives the sender's metrics; nil skips registration.
	Registerer prometheus.Registerer
}

// Sender delivers the outbox.
type Sender struct {
	o       SenderOptions
	client  *http.Client
	log     *slog.Logger
	wake    chan struct{}
	freed   chan struct{}
	records chan recordReq
	// recStopped is closed when the recorder has exited.
	recStopped chan struct{}

	mu        sync.Mutex
	inflight  map[string]struct{}
	endpoints map[string]Endpoint

	attempts *prometheus.CounterVec
	duration prometheus.Histogram
	firstLag prometheus.Histogram
	poisoned prometheus.Counter
}

// NewSender checks the options and builds a sender; Run starts it.
func NewSender(o SenderOptions) (*Sender, error) {
	if o.DB == nil || o.Endpoints == nil {
		return nil, errors.New("webhook: sender needs DB and Endpoints")
	}
	if o.Timeout <= 0 {
		o.Timeout = 15 * time.Second
	}
	if o.Schedule == nil {
		o.Schedule = DefaultSchedule
	}
	if o.Jitter == 0 {
		o.Jitter = 0.1
	}
	if o.Jitter < 0 {
		o.Jitter = 0
	}
	if o.DisableAfter <= 0 {
		o.DisableAfter = 5 * 24 * time.Hour
	}
	if o.Lease <= o.Timeout {
		o.Lease = o.Timeout + 5*time.Second
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = 256
	}
	if o.MaxPoll <= 0 {
		o.MaxPoll = time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Float64
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Sender{
		o: o, client: o.Client, log: o.Logger,
		wake: make(chan struct{}, 1), freed: make(chan struct{}, 1), records: make(chan recordReq, 256), recStopped: make(chan struct{}),
		inflight: map[string]struct{}{}, endpoints: map[string]Endpoint{},
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "payledger_webhook_attempts_total",
			Help: "Webhook delivery attempts by format and outcome (succeeded, failed, gone, unreachable).",
		}, []string{"format", "outcome"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "payledger_webhook_attempt_duration_seconds", Help: "Duration of one webhook attempt.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 15},
		}),
		firstLag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "payledger_webhook_first_attempt_delay_seconds", Help: "Time from the event's commit to the start of its first delivery attempt.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		poisoned: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "payledger_webhook_poisoned_total", Help: "Delivery messages the sender could not process (retried after their lease).",
		}),
	}
	if s.client == nil {
		s.client = o.Guard.Client(o.Timeout)
	}
	if o.Registerer != nil {
		for _, c := range []prometheus.Collector{s.attempts, s.duration, s.firstLag, s.poisoned} {
			if err := o.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("webhook: metrics: %w", err)
			}
		}
	}
	return s, nil
}

// Retry middleware settings: the sender's own failures (a database error
// while recording) are retried this often, this fast, before the message
// goes to the poison queue.
const (
	handlerRetries   = 3
	retryInitial     = 50 * time.Millisecond
	retryMultiplier  = 3
	retryMaxInterval = time.Second
)

// Wake makes the sender poll now (the outbox committed a batch, or a
// delivery was re-queued). It never blocks.
func (s *Sender) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// A delivery message carries the request body as its payload and the rest
// of the job in metadata; the endpoint's secret is not in it (it stays in
// the database and the sender's memory).
const (
	mdDelivery   = "delivery_id"
	mdEndpoint   = "endpoint_id"
	mdEvent      = "event_id"
	mdEventType  = "event_type"
	mdFormat     = "format"
	mdAttempt    = "attempt"
	mdManual     = "manual"
	mdRecordedAt = "recorded_at"
)

func toMessage(j outbox.Job) *message.Message {
	msg := message.NewMessage(j.DeliveryID+"/"+strconv.Itoa(j.Attempt), j.Body)
	middleware.SetCorrelationID(j.EventID, msg)
	md := msg.Metadata
	md.Set(mdDelivery, j.DeliveryID)
	md.Set(mdEndpoint, j.EndpointID)
	md.Set(mdEvent, j.EventID)
	md.Set(mdEventType, j.EventType)
	md.Set(mdFormat, j.Format)
	md.Set(mdAttempt, strconv.Itoa(j.Attempt))
	md.Set(mdManual, strconv.FormatBool(j.Manual))
	md.Set(mdRecordedAt, strconv.FormatInt(j.RecordedAt.UnixMicro(), 10))
	return msg
}

func fromMessage(msg *message.Message) (outbox.Job, error) {
	md := msg.Metadata
	j := outbox.Job{DeliveryID: md.Get(mdDelivery), EndpointID: md.Get(mdEndpoint), EventID: md.Get(mdEvent),
		EventType: md.Get(mdEventType), Format: md.Get(mdFormat), Body: msg.Payload}
	var err error
	if j.Attempt, err = strconv.Atoi(md.Get(mdAttempt)); err != nil || j.DeliveryID == "" || j.EndpointID == "" {
		return j, fmt.Errorf("malformed delivery message %s", msg.UUID)
	}
	j.Manual = md.Get(mdManual) == "true"
	if us, err := strconv.ParseInt(md.Get(mdRecordedAt), 10, 64); err == nil && us > 0 {
		j.RecordedAt = time.UnixMicro(us)
	}
	return j, nil
}

// Run delivers until ctx is done, then lets in-flight attempts finish (up
// to Timeout) and records them.
func (s *Sender) Run(ctx context.Context) error {
	wlog := watermill.NewSlogLoggerWithLevelMapping(s.log, map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug})
	pubsub := gochannel.NewGoChannel(gochannel.Config{OutputChannelBuffer: int64(s.o.MaxInFlight)}, wlog)
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: s.o.Timeout + 5*time.Second}, wlog)
	if err != nil {
		return err
	}
	poison, err := middleware.PoisonQueue(pubsub, TopicPoison)
	if err != nil {
		return err
	}
	h := router.AddConsumerHandler("webhook_deliver", TopicDeliveries, pubsub, s.handle)
	// Outermost first: settle frees the in-flight slot whatever happens;
	// CorrelationID carries the event id; PoisonQueue takes what Retry
	// could not fix; Retry re-runs the handler on the sender's own errors;
	// Recoverer turns a panic into such an error.
	h.AddMiddleware(
		s.settle,
		middleware.CorrelationID,
		poison,
		middleware.Retry{
			MaxRetries: handlerRetries, InitialInterval: retryInitial, MaxInterval: retryMaxInterval, Multiplier: retryMultiplier,
			Logger: wlog,
		}.Middleware,
		middleware.Recoverer,
	)
	router.AddConsumerHandler("webhook_poison", TopicPoison, pubsub, s.poison)

	recCtx, stopRecorder := context.WithCancel(context.WithoutCancel(ctx))
	recDone := s.recStopped
	var recorders sync.WaitGroup
	for range recorderCount {
		recorders.Add(1)
		go func() { defer recorders.Done(); s.recorder(recCtx) }()
	}
	go func() { recorders.Wait(); close(recDone) }()

	routerDone := make(chan error, 1)
	go func() { routerDone <- router.Run(context.WithoutCancel(ctx)) }()
	select {
	case <-router.Running():
	case err := <-routerDone:
		stopRecorder()
		<-recDone
		return fmt.Errorf("webhook: router: %w", err)
	}

	s.poll(ctx, pubsub)

	_ = router.Close()
	<-routerDone
	_ = pubsub.Close()
	stopRecorder()
	<-recDone
	return ctx.Err()
}

// poll leases due deliveries and publishes them, never more than
// MaxInFlight at a time, until ctx is done. Claims are batched: after a
// claim filled the slots, the next one waits until a quarter of them are
// free again (or something new is committed), so that a drain costs one
// claim transaction per many deliveries rather than one each.
func (s *Sender) poll(ctx context.Context, pub message.Publisher) {
	backoff := 10 * time.Millisecond
	woken := true
	for ctx.Err() == nil {
		free := s.o.MaxInFlight - s.inflightCount()
		claimed := 0
		if free >= s.lowWater() || (free > 0 && woken) {
			jobs, err := s.claim(ctx, free)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				s.log.Error("webhook: claim deliveries", "err", err)
				if !sleep(ctx, backoff) {
					return
				}
				backoff = min(backoff*2, s.o.MaxPoll)
				continue
			}
			backoff = 10 * time.Millisecond
			claimed = len(jobs)
			for _, j := range jobs {
				s.publish(pub, j)
			}
			if claimed == free {
				woken = false
				continue // more may be due: claim again once slots free up
			}
		}
		wait := s.o.MaxPoll
		if free > 0 {
			if next, ok, err := outbox.NextDue(ctx, s.o.DB.DB()); err == nil && ok {
				d := next.Sub(s.o.Now())
				switch {
				case d > 0:
					wait = min(max(d, 5*time.Millisecond), s.o.MaxPoll)
				case claimed > 0:
					wait = 5 * time.Millisecond
				}
				// d <= 0 and nothing claimed: due rows we cannot take (another
				// server holds them, or a rebuild removed their message).
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-s.wake:
			woken = true
		case <-s.freed:
			woken = false
		case <-t.C:
			woken = true
		}
		t.Stop()
	}
}

// lowWater is how many free slots make a claim worth its transaction.
func (s *Sender) lowWater() int { return max(1, s.o.MaxInFlight/4) }

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (s *Sender) inflightCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.inflight)
}

// claim leases up to n due deliveries and refreshes the endpoints they go
// to.
func (s *Sender) claim(ctx context.Context, n int) ([]outbox.Job, error) {
	now := s.o.Now()
	jobs, err := outbox.Claim(ctx, s.o.DB, now, now.Add(s.o.Lease), n)
	if err != nil || len(jobs) == 0 {
		return nil, err
	}
	// Endpoints never change URL, format or secret, and a disabled or
	// deleted one has no pending deliveries left to claim, so the cache
	// only has to learn endpoints it has not seen.
	seen := map[string]bool{}
	var ids []string
	s.mu.Lock()
	for _, j := range jobs {
		if _, known := s.endpoints[j.EndpointID]; !known && !seen[j.EndpointID] {
			seen[j.EndpointID] = true
			ids = append(ids, j.EndpointID)
		}
	}
	s.mu.Unlock()
	if len(ids) == 0 {
		return jobs, nil
	}
	eps, err := s.o.Endpoints.load(ctx, ids)
	if err != nil {
		return nil, err // the leases run out and the jobs come back
	}
	s.mu.Lock()
	for id, e := range eps {
		s.endpoints[id] = e
	}
	s.mu.Unlock()
	return jobs, nil
}

func (s *Sender) publish(pub message.Publisher, j outbox.Job) {
	msg := toMessage(j)
	s.mu.Lock()
	if _, busy := s.inflight[msg.UUID]; busy {
		// Our own lease ran out while the attempt is still being retried
		// here: one copy in flight is enough.
		s.mu.Unlock()
		return
	}
	s.inflight[msg.UUID] = struct{}{}
	s.mu.Unlock()
	if err := pub.Publish(TopicDeliveries, msg); err != nil {
		s.release(msg.UUID)
		s.log.Error("webhook: publish", "delivery", j.DeliveryID, "err", err)
	}
}

func (s *Sender) release(uuid string) {
	s.mu.Lock()
	delete(s.inflight, uuid)
	free := s.o.MaxInFlight - len(s.inflight)
	s.mu.Unlock()
	if free < s.lowWater() {
		return
	}
	select {
	case s.freed <- struct{}{}:
	default:
	}
}

// settle is the outermost middleware: the slot is freed and the message
// acknowledged whatever the outcome. A message that failed even the
// poison queue is not lost: its lease runs out and the poller takes the
// delivery again. (A nack would make the in-process transport resend it
// at once, forever.)
func (s *Sender) settle(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		defer s.release(msg.UUID)
		out, err := h(msg)
		if err != nil {
			s.log.Error("webhook: delivery message dropped; retried after its lease", "delivery", msg.Metadata.Get("delivery_id"), "err", err)
		}
		return out, nil
	}
}

func (s *Sender) poison(msg *message.Message) error {
	s.poisoned.Inc()
	s.log.Error("webhook: delivery poisoned; retried after its lease",
		"delivery", msg.Metadata.Get("delivery_id"), "event", middleware.MessageCorrelationID(msg),
		"reason", msg.Metadata.Get(middleware.ReasonForPoisonedKey))
	return nil
}

const outcomeKey = "attempt_outcome"

// handle makes one attempt and records it. If recording fails, Retry runs
// it again: the outcome is kept on the message so the receiver is not
// called a second time for the same attempt.
func (s *Sender) handle(msg *message.Message) error {
	j, err := fromMessage(msg)
	if err != nil {
		return err
	}
	var out outbox.Outcome
	if cached := msg.Metadata.Get(outcomeKey); cached != "" {
		if err := json.Unmarshal([]byte(cached), &out); err != nil {
			return fmt.Errorf("decode outcome: %w", err)
		}
	} else {
		ep, err := s.endpoint(msg.Context(), j.EndpointID)
		if err != nil {
			return err
		}
		if ep.Status != EndpointEnabled {
			return nil // disabled or deleted meanwhile: its deliveries were cancelled
		}
		out = s.attempt(msg.Context(), ep, j)
		b, _ := json.Marshal(out)
		msg.Metadata.Set(outcomeKey, string(b))
	}
	return s.record(j, out)
}

func (s *Sender) endpoint(ctx context.Context, id string) (Endpoint, error) {
	s.mu.Lock()
	e, ok := s.endpoints[id]
	s.mu.Unlock()
	if ok {
		return e, nil
	}
	eps, err := s.o.Endpoints.load(ctx, []string{id})
	if err != nil {
		return Endpoint{}, err
	}
	if e, ok = eps[id]; !ok {
		return Endpoint{}, fmt.Errorf("%w: %s", ErrEndpointNotFound, id)
	}
	return e, nil
}

// excerptLen is how much of a response body an attempt keeps.
const excerptLen = 1024

// Request builds the signed request of one attempt at instant at. It is
// exported so that tests (and anyone checking the wire format) see exactly
// what the sender sends.
func Request(ctx context.Context, ep Endpoint, j outbox.Job, at time.Time, source string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader(j.Body))
	if err != nil {
		return nil, err
	}
	h := req.Header
	h.Set("Content-Type", "application/json")
	switch ep.Format {
	case outbox.FormatWooCommerce:
		h.Set("User-Agent", "WooCommerce/payledger Hookshot (payledger)")
		h.Set("X-WC-Webhook-Source", source)
		h.Set("X-WC-Webhook-Topic", "order.updated")
		h.Set("X-WC-Webhook-Resource", "order")
		h.Set("X-WC-Webhook-Event", "updated")
		h.Set("X-WC-Webhook-ID", ep.ID)
		h.Set("X-WC-Webhook-Delivery-ID", j.DeliveryID)
		h.Set("X-WC-Webhook-Signature", SignWooCommerce(ep.Secret, j.Body))
	default:
		ts := at.Unix()
		sig, err := SignStandard(ep.Secret, j.EventID, ts, j.Body)
		if err != nil {
			return nil, err
		}
		h.Set("User-Agent", "payledger-webhooks/1")
		h.Set("webhook-id", j.EventID)
		h.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
		h.Set("webhook-signature", sig)
	}
	return req, nil
}

// attempt POSTs once and decides what follows: 2xx succeeds, 410 fails the
// delivery (and disables the endpoint when recorded), anything else is
// retried on the schedule until it runs out.
func (s *Sender) attempt(ctx context.Context, ep Endpoint, j outbox.Job) outbox.Outcome {
	start := s.o.Now()
	if j.Attempt == 1 && !j.RecordedAt.IsZero() {
		s.firstLag.Observe(start.Sub(j.RecordedAt).Seconds())
	}
	out := outbox.Outcome{Attempt: outbox.Attempt{DeliveryID: j.DeliveryID, Attempt: j.Attempt, Manual: j.Manual, StartedAt: start}}
	// The attempt outlives a shutdown of the router (which waits for it):
	// a request cut off by our own stop would be recorded as the
	// receiver's failure.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.o.Timeout)
	defer cancel()
	t0 := time.Now()
	req, err := Request(actx, ep, j, start, s.o.Source)
	if err == nil {
		var resp *http.Response
		resp, err = s.client.Do(req)
		if err == nil {
			out.StatusCode = resp.StatusCode
			out.Excerpt = excerpt(resp.Body)
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
			resp.Body.Close()
		}
	}
	out.Duration = time.Since(t0)
	s.duration.Observe(out.Duration.Seconds())
	if err != nil {
		out.Error = err.Error()
		if len(out.Error) > 500 {
			out.Error = out.Error[:500]
		}
	}
	switch {
	case err == nil && out.StatusCode >= 200 && out.StatusCode <= 299:
		out.Status = outbox.StatusSucceeded
		s.attempts.WithLabelValues(ep.Format, "succeeded").Inc()
	case err == nil && out.StatusCode == http.StatusGone:
		out.Status = outbox.StatusFailed
		s.attempts.WithLabelValues(ep.Format, "gone").Inc()
	default:
		if err != nil {
			s.attempts.WithLabelValues(ep.Format, "unreachable").Inc()
		} else {
			s.attempts.WithLabelValues(ep.Format, "failed").Inc()
		}
		if i := j.Attempt - 1; i < len(s.o.Schedule) {
			out.Status = outbox.StatusPending
			out.NextAttemptAt = start.Add(s.jitter(s.o.Schedule[i]))
		} else {
			out.Status = outbox.StatusFailed
		}
	}
	return out
}

func (s *Sender) jitter(d time.Duration) time.Duration {
	if s.o.Jitter == 0 {
		return d
	}
	f := 1 + s.o.Jitter*(2*s.o.Rand()-1)
	return time.Duration(float64(d) * f)
}

// excerpt reads the start of a response body as valid UTF-8.
func excerpt(r io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(r, excerptLen))
	for len(b) > 0 && !utf8.Valid(b) {
		b = b[:len(b)-1] // a multi-byte character cut at the limit
	}
	if !utf8.Valid(b) {
		return ""
	}
	return string(b)
}

type recordReq struct {
	job  outbox.Job
	out  outbox.Outcome
	done chan error
}

// record hands the outcome to the recorder and waits until it is
// committed: the message is acknowledged only once its outcome is durable.
func (s *Sender) record(j outbox.Job, out outbox.Outcome) error {
	// Not bounded by ctx: the attempt happened, and the recorder runs until
	// the router has finished every handler.
	r := recordReq{job: j, out: out, done: make(chan error, 1)}
	select {
	case s.records <- r:
	case <-s.recStopped:
		return errRecorderStopped
	}
	select {
	case err := <-r.done:
		return err
	case <-s.recStopped:
		select {
		case err := <-r.done: // answered on its way out
			return err
		default:
			return errRecorderStopped
		}
	}
}

// errRecorderStopped: a handler outlived the shutdown grace period; its
// outcome is lost and the lease brings the delivery back.
var errRecorderStopped = errors.New("webhook: sender stopped before the outcome was recorded")

// recorderCount is how many groups of outcomes may commit at once. On
// PostgreSQL a group costs a few round trips and their latency, not CPU,
// bounds throughput, so groups overlap; SQLite's WriteTx serialises them
// anyway. Overlapping groups lock delivery rows, then endpoint rows, except
// a group that disables an endpoint (endpoint, then its pending
// deliveries): the rare deadlock between the two is broken by PostgreSQL,
// and the losing group's handlers record again through Retry, their
// outcomes kept on the message.
const recorderCount = 4

// recorder commits outcomes in groups: one transaction for every outcome
// waiting at that moment, which is what lets SQLite (one writer, one fsync
// per commit) keep up with thousands of attempts a second.
func (s *Sender) recorder(ctx context.Context) {
	for {
		var group []recordReq
		select {
		case <-ctx.Done():
			return
		case r := <-s.records:
			group = append(group, r)
		}
	drain:
		for len(group) < 512 {
			select {
			case r := <-s.records:
				group = append(group, r)
			default:
				break drain
			}
		}
		err := s.o.DB.WriteTx(context.WithoutCancel(ctx), func(tx *sqlx.Tx) error {
			return s.apply(ctx, tx, group)
		})
		for _, r := range group {
			r.done <- err
		}
	}
}

// apply records a group of outcomes and their effect on the endpoints, in
// a few statements whatever the group's size (a statement is a round trip
// to the database): 410 disables at once; a 2xx ends the endpoint's
// failure streak; any other failure after the endpoint's last success in
// the group extends it, and a streak of DisableAfter disables.
func (s *Sender) apply(ctx context.Context, tx *sqlx.Tx, group []recordReq) error {
	outs := make([]outbox.Outcome, len(group))
	for i, r := range group {
		outs[i] = r.out
	}
	fresh, err := outbox.RecordAll(ctx, tx, outs)
	if err != nil {
		return err
	}
	lastOK := map[string]int{}
	var cleared []string
	for i, r := range group {
		if fresh[i] && r.out.Status == outbox.StatusSucceeded {
			if _, seen := lastOK[r.job.EndpointID]; !seen {
				cleared = append(cleared, r.job.EndpointID)
			}
			lastOK[r.job.EndpointID] = i
		}
	}
	if err := noteSuccess(ctx, tx, cleared); err != nil {
		return err
	}
	for i, r := range group {
		if !fresh[i] || r.out.Status == outbox.StatusSucceeded {
			continue
		}
		if r.out.Error == "" && r.out.StatusCode == http.StatusGone {
			s.log.Warn("webhook: endpoint answered 410 Gone; disabled", "endpoint", r.job.EndpointID)
			if err := disable(ctx, tx, r.job.EndpointID, ReasonGone, r.out.StartedAt); err != nil {
				return err
			}
			continue
		}
		if last, ok := lastOK[r.job.EndpointID]; ok && i < last {
			continue // a later success in this group ends the streak anyway
		}
		off, err := noteFailure(ctx, tx, r.job.EndpointID, r.out.StartedAt, s.o.DisableAfter)
		if err != nil {
			return err
		}
		if off {
			s.log.Warn("webhook: endpoint failing for too long; disabled", "endpoint", r.job.EndpointID, "after", s.o.DisableAfter)
		}
	}
	return nil
}
