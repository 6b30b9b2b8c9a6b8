package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/payledger/payledger/adapters/callbacks"
	"github.com/payledger/payledger/adapters/circoflows"
	"github.com/payledger/payledger/adapters/circoflows/cardpage"
	httpapi "github.com/payledger/payledger/adapters/http"
	"github.com/payledger/payledger/adapters/onramp"
	"github.com/payledger/payledger/adapters/pay"
	"github.com/payledger/payledger/adapters/payfect"
	"github.com/payledger/payledger/adapters/provider"
	"github.com/payledger/payledger/adapters/wzrdpay"
	"github.com/payledger/payledger/projections"
)

// providersParts holds what the providers area shares between its projections
// and its routes.
type providersParts struct {
	bridge  *callbacks.Service
	janitor *callbacks.Janitor
	index   *projections.Set
}

// providerEnv is where the provider settings come from. The rest of the
// configuration is read once in loadConfig; these are read here so that
// the area stays in its own file.
var providerEnv = os.Getenv

// providerSettings is the providers' configuration: which adapters are
// configured, and the janitor's timing.
type providerSettings struct {
	adapters []provider.Adapter
	timeout  time.Duration // one HTTP attempt at a provider
	janitor  callbacks.JanitorOptions
}

// providerVar is one setting of one provider.
type providerVar struct {
	name     string // PAYLEDGER_…
	required bool
	set      func(v string) error
}

// loadProviders reads the PAYLEDGER_<PROVIDER>_* settings. A provider is
// configured when any of its settings is set; then every required one
// must be, or startup stops with one line naming the missing setting. A
// provider with none set is disabled: invoices naming it get the pay
// page's "not available" answer and its callbacks a 404.
func loadProviders(getenv func(string) string) (providerSettings, error) {
	var ps providerSettings
	var err error
	if ps.timeout, err = duration(getenv, "PAYLEDGER_PROVIDER_TIMEOUT", 10*time.Second); err != nil {
		return ps, err
	}
	if ps.janitor.After, err = duration(getenv, "PAYLEDGER_RECONCILE_AFTER", 15*time.Minute); err != nil {
		return ps, err
	}
	if ps.janitor.Interval, err = duration(getenv, "PAYLEDGER_RECONCILE_INTERVAL", time.Minute); err != nil {
		return ps, err
	}
	if ps.janitor.MaxAge, err = duration(getenv, "PAYLEDGER_RECONCILE_MAX_AGE", 72*time.Hour); err != nil {
		return ps, err
	}

	var wz wzrdpay.Config
	var pf payfect.Config
	var cf circoflows.Config
	var orc onramp.Config
	str := func(dst *string) func(string) error { return func(v string) error { *dst = v; return nil } }
	urlVar := func(name string, dst *string) func(string) error {
		return func(v string) error {
			if !httpURL(v) {
				return &configError{name, fmt.Sprintf("%q is not an absolute http(s) URL", v)}
			}
			*dst = strings.TrimRight(v, "/")
			return nil
		}
	}
	groups := []struct {
		name  string
		vars  []providerVar
		build func() (provider.Adapter, error)
	}{
		{wzrdpay.Name, []providerVar{
			{"PAYLEDGER_WZRDPAY_PUBLIC_KEY", true, str(&wz.PublicKey)},
			{"PAYLEDGER_WZRDPAY_PRIVATE_KEY", true, str(&wz.PrivateKey)},
			{"PAYLEDGER_WZRDPAY_BASE_URL", true, urlVar("PAYLEDGER_WZRDPAY_BASE_URL", &wz.BaseURL)},
			{"PAYLEDGER_WZRDPAY_SERVICE", false, str(&wz.Service)},
			{"PAYLEDGER_WZRDPAY_TEST_MODE", false, func(v string) error {
				b, err := strconv.ParseBool(v)
				if err != nil {
					return &configError{"PAYLEDGER_WZRDPAY_TEST_MODE", fmt.Sprintf("%q is not true or false", v)}
				}
				wz.TestMode = b
				return nil
			}},
		}, func() (provider.Adapter, error) { wz.Timeout = ps.timeout; return wzrdpay.New(wz) }},
		{payfect.Name, []providerVar{
			{"PAYLEDGER_PAYFECT_API_KEY", true, str(&pf.APIKey)},
			{"PAYLEDGER_PAYFECT_BASE_URL", false, urlVar("PAYLEDGER_PAYFECT_BASE_URL", &pf.BaseURL)},
			{"PAYLEDGER_PAYFECT_NETWORK", false, str(&pf.Network)},
		}, func() (provider.Adapter, error) { pf.Timeout = ps.timeout; return payfect.New(pf) }},
		{circoflows.Name, []providerVar{
			{"PAYLEDGER_CIRCOFLOWS_API_KEY", true, str(&cf.APIKey)},
			{"PAYLEDGER_CIRCOFLOWS_BASE_URL", true, urlVar("PAYLEDGER_CIRCOFLOWS_BASE_URL", &cf.BaseURL)},
			{"PAYLEDGER_CIRCOFLOWS_WEBHOOK_SECRET", true, str(&cf.WebhookSecret)},
		}, func() (provider.Adapter, error) { cf.Timeout = ps.timeout; return circoflows.New(cf) }},
		{onramp.Name, []providerVar{
			{"PAYLEDGER_ONRAMP_API_KEY", true, str(&orc.APIKey)},
			{"PAYLEDGER_ONRAMP_BASE_URL", true, urlVar("PAYLEDGER_ONRAMP_BASE_URL", &orc.BaseURL)},
			{"PAYLEDGER_ONRAMP_TYPE", false, func(v string) error {
				switch t := strings.ToUpper(v); t {
				case "CHECKOUT", "EXTERNAL":
					orc.Type = t
					return nil
				}
				return &configError{"PAYLEDGER_ONRAMP_TYPE", fmt.Sprintf("%q: use CHECKOUT or EXTERNAL", v)}
			}},
		}, func() (provider.Adapter, error) { orc.Timeout = ps.timeout; return onramp.New(orc) }},
	}
	for _, g := range groups {
		configured := false
		for _, v := range g.vars {
			configured = configured || strings.TrimSpace(getenv(v.name)) != ""
		}
		if !configured {
			continue
		}
		for _, v := range g.vars {
			val := strings.TrimSpace(getenv(v.name))
			if val == "" {
				if v.required {
					return ps, &configError{v.name, fmt.Sprintf("is required to enable %s (another PAYLEDGER_%s_* setting is set)", g.name, strings.ToUpper(g.name))}
				}
				continue
			}
			if err := v.set(val); err != nil {
				return ps, err
			}
		}
		a, err := g.build()
		if err != nil {
			return ps, &configError{"PAYLEDGER_" + strings.ToUpper(g.name) + "_*", err.Error()}
		}
		ps.adapters = append(ps.adapters, a)
		if c, ok := a.(*circoflows.Client); ok {
			// The same account takes direct card payments on the ledger's
			// card page (provider circoflows_direct).
			ps.adapters = append(ps.adapters, c.Direct())
		}
	}
	return ps, nil
}

func httpURL(v string) bool {
	return (strings.HasPrefix(v, "https://") || strings.HasPrefix(v, "http://")) && len(v) > len("https://")
}

// mountProviders registers every configured adapter as the pay.Provider
// of its name, mounts POST /callbacks/{provider} and the payer's retry and
// return pages, and returns the janitor and its payments index as
// background jobs.
func (a *app) mountProviders(ctx context.Context, srv *httpapi.Server, providers map[string]pay.Provider) ([]func(context.Context) error, error) {
	ps, err := loadProviders(providerEnv)
	if err != nil {
		return nil, err
	}
	secret, err := a.setting(ctx, "providers_secret")
	if err != nil {
		return nil, err
	}
	bridge := callbacks.New(callbacks.Options{
		Ledger:        a.svc,
		Adapters:      ps.adapters,
		PublicURL:     a.cfg.PublicURL,
		Secret:        []byte(secret),
		CreateTimeout: 3 * ps.timeout,
		StatusTimeout: ps.timeout,
		Logger:        a.log,
	})
	for name, p := range bridge.Providers() {
		providers[name] = p
	}
	srv.Mount(bridge.Routes)
	for _, ad := range ps.adapters {
		if d, ok := ad.(*circoflows.Direct); ok {
			page := cardpage.New(cardpage.Options{
				Ledger: a.svc, Charger: d, PublicURL: a.cfg.PublicURL, Secret: []byte(secret),
				CallbackURL:   func(ref string) string { return bridge.CallbackURL(circoflows.DirectName, ref) },
				StatusTimeout: ps.timeout, MerchantName: a.cfg.MerchantName, Logger: a.log,
			})
			providers[cardpage.Name] = page
			srv.Mount(page.Routes)
		}
	}
	a.providerParts = providersParts{bridge: bridge}
	if len(ps.adapters) == 0 {
		return nil, nil
	}
	// The janitor's index runs in its own set: it is the janitor's
	// working list, not a read model of the API, and replays cheaply.
	idx := callbacks.NewPayments(a.be)
	set, err := projections.NewSet(a.be, projections.Options{Logger: a.log}, idx)
	if err != nil {
		return nil, fmt.Errorf("providers: %w", err)
	}
	if err := set.Migrate(ctx); err != nil {
		return nil, fmt.Errorf("providers: migrate: %w", err)
	}
	j := bridge.Janitor(idx, ps.janitor)
	a.providerParts.janitor, a.providerParts.index = j, set
	a.log.Info("payment providers enabled", "providers", strings.Join(bridge.Names(), ","))
	return []func(context.Context) error{set.Run, j.Run}, nil
}
