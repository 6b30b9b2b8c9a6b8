// Package openapitest lets the tests of any package that serves routes
// under /v1 validate the real responses of those routes against the
// native API's OpenAPI document, the very bytes the server embeds and
// serves at GET /v1/openapi.yaml. The document is only worth reading if
// it says what the server does; a test that drives a route through this
// package fails when the route answers a status the document does not
// list, a body its schema refuses, or accepts a request the document
// would refuse.
//
// It is a test helper: only test code imports it, so kin-openapi never
// reaches the binary.
package openapitest
