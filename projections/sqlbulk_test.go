package projections_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/payledger/payledger/projections"
	"github.com/payledger/payledger/projections/projectiontest"
)

// TestUpsert: on PostgreSQL rows of plain strings, integers and booleans go
// through one statement of column arrays, anything else through VALUES;
// both must insert, replace and keep rows alike, on both databases.
func TestUpsert(t *testing.T) {
	t.Parallel()
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		ctx := context.Background()
		cols := []string{"k1", "k2", "s", "n", "f"}
		key := []string{"k1", "k2"}
		for _, tc := range []struct {
			name string
			v    func(i int) any // the f column's value
		}{
			{"arrays", func(i int) any { return i%2 == 0 }},
			{"values", func(i int) any {
				if i%3 == 0 {
					return nil // a NULL keeps this case on VALUES
				}
				return i%2 == 0
			}},
		} {
			table := "upsert_" + tc.name
			rows := func(n, off int) [][]any {
				out := make([][]any, n)
				for i := range n {
					out[i] = []any{fmt.Sprint("a", i%7), int64(i), fmt.Sprintf("s'%d\"\\{},é\x01", i+off), i + off, tc.v(i + off)}
				}
				return out
			}
			err := b.WriteTx(ctx, func(tx *sqlx.Tx) error {
				if err := projections.ExecAll(ctx, tx, `CREATE TABLE `+table+` (k1 TEXT NOT NULL, k2 BIGINT NOT NULL, s TEXT NOT NULL, n BIGINT NOT NULL, f BOOLEAN, PRIMARY KEY (k1, k2))`); err != nil {
					return err
				}
				// 7,000 rows is more than one VALUES statement takes.
				if err := projections.Upsert(ctx, tx, table, cols, key, rows(7000, 0), true); err != nil {
					return err
				}
				// Replace the first half, keep the rest.
				if err := projections.Upsert(ctx, tx, table, cols, key, rows(3500, 1), true); err != nil {
					return err
				}
				// With update false nothing changes.
				if err := projections.Upsert(ctx, tx, table, cols, key, rows(7000, 2), false); err != nil {
					return err
				}
				return projections.Upsert(ctx, tx, table, cols, key, nil, true)
			})
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			want := map[int64][]any{}
			for _, r := range rows(7000, 0) {
				want[r[1].(int64)] = r
			}
			for _, r := range rows(3500, 1) {
				want[r[1].(int64)] = r
			}
			got, err := b.DB().QueryxContext(ctx, `SELECT k1, k2, s, n, f FROM `+table)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for got.Next() {
				var (
					k1, s string
					k2, v int64
					f     *bool
				)
				if err := got.Scan(&k1, &k2, &s, &v, &f); err != nil {
					t.Fatal(err)
				}
				n++
				w := want[k2]
				var wf any
				if f != nil {
					wf = *f
				}
				if row := []any{k1, k2, s, int(v), wf}; !reflect.DeepEqual(row, w) {
					t.Fatalf("%s: row %v, want %v", tc.name, row, w)
				}
			}
			got.Close()
			if n != len(want) {
				t.Fatalf("%s: %d rows, want %d", tc.name, n, len(want))
			}
		}
	})
}
