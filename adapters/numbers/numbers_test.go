package numbers_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/payledger/payledger/adapters/numbers"
	"github.com/payledger/payledger/projections"
	"github.com/payledger/payledger/projections/projectiontest"
)

// TestSequence: numbers start at 1001, increase, are unique under
// concurrency, and survive a re-migration (a restart) without restarting.
func TestSequence(t *testing.T) {
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		ctx := context.Background()
		s, err := numbers.New(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		for want := int64(numbers.First); want < numbers.First+3; want++ {
			n, err := s.Next(ctx)
			if err != nil || n != want {
				t.Fatalf("Next = %d, %v; want %d", n, err, want)
			}
		}
		const workers, each = 10, 20
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			seen = map[int64]bool{}
		)
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range each {
					n, err := s.Next(ctx)
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					if seen[n] {
						t.Errorf("number %d handed out twice", n)
					}
					seen[n] = true
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		for n := int64(numbers.First + 3); n < numbers.First+3+workers*each; n++ {
			if !seen[n] {
				t.Fatalf("number %d skipped without a failure", n)
			}
		}
		again, err := numbers.New(ctx, b) // a restart migrates again
		if err != nil {
			t.Fatal(err)
		}
		if n, err := again.Next(ctx); err != nil || n != numbers.First+3+workers*each {
			t.Fatalf("after re-migration Next = %d, %v", n, err)
		}
	})
}

// TestReferences: the first reservation of a name wins, also when many
// race for it; other names are independent.
func TestReferences(t *testing.T) {
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		ctx := context.Background()
		r, err := numbers.NewReferences(ctx, b, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := r.Reserve(ctx, "ref:a", "inv_1")
		if err != nil || got != "inv_1" {
			t.Fatalf("first reserve: %q, %v", got, err)
		}
		if got, _ := r.Reserve(ctx, "ref:a", "inv_2"); got != "inv_1" {
			t.Fatalf("second reserve returned %q, want the first binding", got)
		}
		if got, _ := r.Reserve(ctx, "ref:b", "inv_3"); got != "inv_3" {
			t.Fatalf("other name: %q", got)
		}
		var (
			wg  sync.WaitGroup
			mu  sync.Mutex
			ids = map[string]int{}
		)
		for i := range 30 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				got, err := r.Reserve(ctx, "ref:race", fmt.Sprintf("inv_%d", 100+i))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				ids[got]++
				mu.Unlock()
			}()
		}
		wg.Wait()
		if len(ids) != 1 {
			t.Fatalf("racing reservations bound %d ids: %v", len(ids), ids)
		}
		if _, err := numbers.NewReferences(ctx, b, nil); err != nil {
			t.Fatalf("re-migration: %v", err)
		}
	})
}

// TestReserveNumbered: binding a name draws the invoice number in the same
// statement on PostgreSQL (and leaves it to the caller, 0, on SQLite); a
// name bound already, or lost in a race, burns no number.
func TestReserveNumbered(t *testing.T) {
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		ctx := context.Background()
		pg := strings.Contains(b.DB().DriverName(), "postgres")
		seq, err := numbers.New(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		r, err := numbers.NewReferences(ctx, b, seq)
		if err != nil {
			t.Fatal(err)
		}
		next := func() int64 {
			t.Helper()
			n, err := seq.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		n0 := next()
		drawn := func(n int64) int64 { // what a binding call should return
			if pg {
				return n
			}
			return 0
		}

		bound, n, err := r.ReserveNumbered(ctx, "ref:x", "inv_1")
		if err != nil || bound != "inv_1" || n != drawn(n0+1) {
			t.Fatalf("first reservation: %q, %d, %v; want inv_1, %d", bound, n, err, drawn(n0+1))
		}
		if bound, n, err := r.ReserveNumbered(ctx, "ref:x", "inv_2"); err != nil || bound != "inv_1" || n != 0 {
			t.Fatalf("repeat: %q, %d, %v; want inv_1 and no number", bound, n, err)
		}
		// Without a sequence nothing is drawn (checked by Next below too).
		plain, err := numbers.NewReferences(ctx, b, nil)
		if err != nil {
			t.Fatal(err)
		}
		if bound, n, err := plain.ReserveNumbered(ctx, "ref:y", "inv_9"); err != nil || bound != "inv_9" || n != 0 {
			t.Fatalf("reservation without a sequence: %q, %d, %v; want inv_9 and no number", bound, n, err)
		}
		after := n0 + 1
		if pg {
			after = n0 + 2 // the first reservation drew n0+1
		}
		if got := next(); got != after {
			t.Fatalf("Next after the reservations = %d, want %d (a repeat must not draw)", got, after)
		}

		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			ids   = map[string]bool{}
			drew  []int64
			start = make(chan struct{})
		)
		for i := range 30 {
			wg.Go(func() {
				<-start
				bound, n, err := r.ReserveNumbered(ctx, "ref:race", fmt.Sprintf("inv_%d", 100+i))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				ids[bound] = true
				if n != 0 {
					drew = append(drew, n)
				}
				mu.Unlock()
			})
		}
		close(start)
		wg.Wait()
		if len(ids) != 1 {
			t.Fatalf("racing reservations bound %d ids", len(ids))
		}
		want := 0
		if pg {
			want = 1
		}
		if len(drew) != want {
			t.Fatalf("%d racing reservations drew a number (%v), want %d", len(drew), drew, want)
		}
		if pg && drew[0] != after+1 {
			t.Fatalf("the race's winner drew %d, want %d", drew[0], after+1)
		}
	})
}
