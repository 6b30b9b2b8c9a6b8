package webhook_test

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/payledger/payledger/adapters/webhook"
	"github.com/payledger/payledger/projections"
	"github.com/payledger/payledger/projections/outbox"
	"github.com/payledger/payledger/projections/projectiontest"
)

var shortSchedule = []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 30 * time.Millisecond, 40 * time.Millisecond}

// TestFailingReceiverGetsExactlyOneSuccess: a receiver that answers 500 to
// the first three attempts of every message gets each event delivered
// exactly once successfully, on the fourth attempt, in both formats, with
// valid signatures; every attempt is logged.
func TestFailingReceiverGetsExactlyOneSuccess(t *testing.T) {
	t.Parallel()
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		const fails, invoices = 3, 12
		rcv := newReceiver(t, fails, http.StatusInternalServerError)
		n := newNode(t, b, webhook.SenderOptions{Schedule: shortSchedule})
		std := n.endpoint(t, rcv.url("/"+"pending"), outbox.FormatStandard)
		woo := n.endpoint(t, rcv.url("/"+"pending"), outbox.FormatWooCommerce)
		// The receiver tells endpoints apart by path: fix the URLs now
		// that the ids are known.
		for _, e := range []struct{ id, secret string }{{std.ID, std.Secret}, {woo.ID, woo.Secret}} {
			rcv.secret(e.id, e.secret)
			writeURL(t, b, e.id, rcv.url("/"+e.id))
		}
		n.start(t)
		paidInvoices(t, b, invoices)
		wantStd, wantWoo := 4*invoices, invoices
		eventually(t, 20*time.Second, "every delivery succeeded", func() bool {
			return count(t, b, `SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'succeeded'`) == wantStd+wantWoo
		})
		n.stop() // lets in-flight attempts finish: nothing may arrive after this
		attempts, successes, bad, total := rcv.snapshot()
		if len(bad) > 0 {
			t.Errorf("%d requests with a bad signature or headers: %v", len(bad), bad[:min(3, len(bad))])
		}
		var std0, woo0 int
		for k, s := range successes {
			if s != 1 {
				t.Errorf("%s succeeded %d times", k, s)
			}
			if attempts[k] != fails+1 {
				t.Errorf("%s took %d attempts, want %d", k, attempts[k], fails+1)
			}
			if strings.HasPrefix(k, "woo ") {
				woo0++
			} else {
				std0++
			}
		}
		if std0 != wantStd || woo0 != wantWoo || total != (wantStd+wantWoo)*(fails+1) {
			t.Errorf("receiver saw %d standard and %d woocommerce messages in %d requests, want %d, %d in %d",
				std0, woo0, total, wantStd, wantWoo, (wantStd+wantWoo)*(fails+1))
		}
		if got := count(t, b, `SELECT COUNT(*) FROM webhook_attempts`); got != total {
			t.Errorf("%d attempts logged, receiver saw %d", got, total)
		}
		if got := count(t, b, `SELECT COUNT(*) FROM webhook_attempts WHERE status_code = 500 AND response_excerpt LIKE 'failing on purpose%'`); got != (wantStd+wantWoo)*fails {
			t.Errorf("%d failed attempts logged with their response, want %d", got, (wantStd+wantWoo)*fails)
		}
		if got := count(t, b, `SELECT COUNT(*) FROM webhook_deliveries WHERE attempts <> ? OR last_status_code <> 200`, fails+1); got != 0 {
			t.Errorf("%d deliveries with another attempt count or last status", got)
		}
	})
}

// writeURL changes an endpoint's URL through the write path.
func writeURL(t *testing.T, b projections.Backend, id, url string) {
	t.Helper()
	err := b.WriteTx(context.Background(), func(tx *sqlx.Tx) error {
		_, err := tx.Exec(tx.Rebind(`UPDATE webhook_endpoints SET url = ? WHERE id = ?`), url, id)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestRestartBetweenCommitAndDelivery: the outbox rows commit with the
// checkpoint, then the process stops before any attempt; after a restart
// everything is delivered once. Then a second life where every attempt
// fails stops with retries scheduled in the database, and a third life
// delivers them, continuing the attempt count.
func TestRestartBetweenCommitAndDelivery(t *testing.T) {
	t.Parallel()
	reopenable(t, func(t *testing.T, open opener) {
		ctx := context.Background()
		rcv := newReceiver(t, 0, http.StatusOK)
		so := webhook.SenderOptions{Schedule: []time.Duration{100 * time.Millisecond, 100 * time.Millisecond}}

		// Life 1: commit, never send.
		b1 := open(t)
		n1 := newNode(t, b1, so)
		e := n1.endpoint(t, rcv.url("/placeholder"), outbox.FormatStandard, outbox.InvoicePaid)
		writeURL(t, b1, e.ID, rcv.url("/"+e.ID))
		rcv.secret(e.ID, e.Secret)
		paidInvoices(t, b1, 5)
		if err := n1.set.CatchUp(ctx); err != nil {
			t.Fatal(err)
		}
		if got := count(t, b1, `SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'pending'`); got != 5 {
			t.Fatalf("%d pending deliveries committed, want 5", got)
		}
		b1.Close()

		// Life 2: the receiver is down (503): first attempts fail and the
		// retries are scheduled; stop before they are due.
		rcv.mu.Lock()
		rcv.failFirst, rcv.failStatus = 1, http.StatusServiceUnavailable
		rcv.mu.Unlock()
		b2 := open(t)
		n2 := newNode(t, b2, webhook.SenderOptions{Schedule: []time.Duration{time.Hour}})
		n2.start(t)
		eventually(t, 10*time.Second, "first attempts made", func() bool {
			return count(t, b2, `SELECT COUNT(*) FROM webhook_deliveries WHERE attempts = 1 AND status = 'pending'`) == 5
		})
		n2.stop()
		b2.Close()
		if _, s, _, _ := rcv.snapshot(); len(s) != 0 {
			t.Fatalf("deliveries succeeded in life 2: %v", s)
		}

		// Life 3: the retries are due (the schedule here is short, but the
		// hour scheduled in life 2 is what the rows say: move it).
		b3 := open(t)
		n3 := newNode(t, b3, so)
		err := b3.WriteTx(ctx, func(tx *sqlx.Tx) error {
			_, err := tx.Exec(`UPDATE webhook_deliveries SET next_attempt_at = 1 WHERE status = 'pending'`)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		n3.start(t)
		eventually(t, 10*time.Second, "all delivered after the restart", func() bool {
			return count(t, b3, `SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'succeeded'`) == 5
		})
		n3.stop()
		attempts, successes, bad, _ := rcv.snapshot()
		if len(bad) > 0 || len(successes) != 5 {
			t.Fatalf("successes %v, bad %v", successes, bad)
		}
		for k, s := range successes {
			if s != 1 || attempts[k] != 2 {
				t.Errorf("%s: %d successes in %d attempts, want 1 in 2", k, s, attempts[k])
			}
		}
		if got := count(t, b3, `SELECT COUNT(*) FROM webhook_attempts WHERE (attempt = 1 AND status_code = 503) OR (attempt = 2 AND status_code = 200)`); got != 10 {
			t.Errorf("%d attempt rows match 503-then-200, want 10", got)
		}
	})
}

// TestGoneDisablesEndpoint: a 410 disables the endpoint at once; its other
// deliveries are cancelled and later events are not queued for it.
func TestGoneDisablesEndpoint(t *testing.T) {
	t.Parallel()
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		rcv := newReceiver(t, 1000, http.StatusGone)
		n := newNode(t, b, webhook.SenderOptions{Schedule: shortSchedule, MaxInFlight: 1})
		e := n.endpoint(t, rcv.url("/x"), outbox.FormatStandard)
		rcv.secret(e.ID, e.Secret)
		paidInvoices(t, b, 3) // before the start: all 12 deliveries are queued in one batch
		n.start(t)
		eventually(t, 10*time.Second, "endpoint disabled", func() bool {
			got, err := n.store.Get(context.Background(), e.ID)
			return err == nil && got.Status == webhook.EndpointDisabled
		})
		got, _ := n.store.Get(context.Background(), e.ID)
		if got.DisabledReason != webhook.ReasonGone || got.EndedAt.IsZero() {
			t.Errorf("disabled endpoint %+v, want reason gone and an end", got)
		}
		eventually(t, 10*time.Second, "nothing pending", func() bool {
			return count(t, b, `SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'pending'`) == 0
		})
		if n := count(t, b, `SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'failed' AND last_status_code = 410`); n != 1 {
			t.Errorf("%d deliveries failed with 410, want 1 (one in flight at a time)", n)
		}
		if n := count(t, b, `SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'cancelled'`); n != 11 {
			t.Errorf("%d deliveries cancelled, want the other 11", n)
		}
		before := count(t, b, `SELECT COUNT(*) FROM webhook_deliveries`)
		ids := paidInvoices(t, b, 2)
		if err := n.set.WaitFor(context.Background(), projectiontest.Settle(t, b, ids)); err != nil {
			t.Fatal(err)
		}
		if after := count(t, b, `SELECT COUNT(*) FROM webhook_deliveries`); after != before {
			t.Errorf("%d deliveries queued for a disabled endpoint", after-before)
		}
		if _, _, _, total := rcv.snapshot(); total != 1 {
			t.Errorf("receiver got %d requests, want the one answered 410", total)
		}
	})
}

// TestFailingForDaysDisablesEndpoint: with an injected clock, failures
// spread over more than DisableAfter disable the endpoint.
func TestFailingForDaysDisablesEndpoint(t *testing.T) {
	t.Parallel()
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		var offset atomic.Int64
		now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
		rcv := newReceiver(t, 1000, http.StatusInternalServerError)
		n := newNode(t, b, webhook.SenderOptions{Schedule: shortSchedule, Now: now})
		e := n.endpoint(t, rcv.url("/x"), outbox.FormatStandard, outbox.InvoiceCreated)
		rcv.secret(e.ID, e.Secret)
		n.start(t)
		paidInvoices(t, b, 1)
		eventually(t, 10*time.Second, "a failed attempt", func() bool {
			return count(t, b, `SELECT COUNT(*) FROM webhook_attempts`) >= 1
		})
		if got, _ := n.store.Get(context.Background(), e.ID); got.Status != webhook.EndpointEnabled || got.FailingSince.IsZero() {
			t.Fatalf("after one failure the endpoint is %+v, want enabled and failing", got)
		}
		offset.Store(int64(6 * 24 * time.Hour))
		eventually(t, 10*time.Second, "endpoint disabled after 5 days of failures", func() bool {
			got, err := n.store.Get(context.Background(), e.ID)
			return err == nil && got.Status == webhook.EndpointDisabled && got.DisabledReason == webhook.ReasonFailing
		})
	})
}

// TestScheduleRunsOut: when the schedule is exhausted the delivery fails
// for good, with every attempt logged.
func TestScheduleRunsOut(t *testing.T) {
	t.Parallel()
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		rcv := newReceiver(t, 1000, http.StatusBadGateway)
		n := newNode(t, b, webhook.SenderOptions{Schedule: shortSchedule[:2]})
		e := n.endpoint(t, rcv.url("/x"), outbox.FormatStandard, outbox.InvoiceCreated)
		rcv.secret(e.ID, e.Secret)
		n.start(t)
		paidInvoices(t, b, 1)
		eventually(t, 10*time.Second, "delivery failed", func() bool {
			return count(t, b, `SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'failed' AND attempts = 3`) == 1
		})
		n.stop()
		if _, _, _, total := rcv.snapshot(); total != 3 {
			t.Errorf("receiver got %d requests, want 3 (first attempt and two retries)", total)
		}
	})
}

// TestSenderRefusesPrivateTargets: an endpoint row pointing at loopback
// (written before the rules changed, or through DNS rebinding) is refused
// when dialled; the attempt is logged as failed and retried.
func TestSenderRefusesPrivateTargets(t *testing.T) {
	t.Parallel()
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		rcv := newReceiver(t, 0, http.StatusOK)
		n := newNode(t, b, webhook.SenderOptions{Schedule: []time.Duration{time.Hour}, Client: webhook.Guard{}.Client(2 * time.Second)})
		e := n.endpoint(t, rcv.url("/x"), outbox.FormatStandard, outbox.InvoiceCreated)
		rcv.secret(e.ID, e.Secret)
		n.start(t)
		paidInvoices(t, b, 1)
		eventually(t, 10*time.Second, "refused attempt logged", func() bool {
			return count(t, b, `SELECT COUNT(*) FROM webhook_attempts WHERE status_code = 0 AND error LIKE '%not public%'`) == 1
		})
		if _, _, _, total := rcv.snapshot(); total != 0 {
			t.Fatalf("the receiver on loopback got %d requests", total)
		}
		if got := count(t, b, `SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'pending' AND attempts = 1`); got != 1 {
			t.Fatalf("refused delivery not scheduled for retry")
		}
	})
}

// panicky panics on its first n round trips, then delegates.
type panicky struct {
	n    atomic.Int32
	next http.RoundTripper
}

func (p *panicky) RoundTrip(r *http.Request) (*http.Response, error) {
	if p.n.Add(-1) >= 0 {
		panic("transport exploded")
	}
	return p.next.RoundTrip(r)
}

// TestPanicIsRecoveredRetriedAndPoisoned: a panic in the attempt is caught
// by Recoverer, retried by Retry, sent to the poison queue when retries run
// out, and the delivery comes back after its lease and succeeds.
func TestPanicIsRecoveredRetriedAndPoisoned(t *testing.T) {
	t.Parallel()
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		rcv := newReceiver(t, 0, http.StatusOK)
		tr := &panicky{next: http.DefaultTransport}
		tr.n.Store(4) // the first run and Retry's three
		reg := prometheus.NewRegistry()
		n := newNode(t, b, webhook.SenderOptions{Schedule: shortSchedule, Client: &http.Client{Transport: tr},
			Timeout: 200 * time.Millisecond, Lease: 300 * time.Millisecond, Registerer: reg})
		e := n.endpoint(t, rcv.url("/x"), outbox.FormatStandard, outbox.InvoiceCreated)
		rcv.secret(e.ID, e.Secret)
		n.start(t)
		paidInvoices(t, b, 1)
		eventually(t, 10*time.Second, "delivered after the poisoned message's lease", func() bool {
			return count(t, b, `SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'succeeded'`) == 1
		})
		n.stop()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var poisoned float64
		for _, mf := range mfs {
			if mf.GetName() == "payledger_webhook_poisoned_total" {
				poisoned = mf.GetMetric()[0].GetCounter().GetValue()
			}
		}
		if poisoned != 1 {
			t.Errorf("poisoned_total = %v, want 1", poisoned)
		}
		if got := count(t, b, `SELECT COUNT(*) FROM webhook_attempts`); got != 1 {
			t.Errorf("%d attempts logged; panicked runs must not count as attempts", got)
		}
	})
}
