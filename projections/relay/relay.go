package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jmoiron/sqlx"

	"github.com/payledger/payledger/eventstore"
	"github.com/payledger/payledger/projections"
)

// Name is the projection's name (checkpoint key, CLI argument).
const Name = "relay"

// DefaultTopic is the topic events are published to.
const DefaultTopic = "payledger_events"

// Message is the JSON payload of every relayed event. Data and Metadata
// are the stored bytes, unchanged, so consumers can check the hash chain.
type Message struct {
	ID            string          `json:"id"`
	Stream        string          `json:"stream"`
	StreamVersion uint64          `json:"stream_version"`
	Type          string          `json:"type"`
	Position      string          `json:"position"`
	RecordedAt    time.Time       `json:"recorded_at"`
	Data          json.RawMessage `json:"data"`
	Metadata      json.RawMessage `json:"metadata"`
}

// Relay is the projection. Build it with SQL (PostgreSQL, durable) or
// Local (any backend, in-process).
type Relay struct {
	topic  string
	local  message.Publisher // nil in SQL mode
	schema wsql.DefaultPostgreSQLSchema
}

// SQL returns a relay that inserts messages into watermill-sql's
// PostgreSQL tables for topic, in the projection's own transaction.
// Subscribe with NewSQLSubscriber.
func SQL(topic string) *Relay {
	return &Relay{topic: orDefault(topic)}
}

// Local returns a relay that publishes to pub (for example a gochannel
// shared with in-process consumers).
func Local(topic string, pub message.Publisher) *Relay {
	return &Relay{topic: orDefault(topic), local: pub}
}

func orDefault(topic string) string {
	if topic == "" {
		return DefaultTopic
	}
	return topic
}

// Topic is where the relay publishes.
func (r *Relay) Topic() string { return r.topic }

func (r *Relay) Name() string { return Name }

// Clone implements projections.Projection; the relay keeps no cache.
func (r *Relay) Clone() projections.Projection { c := *r; return &c }

// Migrate creates watermill-sql's message table for the topic in SQL mode.
// The publisher must not create it itself: a CREATE inside the runner's
// transaction would be issued on every new publisher.
func (r *Relay) Migrate(ctx context.Context, tx *sqlx.Tx, d projections.Dialect) error {
	if r.local != nil {
		return nil
	}
	if d != projections.Postgres {
		return errors.New("relay: the durable relay needs PostgreSQL; use Local on SQLite")
	}
	qs, err := r.schema.SchemaInitializingQueries(wsql.SchemaInitializingQueriesParams{Topic: r.topic})
	if err != nil {
		return err
	}
	for _, q := range qs {
		if _, err := tx.ExecContext(ctx, q.Query, q.Args...); err != nil {
			return fmt.Errorf("relay: create topic table: %w", err)
		}
	}
	return nil
}

// Reset keeps what was published: messages cannot be taken back, and a
// replay publishes the same UUIDs again.
func (r *Relay) Reset(context.Context, *sqlx.Tx) error { return nil }

// Apply publishes the batch in order.
func (r *Relay) Apply(ctx context.Context, tx *sqlx.Tx, batch []eventstore.RecordedEvent) error {
	msgs := make([]*message.Message, 0, len(batch))
	for _, e := range batch {
		m, err := encode(e)
		if err != nil {
			return err
		}
		msgs = append(msgs, m)
	}
	if len(msgs) == 0 {
		return nil
	}
	if r.local != nil {
		return r.local.Publish(r.topic, msgs...)
	}
	// What watermill-sql's Publisher does (its schema adapter's insert,
	// on the transaction), but through projections.Exec so that the
	// insert is one of the batch's deferred writes instead of a round trip
	// of its own. The payload and metadata go as text, not bytes: they
	// are JSON (valid UTF-8, encoded above) into JSON columns, and text
	// has a literal form that bytes do not.
	q, err := r.schema.InsertQuery(wsql.InsertQueryParams{Topic: r.topic, Msgs: msgs})
	if err != nil {
		return fmt.Errorf("relay: insert query: %w", err)
	}
	args := make([]any, len(q.Args))
	for i, a := range q.Args {
		if b, ok := a.([]byte); ok {
			a = string(b)
		}
		args[i] = a
	}
	if err := projections.Exec(ctx, tx, q.Query, args...); err != nil {
		return fmt.Errorf("relay: publish: %w", err)
	}
	return nil
}

func encode(e eventstore.RecordedEvent) (*message.Message, error) {
	md := e.Metadata
	if len(md) == 0 {
		md = []byte("{}")
	}
	data := e.Data
	if len(data) == 0 {
		data = []byte("null")
	}
	body, err := json.Marshal(Message{
		ID: e.ID, Stream: e.Stream, StreamVersion: e.StreamVersion, Type: e.Type,
		Position:   strconv.FormatUint(e.Position.Commit, 10) + "/" + strconv.FormatUint(e.Position.Prepare, 10),
		RecordedAt: e.RecordedAt.UTC(), Data: data, Metadata: md,
	})
	if err != nil {
		return nil, fmt.Errorf("relay: encode %s: %w", e.ID, err)
	}
	m := message.NewMessage(e.ID, body)
	m.Metadata.Set("event_type", e.Type)
	m.Metadata.Set("stream", e.Stream)
	return m, nil
}

// NewSQLSubscriber subscribes to a SQL relay's topic as consumerGroup;
// each group receives every message, and resumes after its last ack
// across restarts.
//
// db must be a pool of the store's read-model sessions (the PostgreSQL
// store's WriteDB), or of sessions with the same application_name: the
// subscriber holds a transaction, with a transaction id, while a message
// waits for its ack, and on any other session of the ledger's database
// that transaction holds back $all, and every projection, until the ack
// (up to watermill-sql's 30 s ack deadline). Its sessions never append
// events, which is what the read-model sessions' exemption requires.
func NewSQLSubscriber(db *sqlx.DB, consumerGroup string, poll time.Duration) (message.Subscriber, error) {
	if poll <= 0 {
		poll = 100 * time.Millisecond
	}
	return wsql.NewSubscriber(wsql.BeginnerFromStdSQL(db.DB), wsql.SubscriberConfig{
		ConsumerGroup:    consumerGroup,
		PollInterval:     poll,
		SchemaAdapter:    wsql.DefaultPostgreSQLSchema{},
		OffsetsAdapter:   wsql.DefaultPostgreSQLOffsetsAdapter{},
		InitializeSchema: true,
	}, watermill.NopLogger{})
}

// Decode parses a relayed message's payload.
func Decode(m *message.Message) (Message, error) {
	var out Message
	if err := json.Unmarshal(m.Payload, &out); err != nil {
		return out, fmt.Errorf("relay: message %s: %w", m.UUID, err)
	}
	return out, nil
}
