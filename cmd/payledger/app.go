package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/payledger/payledger/adapters/apikey"
	"github.com/payledger/payledger/adapters/idempotency"
	"github.com/payledger/payledger/adapters/numbers"
	"github.com/payledger/payledger/ledger"
	"github.com/payledger/payledger/projections"
	"github.com/payledger/payledger/projections/deadlines"
	"github.com/payledger/payledger/projections/links"
	"github.com/payledger/payledger/projections/status"
)

// app is everything the subcommands share, wired once.
type app struct {
	cfg       config
	log       *slog.Logger
	reg       *prometheus.Registry
	be        backend
	svc       *ledger.Service
	invoices  *ledger.Invoices
	keys      *apikey.Store
	idem      *idempotency.Store
	status    *status.Projection
	links     *links.Projection
	deadlines *deadlines.Projection
	set       *projections.Set
	// Areas wired in their own wire_*.go files.
	reports       reportsParts
	webhooks      webhooksParts
	providerParts providersParts
	relay         relayParts
	// unlimited switches off the per-key rate limit (the load command
	// measures the ledger, not the limiter).
	unlimited bool
}

// open reads the configuration, opens the backend and builds the
// application graph. Every schema is migrated here, so serve, migrate and
// the operator commands see the same tables.
func open(ctx context.Context, env *environment) (*app, error) {
	cfg, err := loadConfig(env.getenv)
	if err != nil {
		return nil, err
	}
	log := slog.New(slog.NewTextHandler(env.stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	be, err := openBackend(ctx, cfg)
	if err != nil {
		return nil, err
	}
	a := &app{cfg: cfg, log: log, be: be}
	if err := a.wire(ctx); err != nil {
		be.Close()
		return nil, err
	}
	return a, nil
}

func (a *app) wire(ctx context.Context) error {
	a.reg = prometheus.NewRegistry()
	a.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a.svc = ledger.New(a.be, time.Now)
	seq, err := numbers.New(ctx, a.be)
	if err != nil {
		return fmt.Errorf("invoice numbers: %w", err)
	}
	// A create by reference draws its number as it reserves the reference.
	refs, err := numbers.NewReferences(ctx, a.be, seq)
	if err != nil {
		return fmt.Errorf("reference ids: %w", err)
	}
	policy := ledger.DefaultPolicy()
	policy.LinkTTLMin, policy.LinkTTLMax, policy.LinkTTLDefault = a.cfg.LinkTTLMin, a.cfg.LinkTTLMax, a.cfg.LinkTTLDefault
	// Invoices may only name providers this server can take payments
	// through: the sandbox and every configured adapter. An invoice for
	// an unconfigured provider is refused at creation with the list,
	// rather than accepted and stranded on an unusable payment page.
	ps, err := loadProviders(providerEnv)
	if err != nil {
		return err
	}
	policy.Providers = []string{"sandbox"}
	for _, ad := range ps.adapters {
		policy.Providers = append(policy.Providers, ad.Name())
	}
	if err := policy.Validate(); err != nil {
		return &configError{"PAYLEDGER_LINK_TTL_MIN", err.Error()}
	}
	a.invoices = ledger.NewInvoices(a.svc, seq, refs, policy)
	if a.keys, err = apikey.New(ctx, a.be, time.Now); err != nil {
		return fmt.Errorf("api keys: %w", err)
	}
	if a.idem, err = idempotency.New(ctx, a.be, time.Now); err != nil {
		return fmt.Errorf("idempotency keys: %w", err)
	}
	a.status = status.New(a.be, a.be.DB())
	a.links = links.New(a.be, a.be.DB())
	a.deadlines = deadlines.New(a.be, a.be.DB())
	projs := []projections.Projection{a.status, a.links, a.deadlines}
	extra, err := a.extraProjections(ctx)
	if err != nil {
		return err
	}
	projs = append(projs, extra...)
	a.set, err = projections.NewSet(a.be, projections.Options{Metrics: projections.NewMetrics(a.reg), Logger: a.log}, projs...)
	if err != nil {
		return fmt.Errorf("projections: %w", err)
	}
	if err := a.set.Migrate(ctx); err != nil {
		return fmt.Errorf("projections: migrate: %w", err)
	}
	return nil
}

func (a *app) Close() error { return a.be.Close() }

// setting returns a persistent process secret, creating it on first use, so
// that signatures (sandbox checkout sessions) survive restarts without an
// operator having to configure them.
func (a *app) setting(ctx context.Context, name string) (string, error) {
	db := a.be.DB()
	var v string
	err := a.be.WriteTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS payledger_settings (name TEXT PRIMARY KEY, value TEXT NOT NULL)`); err != nil {
			return err
		}
		var b [32]byte
		if _, err := rand.Read(b[:]); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, db.Rebind(`INSERT INTO payledger_settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`), name, hex.EncodeToString(b[:])); err != nil {
			return err
		}
		return tx.GetContext(ctx, &v, db.Rebind(`SELECT value FROM payledger_settings WHERE name = ?`), name)
	})
	if err != nil {
		return "", fmt.Errorf("setting %s: %w", name, err)
	}
	return v, nil
}
