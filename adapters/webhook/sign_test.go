package webhook_test

import (
	"testing"

	"github.com/payledger/payledger/adapters/webhook"
)

// The vectors of API.md: Standard Webhooks' own test vector and the
// WooCommerce one, byte for byte.
func TestSignStandardVector(t *testing.T) {
	t.Parallel()
	const (
		secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
		id     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
		body   = `{"test": 2432232314}`
		want   = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	)
	got, err := webhook.SignStandard(secret, id, 1614265330, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("signature %q, want %q", got, want)
	}
	if !webhook.VerifyStandard(secret, id, "1614265330", []byte(body), "v1,bogus "+want) {
		t.Fatal("VerifyStandard refused the vector among several signatures")
	}
	for name, c := range map[string]struct{ id, ts, body string }{
		"other id":        {"msg_other", "1614265330", body},
		"other timestamp": {id, "1614265331", body},
		"other body":      {id, "1614265330", `{"test": 2432232315}`},
	} {
		if webhook.VerifyStandard(secret, c.id, c.ts, []byte(c.body), want) {
			t.Errorf("%s: VerifyStandard accepted a signature over different input", name)
		}
	}
	if _, err := webhook.SignStandard("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", id, 1, nil); err == nil {
		t.Error("a secret without whsec_ was accepted")
	}
	if _, err := webhook.SignStandard("whsec_!!!", id, 1, nil); err == nil {
		t.Error("a secret that is not base64 was accepted")
	}
}

func TestSignWooCommerceVector(t *testing.T) {
	t.Parallel()
	const want = "z1PTSunFKhGV0B2iDV3egGE8TThlQMRrvLklMBTdxQU="
	if got := webhook.SignWooCommerce("s3cr3t", []byte(`{"id":1}`)); got != want {
		t.Fatalf("signature %q, want %q", got, want)
	}
	if !webhook.VerifyWooCommerce("s3cr3t", []byte(`{"id":1}`), want) {
		t.Fatal("VerifyWooCommerce refused the vector")
	}
	if webhook.VerifyWooCommerce("s3cr3t", []byte(`{"id":2}`), want) {
		t.Fatal("VerifyWooCommerce accepted another body")
	}
}

func TestNewSecrets(t *testing.T) {
	t.Parallel()
	a, b := webhook.NewStandardSecret(), webhook.NewStandardSecret()
	if a == b {
		t.Fatal("two standard secrets are equal")
	}
	if _, err := webhook.SignStandard(a, "msg", 1, []byte("x")); err != nil {
		t.Fatalf("a fresh secret %q does not sign: %v", a, err)
	}
	if w := webhook.NewWooCommerceSecret(); len(w) != 40 {
		t.Fatalf("woocommerce secret %q has %d characters, want 40", w, len(w))
	}
}
