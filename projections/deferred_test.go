package projections_test

import (
	"context"
	"errors"
	"testing"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/payledger/payledger/eventstore"
	"github.com/payledger/payledger/projections"
	"github.com/payledger/payledger/projections/projectiontest"
)

// TestInline: parameters become literals only where the literal reads back
// as exactly the parameter, and only in texts the scanner reads safely.
func TestInline(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		query string
		args  []any
		want  string // "" with ok false
	}{
		{"scalars", `INSERT INTO t VALUES ($1, $2, $3, $4)`, []any{"a", int64(7), true, nil}, `INSERT INTO t VALUES ('a', 7, TRUE, NULL)`},
		{"quote doubled", `SELECT $1`, []any{"it's"}, `SELECT 'it''s'`},
		{"backslash escaped", `SELECT $1`, []any{`a\b`}, `SELECT  E'a\\b'`},
		{"two digits", `SELECT $10, $1, $2, $3, $4, $5, $6, $7, $8, $9`, []any{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, `SELECT 10, 1, 2, 3, 4, 5, 6, 7, 8, 9`},
		{"negative in parentheses", `SELECT 5 - $1`, []any{-3}, `SELECT 5 - (-3)`},
		{"placeholder inside a literal left alone", `SELECT '$1', "$1", $1`, []any{"x"}, `SELECT '$1', "$1", 'x'`},
		{"doubled quote inside a literal", `SELECT 'a''$1', $1`, []any{"x"}, `SELECT 'a''$1', 'x'`},
		{"string array", `SELECT $1::text[]`, []any{pq.StringArray{`a"b`, "c'd", `e\f`}}, `SELECT  E'{"a\\"b","c''d","e\\\\f"}'::text[]`},
		{"integer array", `SELECT $1::bigint[]`, []any{pq.Int64Array{1, -2}}, `SELECT '{1,-2}'::bigint[]`},
		{"boolean array", `SELECT $1::boolean[]`, []any{pq.BoolArray{true, false}}, `SELECT '{t,f}'::boolean[]`},
		{"bytes run with parameters", `SELECT $1`, []any{[]byte("x")}, ""},
		{"floats run with parameters", `SELECT $1`, []any{1.5}, ""},
		{"NUL runs with parameters", `SELECT $1`, []any{"a\x00b"}, ""},
		{"placeholder without argument", `SELECT $2`, []any{"a"}, ""},
		{"argument without placeholder", `SELECT ?`, []any{"a"}, ""},
		{"dollar quoting", `SELECT $$a$$`, nil, ""},
		{"line comment", `SELECT 1 -- $1`, []any{"a"}, ""},
		{"block comment", `SELECT /* $1 */ 1`, []any{"a"}, ""},
		{"backslash in the text", `SELECT E'\n'`, nil, ""},
		{"unterminated literal", `SELECT 'a`, nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := projections.Inline(tc.query, tc.args...)
			if ok != (tc.want != "") || got != tc.want {
				t.Fatalf("Inline(%q, %v) = %q, %v; want %q", tc.query, tc.args, got, ok, tc.want)
			}
		})
	}
}

// TestDeferredWrites: in a live batch's transaction on PostgreSQL the
// helpers' writes wait for Flush; a write whose parameters have no literal
// form sends what is pending first, so the order of writes is kept; and
// what a literal carries reads back exactly. SQLite does not defer.
func TestDeferredWrites(t *testing.T) {
	t.Parallel()
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		ctx := context.Background()
		pg := b.DB().DriverName() == "postgres"
		tricky := []string{`it's`, `a\b`, `\'; DROP TABLE deferred_rows; --`, `$1 $$ $x$`, "line\nbreak\ttab", "é ☃ 𝄞", `{"json": [1, "two"]}`, `"`, ``}
		count := func(tx *sqlx.Tx) int {
			var n int
			if err := tx.QueryRowxContext(ctx, `SELECT count(*) FROM deferred_rows`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		err := b.WriteTx(ctx, func(tx *sqlx.Tx) error {
			if err := projections.ExecAll(ctx, tx, `CREATE TABLE deferred_rows (k BIGINT PRIMARY KEY, s TEXT NOT NULL, b BOOLEAN)`); err != nil {
				return err
			}
			defer projections.DeferWrites(tx)()
			var rows [][]any
			for i, s := range tricky {
				rows = append(rows, []any{int64(i), s, i%2 == 0})
			}
			if err := projections.Upsert(ctx, tx, "deferred_rows", []string{"k", "s", "b"}, []string{"k"}, rows, true); err != nil {
				return err
			}
			if err := projections.Exec(ctx, tx, tx.Rebind(`UPDATE deferred_rows SET s = ? WHERE k = ?`), "updated 'once'", int64(0)); err != nil {
				return err
			}
			if got, want := count(tx), map[bool]int{true: 0, false: len(tricky)}[pg]; got != want {
				t.Errorf("before Flush the transaction sees %d rows, want %d", got, want)
			}
			// []byte has no literal form here: everything pending goes
			// first, then this statement, which depends on it.
			if err := projections.Exec(ctx, tx, tx.Rebind(`UPDATE deferred_rows SET s = s || CAST(? AS TEXT) WHERE k = 0`), []byte(" and twice")); err != nil {
				return err
			}
			if got := count(tx); got != len(tricky) {
				t.Errorf("after a write that could not wait the transaction sees %d rows, want %d", got, len(tricky))
			}
			if err := projections.DeleteIn(ctx, tx, "deferred_rows", "s", []string{tricky[1]}); err != nil {
				return err
			}
			return projections.Flush(ctx, tx)
		})
		if err != nil {
			t.Fatal(err)
		}
		got := map[int64]string{}
		r, err := b.DB().QueryxContext(ctx, `SELECT k, s FROM deferred_rows`)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		for r.Next() {
			var k int64
			var s string
			if err := r.Scan(&k, &s); err != nil {
				t.Fatal(err)
			}
			got[k] = s
		}
		if err := r.Err(); err != nil {
			t.Fatal(err)
		}
		want := map[int64]string{}
		for i, s := range tricky {
			want[int64(i)] = s
		}
		want[0] = "updated 'once' and twice"
		delete(want, 1)
		if len(got) != len(want) {
			t.Fatalf("rows %v, want %v", got, want)
		}
		for k, s := range want {
			if got[k] != s {
				t.Errorf("row %d: %q, want %q", k, got[k], s)
			}
		}
	})
}

// TestDeferredCheckpoint: the checkpoint step of a live batch, deferred on
// PostgreSQL, still refuses a batch whose checkpoint moved: the combined
// transaction fails, and the rerun without deferring tells the runner
// that it moved, while a batch from the right checkpoint commits at once.
func TestDeferredCheckpoint(t *testing.T) {
	t.Parallel()
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		ctx := context.Background()
		set, err := projections.NewSet(b, projections.Options{}, applyLog{set: "a"})
		if err != nil {
			t.Fatal(err)
		}
		if err := set.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		g := projections.NewTxGroup(b)
		p1 := eventstore.Position{Commit: 10, Prepare: 1}
		p2 := eventstore.Position{Commit: 20, Prepare: 2}
		advance := func(from, to eventstore.Position) error {
			return g.Commit(ctx, "apply_log", func(tx *sqlx.Tx) error {
				return projections.AdvanceCheckpoint(ctx, tx, "apply_log", from, to)
			})
		}
		if err := advance(eventstore.Start, p1); err != nil {
			t.Fatalf("batch from the stored checkpoint: %v", err)
		}
		if _, retried := g.Counts(); retried != 0 {
			t.Fatalf("a batch that commits was rerun %d times", retried)
		}
		if err := advance(eventstore.Start, p2); !errors.Is(err, projections.ErrCheckpointMoved) {
			t.Fatalf("batch from a checkpoint that moved: %v, want ErrCheckpointMoved", err)
		}
		if _, retried := g.Counts(); retried != 1 {
			t.Fatalf("reruns %d, want 1", retried)
		}
		cp, err := projections.LoadCheckpoint(ctx, b.DB(), "apply_log")
		if err != nil {
			t.Fatal(err)
		}
		if cp != p1 {
			t.Fatalf("stored checkpoint %s, want %s", cp, p1)
		}
	})
}

// FuzzInline: whatever text a string argument holds, its literal reads back
// from PostgreSQL as exactly that text, or it is not inlined at all.
func FuzzInline(f *testing.F) {
	for _, s := range []string{"", "a", "it's", `a\b`, `\'`, "'; DROP TABLE x; --", "$1", "$$", "é☃𝄞", "\x00", "{\"a\": [1]}", "'\\''"} {
		f.Add(s)
	}
	db := projectiontest.Postgres(f).DB()
	f.Fuzz(func(t *testing.T, s string) {
		text, ok := projections.Inline(`SELECT $1::text`, s)
		if !ok {
			return
		}
		var got string
		err := db.QueryRowxContext(context.Background(), text).Scan(&got)
		if err != nil {
			if !utf8.ValidString(s) {
				return // the server refuses invalid UTF-8 as a parameter too
			}
			t.Fatalf("%q: %v", text, err)
		}
		if got != s {
			t.Fatalf("%q read back as %q via %s", s, got, text)
		}
	})
}
