package projections_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/payledger/payledger/projections"
	"github.com/payledger/payledger/projections/projectiontest"
)

// TestTxGroupCombinesAndIsolates: batches that queue while transactions
// run are committed together in one; when one of them fails, the combined
// transaction is rolled back and each batch committed on its own, so only
// the failing one is lost and only it sees its error.
func TestTxGroupCombinesAndIsolates(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	tests := []struct {
		name        string
		fail        int // index of the queued batch that fails; -1: none
		wantRetried int64
	}{
		{"all succeed", -1, 0},
		{"one fails", 2, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
				ctx := context.Background()
				if err := b.WriteTx(ctx, func(tx *sqlx.Tx) error {
					_, err := tx.ExecContext(ctx, `CREATE TABLE txgroup_rows (n INTEGER NOT NULL)`)
					return err
				}); err != nil {
					t.Fatal(err)
				}
				g := projections.NewTxGroup(b)
				// Every leader slot but one is taken; the last goes to a
				// batch that holds its transaction open until released.
				g.Occupy(projections.MaxTxLeaders - 1)
				defer g.Occupy(-(projections.MaxTxLeaders - 1))
				started, release := make(chan struct{}), make(chan struct{})
				var wg sync.WaitGroup
				wg.Go(func() {
					if err := g.Commit(ctx, "holder", func(tx *sqlx.Tx) error {
						close(started)
						<-release
						_, err := tx.ExecContext(ctx, `INSERT INTO txgroup_rows (n) VALUES (100)`)
						return err
					}); err != nil {
						t.Error(err)
					}
				})
				<-started
				const queued = 5
				errs := make([]error, queued)
				var orderMu sync.Mutex
				var order []string // names in the order their batches ran
				for i := range queued {
					name := fmt.Sprintf("batch-%d", queued-i) // queued in descending name order
					wg.Go(func() {
						errs[i] = g.Commit(ctx, name, func(tx *sqlx.Tx) error {
							orderMu.Lock()
							order = append(order, name)
							orderMu.Unlock()
							if i == tc.fail {
								return boom
							}
							_, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO txgroup_rows (n) VALUES (?)`), i)
							return err
						})
					})
				}
				deadline := time.Now().Add(10 * time.Second)
				for g.Queued() < queued {
					if time.Now().After(deadline) {
						t.Fatalf("%d batches queued, want %d", g.Queued(), queued)
					}
					time.Sleep(time.Millisecond)
				}
				close(release)
				wg.Wait()

				var want []int
				for i, err := range errs {
					switch {
					case i == tc.fail && !errors.Is(err, boom):
						t.Errorf("batch %d: %v, want its own error", i, err)
					case i != tc.fail && err != nil:
						t.Errorf("batch %d: %v, want none", i, err)
					case i != tc.fail:
						want = append(want, i)
					}
				}
				want = append(want, 100)
				var got []int
				if err := b.DB().SelectContext(ctx, &got, `SELECT n FROM txgroup_rows ORDER BY n`); err != nil {
					t.Fatal(err)
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("rows %v, want %v", got, want)
				}
				// One order for every transaction, whatever the arrival
				// order: two processes cannot deadlock on checkpoint rows.
				if tc.fail < 0 && !slices.IsSorted(order) {
					t.Errorf("batches ran in the order %v, want sorted by name", order)
				}
				combined, retried := g.Counts()
				if combined != 1 || retried != tc.wantRetried {
					t.Errorf("combined %d retried %d, want 1 and %d", combined, retried, tc.wantRetried)
				}
			})
		})
	}
}
