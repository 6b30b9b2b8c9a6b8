// Package projectiontest gives read-model tests real backends (a fresh
// PostgreSQL database, a SQLite file in t.TempDir) and a fast generator of
// realistic invoice histories. Histories are produced by the domain's own
// Decide (so every event is one the ledger could have written) and appended
// one stream per call, in parallel, which is far faster than running each
// command through ledger.Service.
package projectiontest

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/payledger/payledger/domain/invoice"
	"github.com/payledger/payledger/domain/money"
	"github.com/payledger/payledger/eventstore"
	"github.com/payledger/payledger/eventstore/postgres"
	"github.com/payledger/payledger/eventstore/sqlite"
	"github.com/payledger/payledger/internal/pgtest"
	"github.com/payledger/payledger/ledger"
	"github.com/payledger/payledger/projections"
)

// Postgres opens a store on a fresh database; it is closed at cleanup.
func Postgres(tb testing.TB) projections.Backend {
	tb.Helper()
	s, err := postgres.Open(context.Background(), pgtest.New(tb))
	if err != nil {
		tb.Fatalf("open postgres store: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// SQLite opens a store in a temporary file; it is closed at cleanup.
func SQLite(tb testing.TB) projections.Backend {
	tb.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(tb.TempDir(), "ledger.db"))
	if err != nil {
		tb.Fatalf("open sqlite store: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// Counting wraps a backend and counts the $all reads that reach it, for
// tests of code that is meant to share or save them.
type Counting struct {
	projections.Backend
	Reads atomic.Int64
}

// ReadAll counts the read and passes it on.
func (c *Counting) ReadAll(ctx context.Context, after eventstore.Position, limit int) ([]eventstore.RecordedEvent, error) {
	c.Reads.Add(1)
	return c.Backend.ReadAll(ctx, after, limit)
}

// Backends runs fn as parallel subtests "postgres" and "sqlite".
func Backends(t *testing.T, fn func(t *testing.T, b projections.Backend)) {
	t.Helper()
	for name, open := range map[string]func(testing.TB) projections.Backend{"postgres": Postgres, "sqlite": SQLite} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fn(t, open(t))
		})
	}
}

// Script builds one invoice's history by deciding commands in order at
// given instants.
type Script struct {
	ID     string
	state  invoice.State
	events []invoice.Event
	err    error
}

// NewScript starts a history for a new invoice id.
func NewScript(id string) *Script { return &Script{ID: id} }

// Do decides cmd at now and keeps the events; the first error sticks.
func (s *Script) Do(cmd invoice.Command, now time.Time) *Script {
	if s.err != nil {
		return s
	}
	evs, err := invoice.Decide(s.state, cmd, now)
	if err != nil {
		s.err = fmt.Errorf("%s: %T: %w", s.ID, cmd, err)
		return s
	}
	for _, e := range evs {
		s.state = invoice.Evolve(s.state, e)
	}
	s.events = append(s.events, evs...)
	return s
}

// State is the state after the commands so far.
func (s *Script) State() invoice.State { return s.state }

// Err is the first refusal.
func (s *Script) Err() error { return s.err }

// Append writes the script's events to the store as one append.
func (s *Script) Append(ctx context.Context, store eventstore.Store) (eventstore.AppendResult, error) {
	if s.err != nil {
		return eventstore.AppendResult{}, s.err
	}
	data := make([]eventstore.EventData, len(s.events))
	for i, e := range s.events {
		typ, body, err := invoice.Encode(e)
		if err != nil {
			return eventstore.AppendResult{}, err
		}
		data[i] = eventstore.EventData{ID: uuid.Must(uuid.NewV7()).String(), Type: typ, Data: body}
	}
	return store.Append(ctx, ledger.StreamName(s.ID), eventstore.NoStream, data...)
}

// Create is a ready Create command.
func Create(id string, number int64, amount, currency string, expires time.Time) invoice.Create {
	m, err := money.Parse(amount, currency)
	if err != nil {
		panic(err)
	}
	return invoice.Create{
		InvoiceID: id, Number: number, Amount: m, Provider: "sandbox",
		ReferenceID: "ref-" + id, Description: "test invoice",
		Customer:  invoice.Customer{Email: fmt.Sprintf("payer%d@example.com", number%97), Name: "Payer"},
		Metadata:  map[string]string{"account_id": fmt.Sprint(number % 13)},
		ExpiresAt: expires,
	}
}

// MustMoney parses or panics (test data only).
func MustMoney(amount, currency string) money.Money {
	m, err := money.Parse(amount, currency)
	if err != nil {
		panic(err)
	}
	return m
}

// Generate appends n invoices with a mix of outcomes: paid, paid and
// partially or fully refunded, declined then paid, expired (some with a
// late payment), cancelled, duplicate payments, open with an active link.
// It returns the ids in creation order.
func Generate(ctx context.Context, store eventstore.Store, n int, base time.Time) ([]string, error) {
	ids := make([]string, n)
	scripts := make([]*Script, n)
	for i := range n {
		ids[i] = ledger.NewID("inv")
		scripts[i] = scriptFor(ids[i], int64(1000+i), i, base.Add(time.Duration(i)*time.Second))
		if scripts[i].Err() != nil {
			return nil, scripts[i].Err()
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	next := make(chan *Script)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range next {
				if _, err := s.Append(ctx, store); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		}()
	}
	for _, s := range scripts {
		next <- s
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errs:
		return nil, err
	default:
	}
	return ids, nil
}

func scriptFor(id string, number int64, i int, t0 time.Time) *Script {
	curs := []struct{ amount, cur string }{{"100.55", "USD"}, {"5000", "JPY"}, {"12.345", "KWD"}, {"49.99", "EUR"}}
	c := curs[i%len(curs)]
	amt := MustMoney(c.amount, c.cur)
	s := NewScript(id).Do(Create(id, number, c.amount, c.cur, t0.Add(time.Hour)), t0)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	link := invoice.IssueLink{LinkID: "lnk_" + id[4:], TokenHash: fmt.Sprintf("%064x", i+1), ExpiresAt: t0.Add(10 * time.Minute)}
	// pay initiates and settles a payment. A payment arriving when the
	// invoice is no longer open (late or duplicate) has no initiation on
	// our side: the provider reports money we never asked for.
	pay := func(pid string, d time.Duration, m money.Money) {
		if !strings.HasPrefix(pid, "pay_l") && !strings.HasPrefix(pid, "pay_b") {
			s.Do(invoice.InitiatePayment{PaymentID: pid, Provider: "sandbox"}, at(d))
		}
		s.Do(invoice.RecordProcessed{PaymentID: pid, Provider: "sandbox", ProviderRef: "ref_" + pid, Amount: m, CardBrand: "visa", CardLast4: "4242"}, at(d+time.Second))
	}
	switch i % 10 {
	case 0, 1, 2:
		s.Do(link, at(time.Second)).Do(invoice.ConsumeLink{TokenHash: link.TokenHash}, at(2*time.Second))
		pay("pay_a"+id[4:], 3*time.Second, amt)
	case 3:
		pay("pay_a"+id[4:], 3*time.Second, amt)
		half := MustMoney(amt.Amount().Div(decimalTwo()).Truncate(amt.Currency().Exponent).String(), c.cur)
		s.Do(invoice.Refund{RefundID: "re_a" + id[4:], Amount: half, Reason: "requested_by_customer"}, at(time.Minute))
	case 4:
		pay("pay_a"+id[4:], 3*time.Second, amt)
		s.Do(invoice.Refund{RefundID: "re_a" + id[4:], Amount: amt}, at(time.Minute))
	case 5:
		s.Do(invoice.InitiatePayment{PaymentID: "pay_f" + id[4:], Provider: "sandbox"}, at(time.Second))
		s.Do(invoice.RecordFailed{PaymentID: "pay_f" + id[4:], Provider: "sandbox", Code: "card_declined"}, at(2*time.Second))
		pay("pay_a"+id[4:], 3*time.Second, amt)
	case 6:
		s.Do(link, at(time.Second)).Do(invoice.ExpireLink{LinkID: link.LinkID}, at(11*time.Minute))
		s.Do(invoice.Expire{}, at(61*time.Minute))
	case 7:
		s.Do(invoice.Cancel{Reason: "merchant"}, at(time.Minute))
	case 8:
		pay("pay_a"+id[4:], 3*time.Second, amt)
		pay("pay_b"+id[4:], 10*time.Second, amt) // duplicate
	case 9:
		if i%20 == 9 {
			s.Do(invoice.Expire{}, at(61*time.Minute))
			pay("pay_l"+id[4:], 62*time.Minute, amt) // late
		} else {
			s.Do(link, at(time.Second))
		}
	}
	return s
}

// Settle waits until every event of the given invoices is visible in $all
// and returns the global position of the last one. Tests wait on this,
// not on the store's head: on PostgreSQL the $all horizon stops at the
// oldest transaction still open anywhere in the cluster, so while another
// test package holds one open, the head lags what was appended.
func Settle(tb testing.TB, store eventstore.Store, ids []string) eventstore.Position {
	tb.Helper()
	ctx := context.Background()
	want := make(map[string]bool)
	for _, id := range ids {
		evs, err := store.ReadStream(ctx, ledger.StreamName(id), 1)
		if err != nil {
			tb.Fatalf("settle: read %s: %v", id, err)
		}
		for _, e := range evs {
			want[e.ID] = true
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		var last eventstore.Position
		seen := 0
		after := eventstore.Start
		for {
			evs, err := store.ReadAll(ctx, after, 5000)
			if err != nil {
				tb.Fatalf("settle: read $all: %v", err)
			}
			if len(evs) == 0 {
				break
			}
			for _, e := range evs {
				if want[e.ID] {
					seen++
					last = e.Position
				}
			}
			after = evs[len(evs)-1].Position
		}
		if seen == len(want) {
			return last
		}
		if time.Now().After(deadline) {
			tb.Fatalf("settle: %d of %d events visible in $all after 60 s", seen, len(want))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
