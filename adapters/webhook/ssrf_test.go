package webhook_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/payledger/payledger/adapters/webhook"
)

// fakeDNS answers from a table, so names can "resolve" to any address.
type fakeDNS map[string][]string

func (f fakeDNS) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	ips, ok := f[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	out := make([]netip.Addr, len(ips))
	for i, s := range ips {
		out[i] = netip.MustParseAddr(s)
	}
	return out, nil
}

func TestGuardCheckURL(t *testing.T) {
	t.Parallel()
	dns := fakeDNS{
		"hooks.example.com":  {"93.184.216.34"},
		"localhost":          {"127.0.0.1", "::1"},
		"dual.example.com":   {"93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"},
		"loop.example.com":   {"127.0.0.1"},
		"ten.example.com":    {"10.1.2.3"},
		"mixed.example.com":  {"93.184.216.34", "192.168.1.10"},
		"meta.example.com":   {"169.254.169.254"},
		"ula.example.com":    {"fd12:3456:789a::1"},
		"v6loop.example.com": {"::1"},
		"mapped.example.com": {"::ffff:10.0.0.1"},
	}
	cases := []struct {
		url     string
		ok      bool // with private targets refused
		private bool // refused only for being non-public (allowed with AllowPrivate)
	}{
		{"https://hooks.example.com/payledger", true, false},
		{"http://hooks.example.com:8080/x?y=1", true, false},
		{"https://dual.example.com/", true, false},
		{"https://93.184.216.34/hook", true, false},
		{"https://[2606:2800:220:1:248:1893:25c8:1946]/hook", true, false},
		{"http://127.0.0.1:9000/hook", false, true},
		{"http://127.8.9.10/hook", false, true},
		{"http://localhost/hook", false, true},
		{"http://10.0.0.1/", false, true},
		{"http://10.255.255.255/", false, true},
		{"http://172.16.0.1/", false, true},
		{"http://172.31.255.254/", false, true},
		{"http://192.168.0.1/", false, true},
		{"http://169.254.169.254/latest/meta-data", false, true},
		{"http://[::1]/", false, true},
		{"http://[fc00::1]/", false, true},
		{"http://[fdff:ffff::1]/", false, true},
		{"http://[fe80::1]/", false, true},
		{"http://[::ffff:127.0.0.1]/", false, true},
		{"http://0.0.0.0/", false, true},
		{"http://100.64.0.1/", false, true},
		{"http://loop.example.com/", false, true},
		{"http://ten.example.com/", false, true},
		{"http://mixed.example.com/", false, true},
		{"http://meta.example.com/", false, true},
		{"http://ula.example.com/", false, true},
		{"http://v6loop.example.com/", false, true},
		{"http://mapped.example.com/", false, true},
		{"ftp://hooks.example.com/", false, false},
		{"hooks.example.com/path", false, false},
		{"https:///nohost", false, false},
		{"https://hooks.example.com/#frag", false, false},
		{"https://" + strings.Repeat("a", 2050) + ".com/", false, false},
	}
	strict := webhook.Guard{Resolver: dns}
	open := webhook.Guard{Resolver: dns, AllowPrivate: true}
	for _, c := range cases {
		err := strict.CheckURL(context.Background(), c.url)
		if (err == nil) != c.ok {
			t.Errorf("CheckURL(%q) = %v, want ok=%v", c.url, err, c.ok)
		}
		var ue *webhook.URLError
		if err != nil && !errors.As(err, &ue) {
			t.Errorf("CheckURL(%q) error %T is not a *URLError", c.url, err)
		}
		if c.private {
			if err := open.CheckURL(context.Background(), c.url); err != nil {
				t.Errorf("with AllowPrivate, CheckURL(%q) = %v, want ok", c.url, err)
			}
		}
	}
	// A name that does not resolve is refused with a reason.
	if err := strict.CheckURL(context.Background(), "https://nowhere.example.com/"); err == nil || !strings.Contains(err.Error(), "does not resolve") {
		t.Errorf("unresolvable host: %v", err)
	}
}

func TestPublic(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]bool{
		"8.8.8.8": true, "1.1.1.1": true, "2001:4860:4860::8888": true, "172.15.255.255": true, "172.32.0.1": true,
		"127.0.0.1": false, "10.0.0.1": false, "172.16.0.1": false, "192.168.1.1": false, "169.254.0.1": false,
		"::1": false, "fc00::1": false, "fd00::1": false, "fe80::1": false, "::": false, "224.0.0.1": false,
		"255.255.255.255": false, "::ffff:192.168.0.1": false, "64:ff9b::a00:1": false,
	} {
		if got := webhook.Public(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Public(%s) = %v, want %v", addr, got, want)
		}
	}
}

// The dial-time check: a client built by the guard refuses to connect to a
// loopback server even though the URL passed no creation check at all
// (DNS rebinding, or a row written before the rules changed).
func TestGuardClientRefusesPrivateDial(t *testing.T) {
	t.Parallel()
	// A real HTTP server: one that answers before reading the request
	// races the client, which may see the reply on an idle connection.
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	url := srv.URL + "/"
	_, err := webhook.Guard{}.Client(2e9).Post(url, "application/json", strings.NewReader("{}"))
	if err == nil || !errors.Is(err, webhook.ErrForbiddenTarget) {
		t.Fatalf("guarded client dialled loopback: err = %v", err)
	}
	resp, err := webhook.Guard{AllowPrivate: true}.Client(2e9).Post(url, "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatalf("with AllowPrivate the dial was refused: %v", err)
	}
	resp.Body.Close()
}
