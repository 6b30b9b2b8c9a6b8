package kurrentdb_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/payledger/payledger/eventstore"
	"github.com/payledger/payledger/eventstore/kurrentdb"
	"github.com/payledger/payledger/eventstore/kurrentdb/internal/esdbfake"
	"github.com/payledger/payledger/eventstore/storetest"
)

// quiet keeps the client library's expected complaints (dropped
// subscriptions, failed discovery) out of the test output.
var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func ctxFor(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// openFake starts a fake node and opens a store on it. extra is appended
// to the connection string (client settings such as discovery attempts).
func openFake(t *testing.T, extra string, opts ...kurrentdb.Option) (*kurrentdb.Store, *esdbfake.Server) {
	t.Helper()
	srv := esdbfake.Start(t)
	s, err := kurrentdb.Open(ctxFor(t), srv.URL()+extra, append([]kurrentdb.Option{kurrentdb.WithLogger(quiet)}, opts...)...)
	if err != nil {
		t.Fatalf("Open(%s): %v", srv.URL(), err)
	}
	t.Cleanup(func() { s.Close() })
	return s, srv
}

func TestConformanceFake(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) eventstore.Store {
		s, _ := openFake(t, "")
		return s
	})
}

// TestConformance runs the suite against a real server when
// PAYLEDGER_TEST_KURRENTDB_URL names one. Every store gets its own stream
// prefix, so the suite's "empty store" holds on a shared server.
func TestConformance(t *testing.T) {
	url := os.Getenv("PAYLEDGER_TEST_KURRENTDB_URL")
	if url == "" {
		t.Skip("PAYLEDGER_TEST_KURRENTDB_URL not set; the protocol fake covers the suite (TestConformanceFake)")
	}
	t.Parallel()
	storetest.Run(t, func(t *testing.T) eventstore.Store {
		s, err := kurrentdb.Open(ctxFor(t), url, kurrentdb.WithStreamPrefix("t"+uuid.NewString()[:8]+"-"), kurrentdb.WithLogger(quiet))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
