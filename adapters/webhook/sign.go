package webhook

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
)

// StandardSecretPrefix marks a Standard Webhooks secret; the rest is the
// base64 of the HMAC key.
const StandardSecretPrefix = "whsec_"

// ErrBadSecret is returned for a Standard Webhooks secret that is not
// "whsec_" followed by base64.
var ErrBadSecret = errors.New("webhook: secret must be whsec_ followed by base64")

func standardKey(secret string) ([]byte, error) {
	b64, ok := strings.CutPrefix(secret, StandardSecretPrefix)
	if !ok {
		return nil, ErrBadSecret
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(key) == 0 {
		return nil, ErrBadSecret
	}
	return key, nil
}

// SignStandard returns the webhook-signature header of Standard Webhooks
// v1: "v1," + base64(HMAC-SHA256(key, id + "." + timestamp + "." + body)).
func SignStandard(secret, msgID string, timestamp int64, body []byte) (string, error) {
	key, err := standardKey(secret)
	if err != nil {
		return "", err
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(msgID))
	mac.Write([]byte{'.'})
	mac.Write([]byte(strconv.FormatInt(timestamp, 10)))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)), nil
}

// VerifyStandard checks a webhook-signature header (which may carry several
// space-separated signatures, during a secret rotation) in constant time.
// Receivers written in Go can use it; the tests use it as the receiver.
func VerifyStandard(secret, msgID, timestamp string, body []byte, header string) bool {
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return false
	}
	want, err := SignStandard(secret, msgID, ts, body)
	if err != nil {
		return false
	}
	for _, sig := range strings.Fields(header) {
		if hmac.Equal([]byte(sig), []byte(want)) {
			return true
		}
	}
	return false
}

// SignWooCommerce returns X-WC-Webhook-Signature: base64(HMAC-SHA256 of
// the raw body keyed with the secret's bytes), as WooCommerce computes it.
func SignWooCommerce(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// VerifyWooCommerce checks X-WC-Webhook-Signature in constant time.
func VerifyWooCommerce(secret string, body []byte, header string) bool {
	return hmac.Equal([]byte(SignWooCommerce(secret, body)), []byte(header))
}

// NewStandardSecret returns a fresh whsec_ secret over 24 random bytes
// (the size of the Standard Webhooks examples).
func NewStandardSecret() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return StandardSecretPrefix + base64.StdEncoding.EncodeToString(b[:])
}

// NewWooCommerceSecret returns a fresh plain-string secret, as WooCommerce
// stores one: 40 URL-safe characters from 30 random bytes.
func NewWooCommerceSecret() string {
	var b [30]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
