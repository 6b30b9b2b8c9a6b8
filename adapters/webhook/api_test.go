package webhook_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/payledger/payledger/adapters/problem"
	"github.com/payledger/payledger/adapters/webhook"
	"github.com/payledger/payledger/projections"
	"github.com/payledger/payledger/projections/outbox"
	"github.com/payledger/payledger/projections/projectiontest"
)

type apiClient struct {
	t   *testing.T
	url string
}

func (c apiClient) do(method, path, body string) (int, http.Header, []byte) {
	c.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, c.url+path, r)
	if err != nil {
		c.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

func (c apiClient) json(method, path, body string, wantStatus int, v any) {
	c.t.Helper()
	st, _, b := c.do(method, path, body)
	if st != wantStatus {
		c.t.Fatalf("%s %s: %d %s, want %d", method, path, st, b, wantStatus)
	}
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			c.t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
}

func serveAPI(t *testing.T, b projections.Backend, store *webhook.Store, guard webhook.Guard, wake func()) apiClient {
	t.Helper()
	mux := http.NewServeMux()
	webhook.NewAPI(webhook.APIOptions{DB: b, Endpoints: store, Guard: guard, Wake: wake}).Routes(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return apiClient{t: t, url: srv.URL}
}

// publicDNS resolves every name to a public address, except the ones
// named private.
type publicDNS struct{}

func (publicDNS) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if strings.HasPrefix(host, "internal.") {
		return []netip.Addr{netip.MustParseAddr("10.0.0.7")}, nil
	}
	return []netip.Addr{netip.MustParseAddr("93.184.216.34")}, nil
}

func TestEndpointAPIValidation(t *testing.T) {
	t.Parallel()
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		n := newNode(t, b, webhook.SenderOptions{})
		c := serveAPI(t, b, n.store, webhook.Guard{Resolver: publicDNS{}}, nil)
		cases := []struct {
			name, body string
			status     int
			code       string
			field      string
		}{
			{"not json", `{"url":`, 400, "invalid_json", ""},
			{"empty body", ``, 400, "invalid_json_empty", ""},
			{"array", `[]`, 400, "invalid_json", ""},
			{"trailing data", `{"url":"https://hooks.example.com/","events":["*"]} {}`, 400, "invalid_json", ""},
			{"unknown field", `{"url":"https://hooks.example.com/","events":["*"],"enabled":true}`, 400, "validation_failed", "enabled"},
			{"url missing", `{"events":["*"]}`, 400, "validation_failed", "url"},
			{"url wrong type", `{"url":7,"events":["*"]}`, 400, "validation_failed", "url"},
			{"url relative", `{"url":"/hooks","events":["*"]}`, 400, "validation_failed", "url"},
			{"url scheme", `{"url":"ftp://hooks.example.com/","events":["*"]}`, 400, "validation_failed", "url"},
			{"url not a url", `{"url":"http://[::1","events":["*"]}`, 400, "validation_failed", "url"},
			{"url loopback", `{"url":"http://127.0.0.1:8080/hook","events":["*"]}`, 400, "validation_failed", "url"},
			{"url metadata service", `{"url":"http://169.254.169.254/latest","events":["*"]}`, 400, "validation_failed", "url"},
			{"url private name", `{"url":"https://internal.example.com/hook","events":["*"]}`, 400, "validation_failed", "url"},
			{"url ipv6 ula", `{"url":"http://[fd00::1]/","events":["*"]}`, 400, "validation_failed", "url"},
			{"format unknown", `{"url":"https://hooks.example.com/","events":["*"],"format":"shopify"}`, 400, "validation_failed", "format"},
			{"events missing", `{"url":"https://hooks.example.com/"}`, 400, "validation_failed", "events"},
			{"events empty", `{"url":"https://hooks.example.com/","events":[]}`, 400, "validation_failed", "events"},
			{"event unknown", `{"url":"https://hooks.example.com/","events":["invoice.paid","payment.processed"]}`, 400, "validation_failed", "events[1]"},
			{"events not strings", `{"url":"https://hooks.example.com/","events":[1]}`, 400, "validation_failed", "events"},
		}
		for _, tc := range cases {
			st, h, body := c.do(http.MethodPost, "/v1/webhook_endpoints", tc.body)
			if st != tc.status || !strings.HasPrefix(h.Get("Content-Type"), "application/problem+json") {
				t.Errorf("%s: %d %s %s", tc.name, st, h.Get("Content-Type"), body)
				continue
			}
			var p problem.Problem
			if err := json.Unmarshal(body, &p); err != nil {
				t.Errorf("%s: %v", tc.name, err)
				continue
			}
			if p.Code != tc.code || p.Status != tc.status || p.Type == "" || p.Title == "" {
				t.Errorf("%s: problem %+v, want code %s", tc.name, p, tc.code)
			}
			if tc.field != "" && (len(p.Errors) == 0 || p.Errors[0].Field != tc.field) {
				t.Errorf("%s: errors %+v, want field %s", tc.name, p.Errors, tc.field)
			}
		}
		if n := count(t, b, `SELECT COUNT(*) FROM webhook_endpoints`); n != 0 {
			t.Fatalf("%d endpoints created by refused requests", n)
		}
		for _, q := range []string{"?limit=0", "?limit=101", "?limit=x", "?starting_after=we_a&ending_before=we_b"} {
			if st, _, body := c.do(http.MethodGet, "/v1/webhook_endpoints"+q, ""); st != 400 {
				t.Errorf("list %s: %d %s", q, st, body)
			}
		}
	})
}

func TestEndpointAPILifecycle(t *testing.T) {
	t.Parallel()
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		n := newNode(t, b, webhook.SenderOptions{})
		c := serveAPI(t, b, n.store, webhook.Guard{Resolver: publicDNS{}}, nil)
		var std, woo webhook.EndpointObject
		c.json(http.MethodPost, "/v1/webhook_endpoints", `{"url":"https://hooks.example.com/a","events":["invoice.paid","invoice.paid","invoice.refunded"]}`, 201, &std)
		if std.Object != "webhook_endpoint" || !strings.HasPrefix(std.ID, "we_") || std.Format != "standard" || std.Status != "enabled" ||
			!strings.HasPrefix(std.Secret, "whsec_") || strings.Join(std.Events, ",") != "invoice.paid,invoice.refunded" {
			t.Fatalf("created %+v", std)
		}
		c.json(http.MethodPost, "/v1/webhook_endpoints", `{"url":"https://shop.example.com/wc","events":["invoice.paid","*"],"format":"woocommerce"}`, 201, &woo)
		if woo.Format != "woocommerce" || woo.Secret == "" || strings.HasPrefix(woo.Secret, "whsec_") || strings.Join(woo.Events, ",") != "*" {
			t.Fatalf("created %+v", woo)
		}
		var list struct {
			Object  string                   `json:"object"`
			Data    []webhook.EndpointObject `json:"data"`
			HasMore bool                     `json:"has_more"`
		}
		c.json(http.MethodGet, "/v1/webhook_endpoints?limit=1", "", 200, &list)
		if list.Object != "list" || len(list.Data) != 1 || list.Data[0].ID != woo.ID || !list.HasMore || list.Data[0].Secret != "" {
			t.Fatalf("first page %+v", list)
		}
		c.json(http.MethodGet, "/v1/webhook_endpoints?limit=1&starting_after="+woo.ID, "", 200, &list)
		if len(list.Data) != 1 || list.Data[0].ID != std.ID || list.HasMore {
			t.Fatalf("second page %+v", list)
		}
		var got webhook.EndpointObject
		c.json(http.MethodGet, "/v1/webhook_endpoints/"+std.ID, "", 200, &got)
		if got.URL != std.URL || got.Secret != "" {
			t.Fatalf("get %+v", got)
		}
		var del map[string]any
		c.json(http.MethodDelete, "/v1/webhook_endpoints/"+std.ID, "", 200, &del)
		if del["deleted"] != true || del["id"] != std.ID {
			t.Fatalf("delete %v", del)
		}
		for _, r := range []struct{ method, path string }{
			{http.MethodGet, "/v1/webhook_endpoints/" + std.ID},
			{http.MethodDelete, "/v1/webhook_endpoints/" + std.ID},
			{http.MethodGet, "/v1/webhook_endpoints/" + std.ID + "/deliveries"},
			{http.MethodGet, "/v1/webhook_deliveries/wd_missing"},
			{http.MethodPost, "/v1/webhook_deliveries/wd_missing/retry"},
		} {
			if st, h, body := c.do(r.method, r.path, ""); st != 404 || !strings.HasPrefix(h.Get("Content-Type"), "application/problem+json") {
				t.Errorf("%s %s: %d %s", r.method, r.path, st, body)
			}
		}
		c.json(http.MethodGet, "/v1/webhook_endpoints", "", 200, &list)
		if len(list.Data) != 1 || list.Data[0].ID != woo.ID {
			t.Fatalf("list after delete %+v", list)
		}
		if st, _, body := c.do(http.MethodGet, "/v1/webhook_endpoints/"+woo.ID+"/deliveries?status=bogus", ""); st != 400 {
			t.Errorf("status filter: %d %s", st, body)
		}
	})
}

// TestManualRetry: a delivery that failed for good is retried through the
// API, succeeds, and the deliveries listing shows both attempts.
func TestManualRetry(t *testing.T) {
	t.Parallel()
	projectiontest.Backends(t, func(t *testing.T, b projections.Backend) {
		rcv := newReceiver(t, 1, http.StatusInternalServerError)
		n := newNode(t, b, webhook.SenderOptions{Schedule: []time.Duration{}}) // no automatic retry
		c := serveAPI(t, b, n.store, webhook.Guard{AllowPrivate: true}, n.sender.Wake)
		var ep webhook.EndpointObject
		c.json(http.MethodPost, "/v1/webhook_endpoints", `{"url":"`+rcv.url("/x")+`","events":["invoice.created"]}`, 201, &ep)
		rcv.secret(ep.ID, ep.Secret)
		writeURL(t, b, ep.ID, rcv.url("/"+ep.ID))
		n.start(t)
		paidInvoices(t, b, 1)
		eventually(t, 10*time.Second, "delivery failed", func() bool {
			return count(t, b, `SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'failed'`) == 1
		})
		var list struct {
			Data []webhook.DeliveryObject `json:"data"`
		}
		c.json(http.MethodGet, "/v1/webhook_endpoints/"+ep.ID+"/deliveries", "", 200, &list)
		if len(list.Data) != 1 {
			t.Fatalf("deliveries %+v", list)
		}
		d := list.Data[0]
		if d.Status != "failed" || d.AttemptCount != 1 || d.EventType != outbox.InvoiceCreated || !strings.HasPrefix(d.ID, "wd_") ||
			!strings.HasPrefix(d.EventID, "evt_") || d.NextAttemptAt != nil || d.LastStatusCode == nil || *d.LastStatusCode != 500 {
			t.Fatalf("failed delivery %+v", d)
		}
		if a := d.Attempts; len(a) != 1 || a[0].Attempt != 1 || a[0].StatusCode == nil || *a[0].StatusCode != 500 ||
			a[0].ResponseExcerpt != "failing on purpose, attempt 1" || a[0].Manual || a[0].DurationMS <= 0 {
			t.Fatalf("attempts %+v", a)
		}
		var queued webhook.DeliveryObject
		c.json(http.MethodPost, "/v1/webhook_deliveries/"+d.ID+"/retry", "", 202, &queued)
		if queued.ID != d.ID || (queued.Status != "pending" && queued.Status != "succeeded") {
			t.Fatalf("retry answered %+v", queued)
		}
		eventually(t, 10*time.Second, "retried delivery succeeded", func() bool {
			var got webhook.DeliveryObject
			c.json(http.MethodGet, "/v1/webhook_deliveries/"+d.ID, "", 200, &got)
			return got.Status == "succeeded"
		})
		c.json(http.MethodGet, "/v1/webhook_endpoints/"+ep.ID+"/deliveries?status=succeeded", "", 200, &list)
		if len(list.Data) != 1 || len(list.Data[0].Attempts) != 2 {
			t.Fatalf("after retry %+v", list)
		}
		a2 := list.Data[0].Attempts[1]
		if a2.Attempt != 2 || !a2.Manual || a2.StatusCode == nil || *a2.StatusCode != 200 || a2.ResponseExcerpt != "ok" {
			t.Fatalf("manual attempt %+v", a2)
		}
		if _, s, bad, _ := rcv.snapshot(); len(s) != 1 || len(bad) != 0 {
			t.Fatalf("receiver successes %v, bad %v", s, bad)
		}
		c.json(http.MethodDelete, "/v1/webhook_endpoints/"+ep.ID, "", 200, nil)
		if st, _, body := c.do(http.MethodPost, "/v1/webhook_deliveries/"+d.ID+"/retry", ""); st != 409 || !strings.Contains(string(body), "endpoint_deleted") {
			t.Fatalf("retry for a deleted endpoint: %d %s", st, body)
		}
	})
}
