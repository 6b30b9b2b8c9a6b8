package projections

import (
	"context"
	"fmt"
	"strings"

	"github.com/jmoiron/sqlx"
)

// maxParams keeps multi-row statements under both drivers' parameter
// limits (SQLite 32766, PostgreSQL 65535).
const maxParams = 30000

// Upsert writes rows (each len(cols) values) with multi-row INSERT ... ON
// CONFLICT statements; on a key conflict every column not in key is
// replaced. With update false conflicting rows are left alone. One
// statement per chunk is what makes rebuilds fast.
func Upsert(ctx context.Context, tx *sqlx.Tx, table string, cols, key []string, rows [][]any, update bool) error {
	if len(rows) == 0 {
		return nil
	}
	per := max(1, maxParams/len(cols))
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
		fmt.Fprintf(&b, " ON CONFLICT (%s) DO ", strings.Join(key, ", "))
		if update && len(set) > 0 {
			b.WriteString("UPDATE SET " + strings.Join(set, ", "))
		} else {
			b.WriteString("NOTHING")
		}
		if _, err := tx.ExecContext(ctx, tx.Rebind(b.String()), args...); err != nil {
			return fmt.Errorf("upsert %s: %w", table, err)
		}
	}
	return nil
}

// DeleteIn deletes the rows of table whose col is one of vals.
func DeleteIn(ctx context.Context, tx *sqlx.Tx, table, col string, vals []string) error {
	for start := 0; start < len(vals); start += maxParams {
		end := min(len(vals), start+maxParams)
		q, args, err := sqlx.In(fmt.Sprintf("DELETE FROM %s WHERE %s IN (?)", table, col), vals[start:end])
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, tx.Rebind(q), args...); err != nil {
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
