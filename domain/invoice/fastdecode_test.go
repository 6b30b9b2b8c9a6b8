package invoice

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// fullEvents has one fully populated event per type, so every key of every
// struct goes through the short path.
func fullEvents() []Event {
	ts := time.Date(2026, 11, 20, 10, 0, 0, 123456789, time.UTC)
	return []Event{
		Created{
			InvoiceID: "inv_1", Number: 1001, Amount: "100.55", Currency: "USD", ReferenceID: "order-7135",
			Description: "Réinitialisation — 账户", Metadata: map[string]string{"account_id": "12345", "note": "a\"b\\c\n"}, Provider: "sandbox",
			Customer: Customer{Email: "john@example.com", Name: "John Smith", Phone: "+1234567890",
				Address: &Address{Line1: "1 Main St", Line2: "Apt 2", City: "Springfield", Postcode: "12345", Country: "US"}},
			LineItems: []LineItem{
				{ProductID: 1, VariationID: 72238, Name: "1 Step", Quantity: 1, Total: "100.55"},
				{ProductID: -9223372036854775808, VariationID: 9223372036854775807, Name: "<&>", Quantity: -3, Total: "0"},
			},
			ReturnURLs: ReturnURLs{Success: "https://shop.example/ok?a=1&b=2", Fail: "https://shop.example/fail"},
			ExpiresAt:  ts.Add(24 * time.Hour), At: ts,
		},
		Created{InvoiceID: "inv_2", Amount: "5000", Currency: "JPY", At: ts.In(time.FixedZone("", 9*3600))},
		LinkIssued{LinkID: "lnk_2", TokenHash: strings.Repeat("ab", 32), ExpiresAt: ts.Add(10 * time.Minute), RevokedLinkID: "lnk_1", At: ts},
		LinkConsumed{LinkID: "lnk_2", At: ts},
		LinkExpired{LinkID: "lnk_2", At: ts},
		Expired{At: ts},
		Cancelled{Reason: "requested", At: ts},
		Paid{PaymentID: "pay_1", AmountPaid: "100.55", At: ts},
		Flagged{PaymentID: "pay_1", Flag: FlagLatePayment, Detail: "late", At: ts},
		PaymentInitiated{PaymentID: "pay_1", Provider: "wzrdpay", Attempt: 2, ProviderRef: "w-1", RedirectURL: "https://pay.example/w-1", At: ts},
		ActionRequired{PaymentID: "pay_1", Kind: "three_d_secure", URL: "https://3ds.example/x", At: ts},
		PaymentProcessed{PaymentID: "pay_1", Provider: "wzrdpay", ProviderRef: "w-1", Amount: "100.55", Currency: "USD", CardBrand: "visa", CardLast4: "4242", At: ts},
		PaymentFailed{PaymentID: "pay_1", Provider: "wzrdpay", ProviderRef: "w-1", Code: "card_declined", Message: "declined", At: ts},
		Refunded{RefundID: "re_1", Amount: "20.00", Currency: "USD", Reason: "requested_by_customer", At: ts},
		CallbackReceived{Provider: "wzrdpay", ProviderRef: "w-1", Status: "paid", Verified: true, Body: `{"status":"paid","x":"\u00e9"}`, At: ts},
		CallbackReceived{Provider: "wzrdpay", At: ts},
	}
}

// sameAsJSON fails unless Decode and the short path agree with
// encoding/json on (typ, data): the same event, or the same error.
func sameAsJSON(t *testing.T, typ string, data []byte) (fast bool) {
	t.Helper()
	want, werr := decodeJSON(typ, data)
	got, gerr := Decode(typ, data)
	if (werr == nil) != (gerr == nil) || (werr != nil && werr.Error() != gerr.Error()) {
		t.Fatalf("%s %q: error %v, encoding/json %v", typ, data, gerr, werr)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s %q:\n got %#v\nwant %#v", typ, data, got, want)
	}
	e, ok := fastDecode(typ, data)
	if ok {
		if werr != nil {
			t.Fatalf("%s %q: short path accepted what encoding/json refuses (%v)", typ, data, werr)
		}
		if !reflect.DeepEqual(e, want) {
			t.Fatalf("%s %q: short path\n got %#v\nwant %#v", typ, data, e, want)
		}
	}
	return ok
}

func TestFastDecodeTakesEncodedEvents(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, e := range fullEvents() {
		typ, data, err := Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		seen[typ] = true
		if !sameAsJSON(t, typ, data) {
			t.Errorf("%s %s: not read by the short path", typ, data)
		}
		back, _ := Decode(typ, data)
		if !reflect.DeepEqual(back, e) {
			t.Errorf("round trip of %s:\n got %#v\nwant %#v", data, back, e)
		}
	}
	for _, typ := range Types() {
		if !seen[typ] {
			t.Errorf("no sample of %s", typ)
		}
	}
}

// oddInputs are bodies Encode never writes but a hand-edited or
// differently produced history could hold.
var oddInputs = []struct{ typ, data string }{
	{TypeExpired, `{}`},
	{TypeExpired, ` { "at" : "2026-11-20T10:00:00Z" } ` + "\n"},
	{TypeExpired, "\t{\r\n\"at\":\"2026-11-20T10:00:00.5+02:00\"}"},
	{TypeExpired, `{"at":"2026-11-20T10:00:00Z",}`},
	{TypeExpired, `{"at":"2026-11-20T10:00:00Z"}x`},
	{TypeExpired, `{"at":"2026-11-20T10:00:00Z"}{}`},
	{TypeExpired, `{"at":null}`},
	{TypeExpired, `null`},
	{TypeExpired, `[]`},
	{TypeExpired, ``},
	{TypeExpired, `{"at":"2026-11-20 10:00:00"}`},
	{TypeExpired, `{"at":"2026-11-20T25:00:00Z"}`},
	{TypeExpired, `{"at":"2026-11-20T10:00:00\u005a"}`},
	{TypeExpired, `{"AT":"2026-11-20T10:00:00Z"}`},
	{TypeExpired, `{"at":"2026-11-20T10:00:00Z","at":"2027-01-01T00:00:00Z"}`},
	{TypeExpired, `{"at":1}`},
	{TypeExpired, `{"at":"2026-11-20T10:00:00Z","later_field":{"x":[1,2]}}`},
	{TypeExpired, `{"a\u0074":"2026-11-20T10:00:00Z"}`},
	{TypeCancelled, `{"reason":"a\"b\\c\/d\b\f\n\r\t\u00e9\ud83d\ude00"}`},
	{TypeCancelled, `{"reason":"\ud83d"}`},
	{TypeCancelled, `{"reason":"\x"}`},
	{TypeCancelled, "{\"reason\":\"tab\there\"}"},
	{TypeCancelled, "{\"reason\":\"bad \xff utf8\"}"},
	{TypeCancelled, "{\"reason\":\"surrogate \xed\xa0\x80\"}"},
	{TypeCancelled, "{\"reason\":\"ok \xef\xbf\xbd é\"}"},
	{TypeCancelled, `{"reason":"unterminated}`},
	{TypeCancelled, `{"reason":"x"`},
	{TypeCancelled, `{"reason" "x"}`},
	{TypeCancelled, `{"reason":12}`},
	{TypeCancelled, `{"Reason":"x"}`},
	{TypeCancelled, `{"reaſon":"x"}`},
	{TypePaymentInitiated, `{"attempt":0}`},
	{TypePaymentInitiated, `{"attempt":-0}`},
	{TypePaymentInitiated, `{"attempt":01}`},
	{TypePaymentInitiated, `{"attempt":1.0}`},
	{TypePaymentInitiated, `{"attempt":1e2}`},
	{TypePaymentInitiated, `{"attempt":-}`},
	{TypePaymentInitiated, `{"attempt":"2"}`},
	{TypePaymentInitiated, `{"attempt":9223372036854775807}`},
	{TypePaymentInitiated, `{"attempt":9223372036854775808}`},
	{TypePaymentInitiated, `{"attempt":2x}`},
	{TypeCreated, `{"number":-9223372036854775809}`},
	{TypeCreated, `{"metadata":{}}`},
	{TypeCreated, `{"metadata":null}`},
	{TypeCreated, `{"metadata":{"a":"1","a":"2","b\n":"\u0041"}}`},
	{TypeCreated, `{"metadata":{"a":1}}`},
	{TypeCreated, `{"metadata":{"a":"1",}}`},
	{TypeCreated, `{"line_items":[]}`},
	{TypeCreated, `{"line_items":[{}]}`},
	{TypeCreated, `{"line_items":[{"name":"a","quantity":2,"total":"1.00"},{"product_id":7}]}`},
	{TypeCreated, `{"line_items":[{"name":"a"},]}`},
	{TypeCreated, `{"line_items":null}`},
	{TypeCreated, `{"line_items":[{"quantity":1.5}]}`},
	{TypeCreated, `{"customer":{}}`},
	{TypeCreated, `{"customer":{"address":{}}}`},
	{TypeCreated, `{"customer":{"address":null}}`},
	{TypeCreated, `{"customer":{"name":"x","name":"y"}}`},
	{TypeCreated, `{"customer":{"address":{"city":"a"},"address":{"line1":"b"}}}`},
	{TypeCreated, `{"return_urls":{"success":"s"}}`},
	{TypeCreated, `{"return_urls":[]}`},
	{TypeCreated, `{"amount":100.55}`},
	{TypeCallbackReceived, `{"verified":true}`},
	{TypeCallbackReceived, `{"verified":false}`},
	{TypeCallbackReceived, `{"verified":"yes"}`},
	{TypeCallbackReceived, `{"verified":tru}`},
	{TypeCallbackReceived, `{"verified":truex}`},
	{TypeCallbackReceived, `{"at":"not a time","verified":"yes"}`},
	{TypeFlagged, `{"flag":"something_new"}`},
	{"invoice.unknown", `{}`},
	{"", `{}`},
}

func TestFastDecodeOddInputs(t *testing.T) {
	t.Parallel()
	for _, in := range oddInputs {
		sameAsJSON(t, in.typ, []byte(in.data))
	}
}

// FuzzFastDecode: for any body under any event name, Decode answers what
// encoding/json answers, and the short path never accepts what it would
// not, nor reads anything differently.
func FuzzFastDecode(f *testing.F) {
	types := append(Types(), "invoice.unknown")
	index := map[string]uint8{}
	for i, typ := range types {
		index[typ] = uint8(i)
	}
	for _, e := range fullEvents() {
		typ, data, err := Encode(e)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(index[typ], data)
	}
	for _, in := range oddInputs {
		if i, ok := index[in.typ]; ok {
			f.Add(i, []byte(in.data))
		}
	}
	f.Fuzz(func(t *testing.T, i uint8, data []byte) {
		sameAsJSON(t, types[int(i)%len(types)], data)
	})
}

// BenchmarkDecode compares the short path with encoding/json over one
// event of every type.
func BenchmarkDecode(b *testing.B) {
	type rec struct {
		typ  string
		data []byte
	}
	var recs []rec
	for _, e := range fullEvents() {
		typ, data, err := Encode(e)
		if err != nil {
			b.Fatal(err)
		}
		recs = append(recs, rec{typ, data})
	}
	for name, decode := range map[string]func(string, []byte) (Event, error){"Decode": Decode, "encoding-json": decodeJSON} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				for _, r := range recs {
					if _, err := decode(r.typ, r.data); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(len(recs)*b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
