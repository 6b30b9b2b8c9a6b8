package projections

import (
	"context"
	"database/sql/driver"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// Deferred writes. Under load a live batch's transaction is a dozen and
// more statements in a row, every projection's checkpoint update and
// upserts, and on a busy two-core machine each round trip to PostgreSQL
// waits ~1.5 ms for a CPU: most of a batch's time, and so most of the
// projection lag, was spent between statements, not in them. None of
// those writes returns anything the batch needs, so while a live batch is
// being committed (see txGroup) they are collected, with their parameters
// written into the text as literals, and sent as one multi-statement
// query just before the commit. The statements and their order are the
// same; only the round trips are fewer.
//
// A write is deferred only when every parameter is one a literal carries
// exactly (text, integers, booleans, NULL, and the pq arrays of those);
// anything else first sends what is pending and then runs at once, so the
// order of a projection's writes never changes. Reads are not seen by
// this: an Apply that reads rows it wrote itself in the same Apply calls
// Flush first (see doc.go). A deferred statement that fails fails the
// transaction at Flush; txGroup then reruns each batch on its own without
// deferring, so every runner still gets its own error.

// deferral is the pending SQL of one transaction.
type deferral struct{ sql strings.Builder }

// deferrals maps a *sqlx.Tx that defers to its pending SQL. A sync.Map
// rather than a field because the transaction type is sqlx's; entries live
// only from deferWrites to the end of the transaction.
var deferrals sync.Map

// deferWrites makes Exec, Upsert, DeleteIn and the checkpoint update defer
// their statements in tx until Flush; the returned func ends that (the
// caller flushes first). Only PostgreSQL defers: SQLite runs in-process,
// a statement costs it no round trip.
func deferWrites(tx *sqlx.Tx) (end func()) {
	if d, _ := DialectOf(tx.DriverName()); d != Postgres {
		return func() {}
	}
	deferrals.Store(tx, &deferral{})
	return func() { deferrals.Delete(tx) }
}

func deferred(tx *sqlx.Tx) *deferral {
	if d, ok := deferrals.Load(tx); ok {
		return d.(*deferral)
	}
	return nil
}

// Exec runs a statement that returns nothing the caller needs (query in
// the driver's placeholders: pass "?" texts through tx.Rebind), or defers
// it to Flush in a live batch's transaction (see deferral).
func Exec(ctx context.Context, tx *sqlx.Tx, query string, args ...any) error {
	if d := deferred(tx); d != nil {
		if text, ok := inline(query, args); ok {
			d.sql.WriteString(text)
			d.sql.WriteString(";\n")
			return nil
		}
		if err := Flush(ctx, tx); err != nil {
			return err
		}
	}
	_, err := tx.ExecContext(ctx, query, args...)
	return err
}

// Flush sends tx's deferred statements, if any, in one round trip.
func Flush(ctx context.Context, tx *sqlx.Tx) error {
	d := deferred(tx)
	if d == nil || d.sql.Len() == 0 {
		return nil
	}
	text := d.sql.String()
	d.sql.Reset()
	// No arguments: lib/pq sends it as a simple query, which may hold
	// several statements.
	if _, err := tx.ExecContext(ctx, text); err != nil {
		return fmt.Errorf("projections: deferred writes: %w", err)
	}
	return nil
}

// inline writes args into query's $n placeholders as SQL literals. ok is
// false when an argument has no exact literal form here, or when the text
// is one this simple scanner does not read safely (backslashes, dollar
// quoting, comments): the statement then runs with parameters.
func inline(query string, args []any) (string, bool) {
	lits := make([]string, len(args))
	for i, a := range args {
		l, ok := literal(a)
		if !ok {
			return "", false
		}
		lits[i] = l
	}
	used := make([]bool, len(args))
	var b strings.Builder
	b.Grow(len(query) + 16*len(args))
	quoted := byte(0) // the quote character of the literal or name we are in
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case c == '\\':
			return "", false
		case quoted != 0:
			if c == quoted {
				quoted = 0 // a doubled quote reopens at once on the next byte
			}
		case c == '\'' || c == '"':
			quoted = c
		case c == '-' && i+1 < len(query) && query[i+1] == '-',
			c == '/' && i+1 < len(query) && query[i+1] == '*':
			return "", false
		case c == '$':
			j := i + 1
			for j < len(query) && query[j] >= '0' && query[j] <= '9' {
				j++
			}
			n, err := strconv.Atoi(query[i+1 : j])
			if err != nil || n < 1 || n > len(lits) {
				return "", false // $$ quoting, or a placeholder without an argument
			}
			b.WriteString(lits[n-1])
			used[n-1] = true
			i = j - 1
			continue
		}
		b.WriteByte(c)
	}
	if quoted != 0 || slices.Contains(used, false) {
		return "", false // an argument without its placeholder: a "?" text not rebound
	}
	return b.String(), true
}

// literal is v as an SQL literal, for the types whose literal reads back
// exactly as the parameter would. pq.QuoteLiteral is safe here because
// lib/pq only talks UTF-8 to the server, where no multi-byte character
// holds a quote or backslash byte.
func literal(v any) (string, bool) {
	switch x := v.(type) {
	case pq.StringArray, pq.Int64Array, pq.BoolArray:
		dv, err := x.(driver.Valuer).Value()
		if err != nil {
			return "", false
		}
		if dv == nil {
			return "NULL", true
		}
		s, ok := dv.(string)
		if !ok {
			return "", false
		}
		return pq.QuoteLiteral(s), true
	case nil:
		return "NULL", true
	case string:
		if strings.IndexByte(x, 0) >= 0 {
			return "", false // not valid text either way; let the server say so
		}
		return pq.QuoteLiteral(x), true
	case bool:
		if x {
			return "TRUE", true
		}
		return "FALSE", true
	case int:
		return intLiteral(int64(x)), true
	case int64:
		return intLiteral(x), true
	case int32:
		return intLiteral(int64(x)), true
	}
	return "", false
}

// intLiteral parenthesises negative numbers: "x - $1" must not become
// "x - -1", which starts a comment.
func intLiteral(n int64) string {
	if n < 0 {
		return "(" + strconv.FormatInt(n, 10) + ")"
	}
	return strconv.FormatInt(n, 10)
}
