package webhook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// ErrForbiddenTarget is returned (wrapped) for a webhook target on a
// loopback, private, link-local or otherwise non-public address.
var ErrForbiddenTarget = errors.New("webhook: target address is not public")

// Resolver looks host names up; *net.Resolver implements it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Guard keeps webhook requests away from the ledger's own network: an
// endpoint URL is a request the merchant makes the server send, so without
// it anyone with an API key could probe loopback services, the cloud
// metadata address (169.254.169.254) or the internal network. It is checked
// twice: when an endpoint is created (the URL's host resolves only to
// public addresses) and at every connection (the address actually dialled
// is public), the second one defeating DNS rebinding.
type Guard struct {
	// AllowPrivate lifts the restriction (PAYLEDGER_WEBHOOK_ALLOW_PRIVATE:
	// tests and receivers on the same host or network).
	AllowPrivate bool
	// Resolver is used by CheckURL; nil uses net.DefaultResolver.
	Resolver Resolver
}

// nonPublic are the ranges netip's predicates do not cover.
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),   // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),    // documentation
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"), // documentation
	netip.MustParsePrefix("203.0.113.0/24"),  // documentation
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, broadcast
	netip.MustParsePrefix("64:ff9b::/96"),    // NAT64: could reach any IPv4 address
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("2002::/16"),       // 6to4: embeds an IPv4 address
	netip.MustParsePrefix("100::/64"),        // discard-only
	netip.MustParsePrefix("::/96"),           // IPv4-compatible (deprecated), holds :: and ::1
}

// Public reports whether ip is a globally routable unicast address.
func Public(ip netip.Addr) bool {
	ip = ip.Unmap() // ::ffff:10.0.0.1 is 10.0.0.1
	if !ip.IsValid() || ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() ||
		ip.IsLinkLocalMulticast() || ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

// CheckAddr refuses a non-public address unless private targets are
// allowed.
func (g Guard) CheckAddr(ip netip.Addr) error {
	if g.AllowPrivate || Public(ip) {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrForbiddenTarget, ip.Unmap())
}

// URLError is a refused endpoint URL; Reason is fit for the API client.
type URLError struct{ Reason string }

func (e *URLError) Error() string { return "webhook: url " + e.Reason }

// CheckURL validates an endpoint URL: absolute http(s), a host, no
// fragment, and (unless private targets are allowed) a host that resolves
// only to public addresses. Errors are *URLError.
func (g Guard) CheckURL(ctx context.Context, raw string) error {
	if len(raw) > 2048 {
		return &URLError{"must be at most 2048 characters"}
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() {
		return &URLError{"must be an absolute http or https URL"}
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return &URLError{"must use http or https"}
	}
	host := u.Hostname()
	if host == "" {
		return &URLError{"must name a host"}
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return &URLError{"must not contain a fragment"}
	}
	if g.AllowPrivate {
		return nil
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if err := g.CheckAddr(ip); err != nil {
			return &URLError{fmt.Sprintf("points at a non-public address (%s)", ip.Unmap())}
		}
		return nil
	}
	res := g.Resolver
	if res == nil {
		res = net.DefaultResolver
	}
	lookup, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ips, err := res.LookupNetIP(lookup, "ip", host)
	if err != nil || len(ips) == 0 {
		return &URLError{fmt.Sprintf("host %q does not resolve", host)}
	}
	for _, ip := range ips {
		if err := g.CheckAddr(ip); err != nil {
			return &URLError{fmt.Sprintf("host %q resolves to a non-public address (%s)", host, ip.Unmap())}
		}
	}
	return nil
}

// control is a net.Dialer Control hook: it sees the address about to be
// connected, after resolution, so a name that resolved to a public address
// at creation and to a private one now is still refused.
func (g Guard) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: unparsable address %q", ErrForbiddenTarget, address)
	}
	return g.CheckAddr(ap.Addr())
}

// Client returns the HTTP client deliveries use: guarded dialing, no proxy
// (a proxy would dial for us, unchecked), no redirects (a 3xx is a failed
// attempt: following it would let a public URL bounce the request inside),
// and the per-attempt timeout.
func (g Guard) Client(timeout time.Duration) *http.Client {
	d := &net.Dialer{Timeout: min(timeout, 10*time.Second), KeepAlive: 30 * time.Second, Control: g.control}
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: timeout,
	}
	return &http.Client{
		Transport:     tr,
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
