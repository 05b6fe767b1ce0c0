package guide_test

import (
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/cstalk/cstalk/chat/openapitest"
)

// conformant wraps the guide API so that every answer is checked against
// openapi.yaml; the event stream (it never ends within a request) and the
// document itself pass through.
func conformant(t *testing.T, next http.Handler) http.Handler {
	spec, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return openapitest.Conformant(t, spec, next, func(r *http.Request) bool {
		return strings.HasPrefix(r.URL.Path, "/guide/events") || r.URL.Path == "/guide/openapi.yaml"
	})
}
