package openapitest_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/payledger/payledger/adapters/http/openapitest"
)

const (
	endpointJSON = `{"id":"we_0190f5a3c2d47b6e9a1f0c3b5d7e9f11","object":"webhook_endpoint","url":"https://hooks.example.com/a",
		"events":["invoice.paid"],"format":"standard","status":"enabled","disabled_reason":null,"created_at":"2026-03-01T10:00:00Z"`
	figures = `"invoiced":"10.00","paid":"10.00","refunded":"20.00","net":"-10.00","invoice_count":1,
		"counts":{"open":0,"paid":1,"partially_refunded":0,"refunded":0,"expired":0,"cancelled":0},
		"payment_count":1,"failed_payment_count":0,"refund_count":1,"flagged_count":0`
	summaryRow   = `{"object":"reconciliation_summary","date":"2026-03-02","currency":"EUR","provider":"acme",` + figures + `}`
	summaryTotal = `{"currency":"EUR",` + figures + `}`
	summaryHead  = "date,currency,provider,invoiced,paid,refunded,net,invoice_count,count_open,count_paid,count_partially_refunded,count_refunded,count_expired,count_cancelled,payment_count,failed_payment_count,refund_count,flagged_count\r\n"
	itemsHead    = "id,type,invoice_id,invoice_number,reference_id,provider,provider_reference,gross,currency,status,occurred_at,flag,flags\r\n"
	deliveryJSON = `{"id":"wd_00062a1b2c3d4e5f9a1f0c3b5d7e9f11","object":"webhook_delivery","endpoint_id":"we_0190f5a3c2d47b6e9a1f0c3b5d7e9f11",
		"event_id":"evt_0190f5a3c2d47b6e9a1f0c3b5d7e9f11","event_type":"invoice.paid","status":"failed","attempt_count":1,
		"next_attempt_at":null,"last_attempt_at":"2026-03-01T10:00:01Z","last_status_code":500,"created_at":"2026-03-01T10:00:00Z",
		"attempts":[{"attempt":1,"manual":false,"started_at":"2026-03-01T10:00:01Z","duration_ms":1.234,"status_code":500,"response_excerpt":"no"}]}`
)

// TestValidateBites feeds the validator forged exchanges: the right ones
// pass and each kind of deviation is caught, so that a passing sweep
// elsewhere means the responses match, not that nothing was compared.
func TestValidateBites(t *testing.T) {
	t.Parallel()
	v := openapitest.New(t)
	cases := []struct {
		name, method, path, reqBody string
		status                      int
		ctype, body                 string
		ok                          bool
	}{
		{"endpoint", "GET", "/v1/webhook_endpoints/we_1", "", 200, "application/json", endpointJSON + `}`, true},
		{"endpoint shows its secret again", "GET", "/v1/webhook_endpoints/we_1", "", 200, "application/json",
			endpointJSON + `,"secret":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}`, false},
		{"endpoint status unknown", "GET", "/v1/webhook_endpoints/we_1", "", 200, "application/json",
			strings.Replace(endpointJSON, `"enabled"`, `"paused"`, 1) + `}`, false},
		{"endpoint events mix * and types", "GET", "/v1/webhook_endpoints/we_1", "", 200, "application/json",
			strings.Replace(endpointJSON, `["invoice.paid"]`, `["*","invoice.paid"]`, 1) + `}`, false},
		{"created", "POST", "/v1/webhook_endpoints", `{"url":"https://hooks.example.com/a","events":["invoice.paid"]}`, 201, "application/json",
			endpointJSON + `,"secret":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}`, true},
		{"created without secret", "POST", "/v1/webhook_endpoints", `{"url":"https://hooks.example.com/a","events":["invoice.paid"]}`, 201, "application/json",
			endpointJSON + `}`, false},
		{"accepted request the document refuses", "POST", "/v1/webhook_endpoints", `{"url":"https://hooks.example.com/a","events":["invoice.paid"],"x":1}`,
			201, "application/json", endpointJSON + `,"secret":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}`, false},
		{"undocumented status", "GET", "/v1/webhook_endpoints", "", 418, "application/problem+json",
			`{"type":"https://payledger.dev/problems/teapot","title":"I'm a teapot","status":418,"code":"teapot"}`, false},
		{"server error falls to default", "GET", "/v1/webhook_endpoints", "", 500, "application/problem+json",
			`{"type":"https://payledger.dev/problems/internal_error","title":"Internal Server Error","status":500,"code":"internal_error"}`, true},
		{"problem without code", "DELETE", "/v1/webhook_endpoints/we_1", "", 404, "application/problem+json",
			`{"type":"https://payledger.dev/problems/x","title":"Not Found","status":404}`, false},
		{"delivery", "GET", "/v1/webhook_deliveries/wd_1", "", 200, "application/json", deliveryJSON, true},
		{"delivery status code as text", "GET", "/v1/webhook_deliveries/wd_1", "", 200, "application/json",
			strings.Replace(deliveryJSON, `"last_status_code":500`, `"last_status_code":"500"`, 1), false},
		{"retry answers 200", "POST", "/v1/webhook_deliveries/wd_1/retry", "", 200, "application/json", deliveryJSON, false},
		{"summary", "GET", "/v1/reconciliation/summary", "", 200, "application/json",
			`{"object":"list","data":[` + summaryRow + `],"has_more":false,"totals":[` + summaryTotal + `]}`, true},
		{"summary with a float net", "GET", "/v1/reconciliation/summary", "", 200, "application/json",
			`{"object":"list","data":[` + strings.Replace(summaryRow, `"-10.00"`, `-10.0`, 1) + `],"has_more":false,"totals":[]}`, false},
		{"summary row with an extra field", "GET", "/v1/reconciliation/summary", "", 200, "application/json",
			`{"object":"list","data":[` + strings.Replace(summaryRow, `"acme",`, `"acme","day":3,`, 1) + `],"has_more":false,"totals":[]}`, false},
		{"summary csv", "GET", "/v1/reconciliation/summary", "", 200, "text/csv; charset=utf-8",
			summaryHead + "2026-03-02,,acme,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1\r\n2026-03-02,KWD,\"a,b\",0.000,0.000,1.005,-1.005,0,0,0,0,0,0,0,0,0,1,0\r\n", true},
		{"summary csv with LF line ends", "GET", "/v1/reconciliation/summary", "", 200, "text/csv; charset=utf-8",
			strings.ReplaceAll(summaryHead+"2026-03-02,,acme,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1\r\n", "\r\n", "\n"), false},
		{"summary csv missing a column", "GET", "/v1/reconciliation/summary", "", 200, "text/csv",
			summaryHead + "2026-03-02,,acme,0,0,0,0,0,0,0,0,0,0,0,0,0,1\r\n", false},
		{"items csv", "GET", "/v1/reconciliation/items", "", 200, "text/csv; charset=utf-8",
			itemsHead + "pay_E1,payment,inv_0190f5a3c2d47b6e9a1f0c3b5d7e9f11,1005,'=1+2,sandbox,ref_pay_E1,49.99,USD,processed,2026-03-01T14:05:00Z,late_payment,late_payment;currency_mismatch\r\n" +
				"evt_0190f5a3c2d47b6e9a1f0c3b5d7e9f11,callback,,,,acme,ref_zzz,,,paid,2026-03-02T12:00:00Z,unmatched_callback,unmatched_callback\r\n", true},
		{"items csv with an unknown flag", "GET", "/v1/reconciliation/items", "", 200, "text/csv",
			itemsHead + "pay_E1,payment,,,,sandbox,,49.99,USD,processed,2026-03-01T14:05:00Z,odd,odd\r\n", false},
		{"items csv as json media type", "GET", "/v1/reconciliation/items", "", 200, "application/json", itemsHead, false},
		{"not documented", "GET", "/v1/nowhere", "", 200, "application/json", `{}`, false},
	}
	for _, tc := range cases {
		var rd io.Reader
		if tc.reqBody != "" {
			rd = strings.NewReader(tc.reqBody)
		}
		req := httptest.NewRequest(tc.method, "http://api.test"+tc.path, rd)
		if tc.reqBody != "" {
			req.Header.Set("Content-Type", "application/json")
			body := tc.reqBody
			req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil }
		}
		res := &http.Response{StatusCode: tc.status, Header: http.Header{"Content-Type": {tc.ctype}}}
		err := v.Validate(req, res, []byte(tc.body))
		if (err == nil) != tc.ok {
			t.Errorf("%s: valid %v, want %v (%v)", tc.name, err == nil, tc.ok, err)
		}
	}
	v.RequireSeen(t, "GET /v1/webhook_endpoints/{id} 200", "POST /v1/webhook_endpoints 201", "GET /v1/reconciliation/items 200")
}

// TestClient: the checking client hands back the whole body and records
// what it validated.
func TestClient(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, endpointJSON+`}`)
	}))
	t.Cleanup(srv.Close)
	v := openapitest.New(t)
	res, err := v.Client(t).Get(srv.URL + "/v1/webhook_endpoints/we_0190f5a3c2d47b6e9a1f0c3b5d7e9f11")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(b) != endpointJSON+`}` {
		t.Fatalf("body %q", b)
	}
	if got := v.Seen(); len(got) != 1 || got[0] != "GET /v1/webhook_endpoints/{id} 200" {
		t.Fatalf("seen %v", got)
	}
}
