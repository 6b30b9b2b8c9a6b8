package relay_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/jmoiron/sqlx"

	"github.com/payledger/payledger/eventstore"
	"github.com/payledger/payledger/projections"
	"github.com/payledger/payledger/projections/projectiontest"
	"github.com/payledger/payledger/projections/relay"
)

// consumer collects relayed messages and de-duplicates them by UUID, as
// the package documentation asks consumers to do.
type consumer struct {
	seen  map[string]relay.Message
	dupes int
	msgs  <-chan *message.Message
}

func (c *consumer) drain(t *testing.T, want int) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for len(c.seen) < want {
		select {
		case m := <-c.msgs:
			rm, err := relay.Decode(m)
			if err != nil {
				t.Fatal(err)
			}
			if rm.ID != m.UUID {
				t.Fatalf("message uuid %s carries event %s", m.UUID, rm.ID)
			}
			if _, dup := c.seen[m.UUID]; dup {
				c.dupes++
			}
			c.seen[m.UUID] = rm
			m.Ack()
		case <-deadline:
			t.Fatalf("got %d distinct events, want %d", len(c.seen), want)
		}
	}
}

// waitAcked returns once group's stored offset is the topic's last
// message: every ack the consumer gave has been committed.
func waitAcked(t *testing.T, db *sqlx.DB, group string) {
	t.Helper()
	q := `SELECT coalesce((SELECT o.offset_acked = m."offset" AND o.last_processed_transaction_id = m.transaction_id
	FROM "watermill_offsets_` + relay.DefaultTopic + `" o,
	     (SELECT "offset", transaction_id FROM "watermill_` + relay.DefaultTopic + `" ORDER BY transaction_id DESC, "offset" DESC LIMIT 1) m
	WHERE o.consumer_group = $1), false)`
	deadline := time.Now().Add(10 * time.Second)
	for {
		var done bool
		if err := db.QueryRowx(q, group).Scan(&done); err != nil {
			t.Fatal(err)
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the consumer's acks were not stored within 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// server is the part of payledger serve the relay lives in: a projection
// set with the relay, running until stop.
type server struct {
	set  *projections.Set
	stop func()
}

func startServer(t *testing.T, b projections.Backend, r *relay.Relay) *server {
	t.Helper()
	set, err := projections.NewSet(b, projections.Options{}, r)
	if err != nil {
		t.Fatal(err)
	}
	if err := set.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = set.Run(ctx) }()
	s := &server{set: set, stop: func() { cancel(); <-done }}
	t.Cleanup(func() {
		select {
		case <-done:
		default:
			s.stop()
		}
	})
	return s
}

func (s *server) catchUp(t *testing.T, head eventstore.Position) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.set.WaitFor(ctx, head); err != nil {
		t.Fatal(err)
	}
}

func allEvents(t *testing.T, b projections.Backend) []eventstore.RecordedEvent {
	t.Helper()
	var out []eventstore.RecordedEvent
	after := eventstore.Start
	for {
		evs, err := b.ReadAll(context.Background(), after, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 {
			return out
		}
		out = append(out, evs...)
		after = evs[len(evs)-1].Position
	}
}

// TestEveryEventOnceAcrossRestart is the relay's contract: a consumer
// that de-duplicates by id sees every committed event exactly once, even
// when the server (and, on PostgreSQL, the consumer) restarts midway. On
// PostgreSQL the durable relay publishes nothing twice at all.
func TestEveryEventOnceAcrossRestart(t *testing.T) {
	t.Parallel()
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		ctx := context.Background()
		durable := isPostgres(b.DB())
		var (
			newRelay  func() *relay.Relay
			subscribe func() (<-chan *message.Message, func())
		)
		if durable {
			newRelay = func() *relay.Relay { return relay.SQL("") }
			subscribe = func() (<-chan *message.Message, func()) {
				sub, err := relay.NewSQLSubscriber(b.(interface{ WriteDB() *sqlx.DB }).WriteDB(), "ledger-consumer", 20*time.Millisecond)
				if err != nil {
					t.Fatal(err)
				}
				ch, err := sub.Subscribe(ctx, relay.DefaultTopic)
				if err != nil {
					t.Fatal(err)
				}
				return ch, func() { sub.Close() }
			}
		} else {
			bus := gochannel.NewGoChannel(gochannel.Config{Persistent: true, OutputChannelBuffer: 4096}, watermill.NopLogger{})
			t.Cleanup(func() { bus.Close() })
			newRelay = func() *relay.Relay { return relay.Local("", bus) }
			ch, err := bus.Subscribe(ctx, relay.DefaultTopic)
			if err != nil {
				t.Fatal(err)
			}
			subscribe = func() (<-chan *message.Message, func()) { return ch, func() {} }
		}

		c := &consumer{seen: map[string]relay.Message{}}
		var closeSub func()
		c.msgs, closeSub = subscribe()
		base := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)

		srv := startServer(t, b, newRelay())
		ids, err := projectiontest.Generate(ctx, b, 30, base)
		if err != nil {
			t.Fatal(err)
		}
		srv.catchUp(t, projectiontest.Settle(t, b, ids))
		first := len(allEvents(t, b))
		c.drain(t, first)

		// Restart: the server stops; on PostgreSQL the consumer too, once
		// its acks are stored. A watermill-sql subscriber closed between
		// an Ack and the commit of its offset delivers that message again
		// (at least once, by design); that would be the consumer's
		// duplicate, not the relay's.
		srv.stop()
		if durable {
			waitAcked(t, b.DB(), "ledger-consumer")
		}
		closeSub()
		more, err := projectiontest.Generate(ctx, b, 30, base.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		c.msgs, closeSub = subscribe()
		defer closeSub()
		srv = startServer(t, b, newRelay())
		srv.catchUp(t, projectiontest.Settle(t, b, append(ids, more...)))

		events := allEvents(t, b)
		if len(events) <= first {
			t.Fatalf("second run appended nothing (%d events)", len(events))
		}
		c.drain(t, len(events))
		for _, e := range events {
			m, ok := c.seen[e.ID]
			if !ok {
				t.Fatalf("event %s (%s v%d) never relayed", e.ID, e.Stream, e.StreamVersion)
			}
			if m.Stream != e.Stream || m.StreamVersion != e.StreamVersion || m.Type != e.Type {
				t.Fatalf("event %s relayed as %s v%d %s", e.ID, m.Stream, m.StreamVersion, m.Type)
			}
		}
		if len(c.seen) != len(events) {
			t.Fatalf("consumer saw %d distinct ids, the log has %d events", len(c.seen), len(events))
		}
		if durable && c.dupes != 0 {
			t.Fatalf("durable relay delivered %d duplicates", c.dupes)
		}
		if durable {
			var rows, distinct int
			if err := b.DB().QueryRowx(`SELECT count(*), count(DISTINCT uuid) FROM "watermill_`+relay.DefaultTopic+`"`).Scan(&rows, &distinct); err != nil {
				t.Fatal(err)
			}
			if rows != len(events) || distinct != len(events) {
				t.Fatalf("relay table holds %d rows, %d distinct ids, for %d events", rows, distinct, len(events))
			}
		}
	})
}

// TestRolledBackBatchIsRepublished shows why consumers de-duplicate in
// embedded mode: a batch published by a transaction that then fails is
// published again by the retry.
func TestRolledBackBatchIsRepublished(t *testing.T) {
	t.Parallel()
	b := projectiontest.SQLite(t)
	ctx := context.Background()
	ids, err := projectiontest.Generate(ctx, b, 3, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	projectiontest.Settle(t, b, ids)
	batch := allEvents(t, b)
	bus := gochannel.NewGoChannel(gochannel.Config{Persistent: true, OutputChannelBuffer: 1024}, watermill.NopLogger{})
	defer bus.Close()
	ch, err := bus.Subscribe(ctx, relay.DefaultTopic)
	if err != nil {
		t.Fatal(err)
	}
	r := relay.Local("", bus)
	for range 2 { // first attempt rolled back, second committed
		tx, err := b.DB().BeginTxx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Apply(ctx, tx, batch); err != nil {
			t.Fatal(err)
		}
		_ = tx.Rollback()
	}
	c := &consumer{seen: map[string]relay.Message{}, msgs: ch}
	c.drain(t, len(batch))
	for len(c.seen)+c.dupes < 2*len(batch) {
		select {
		case m := <-ch:
			c.seen[m.UUID] = relay.Message{}
			c.dupes++
			m.Ack()
		case <-time.After(5 * time.Second):
			t.Fatalf("%d duplicates, want %d", c.dupes, len(batch))
		}
	}
	if len(c.seen) != len(batch) || c.dupes != len(batch) {
		t.Fatalf("distinct %d dupes %d, want %d and %d", len(c.seen), c.dupes, len(batch), len(batch))
	}
}

func isPostgres(db *sqlx.DB) bool { return db.DriverName() == "postgres" }
