// Package woocommerce serves the seed-compatible reset-fee endpoint that a
// prop-firm platform calls as if the ledger were a WooCommerce store:
// POST /wp-json/payledger/v1/reset-fee creates an invoice for a catalog
// variation and returns its one-time payment link in one call.
//
// The request and response shapes are the seed's, field for field:
// success 200 {"success": true, "order_id": <invoice number>,
// "payment_url": "<link>"}, errors {"success": false, "message": "…"} with
// 400 (bad body, unknown product, missing or invalid email), 401 (missing
// or wrong secret) and 500. The secret is compared in constant time with
// every configured secret (several during a rotation). Invoices are
// created through ledger.Invoices so that the native API's validation and
// expiry rules apply here too.
//
// The catalog (variation_id → challenge type, account size, price) is a
// JSON file loaded at startup; see the example in the repository's testdata/catalog.json. The WooCommerce
// webhook format of payment results lives in adapters/webhook.
package woocommerce
