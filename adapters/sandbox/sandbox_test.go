package sandbox_test

import (
	"context"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/payledger/payledger/adapters/pay"
	"github.com/payledger/payledger/adapters/sandbox"
	"github.com/payledger/payledger/domain/invoice"
	"github.com/payledger/payledger/internal/paytest"
)

type fixture struct {
	env *paytest.Env
	srv *httptest.Server
}

func newFixture(t *testing.T) *fixture { return newFixtureOn(t, "sqlite") }

func newFixtureOn(t *testing.T, kind string) *fixture {
	t.Helper()
	env := paytest.New(t, kind)
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	sb := sandbox.New(sandbox.Options{Ledger: env.Service, PublicURL: srv.URL, Secret: []byte("test secret"), MerchantName: "Acme Prop Firm"})
	sb.Routes(mux)
	pay.New(pay.Options{
		Ledger: env.Service, Links: pay.FromLinks(env.Links), Sync: pay.SyncFunc(env.Sync),
		Providers: map[string]pay.Provider{sandbox.Name: sb},
	}).Routes(mux)
	return &fixture{env: env, srv: srv}
}

type page struct {
	code int
	body string
	url  string
}

var actionRE = regexp.MustCompile(`<form method="post" action="([^"]+)"`)

func (p page) action(t *testing.T) string {
	t.Helper()
	m := actionRE.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no form on page %d %s", p.code, p.body)
	}
	return html.UnescapeString(m[1])
}

func do(t *testing.T, method, u string, form url.Values) page {
	t.Helper()
	var resp *http.Response
	var err error
	if method == http.MethodPost {
		resp, err = http.PostForm(u, form)
	} else {
		resp, err = http.Get(u)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("%s %s: missing no-store/no-referrer headers", method, u)
	}
	return page{resp.StatusCode, string(b), resp.Request.URL.String()}
}

func card(number string) url.Values {
	return url.Values{"card_number": {number}, "expiry": {"12/30"}, "cvc": {"123"}, "cardholder": {"Jane Smith"}}
}

func (f *fixture) state(t *testing.T, id string) invoice.State {
	t.Helper()
	st, err := f.env.Service.Load(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func (f *fixture) rawHistory(t *testing.T, id string) string {
	t.Helper()
	recs, _, err := f.env.Service.History(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, r := range recs {
		b.Write(r.Data)
		b.Write(r.Metadata)
	}
	return b.String()
}

func TestPayWithSuccessCard(t *testing.T) {
	t.Parallel()
	for _, kind := range paytest.Backends {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			payWithSuccessCard(t, newFixtureOn(t, kind))
		})
	}
}

func payWithSuccessCard(t *testing.T, f *fixture) {
	id, token := f.env.Invoice(t, "99.00", "sandbox", "https://merchant.example/ok", "https://merchant.example/fail")
	form := do(t, "GET", f.srv.URL+"/pay/"+token, nil)
	if form.code != 200 {
		t.Fatalf("checkout: %d %s", form.code, form.body)
	}
	for _, want := range []string{"$99.00", "USD", "Account reset 1 Step $100,000", "Acme Prop Firm",
		`name="card_number"`, `name="expiry"`, `name="cvc"`, `name="cardholder"`} {
		if !strings.Contains(form.body, html.EscapeString(want)) && !strings.Contains(form.body, want) {
			t.Errorf("checkout page lacks %q", want)
		}
	}
	action := form.action(t)
	if !strings.HasPrefix(action, f.srv.URL+"/sandbox/checkout/"+id+"/") {
		t.Fatalf("action %q is not on the ledger", action)
	}
	res := do(t, "POST", action, card("4242 4242 4242 4242"))
	if res.code != 200 || !strings.Contains(res.body, "Payment successful") ||
		!strings.Contains(res.body, `url=https://merchant.example/ok`) || !strings.Contains(res.body, `href="https://merchant.example/ok"`) {
		t.Fatalf("result: %d %s", res.code, res.body)
	}
	st := f.state(t, id)
	if st.Status != invoice.StatusPaid || len(st.Payments) != 1 || st.Payments[0].CardBrand != "visa" || st.Payments[0].CardLast4 != "4242" {
		t.Fatalf("state %s %+v", st.Status, st.Payments)
	}
	if h := f.rawHistory(t, id); strings.Contains(h, "4242424242424242") || strings.Contains(h, `"123"`) {
		t.Fatal("card number or CVC reached the events")
	}
	// The session page shows the result again; paying twice is impossible.
	again := do(t, "POST", action, card("4242424242424242"))
	if !strings.Contains(again.body, "Payment successful") || len(f.state(t, id).Payments) != 1 {
		t.Fatalf("second post: %d, %d payments", again.code, len(f.state(t, id).Payments))
	}
}

func TestDeclinesThenRetry(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ number, code, message string }{
		{"4000000000000002", "card_declined", "Your card was declined"},
		{"4000 0000 0000 9995", "insufficient_funds", "insufficient funds"},
	} {
		t.Run(tc.code, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			id, token := f.env.Invoice(t, "25.00", "sandbox", "https://merchant.example/ok", "https://merchant.example/fail")
			action := do(t, "GET", f.srv.URL+"/pay/"+token, nil).action(t)
			res := do(t, "POST", action, card(tc.number))
			if !strings.Contains(res.body, tc.message) || !strings.Contains(res.body, `href="https://merchant.example/fail"`) {
				t.Fatalf("decline page: %d %s", res.code, res.body)
			}
			st := f.state(t, id)
			if st.Status != invoice.StatusOpen || st.Payments[0].Status != invoice.PaymentStatusFailed || st.Payments[0].FailureCode != tc.code {
				t.Fatalf("after decline: %s %+v", st.Status, st.Payments)
			}
			ok := do(t, "POST", res.action(t), card("4242424242424242"))
			if !strings.Contains(ok.body, "Payment successful") || f.state(t, id).Status != invoice.StatusPaid {
				t.Fatalf("retry: %d %s", ok.code, ok.body)
			}
		})
	}
}

func TestThreeDSecure(t *testing.T) {
	t.Parallel()
	for _, outcome := range []string{"complete", "fail"} {
		t.Run(outcome, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			id, token := f.env.Invoice(t, "10.00", "sandbox")
			action := do(t, "GET", f.srv.URL+"/pay/"+token, nil).action(t)
			ch := do(t, "POST", action, card("4000000000003220"))
			if !strings.Contains(ch.body, "3-D Secure") || !strings.Contains(ch.body, `value="complete"`) || !strings.Contains(ch.body, `value="fail"`) {
				t.Fatalf("challenge: %d %s", ch.code, ch.body)
			}
			if st := f.state(t, id); st.Payments[0].Status != invoice.PaymentStatusActionRequired {
				t.Fatalf("payment %+v", st.Payments[0])
			}
			res := do(t, "POST", ch.action(t), url.Values{"outcome": {outcome}})
			st := f.state(t, id)
			if outcome == "complete" {
				if st.Status != invoice.StatusPaid || !strings.Contains(res.body, "Payment successful") || st.Payments[0].CardLast4 != "3220" {
					t.Fatalf("complete: %s %+v", st.Status, st.Payments)
				}
				return
			}
			if st.Status != invoice.StatusOpen || st.Payments[0].Status != invoice.PaymentStatusFailed || !strings.Contains(res.body, "3-D Secure authentication failed") {
				t.Fatalf("fail: %s %+v %s", st.Status, st.Payments, res.body)
			}
		})
	}
}

func TestInvalidInputWritesNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	id, token := f.env.Invoice(t, "10.00", "sandbox")
	action := do(t, "GET", f.srv.URL+"/pay/"+token, nil).action(t)
	before := f.state(t, id).Version
	for _, tc := range []struct {
		form url.Values
		want string
	}{
		{card("4242 4242 4242 4241"), "This card number is not valid"},
		{url.Values{"card_number": {"4242424242424242"}, "expiry": {"01/20"}, "cvc": {"123"}, "cardholder": {"J"}}, "This card has expired"},
		{url.Values{"card_number": {"4242424242424242"}, "expiry": {"12/30"}, "cvc": {"1x"}, "cardholder": {"J"}}, "security code"},
	} {
		res := do(t, "POST", action, tc.form)
		if res.code != http.StatusUnprocessableEntity || !strings.Contains(res.body, tc.want) {
			t.Fatalf("%v: %d %s", tc.form, res.code, res.body)
		}
		if strings.Contains(res.body, tc.form.Get("card_number")) {
			t.Fatal("the card number was echoed into the page")
		}
	}
	if v := f.state(t, id).Version; v != before {
		t.Fatalf("invalid input wrote events: version %d → %d", before, v)
	}
}

func TestStrangersCannotOpenSessions(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	id, token := f.env.Invoice(t, "10.00", "sandbox")
	action := do(t, "GET", f.srv.URL+"/pay/"+token, nil).action(t)
	u, _ := url.Parse(action)
	bad := []string{
		f.srv.URL + u.Path,               // no signature
		f.srv.URL + u.Path + "?sig=AAAA", // wrong signature
		f.srv.URL + "/sandbox/checkout/" + id + "/lnk_x?" + u.RawQuery, // signature of another link
	}
	other := sandbox.New(sandbox.Options{Ledger: f.env.Service, PublicURL: f.srv.URL, Secret: []byte("another secret")})
	bad = append(bad, other.SessionURL(id, strings.Split(u.Path, "/")[4]))
	for _, b := range bad {
		if p := do(t, "GET", b, nil); p.code != http.StatusNotFound {
			t.Errorf("GET %s: %d", b, p.code)
		}
		if p := do(t, "POST", b, card("4242424242424242")); p.code != http.StatusNotFound {
			t.Errorf("POST %s: %d", b, p.code)
		}
	}
	if st := f.state(t, id); len(st.Payments) != 0 {
		t.Fatalf("a stranger made payments: %+v", st.Payments)
	}
	// The rightful session still works.
	if p := do(t, "GET", action, nil); p.code != 200 || !strings.Contains(p.body, `name="card_number"`) {
		t.Fatalf("own session: %d", p.code)
	}
}
