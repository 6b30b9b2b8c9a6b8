package sandbox_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/payledger/payledger/domain/invoice"
)

// browser starts headless Chromium for one test. A missing browser fails
// the test (the CI installs Debian's chromium) unless
// PAYLEDGER_SKIP_BROWSER=1.
func browser(t *testing.T) context.Context {
	t.Helper()
	if os.Getenv("PAYLEDGER_SKIP_BROWSER") == "1" {
		t.Skip("PAYLEDGER_SKIP_BROWSER=1")
	}
	path := os.Getenv("PAYLEDGER_CHROMIUM")
	if path == "" {
		for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
			if p, err := exec.LookPath(name); err == nil {
				path = p
				break
			}
		}
	}
	if path == "" {
		t.Fatal("headless Chromium is required for the browser test (install chromium, or set PAYLEDGER_SKIP_BROWSER=1)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(420, 900), // a phone-sized window: the page must fit it
	)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelC(); cancelA() })
	// The first Run starts the browser and binds it to ctx: no timeout on
	// it; each step below gets its own.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

func fillCard(number string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.WaitVisible(chromedp.ID("card_number")),
		chromedp.SendKeys(chromedp.ID("card_number"), number),
		chromedp.SendKeys(chromedp.ID("expiry"), "12/30"),
		chromedp.SendKeys(chromedp.ID("cvc"), "123"),
		chromedp.SendKeys(chromedp.ID("cardholder"), "Jane Smith"),
		chromedp.Click(chromedp.ID("pay")),
	)
}

// step runs actions with a bound so that a stuck page fails the test.
func step(t *testing.T, ctx context.Context, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(sctx, actions...); err != nil {
		t.Fatal(err)
	}
}

func text(t *testing.T, ctx context.Context, id string) string {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	s, err := chromedp.Run(sctx, chromedp.Text(chromedp.ID(id)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestBrowserCheckout(t *testing.T) {
	f := newFixture(t)
	ctx := browser(t)

	t.Run("success card", func(t *testing.T) {
		id, token := f.env.Invoice(t, "99.00", "sandbox")
		step(t, ctx, chromedp.Navigate(f.srv.URL+"/pay/"+token), chromedp.WaitVisible(chromedp.ID("pay")))
		if out := os.Getenv("PAYLEDGER_SCREENSHOT"); out != "" {
			shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
			if err != nil {
				t.Fatal(err)
			}
			_ = os.WriteFile(out, shot, 0o644)
		}
		step(t, ctx, fillCard("4242 4242 4242 4242"), chromedp.WaitVisible(chromedp.ID("result")))
		if r := text(t, ctx, "result"); !strings.Contains(r, "Payment successful") || f.state(t, id).Status != invoice.StatusPaid {
			t.Fatalf("result %q, status %s", r, f.state(t, id).Status)
		}
	})

	t.Run("3-D Secure", func(t *testing.T) {
		id, token := f.env.Invoice(t, "10.00", "sandbox")
		step(t, ctx, chromedp.Navigate(f.srv.URL+"/pay/"+token), fillCard("4000 0000 0000 3220"),
			chromedp.WaitVisible(chromedp.ID("complete")), chromedp.Click(chromedp.ID("complete")),
			chromedp.WaitVisible(chromedp.ID("result")))
		if r := text(t, ctx, "result"); !strings.Contains(r, "Payment successful") || f.state(t, id).Status != invoice.StatusPaid {
			t.Fatalf("result %q, status %s", r, f.state(t, id).Status)
		}
	})

	t.Run("declined then retry", func(t *testing.T) {
		id, token := f.env.Invoice(t, "10.00", "sandbox")
		step(t, ctx, chromedp.Navigate(f.srv.URL+"/pay/"+token), fillCard("4000 0000 0000 0002"), chromedp.WaitVisible(chromedp.ID("error")))
		if msg := text(t, ctx, "error"); !strings.Contains(msg, "declined") || f.state(t, id).Status != invoice.StatusOpen {
			t.Fatalf("decline: %q, status %s", msg, f.state(t, id).Status)
		}
		step(t, ctx, fillCard("4242424242424242"), chromedp.WaitVisible(chromedp.ID("result")))
		if r := text(t, ctx, "result"); !strings.Contains(r, "Payment successful") || f.state(t, id).Status != invoice.StatusPaid {
			t.Fatalf("retry: %q, status %s", r, f.state(t, id).Status)
		}
	})
}
