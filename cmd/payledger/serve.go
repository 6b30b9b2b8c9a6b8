package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	httpapi "github.com/payledger/payledger/adapters/http"
	"github.com/payledger/payledger/adapters/pay"
	"github.com/payledger/payledger/adapters/sandbox"
	"github.com/payledger/payledger/adapters/woocommerce"
	"github.com/payledger/payledger/scheduler"
)

func runServe(ctx context.Context, env *environment, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("%w: serve takes no arguments (configure it with PAYLEDGER_* variables)", errUsage)
	}
	a, err := open(ctx, env)
	if err != nil {
		return err
	}
	defer a.Close()
	h, background, err := a.handler(ctx)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", a.cfg.HTTPAddr)
	if err != nil {
		return &configError{"PAYLEDGER_HTTP_ADDR", err.Error()}
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, len(background)+1)
	for _, job := range background {
		go func() { done <- job(runCtx) }()
	}
	go func() { done <- srv.Serve(ln) }()

	fmt.Fprintf(env.stdout, "payledger %s listening on http://%s (store: %s, public URL %s)\n", version, ln.Addr(), tier(a.cfg), a.cfg.PublicURL)
	if n, err := a.keys.CountActive(ctx); err == nil && n == 0 {
		fmt.Fprintln(env.stdout, "no API key yet: create one with `payledger keys create --name backend`")
	}

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-done:
	}
	shutdown, stop := context.WithTimeout(context.Background(), 15*time.Second)
	defer stop()
	_ = srv.Shutdown(shutdown)
	cancel()
	if runErr != nil && !errors.Is(runErr, http.ErrServerClosed) && !errors.Is(runErr, context.Canceled) {
		return runErr
	}
	return nil
}

// handler builds the whole HTTP tree and the background jobs serve runs
// beside it (projections, scheduler, webhook delivery).
func (a *app) handler(ctx context.Context) (http.Handler, []func(context.Context) error, error) {
	keyLimit := httpapi.DefaultKeyLimit
	if a.unlimited {
		keyLimit = httpapi.Limit{}
	}
	srv := httpapi.New(httpapi.Options{
		Invoices:    a.invoices,
		Keys:        a.keys,
		Idempotency: a.idem,
		Lister:      a.status,
		WaitFor:     a.set.WaitFor,
		PublicURL:   a.cfg.PublicURL,
		KeyLimit:    keyLimit,
		PayLimit:    httpapi.DefaultPayLimit,
		Ready:       a.readyChecks(),
		Logger:      a.log,
		Registry:    a.reg,
	})
	secret, err := a.setting(ctx, "sandbox_secret")
	if err != nil {
		return nil, nil, err
	}
	if a.cfg.SandboxSecret != "" {
		secret = a.cfg.SandboxSecret
	}
	sb := sandbox.New(sandbox.Options{Ledger: a.svc, PublicURL: a.cfg.PublicURL, Secret: []byte(secret), MerchantName: a.cfg.MerchantName, Logger: a.log})
	providers := map[string]pay.Provider{"sandbox": sb}
	jobs := []func(context.Context) error{a.set.Run}
	more, err := a.mountExtras(ctx, srv, providers)
	if err != nil {
		return nil, nil, err
	}
	jobs = append(jobs, more...)
	ph := pay.New(pay.Options{
		Ledger:    a.svc,
		Links:     pay.FromLinks(a.links),
		Sync:      pay.SyncTo(a.be.Head, a.set.WaitFor),
		Providers: providers,
		Logger:    a.log,
	})
	srv.Mount(ph.Routes)
	srv.Mount(sb.Routes)
	if a.cfg.Catalog != "" {
		cat, err := woocommerce.LoadCatalog(a.cfg.Catalog)
		if err != nil {
			return nil, nil, &configError{"PAYLEDGER_CATALOG", err.Error()}
		}
		rf, err := woocommerce.New(woocommerce.Options{
			Invoices: a.invoices, Catalog: cat, Secrets: woocommerce.ParseSecrets(a.cfg.ResetSecrets),
			PublicURL: a.cfg.PublicURL, Logger: a.log,
		})
		if err != nil {
			return nil, nil, &configError{"PAYLEDGER_RESET_FEE_SECRET", err.Error()}
		}
		srv.Mount(rf.Routes)
	}
	jobs = append(jobs, a.purgeIdempotencyKeys)
	sch := scheduler.New(scheduler.Options{Ledger: a.svc, Source: scheduler.FromDeadlines(a.deadlines), Logger: a.log})
	jobs = append(jobs, sch.Run)
	return srv, jobs, nil
}

func (a *app) readyChecks() []httpapi.ReadyCheck {
	return []httpapi.ReadyCheck{
		{Name: "store", Check: func(ctx context.Context) error { return a.be.DB().PingContext(ctx) }},
		{Name: "projections", Check: func(ctx context.Context) error {
			head, err := a.be.Head(ctx)
			if err != nil {
				return err
			}
			wait, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			if err := a.set.WaitFor(wait, head); err != nil {
				return fmt.Errorf("not caught up within 5s: %v", a.set.Lagging(head))
			}
			return nil
		}},
	}
}

// purgeIdempotencyKeys forgets Idempotency-Key rows past their retention,
// at startup and then hourly, so the table stays the size of a week of
// traffic.
func (a *app) purgeIdempotencyKeys(ctx context.Context) error {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if n, err := a.idem.Purge(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn("idempotency keys: purge failed; retrying in an hour", "err", err)
		} else if n > 0 {
			a.log.Info("idempotency keys: purged expired keys", "count", n)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
