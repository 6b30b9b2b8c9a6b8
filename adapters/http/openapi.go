package httpapi

import (
	_ "embed"
	"net/http"
)

// openAPI is the OpenAPI 3.1 document of the native API. The canonical file
// sits beside this package because go:embed cannot reach outside it;
// docs/openapi.yaml is a copy that a test keeps identical.
//
//go:embed openapi.yaml
var openAPI []byte

// OpenAPI returns the OpenAPI document served at /v1/openapi.yaml.
func OpenAPI() []byte { return append([]byte(nil), openAPI...) }

// serveOpenAPI is public (no key): the document describes how to get one.
func (s *Server) serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/yaml")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(openAPI)
}
