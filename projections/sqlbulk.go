package projections

import (
	"context"
	"fmt"
	"strings"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// maxParams keeps multi-row statements under both drivers' parameter
// limits (SQLite 32766, PostgreSQL 65535).
const maxParams = 30000

// Upsert writes rows (each len(cols) values) with INSERT ... ON CONFLICT;
// on a key conflict every column not in key is replaced. With update false
// conflicting rows are left alone. Rows go in bulk — one statement of
// column arrays on PostgreSQL (see upsertArrays), multi-row VALUES chunks
// otherwise — which is what makes rebuilds fast.
func Upsert(ctx context.Context, tx *sqlx.Tx, table string, cols, key []string, rows [][]any, update bool) error {
	if len(rows) == 0 {
		return nil
	}
	var set []string
	isKey := map[string]bool{}
	for _, k := range key {
		isKey[k] = true
	}
	for _, c := range cols {
		if !isKey[c] {
			set = append(set, c+" = excluded."+c)
		}
	}
	conflict := " ON CONFLICT (" + strings.Join(key, ", ") + ") DO "
	if update && len(set) > 0 {
		conflict += "UPDATE SET " + strings.Join(set, ", ")
	} else {
		conflict += "NOTHING"
	}
	if d, _ := DialectOf(tx.DriverName()); d == Postgres {
		if arrays, casts, ok := columnArrays(rows, len(cols)); ok {
			return upsertArrays(ctx, tx, table, cols, conflict, arrays, casts)
		}
	}
	per := max(1, maxParams/len(cols))
	one := "(" + strings.TrimSuffix(strings.Repeat("?,", len(cols)), ",") + ")"
	for start := 0; start < len(rows); start += per {
		end := min(len(rows), start+per)
		var b strings.Builder
		fmt.Fprintf(&b, "INSERT INTO %s (%s) VALUES ", table, strings.Join(cols, ", "))
		args := make([]any, 0, (end-start)*len(cols))
		for i := start; i < end; i++ {
			if i > start {
				b.WriteByte(',')
			}
			b.WriteString(one)
			args = append(args, rows[i]...)
		}
		b.WriteString(conflict)
		if err := Exec(ctx, tx, tx.Rebind(b.String()), args...); err != nil {
			return fmt.Errorf("upsert %s: %w", table, err)
		}
	}
	return nil
}

// upsertArrays is Upsert on PostgreSQL: one parameter per column, an array
// of every row's value, spread back into rows by unnest. PostgreSQL parses
// and plans a statement with thousands of parameters slowly (most of a
// rebuild's database time went there); a dozen array parameters cost
// almost nothing to plan, and the insert, its conflicts and its result are
// the same as with VALUES.
func upsertArrays(ctx context.Context, tx *sqlx.Tx, table string, cols []string, conflict string, arrays []any, casts []string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "INSERT INTO %s (%s) SELECT * FROM unnest(", table, strings.Join(cols, ", "))
	for i, c := range casts {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "$%d::%s", i+1, c)
	}
	b.WriteString(")")
	b.WriteString(conflict)
	if err := Exec(ctx, tx, b.String(), arrays...); err != nil {
		return fmt.Errorf("upsert %s: %w", table, err)
	}
	return nil
}

// columnArrays turns rows into one array per column when every value of a
// column has the same type, one of those an array parameter carries
// exactly (strings, integers, booleans). ok is false otherwise (a NULL, a
// float, a mix), and Upsert then writes VALUES.
func columnArrays(rows [][]any, ncols int) (arrays []any, casts []string, ok bool) {
	arrays = make([]any, ncols)
	casts = make([]string, ncols)
	for c := range ncols {
		switch rows[0][c].(type) {
		case string:
			a := make(pq.StringArray, len(rows))
			for i, r := range rows {
				v, ok := r[c].(string)
				if !ok {
					return nil, nil, false
				}
				a[i] = v
			}
			arrays[c], casts[c] = a, "text[]"
		case int64, int:
			a := make(pq.Int64Array, len(rows))
			for i, r := range rows {
				switch v := r[c].(type) {
				case int64:
					a[i] = v
				case int:
					a[i] = int64(v)
				default:
					return nil, nil, false
				}
			}
			arrays[c], casts[c] = a, "bigint[]"
		case bool:
			a := make(pq.BoolArray, len(rows))
			for i, r := range rows {
				v, ok := r[c].(bool)
				if !ok {
					return nil, nil, false
				}
				a[i] = v
			}
			arrays[c], casts[c] = a, "boolean[]"
		default:
			return nil, nil, false
		}
	}
	return arrays, casts, true
}

// DeleteIn deletes the rows of table whose col is one of vals.
func DeleteIn(ctx context.Context, tx *sqlx.Tx, table, col string, vals []string) error {
	for start := 0; start < len(vals); start += maxParams {
		end := min(len(vals), start+maxParams)
		q, args, err := sqlx.In(fmt.Sprintf("DELETE FROM %s WHERE %s IN (?)", table, col), vals[start:end])
		if err != nil {
			return err
		}
		if err := Exec(ctx, tx, tx.Rebind(q), args...); err != nil {
			return fmt.Errorf("delete from %s: %w", table, err)
		}
	}
	return nil
}

// ExecAll runs statements in order (schema migrations).
func ExecAll(ctx context.Context, tx *sqlx.Tx, stmts ...string) error {
	for _, s := range stmts {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("%w: %s", err, firstLine(s))
		}
	}
	return nil
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// Micros renders a time column value; the zero time is stored as 0.
func Micros(t interface {
	UnixMicro() int64
	IsZero() bool
}) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}
