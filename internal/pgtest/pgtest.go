// Package pgtest gives each test its own freshly created PostgreSQL
// database, so that test packages run in parallel without sharing rows.
//
// The server is PAYLEDGER_TEST_POSTGRES_URL (default
// postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable). A server
// that cannot be reached fails the test: the suites that need PostgreSQL
// are not optional.
package pgtest

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"

	_ "github.com/lib/pq" // the driver the ledger uses
)

// AdminURL is the server used to create and drop test databases.
func AdminURL() string {
	if u := os.Getenv("PAYLEDGER_TEST_POSTGRES_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// New creates an empty database named after the test and returns its URL.
// The database is dropped when the test ends.
func New(tb testing.TB) string {
	tb.Helper()
	admin, err := sql.Open("postgres", AdminURL())
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	defer admin.Close()
	if err := admin.Ping(); err != nil {
		tb.Fatalf("pgtest: PostgreSQL is required at %s: %v", AdminURL(), err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "pltest_" + sanitize(tb.Name()) + "_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		tb.Fatalf("pgtest: create database: %v", err)
	}
	tb.Cleanup(func() {
		a, err := sql.Open("postgres", AdminURL())
		if err != nil {
			return
		}
		defer a.Close()
		_, _ = a.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
	})
	u, err := url.Parse(AdminURL())
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

func sanitize(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
		if b.Len() >= 30 {
			break
		}
	}
	return fmt.Sprint(b.String())
}
